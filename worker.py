"""The Celery app, its beat schedule and three thin tasks.

Embedded default: kombu's ``filesystem://`` broker in absolute folders under ``var/broker``
(messages in and out of one folder, processed ones kept beside them on the same disk), one
``celery -A worker worker -B`` process. Production: ``BANGFU_BROKER_URL`` (``redis://`` or
``amqp://``) and exactly one ``celery -A worker beat`` beside any number of workers. Queue names
carry ``BANGFU_QUEUE_PREFIX``. Beat runs in Asia/Shanghai.

Tasks take an as-of time (ISO text, or none for the clock's now) and make one call:
:func:`workflow.scheduler.sweeps.run_sweep` or :func:`workflow.scheduler.outbox.deliver_pending`. Reminders are never
long-ETA tasks: the sweep works out from the database what is due, so a lost or repeated task
message costs nothing (the next sweep or delivery finishes the job).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
from functools import lru_cache
from pathlib import Path
from typing import Any

from celery import Celery, signals
from celery.schedules import crontab
from celery.worker import state as worker_state
from kombu import Queue

from workflow import logs
from workflow.app import audit
from workflow.app import verify as verifying
from workflow.domain import clock
from workflow.domain.errors import StoreUnavailable
from workflow.scheduler.outbox import default_channels, deliver_all
from workflow.scheduler.sweeps import run_sweep
from workflow.settings import Settings, get_settings
from workflow.store.tables import Database
from workflow.store.uow import UnitOfWork

TIMEZONE = "Asia/Shanghai"


def broker_folders(settings: Settings) -> dict[str, Path]:
    """The filesystem broker's folders (absolute, under ``var/broker``)."""
    root = (settings.var_dir / "broker").resolve()
    return {"data": root / "queue", "processed": root / "processed", "control": root / "control"}


def make_config(settings: Settings) -> dict[str, Any]:
    """The Celery configuration for ``settings`` (creates the broker folders when embedded)."""
    prefix = settings.queue_prefix
    config: dict[str, Any] = {
        "broker_url": settings.broker_url,
        "result_backend": settings.result_backend,
        "timezone": TIMEZONE,
        "enable_utc": True,
        "task_acks_late": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": f"{prefix}.default",
        "task_queues": (Queue(f"{prefix}.default"),),
        "task_default_exchange": f"{prefix}.default",
        "task_default_routing_key": f"{prefix}.default",
        # A shared broker's `celery control` and events reach this deployment only.
        "control_exchange": f"{prefix}.control",
        "event_exchange": f"{prefix}.events",
        "beat_schedule_filename": str((settings.var_dir / "celerybeat-schedule").resolve()),
        "broker_connection_retry_on_startup": True,
        "task_ignore_result": settings.result_backend is None,
        "beat_schedule": {
            # The daily sweep at the reminder hour, repeated every hour at :05 as the catch-up
            # (idempotent: a repeat writes nothing new).
            "sweep-hourly": {"task": "bangfu.sweep", "schedule": crontab(minute="5")},
            "deliver-every-minute": {"task": "bangfu.deliver", "schedule": 60.0},
            # Every night the stored figures are recomputed from the ledger (``bangfu verify``).
            "verify-nightly": {"task": "bangfu.verify", "schedule": crontab(hour="3", minute="30")},
            # The history chain's heads, appended to var/audit/heads.log and e-mailed to the
            # province's admins: a rewritten tail is caught against the last export.
            "audit-head-daily": {"task": "bangfu.audit_head", "schedule": crontab(minute="30", hour="1")},
        },
    }
    if settings.broker_url.startswith(("redis", "rediss")):
        # Redis re-delivers an unacknowledged task after this many seconds: it must exceed the
        # longest task (a province sweep; a delivery run ends after BANGFU_DELIVERY_RUN_SECONDS
        # plus one message, however slow the relay: docs/operations.md).
        config["broker_transport_options"] = {"visibility_timeout": settings.visibility_timeout}
    if settings.broker_url.startswith("filesystem"):
        folders = broker_folders(settings)
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        config["broker_transport_options"] = {
            "data_folder_in": str(folders["data"]),
            "data_folder_out": str(folders["data"]),
            "processed_folder": str(folders["processed"]),
            "store_processed": True,
            "control_folder": str(folders["control"]),
        }
    return config


#: Set (in shared memory made before the pool forks, so every prefork child sees it) when the
#: worker's warm shutdown begins: a delivery under way stops before its next message and
#: releases the rest. No signal is sent to the children: an idle child ended by one is replaced
#: by the pool during the shutdown and later killed, which logs ERROR lines (``exited with
#: 'signal 15 (SIGTERM)'`` / ``'signal 9 (SIGKILL)'``) on what is a clean stop.
_STOP = multiprocessing.RawValue("b", 0)
log = logging.getLogger("bangfu.worker")


def shutting_down() -> bool:
    """The worker is shutting down (its warm shutdown began, seen from the main process and
    every prefork child, or the solo worker's warm or cold shutdown began)."""
    return bool(_STOP.value) or bool(worker_state.should_stop) or bool(worker_state.should_terminate)


@signals.worker_shutting_down.connect
def _tell_children(**_: Any) -> None:
    # A warm shutdown waits for running tasks: tell the pool's children to wind down now.
    _STOP.value = 1


@signals.worker_init.connect
def _fresh_flag(**_: Any) -> None:
    # A worker started again in the same interpreter (tests) starts from "running".
    _STOP.value = 0


def sweep(self: Any, as_of_iso: str | None = None) -> dict[str, Any]:
    """Run the sweep as of ``as_of_iso`` (default: the business now); delivery follows within a
    minute. A database error half way (a terminated connection) is retried by Celery with
    backoff; the sweep is idempotent, so the retry writes what is missing."""
    s = self.app.conf.bangfu_settings
    return run_sweep(database(s.database_url), now=_as_of(as_of_iso),
                     holder=_worker_id()).to_dict()


def deliver(self: Any, as_of_iso: str | None = None) -> dict[str, Any]:
    """Deliver pending notifications on ``BANGFU_SMTP_CONNECTIONS`` connections for at most
    ``BANGFU_DELIVERY_RUN_SECONDS``. Leases, backoffs and ``sent_at`` use the real clock (never
    ``BANGFU_NOW``); an explicit ``as_of_iso`` starts a clock that advances with real time from
    there (drills, demos). A lost database connection hands the batch back and raises
    ``StoreUnavailable``: Celery retries the task with backoff."""
    s = self.app.conf.bangfu_settings
    start = clock.parse_instant(as_of_iso) if as_of_iso else None
    return deliver_all(
        database(s.database_url), channels=default_channels(s), now=start,
        worker_id=_worker_id(), base_url=s.base_url, batch=s.delivery_batch,
        lease_seconds=s.lease_seconds, connections=s.smtp_connections,
        max_seconds=s.delivery_run_seconds, should_stop=shutting_down,
    ).to_dict()


def verify(self: Any) -> dict[str, int]:
    """Recompute every round's figures from the ledger (read-only); each difference is logged
    as an error naming the organisation, for the operators' alerting. Returns the differences
    per round."""
    s = self.app.conf.bangfu_settings
    found = {}
    for report in verifying.verify(UnitOfWork(database(s.database_url), readonly=True)):
        found[report.round_label] = len(report.findings)
        for finding in report.findings:
            log.error("verify: %s: %s", report.round_label, finding.line)
        log.info("verify: %s: %d differences in %.1f s", report.round_label, len(report.findings), report.seconds)
    return found


def audit_head(self: Any) -> dict[str, Any]:
    """Export the history chain's heads (:func:`workflow.app.audit.export_head`)."""
    s = self.app.conf.bangfu_settings
    entry: dict[str, Any] = audit.export_head(UnitOfWork(database(s.database_url)), var_dir=s.var_dir)
    return entry


def create_app(settings: Settings) -> Celery:
    """A Celery app for ``settings``, with the two tasks registered.

    ``worker.app`` is the one for the environment's settings; tests make their own with a
    per-run queue prefix, broker and database.
    """
    celery = Celery("bangfu", set_as_current=False)
    celery.conf.update(make_config(settings))
    celery.conf.bangfu_settings = settings
    logs.configure(settings)
    celery.task(name="bangfu.sweep", bind=True, shared=False,
                autoretry_for=(StoreUnavailable,), retry_backoff=2,
                retry_backoff_max=300, retry_jitter=False, max_retries=10)(sweep)
    celery.task(name="bangfu.deliver", bind=True, shared=False,
                autoretry_for=(StoreUnavailable,), retry_backoff=2, retry_backoff_max=60,
                retry_jitter=False, max_retries=5)(deliver)
    celery.task(name="bangfu.verify", bind=True, shared=False,
                autoretry_for=(StoreUnavailable,), retry_backoff=2, max_retries=5)(verify)
    celery.task(name="bangfu.audit_head", bind=True, shared=False,
                autoretry_for=(StoreUnavailable,), retry_backoff=2, max_retries=10)(audit_head)
    return celery


@lru_cache(maxsize=4)
def database(url: str) -> Database:
    """The process's database for ``url`` (one engine per worker process)."""
    return Database(url)


def _as_of(as_of_iso: str | None) -> Any:
    return clock.parse_instant(as_of_iso) if as_of_iso else clock.now()


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


app = create_app(get_settings())
