"""The Celery app, its beat schedule and two thin tasks.

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

import os
import socket
from functools import lru_cache
from pathlib import Path
from typing import Any

from celery import Celery
from celery.schedules import crontab
from kombu import Queue

from workflow.domain import clock
from workflow.settings import Settings, get_settings
from workflow.store.tables import Database

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
        "beat_schedule_filename": str((settings.var_dir / "celerybeat-schedule").resolve()),
        "broker_connection_retry_on_startup": True,
        "task_ignore_result": settings.result_backend is None,
        "beat_schedule": {
            # The daily sweep at the reminder hour, repeated every hour at :05 as the catch-up
            # (idempotent: a repeat writes nothing new).
            "sweep-hourly": {"task": "bangfu.sweep", "schedule": crontab(minute="5")},
            "deliver-every-minute": {"task": "bangfu.deliver", "schedule": 60.0},
        },
    }
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


def sweep(self: Any, as_of_iso: str | None = None) -> dict[str, Any]:
    """Run the sweep as of ``as_of_iso`` (default now); delivery follows within a minute."""
    # Lazy: the tasks' modules load in the worker child, not when beat or a client imports the app.
    from workflow.scheduler.sweeps import run_sweep

    s = self.app.conf.bangfu_settings
    return run_sweep(database(s.database_url), now=_as_of(as_of_iso)).to_dict()


def deliver(self: Any, as_of_iso: str | None = None) -> dict[str, Any]:
    """Deliver pending notifications as of ``as_of_iso`` (default now)."""
    # Lazy: the tasks' modules load in the worker child, not when beat or a client imports the app.
    from workflow.scheduler.outbox import default_channels, deliver_all

    s = self.app.conf.bangfu_settings
    return deliver_all(
        database(s.database_url), channels=default_channels(s), now=_as_of(as_of_iso),
        worker_id=_worker_id(), base_url=s.base_url,
    ).to_dict()


def create_app(settings: Settings) -> Celery:
    """A Celery app for ``settings``, with the two tasks registered.

    ``worker.app`` is the one for the environment's settings; tests make their own with a
    per-run queue prefix, broker and database.
    """
    celery = Celery("bangfu", set_as_current=False)
    celery.conf.update(make_config(settings))
    celery.conf.bangfu_settings = settings
    celery.task(name="bangfu.sweep", bind=True, shared=False)(sweep)
    celery.task(name="bangfu.deliver", bind=True, shared=False)(deliver)
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
