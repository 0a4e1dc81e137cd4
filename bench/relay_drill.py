"""The relay drill (issue 25.4): a backlog through a slow relay by a real Celery worker, and the
three faults, with their figures.

    python -m bench.relay_drill [--messages 5000] [--latency 0.04] [--broker redis://…]
                                [--phases clean,outage,dbkill,sigterm] [--outage 60]

One prefork worker (``--concurrency 2``, ``BANGFU_SMTP_CONNECTIONS`` connections per process)
over Redis, on a scratch PostgreSQL database, sending to an aiosmtpd relay that takes
``--latency`` seconds per message. Each phase writes ``--messages`` pending mails, publishes
two delivery tasks (as two beat minutes would) and measures:

- ``clean``: the drain time against ``messages × latency ÷ connections in use``;
- ``outage``: the relay stopped for ``--outage`` seconds once a fifth is sent: how long after
  its return mail resumes, and how many rows were pushed back by the outage;
- ``dbkill``: every database session of the worker terminated (``pg_terminate_backend``) once
  a fifth is sent: how long until mail resumes, and whether any mail went twice;
- ``sigterm``: SIGTERM to the worker once a fifth is sent: how long it took to stop, the rows
  handed back, and any ERROR line in its log.

Every phase checks that each mail arrived once (a repeat is counted and printed, never hidden).
Figures go to stdout and ``bench/out/relay_drill.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import text

from bench.scratch import bench_database
from workflow.store.tables import Database

ROOT = Path(__file__).resolve().parent.parent


class Relay:
    """An aiosmtpd handler taking ``latency`` seconds per message, recording when each
    recipient's mail arrived."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.arrived: list[tuple[float, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.latency)
        now = time.monotonic()
        self.arrived.extend((now, rcpt) for rcpt in envelope.rcpt_tos)
        return "250 OK"


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fill(db: Database, n: int, first: int) -> None:
    """``n`` users with an address and one pending e-mail each (the drills' backlog)."""
    from tests.scheduler.conftest import backlog

    backlog(db, n, first_user=first)


def counts(db: Database) -> collections.Counter[str]:
    with db.engine.connect() as conn:
        return collections.Counter({str(s): int(n) for s, n in conn.execute(text(
            "SELECT status, COUNT(*) FROM notification GROUP BY status")).all()})


def sent_of(db: Database, first: int, n: int) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT COUNT(*) FROM notification WHERE status = 'sent'"
            " AND user_id >= :a AND user_id < :b"), {"a": first, "b": first + n}).scalar_one())


class Worker:
    def __init__(self, db: Database, broker: str, relay_port: int, var: Path,
                 connections: int) -> None:
        self.prefix = f"bangfu_drill_{uuid.uuid4().hex[:8]}"
        self.env = dict(os.environ, PYTHONPATH=str(ROOT), BANGFU_DATABASE_URL=db.url,
                        BANGFU_BROKER_URL=broker, BANGFU_VAR_DIR=str(var),
                        BANGFU_QUEUE_PREFIX=self.prefix, BANGFU_SMTP_HOST="127.0.0.1",
                        BANGFU_SMTP_PORT=str(relay_port), BANGFU_BASE_URL="https://bangfu.test",
                        BANGFU_SMTP_CONNECTIONS=str(connections), BANGFU_LOG_LEVEL="INFO")
        self.env.pop("BANGFU_NOW", None)
        self.log_path = var / f"{self.prefix}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", "worker", "--pool=prefork",
             "--concurrency=2", "--loglevel=INFO", "-Q", f"{self.prefix}.default",
             "--without-mingle", "--without-gossip", "-n", f"{self.prefix}@%h"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while " ready." not in self.log_path.read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise SystemExit("the worker did not start:\n" + self.log())
            time.sleep(0.1)

    def deliver(self, times: int = 2) -> None:
        import worker as worker_module
        from workflow.settings import from_env

        os.environ.update({k: v for k, v in self.env.items() if k.startswith("BANGFU_")})
        import workflow.settings as settings_module

        settings_module.get_settings.cache_clear()
        app = worker_module.create_app(from_env())
        for _ in range(times):
            app.send_task("bangfu.deliver", args=[None])

    def stop(self) -> float:
        assert self.proc is not None
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return time.monotonic() - started

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


#: What ``celery beat`` does every minute: publish a delivery (set by :func:`phase`).
BEAT: list[Any] = []


def wait_until(cond: Any, limit: float) -> bool:
    deadline = time.monotonic() + limit
    next_beat = time.monotonic() + 60
    while not cond():
        now = time.monotonic()
        if now > deadline:
            return False
        if BEAT and now >= next_beat:
            BEAT[0]()
            next_beat = now + 60
        time.sleep(0.05)
    return True


def phase(name: str, db: Database, relay: Relay, controller: list[Controller], port: int,
          worker: Worker, n: int, first: int, args: argparse.Namespace) -> dict[str, Any]:
    fill(db, n, first)
    relay.arrived.clear()
    out: dict[str, Any] = {"phase": name, "messages": n}
    log_before = len(worker.log())
    BEAT[:] = [lambda: worker.deliver(1)]
    started = time.monotonic()
    worker.deliver(2)
    fifth = n // 5
    wait_until(lambda: len(relay.arrived) >= fifth, 300)
    if name == "outage":
        controller[0].stop()
        down_at = time.monotonic()
        time.sleep(args.outage)
        with db.engine.connect() as conn:  # delayed by the outage: a backoff and its error
            out["rows_delayed"] = int(conn.execute(text(
                "SELECT COUNT(*) FROM notification WHERE status = 'pending'"
                " AND last_error IS NOT NULL AND lease_until IS NOT NULL")).scalar_one())
            out["rows_pending_unclaimed"] = int(conn.execute(text(
                "SELECT COUNT(*) FROM notification WHERE status = 'pending'"
                " AND lease_until IS NULL")).scalar_one())
        before = len(relay.arrived)
        controller[0] = Controller(relay, hostname="127.0.0.1", port=port)
        controller[0].start()
        back = time.monotonic()
        wait_until(lambda: len(relay.arrived) > before, 120)
        out["outage_s"] = round(back - down_at, 1)
        out["resumed_after_return_s"] = round(time.monotonic() - back, 2)
    elif name == "dbkill":
        before = len(relay.arrived)
        with db.engine.connect() as conn:
            killed = conn.execute(text(
                "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()) t"
            )).scalar_one()
        hit = time.monotonic()
        # Count mail arriving after the termination: the first is the next claim's.
        wait_until(lambda: len(relay.arrived) > before + 20, 120)
        out["sessions_terminated"] = int(killed)
        out["mail_again_after_s"] = round(time.monotonic() - hit, 2)
    elif name == "sigterm":
        out["stop_s"] = round(worker.stop(), 2)
        c = counts(db)
        out["handed_back"] = int(c["pending"])
        log = worker.log()[log_before:]
        out["error_lines"] = [ln for ln in log.splitlines() if "ERROR" in ln][:5]
        worker.start()
        worker.deliver(2)
    wait_until(lambda: sent_of(db, first, n) >= n, 600)
    out["drain_s"] = round(time.monotonic() - started, 2)
    c = counts(db)
    mine = {f"drill{i}@example.test" for i in range(first, first + n)}
    got = collections.Counter(r for _, r in relay.arrived if r in mine)
    out["received"] = sum(got.values())
    out["twice"] = sum(1 for v in got.values() if v > 1)
    out["missing"] = n - len(got)
    out["pending_left"] = int(c["pending"])
    if name == "clean":
        floor = n * args.latency / (2 * args.connections)
        out["floor_s"] = round(floor, 2)
        out["vs_floor"] = round(out["drain_s"] / floor, 2)
    if name != "sigterm":
        out["error_lines"] = [ln for ln in worker.log()[log_before:].splitlines()
                              if "ERROR" in ln][:5]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.04)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--outage", type=float, default=60)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--phases", default="clean,outage,dbkill,sigterm")
    args = parser.parse_args()
    relay = Relay(args.latency)
    port = _port()
    controller = [Controller(relay, hostname="127.0.0.1", port=port)]
    controller[0].start()
    results = []
    load = os.getloadavg()
    try:
        with bench_database("postgres", prefix="bangfu_relay") as db, \
                tempfile.TemporaryDirectory() as var:
            db.upgrade()
            worker = Worker(db, args.broker, port, Path(var), args.connections)
            worker.start()
            try:
                first = 1_000_000
                for name in args.phases.split(","):
                    result = phase(name, db, relay, controller, port, worker, args.messages,
                                   first, args)
                    first += args.messages
                    print(json.dumps(result, ensure_ascii=False), flush=True)
                    results.append(result)
            finally:
                worker.stop()
    finally:
        controller[0].stop()
    summary = {"load_before": [round(x, 2) for x in load],
               "load_after": [round(x, 2) for x in os.getloadavg()],
               "cpus": os.cpu_count(), "latency": args.latency,
               "connections_per_process": args.connections, "processes": 2,
               "phases": results}
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "relay_drill.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "phases"}))


if __name__ == "__main__":
    main()
