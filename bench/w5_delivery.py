"""W5: delivery throughput from the outbox to a local SMTP server (aiosmtpd on loopback), beside
the server's own rate with a bare smtplib client and the channel alone.

    python -m bench.w5_delivery [--messages 2000] [--db sqlite|postgres]

- ``bare smtplib``: one connection, ``sendmail`` of prebuilt messages: the server's ceiling here;
- ``channel send_many``: ``EmailChannel`` building each MIME message (Chinese text + HTML, base64)
  over one connection, no database;
- ``outbox``: :func:`workflow.scheduler.outbox.deliver_all`: claim with a lease, render the template, send,
  mark each row sent in its own transaction (the one-message repeat window kept).

The three run interleaved, round after round, on one shared machine, so their ratio is fair. On
PostgreSQL the rounds start after a ``CHECKPOINT`` (untimed), as W2's runs do: in ``python -m bench``
W5 follows the sweep on the same server and should not pay for the sweep's dirty pages.

Figures go to stdout and ``bench/out/w5.json``.
"""

from __future__ import annotations

import argparse
import json
import smtplib
import socket
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import insert, text

from bench.scratch import bench_database, checkpoint, kinds
from notifications.channels import EmailChannel, OutgoingMessage
from notifications.templates import SAMPLES, render
from workflow.domain import clock
from workflow.scheduler.outbox import deliver_all
from workflow.store.tables import Database, Notification, User

AS_OF = clock.parse_instant("2021-12-01T09:00")


class Counter:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _payload() -> str:
    sample = dict(SAMPLES["quota_reminder"])
    sample.pop("link")
    sample["deadline"] = sample["deadline"].isoformat()
    sample["path"] = "/records/1"
    return json.dumps(sample, ensure_ascii=False)


def fill(db: Database, n: int) -> None:
    db.upgrade()
    with db.begin() as s:
        s.execute(insert(User.__table__), [
            dict(id=i, username=f"u{i}", display_name=f"用户{i}", email=f"u{i}@example.test",
                 is_active=True, channels="inbox,email") for i in range(1, n + 1)])
        s.execute(insert(Notification.__table__), [
            dict(user_id=i, channel="email", source=f"reminder:1:quota_reminder:{i}:2021-12-01",
                 kind="quota_reminder", payload=_payload(), status="pending", attempts=0)
            for i in range(1, n + 1)])
        if db.dialect == "postgresql":
            s.execute(text("SELECT setval(pg_get_serial_sequence('app_user', 'id'),"
                           " (SELECT MAX(id) FROM app_user))"))


def run(db: Database, n: int, rounds: int = 5) -> dict[str, Any]:
    """Bare smtplib, the channel alone and the outbox, interleaved in ``rounds`` rounds of
    ``n / rounds`` messages each (the machine is shared: interleaving keeps the ratio fair),
    to the same loopback server in the same run."""
    handler = Counter()
    port = _port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        channel = EmailChannel("127.0.0.1", port, "bangfu@example.test", timeout=30)
        rendered = render("quota_reminder", SAMPLES["quota_reminder"])
        msgs = [OutgoingMessage(key=f"k{i}", recipient=f"u{i}@example.test", rendered=rendered,
                                link=SAMPLES["quota_reminder"]["link"]) for i in range(n)]
        raw = [channel.build_message(m).as_bytes() for m in msgs]
        out: dict[str, Any] = {"database": db.dialect, "messages": n, "rounds": rounds}
        fill(db, n)
        checkpoint(db)
        per = n // rounds
        spent = {"bare": 0.0, "channel": 0.0, "outbox": 0.0}
        sent = 0
        for r in range(rounds):
            part = range(r * per, (r + 1) * per)
            t = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", port) as smtp:
                for i in part:
                    smtp.sendmail("bangfu@example.test", [f"u{i}@example.test"], raw[i])
            spent["bare"] += time.perf_counter() - t

            t = time.perf_counter()
            results = channel.send_many([msgs[i] for i in part])
            spent["channel"] += time.perf_counter() - t
            assert all(x.ok for x in results)

            t = time.perf_counter()
            report = deliver_all(db, channels={"email": channel}, worker_id="w5", batch=per,
                                 max_batches=1, base_url="https://bangfu.test")
            spent["outbox"] += time.perf_counter() - t
            sent += report.sent
        assert sent == per * rounds, sent
        done = per * rounds
        out["bare_smtplib_per_s"] = round(done / spent["bare"])
        out["channel_send_many_per_s"] = round(done / spent["channel"])
        out["outbox_per_s"] = round(done / spent["outbox"])
        assert handler.count == 3 * done
        out["outbox_vs_bare"] = round(out["outbox_per_s"] / out["bare_smtplib_per_s"], 2)
        return out
    finally:
        controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    results = []
    for kind in kinds(args.db):
        with bench_database(kind, prefix="bangfu_w5") as db:
            results.append(run(db, args.messages, args.rounds))
    for r in results:
        print(json.dumps(r, ensure_ascii=False))
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "w5.json").write_text(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
