"""A real Celery worker: in-process (celery.contrib.testing) over the filesystem broker, Redis
and RabbitMQ; and as a subprocess for the drills, killed at ``BANGFU_KILL_AT`` points.

Every wait below waits for an event (a row's status, a process's exit) with a generous limit;
nothing asserts on timing.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker

import worker as worker_module
from notifications.channels import message_id_for
from tests.conftest import QUEUE_PREFIX, RABBIT_URL, REDIS_URL, World, need, port_open
from tests.notifications.conftest import SmtpServer
from tests.scheduler.conftest import (
    BASE_URL,
    DEC_1_0900,
    backlog,
    message_ids,
    received_pairs,
    rows,
)
from workflow.settings import Settings, from_env

ROOT = Path(__file__).resolve().parents[2]
AS_OF = DEC_1_0900.isoformat()
LATER = (DEC_1_0900 + timedelta(minutes=5)).isoformat()


def settings_for(w: World, server: SmtpServer, tmp_path: Path, broker: str = "filesystem://",
                 tag: str = "") -> Settings:
    return dataclasses.replace(
        from_env(), var_dir=tmp_path / "var", database_url=w.db.url, broker_url=broker,
        queue_prefix=f"{QUEUE_PREFIX}{tag}", smtp_host=server.host, smtp_port=server.port,
        base_url=BASE_URL,
    )


def wait_for(condition: Callable[[], bool], what: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def expected_ids(w: World) -> list[str]:
    return sorted(message_id_for(f"{r['user_id']}:email:{r['source']}")
                  for r in rows(w.db, "channel = 'email'"))


def all_sent(w: World) -> bool:
    email = rows(w.db, "channel = 'email'")
    return bool(email) and all(r["status"] == "sent" for r in email)


# --- in-process worker over each broker ------------------------------------------------------


def _sweep_and_deliver_through(settings: Settings, w: World, server: SmtpServer) -> None:
    app = worker_module.create_app(settings)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        app.send_task("bangfu.sweep", args=[AS_OF])
        wait_for(lambda: bool(rows(w.db, "channel = 'email'")), "the sweep's rows")
        app.send_task("bangfu.deliver", args=[AS_OF])
        wait_for(lambda: all_sent(w), "delivery")
    assert message_ids(server) == expected_ids(w)
    assert any("剩余 12,345.60 元" in str(m.get("Subject")) for m in _mails(server))


def _mails(server: SmtpServer) -> list:  # type: ignore[type-arg]
    from tests.scheduler.conftest import mails

    return mails(server)


def test_worker_over_the_filesystem_broker(round_world: World, smtp_server: SmtpServer,
                                           tmp_path: Path) -> None:
    settings = settings_for(round_world, smtp_server, tmp_path, tag="_fs")
    _sweep_and_deliver_through(settings, round_world, smtp_server)
    folders = worker_module.broker_folders(settings)
    assert all(f.is_absolute() and f.is_dir() for f in folders.values())
    assert list(folders["data"].iterdir()) == []  # every message consumed
    assert len(list(folders["processed"].iterdir())) == 2  # kept on the same disk


@pytest.mark.redis
def test_worker_over_redis(round_world: World, smtp_server: SmtpServer, tmp_path: Path) -> None:
    need("Redis", port_open("127.0.0.1", 6379))
    settings = settings_for(round_world, smtp_server, tmp_path, REDIS_URL, tag="_redis")
    _sweep_and_deliver_through(settings, round_world, smtp_server)


@pytest.mark.rabbitmq
def test_worker_over_rabbitmq(round_world: World, smtp_server: SmtpServer, tmp_path: Path) -> None:
    need("RabbitMQ", port_open("127.0.0.1", 5672))
    settings = settings_for(round_world, smtp_server, tmp_path, RABBIT_URL, tag="_amqp")
    _sweep_and_deliver_through(settings, round_world, smtp_server)


def test_the_app_is_configured_for_china_time_and_late_acks() -> None:
    conf = worker_module.app.conf
    assert conf.timezone == "Asia/Shanghai" and conf.enable_utc is True
    assert conf.task_acks_late is True and conf.worker_prefetch_multiplier == 1
    assert conf.task_default_queue.endswith(".default")
    assert {"sweep-hourly", "deliver-every-minute"} <= set(conf.beat_schedule)


# --- subprocess workers and the drills -------------------------------------------------------


class Workers:
    """Start ``celery -A worker worker`` subprocesses on the test's settings."""

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        self.settings = settings
        self.tmp_path = tmp_path
        self.procs: list[subprocess.Popen[bytes]] = []
        self.app = worker_module.create_app(settings)
        self.extra_env: dict[str, str] = {}

    def env(self, kill_at: str | None = None, **extra: str) -> dict[str, str]:
        s = self.settings
        env = dict(os.environ)
        env.update({
            "PYTHONPATH": str(ROOT), "BANGFU_DATABASE_URL": s.database_url,
            "BANGFU_BROKER_URL": s.broker_url, "BANGFU_VAR_DIR": str(s.var_dir),
            "BANGFU_QUEUE_PREFIX": s.queue_prefix, "BANGFU_SMTP_HOST": s.smtp_host,
            "BANGFU_SMTP_PORT": str(s.smtp_port), "BANGFU_BASE_URL": s.base_url,
        })
        env.pop("BANGFU_KILL_AT", None)
        env.pop("BANGFU_NOW", None)
        if kill_at:
            env["BANGFU_KILL_AT"] = kill_at
        env.update(self.extra_env)
        env.update(extra)
        return env

    def start(self, kill_at: str | None = None, *, pool: str = "solo", concurrency: int = 1,
              **extra: str) -> subprocess.Popen[bytes]:
        s = self.settings
        log = open(self.tmp_path / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", "worker", f"--pool={pool}",
             f"--concurrency={concurrency}",
             "--loglevel=INFO", "-Q", f"{s.queue_prefix}.default", "--without-mingle",
             "--without-gossip", "-n", f"drill{len(self.procs)}@%h"],
            cwd=ROOT, env=self.env(kill_at, **extra), stdout=log, stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def deliver_cli(self, **extra: str) -> subprocess.Popen[bytes]:
        """A second delivery process: ``bangfu deliver --json``."""
        log = open(self.tmp_path / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "workflow.entrypoints.cli", "deliver", "--json"],
            cwd=ROOT, env=self.env(**extra), stdout=log, stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def send(self, task: str, as_of: str, task_id: str | None = None) -> None:
        self.app.send_task(task, args=[as_of], task_id=task_id)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def log(self) -> str:
        return "\n".join((self.tmp_path / f"worker-{i}.log").read_text(errors="replace")
                         for i in range(len(self.procs)))


@pytest.fixture()
def workers(round_world: World, smtp_server: SmtpServer, tmp_path: Path) -> Iterator[Workers]:
    ws = Workers(settings_for(round_world, smtp_server, tmp_path, tag="_drill"), tmp_path)
    yield ws
    ws.stop()


def _killed(ws: Workers, proc: subprocess.Popen[bytes]) -> None:
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the worker did not reach its kill point:\n" + ws.log())
    assert code == 137, ws.log()


def test_killed_after_claim_the_next_delivery_sends_each_once(
    round_world: World, smtp_server: SmtpServer, workers: Workers
) -> None:
    w = round_world
    proc = workers.start(kill_at="after_claim")
    workers.send("bangfu.sweep", AS_OF)
    wait_for(lambda: bool(rows(w.db, "channel = 'email'")), "the sweep")
    workers.send("bangfu.deliver", AS_OF)
    _killed(workers, proc)
    assert smtp_server.handler.received == []
    pending = rows(w.db, "channel = 'email'")
    assert pending and all(r["status"] == "pending" and r["attempts"] == 1 for r in pending)
    # On the filesystem broker the message the killed worker took is gone; the next delivery
    # (a beat minute later, after the lease) finds the rows in the database and finishes.
    left = sorted(worker_module.broker_folders(workers.settings)["data"].iterdir())
    # On failure, show which messages were left (name and start) beside the worker's log.
    assert left == [], [(f.name, f.read_bytes()[:300]) for f in left] + [workers.log()]
    workers.start()
    workers.send("bangfu.deliver", LATER)
    wait_for(lambda: all_sent(w), "the recovery delivery")
    assert message_ids(smtp_server) == expected_ids(w)  # every one, exactly once


@pytest.mark.parametrize("connections", [1, 4])
def test_killed_after_send_before_mark_repeats_one_mail_with_the_same_message_id(
    round_world: World, smtp_server: SmtpServer, workers: Workers, connections: int
) -> None:
    """The repeat window is one message per SMTP connection: with one connection exactly the
    mail accepted before the kill goes again; with four (issue 25.4), each connection's
    message in flight at most, never one more."""
    w = round_world
    workers.extra_env["BANGFU_SMTP_CONNECTIONS"] = str(connections)
    proc = workers.start(kill_at="after_send")
    workers.send("bangfu.sweep", AS_OF)
    wait_for(lambda: bool(rows(w.db, "channel = 'email'")), "the sweep")
    workers.send("bangfu.deliver", AS_OF)
    _killed(workers, proc)
    before_kill = message_ids(smtp_server)
    assert 1 <= len(before_kill) <= connections
    marked = {message_id_for(f"{r['user_id']}:email:{r['source']}")
              for r in rows(w.db, "channel = 'email' AND status = 'sent'")}
    workers.start()
    workers.send("bangfu.deliver", LATER)
    wait_for(lambda: all_sent(w), "the recovery delivery")
    counts = collections.Counter(message_ids(smtp_server))
    assert sorted(counts) == expected_ids(w)  # none lost
    repeated = {mid: n for mid, n in counts.items() if n > 1}
    # Only messages accepted before the kill and never marked go again, once, same id.
    assert repeated == {mid: 2 for mid in before_kill if mid not in marked}
    if connections == 1:
        [first] = before_kill
        assert repeated == {first: 2}  # one repeat, same id


def test_two_beats_and_a_redelivered_task_send_nothing_twice(
    round_world: World, smtp_server: SmtpServer, workers: Workers
) -> None:
    w = round_world
    # Two beats each publish the sweep and the delivery; the broker redelivers one of them.
    for task_id in ("beat-a-sweep", "beat-b-sweep", "beat-a-sweep"):
        workers.send("bangfu.sweep", AS_OF, task_id=task_id)
    for task_id in ("beat-a-deliver", "beat-b-deliver", "beat-a-deliver"):
        workers.send("bangfu.deliver", AS_OF, task_id=task_id)
    workers.start()
    workers.start()
    data = worker_module.broker_folders(workers.settings)["data"]
    wait_for(lambda: all_sent(w) and not list(data.iterdir()), "both workers to finish")
    workers.stop()
    keys = [(r["user_id"], r["channel"], r["source"]) for r in rows(w.db)]
    assert len(keys) == len(set(keys))
    assert message_ids(smtp_server) == expected_ids(w)


def test_production_config_uses_the_broker_url_and_prefixed_queues(tmp_path: Path) -> None:
    s = dataclasses.replace(from_env(), var_dir=tmp_path / "var", broker_url=REDIS_URL,
                            queue_prefix="gd_prod")
    conf = worker_module.make_config(s)
    assert conf["broker_url"] == REDIS_URL
    # Redis: re-delivery of an unacknowledged task only after the longest task (issue 11.8).
    assert conf["broker_transport_options"] == {"visibility_timeout": s.visibility_timeout}
    assert conf["control_exchange"] == "gd_prod.control"
    assert conf["event_exchange"] == "gd_prod.events"
    assert conf["task_default_queue"] == "gd_prod.default"
    assert [q.name for q in conf["task_queues"]] == ["gd_prod.default"]
    assert not (tmp_path / "var" / "broker").exists()  # no folders outside the embedded default
    embedded = worker_module.make_config(dataclasses.replace(s, broker_url="filesystem://"))
    opts = embedded["broker_transport_options"]
    assert opts["data_folder_in"] == opts["data_folder_out"]
    assert Path(opts["processed_folder"]).parent == Path(opts["data_folder_in"]).parent
    assert all(Path(v).is_absolute() and Path(v).is_dir() for k, v in opts.items()
               if k.endswith("folder") or k.startswith("data_folder"))


# --- issue 11: leases that hold under load ---------------------------------------------------
#
# A backlog larger than two leases (600 mails at a relay taking 50 ms each, the lease shortened
# to 3 s, batches of 100 taking about 5 s), a real prefork worker at concurrency 2 plus a second
# delivery process (`bangfu deliver`), on SQLite and PostgreSQL.

DRILL_ENV = {"BANGFU_LEASE_SECONDS": "3", "BANGFU_DELIVERY_BATCH": "100"}
BACKLOG = 600
#: The drills' broker: the embedded filesystem one, or ``redis`` / ``amqp`` for the production
#: shapes (``BANGFU_DRILL_BROKER=redis pytest -m slow tests/scheduler``).
DRILL_BROKER = {"redis": REDIS_URL, "amqp": RABBIT_URL}.get(
    os.environ.get("BANGFU_DRILL_BROKER", ""), "filesystem://")


@pytest.fixture()
def drill(round_world: World, slow_smtp: SmtpServer, tmp_path: Path) -> Iterator[Workers]:
    ws = Workers(settings_for(round_world, slow_smtp, tmp_path, DRILL_BROKER, tag="_lease"),
                 tmp_path)
    ws.extra_env = dict(DRILL_ENV)
    yield ws
    ws.stop()


def _email_status(w: World) -> collections.Counter[str]:
    return collections.Counter(str(r["status"]) for r in rows(w.db, "source LIKE 'drill:%'"))


def _cli_report(ws: Workers, proc: subprocess.Popen[bytes]) -> dict[str, object]:
    text_ = (ws.tmp_path / f"worker-{ws.procs.index(proc)}.log").read_text()
    return dict(json.loads(text_[text_.index("{"):text_.rindex("}") + 1]))


def _drill_table(expected: list[tuple[str, str]], server: SmtpServer) -> dict[str, int]:
    got = collections.Counter(received_pairs(server))
    return {"expected": len(expected), "received": sum(got.values()),
            "twice": sum(1 for n in got.values() if n > 1),
            "missing": len(set(expected) - set(got))}


@pytest.mark.slow
def test_prefork_worker_and_a_second_process_send_a_long_backlog_once(
    round_world: World, slow_smtp: SmtpServer, drill: Workers
) -> None:
    w = round_world
    expected = backlog(w.db, BACKLOG)
    drill.start(pool="prefork", concurrency=2)
    for _ in range(4):  # beats publishing the delivery while the first ones still run
        drill.send("bangfu.deliver", None)  # type: ignore[arg-type]
    wait_for(lambda: len(slow_smtp.handler.received) >= 20, "the worker to start sending")
    second = drill.deliver_cli()
    wait_for(lambda: second.poll() is not None, "the second delivery process", limit=120)
    wait_for(lambda: _email_status(w)["sent"] == BACKLOG, "the whole backlog", limit=120)
    drill.stop()
    table = _drill_table(expected, slow_smtp)
    print("drill 1 worker x 2 processes + 1 process:", w.db.dialect, table)
    assert table == {"expected": BACKLOG, "received": BACKLOG, "twice": 0, "missing": 0}
    assert sorted(received_pairs(slow_smtp)) == expected
    report = _cli_report(drill, second)
    # The second process's batches outlived the 3 s lease and renewed it.
    assert int(report["sent"]) > 0 and int(report["renewed"]) > 0, report  # type: ignore[call-overload]
    # Each sent row was marked by the one who holds its claim, at its own send time.
    sent = rows(w.db, "source LIKE 'drill:%'")
    assert all(r["claim"] for r in sent)
    by_worker: dict[str, list[object]] = collections.defaultdict(list)
    for r in sent:
        by_worker[str(r["claim"]).rsplit(":", 1)[0]].append(r["sent_at"])
    assert len(by_worker) >= 2  # the prefork children and the second process all delivered
    for times in by_worker.values():  # each process: one instant per message it sent
        assert len(set(times)) == len(times)


@pytest.mark.slow
def test_three_kills_repeat_at_most_one_mail_each_and_lose_none(
    round_world: World, slow_smtp: SmtpServer, drill: Workers
) -> None:
    w = round_world
    expected = backlog(w.db, BACKLOG)
    drill.start(pool="prefork", concurrency=2)
    drill.send("bangfu.deliver", None)  # type: ignore[arg-type]
    for _ in range(3):
        before = len(rows(w.db, "claim LIKE 'cli@%' AND status = 'sent'"))
        victim = drill.deliver_cli()
        wait_for(lambda b=before: len(rows(w.db, "claim LIKE 'cli@%' AND status = 'sent'")) > b + 5,
                 "the delivery process to send", limit=90)
        victim.send_signal(signal.SIGKILL)
        assert victim.wait(timeout=30) == -signal.SIGKILL
    deadline = time.monotonic() + 120
    while _email_status(w)["sent"] < BACKLOG and time.monotonic() < deadline:
        finisher = drill.deliver_cli()  # after the dead claims' leases ran out
        finisher.wait(timeout=120)
        time.sleep(0.5)
    drill.stop()
    table = _drill_table(expected, slow_smtp)
    print("drill 3 kills:", w.db.dialect, table)
    got = collections.Counter(received_pairs(slow_smtp))
    assert table["missing"] == 0 and set(got) == set(expected)
    assert table["twice"] <= 3 and all(n <= 2 for n in got.values()), table
    assert _email_status(w) == {"sent": BACKLOG}


@pytest.mark.slow
def test_business_time_set_on_workers_does_not_freeze_leases(
    round_world: World, smtp_server: SmtpServer, workers: Workers
) -> None:
    w = round_world
    expected = backlog(w.db, 20)
    frozen = {"BANGFU_NOW": "2021-12-01T09:00", "BANGFU_LEASE_SECONDS": "2"}
    proc = workers.start(kill_at="after_claim", **frozen)
    workers.send("bangfu.deliver", None)  # type: ignore[arg-type]
    _killed(workers, proc)
    assert smtp_server.handler.received == []
    workers.start(**frozen)
    # The beat publishes a delivery every minute; here every second until the lease runs out.
    deadline = time.monotonic() + 90
    while _email_status(w)["sent"] < 20 and time.monotonic() < deadline:
        workers.send("bangfu.deliver", None)  # type: ignore[arg-type]
        time.sleep(1)
    workers.stop()
    assert sorted(received_pairs(smtp_server)) == expected  # the killed worker's 20, once
    sent = rows(w.db, "source LIKE 'drill:%'")
    this_year = datetime.now(UTC).year
    years = {datetime.fromisoformat(str(r["sent_at"])).year for r in sent}
    assert years == {this_year}  # real time, not the business time
    assert len({r["sent_at"] for r in sent}) == 20  # when each one was sent


@pytest.mark.slow
def test_sigterm_stops_a_long_delivery_between_messages_and_releases_the_rest(
    round_world: World, slow_smtp: SmtpServer, drill: Workers
) -> None:
    w = round_world
    expected = backlog(w.db, BACKLOG)
    proc = drill.start(pool="prefork", concurrency=2)
    drill.send("bangfu.deliver", None)  # type: ignore[arg-type]
    drill.send("bangfu.deliver", None)  # type: ignore[arg-type]
    wait_for(lambda: _email_status(w)["sent"] >= 20, "the worker to be sending")
    proc.send_signal(signal.SIGTERM)  # what systemd's stop sends the main process
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the worker did not stop:\n" + drill.log())
    status = _email_status(w)
    # It stopped between messages instead of sending the rest of its batches first ...
    assert status["pending"] > 0, (status, drill.log())
    # ... and gave back what it had claimed, so nobody waits for a lease to run out.
    pending = rows(w.db, "source LIKE 'drill:%' AND status = 'pending'")
    assert all(r["lease_until"] is None for r in pending), drill.log()
    assert "delivery stopped for shutdown" in drill.log()
    finisher = drill.deliver_cli()
    wait_for(lambda: finisher.poll() is not None, "the next delivery", limit=120)
    while _email_status(w)["sent"] < BACKLOG:  # batches of 100 per run
        nxt = drill.deliver_cli()
        nxt.wait(timeout=120)
    assert sorted(received_pairs(slow_smtp)) == expected  # none twice, none missing


@pytest.mark.postgres
def test_a_sweep_killed_by_a_terminated_connection_is_retried_with_backoff(
    pg_world: World, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    from celery import signals as celery_signals
    from sqlalchemy import text as sql

    from tests.scheduler.conftest import setup_round
    from workflow.scheduler.sweeps import run_sweep

    w = pg_world
    setup_round(w)
    retries: list[str] = []

    def on_retry(request: object = None, reason: object = None, **_: object) -> None:
        retries.append(str(reason))

    celery_signals.task_retry.connect(on_retry, weak=False)
    settings = settings_for(w, smtp_server, tmp_path, tag="_retry")
    app = worker_module.create_app(settings)
    holder = w.db.engine.connect()
    try:
        # Another transaction holds the round row, so the sweep waits on it mid-way ...
        holder.execute(sql("SELECT id FROM round FOR UPDATE"))
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            app.send_task("bangfu.sweep", args=[AS_OF])

            def waiting() -> list[int]:
                with w.db.engine.connect() as c:
                    return [r[0] for r in c.execute(sql(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")).all()]

            wait_for(lambda: bool(waiting()), "the sweep to wait on the round row")
            # ... where an operator (or a failover) terminates its connection.
            with w.db.engine.connect() as c:
                for pid in waiting():
                    c.execute(sql("SELECT pg_terminate_backend(:p)"), {"p": pid})
            holder.rollback()
            wait_for(lambda: bool(retries), "Celery to retry the sweep")
            wait_for(lambda: bool(rows(w.db, "kind = 'reviewer_digest'")), "the retried sweep")
            def settled() -> bool:
                again = run_sweep(w.db, now=DEC_1_0900)
                return again.stood_aside is None and again.total_notifications == 0

            wait_for(settled, "the retried sweep to finish")
    finally:
        holder.close()
        celery_signals.task_retry.disconnect(on_retry)
    assert "terminat" in retries[0].lower() or "connection" in retries[0].lower(), retries
    # Nothing missing: a fresh sweep finds nothing more to write, and the digests are there.
    assert rows(w.db, "kind = 'quota_reminder' AND channel = 'email'")


@pytest.mark.slow
def test_two_prefork_workers_and_two_beats_send_a_long_backlog_once(
    round_world: World, slow_smtp: SmtpServer, drill: Workers
) -> None:
    w = round_world
    expected = backlog(w.db, BACKLOG)
    drill.start(pool="prefork", concurrency=2)
    drill.start(pool="prefork", concurrency=2)
    for beat in ("a", "b"):  # two beats: each publishes the sweep and, every minute, delivery
        drill.send("bangfu.sweep", AS_OF, task_id=f"beat-{beat}-sweep")
        for minute in range(3):
            drill.send("bangfu.deliver", None, task_id=f"beat-{beat}-deliver-{minute}")  # type: ignore[arg-type]
    wait_for(lambda: _email_status(w)["sent"] == BACKLOG, "the whole backlog", limit=150)
    drill.stop()
    table = _drill_table(expected, slow_smtp)
    print("drill 2 workers x 2 processes + 2 beats:", w.db.dialect, table)
    assert table == {"expected": BACKLOG, "received": BACKLOG, "twice": 0, "missing": 0}
    keys = [(r["user_id"], r["channel"], r["source"]) for r in rows(w.db)]
    assert len(keys) == len(set(keys))  # two sweeps wrote each reminder once


@pytest.mark.slow
def test_an_smtp_outage_spends_no_attempts_and_loses_nothing(
    round_world: World, drill: Workers, slow_smtp: SmtpServer
) -> None:
    from aiosmtpd.controller import Controller

    w = round_world
    expected = backlog(w.db, BACKLOG)
    outage = float(os.environ.get("BANGFU_DRILL_OUTAGE", "5"))
    drill.start(pool="prefork", concurrency=2)
    drill.send("bangfu.deliver", None)  # type: ignore[arg-type]
    wait_for(lambda: _email_status(w)["sent"] >= 50, "the worker to be sending")
    controller = slow_smtp.handler.controller  # type: ignore[attr-defined]
    controller.stop()  # the relay goes away ...
    time.sleep(outage)  # an outage, not a wait for an event: nothing is asserted on time
    refused = rows(w.db, "source LIKE 'drill:%' AND status = 'pending' AND last_error IS NOT NULL")
    again = Controller(slow_smtp.handler, hostname="127.0.0.1", port=slow_smtp.port)
    again.start()  # ... and comes back on the same port
    slow_smtp.handler.controller = again  # type: ignore[attr-defined]  (the fixture stops it)
    # Attempts are not spent while the relay is unreachable for everybody.
    assert refused and all(r["attempts"] == 0 for r in refused), refused[:3]
    assert all(r["status"] != "failed" for r in rows(w.db, "source LIKE 'drill:%'"))
    deadline = time.monotonic() + 150
    while _email_status(w)["sent"] < BACKLOG and time.monotonic() < deadline:
        drill.send("bangfu.deliver", None)  # type: ignore[arg-type]  (the beat's minute)
        time.sleep(2)
    drill.stop()
    table = _drill_table(expected, slow_smtp)
    print(f"drill {outage:.0f} s SMTP outage:", w.db.dialect, table)
    assert table["missing"] == 0 and table["twice"] == 0, table


# --- issue 25.5: a clean stop logs no ERROR ---------------------------------------------------


@pytest.mark.slow
def test_sigterm_stops_a_prefork_worker_without_an_error_line(
    round_world: World, smtp_server: SmtpServer, workers: Workers
) -> None:
    """Restarts as systemd does them: SIGTERM to the main process, idle or delivering. None of
    them may log ``exited with 'signal 15 (SIGTERM)'`` (or any ERROR line)."""
    w = round_world
    backlog(w.db, 40)
    for restart in range(6):
        before = len(workers.procs)
        proc = workers.start(pool="prefork", concurrency=2)
        log_file = workers.tmp_path / f"worker-{before}.log"
        wait_for(lambda f=log_file: " ready." in f.read_text(errors="replace"),
                 "the worker to be ready")
        if restart % 2:
            workers.send("bangfu.deliver", None)  # type: ignore[arg-type]
            time.sleep(0.3)
        else:
            time.sleep(0.1 * restart)  # idle children, caught at different moments
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail("the worker did not stop:\n" + workers.log())
        text_ = log_file.read_text(errors="replace")
        assert proc.returncode == 0, text_
        assert "exited with" not in text_, text_
        assert not [line for line in text_.splitlines() if "ERROR" in line], text_
