"""Issue 25.4: delivery through a slow relay on several SMTP connections, a relay outage, a
database connection lost mid-batch, and runs bounded by time.

The relay is a real aiosmtpd server taking 40 ms per message. Figures are printed; nothing is
asserted on timing: the assertions are what an operator checks (each mail once, every
connection used, rows handed back rather than pushed back).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from tests.conftest import World
from tests.notifications.conftest import SmtpServer, free_port
from tests.scheduler.conftest import (
    BASE_URL,
    SlowHandler,
    backlog,
    channels_for,
    received_pairs,
    rows,
)
from tests.scheduler.test_worker import wait_for
from workflow.scheduler.outbox import claim, deliver_all, deliver_pending
from workflow.store.tables import Database

LATENCY = 0.04  # seconds per message at the relay


@pytest.fixture()
def relay() -> Iterator[SmtpServer]:
    """A real aiosmtpd server taking 40 ms per message; an outage drill stops and restarts it."""
    handler = SlowHandler(LATENCY)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    handler.controller = controller
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        handler.controller.stop()


def _status(db: Database) -> collections.Counter[str]:
    return collections.Counter(str(r["status"]) for r in rows(db, "source LIKE 'drill:%'"))


def _sent(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT COUNT(*) FROM notification WHERE source LIKE 'drill:%' AND status = 'sent'"
        )).scalar_one())


def test_four_connections_drain_a_backlog_in_parallel_each_mail_once(
    any_world: World, relay: SmtpServer
) -> None:
    w = any_world
    n, connections = 400, 4
    expected = backlog(w.db, n)
    started = time.perf_counter()
    report = deliver_all(w.db, channels=channels_for(relay), worker_id="lanes", batch=100,
                         base_url=BASE_URL, connections=connections)
    seconds = time.perf_counter() - started
    floor = n * LATENCY / connections
    print(f"\ndrain {w.db.dialect}: {n} mails at {LATENCY * 1000:.0f} ms on {connections}"
          f" connections: {seconds:.2f} s; n x latency / connections = {floor:.2f} s"
          f" ({seconds / floor:.2f}x); one connection would need {n * LATENCY:.1f} s")
    assert report.sent == n and report.connections == connections
    got = collections.Counter(received_pairs(relay))
    assert sorted(got) == expected and set(got.values()) == {1}  # each mail once
    # Every connection carried mail: four SMTP sessions, each with a share of the backlog.
    per_session = collections.Counter(r.session_id for r in relay.handler.received)
    assert len(per_session) == connections, per_session
    assert all(count >= 10 for count in per_session.values()), per_session
    assert _status(w.db) == {"sent": n}


def test_a_relay_outage_delays_only_the_rows_that_failed_and_mail_resumes(
    any_world: World, relay: SmtpServer
) -> None:
    w = any_world
    n = 300
    expected = backlog(w.db, n)
    done: list[object] = []

    def run() -> None:
        done.append(deliver_all(w.db, channels=channels_for(relay), worker_id="outage",
                                batch=100, base_url=BASE_URL, connections=4, max_seconds=120))

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: _sent(w.db) >= 40, "the first mails")
    relay.handler.controller.stop()  # type: ignore[attr-defined]  (the relay goes away ...)
    time.sleep(3)  # an outage, not a wait for an event
    during = rows(w.db, "source LIKE 'drill:%' AND status = 'pending'")
    far = datetime.now(UTC) + timedelta(seconds=20)
    pushed = [r for r in during if r["lease_until"] is not None
              and _instant(r["lease_until"]) > far]
    # Only the message each connection was sending is delayed; the rest wait unclaimed (or
    # under a short lease), not behind a backoff.
    assert 1 <= len(pushed) <= 4, len(pushed)
    assert all(r["attempts"] == 0 and r["last_error"] for r in pushed)
    sent_before = len(relay.handler.received)
    again = Controller(relay.handler, hostname="127.0.0.1", port=relay.port)
    again.start()  # ... and comes back on the same port
    relay.handler.controller = again  # type: ignore[attr-defined]
    back = time.perf_counter()
    wait_for(lambda: len(relay.handler.received) > sent_before, "mail to resume", limit=30)
    print(f"\noutage {w.db.dialect}: mail resumed {time.perf_counter() - back:.2f} s after the"
          f" relay came back; rows delayed by the outage: {len(pushed)}")
    thread.join(timeout=180)
    assert not thread.is_alive()
    # The delayed rows go at their backoff (a minute later on the machine clock).
    later = datetime.now(UTC) + timedelta(minutes=5)
    deliver_all(w.db, channels=channels_for(relay), worker_id="later", now=later,
                base_url=BASE_URL)
    got = collections.Counter(received_pairs(relay))
    assert sorted(got) == expected and set(got.values()) == {1}
    assert _status(w.db) == {"sent": n}


def _instant(value: object) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@pytest.mark.postgres
def test_a_terminated_database_connection_hands_the_batch_back_at_once(
    pg_world: World, relay: SmtpServer
) -> None:
    w = pg_world
    n = 200
    expected = backlog(w.db, n)
    raised: list[BaseException] = []

    def run() -> None:
        try:
            deliver_pending(w.db, channels=channels_for(relay), worker_id="victim", batch=n,
                            base_url=BASE_URL, connections=4)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            raised.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: _sent(w.db) >= 30, "the batch to be sending")
    with w.db.engine.connect() as conn:  # an operator (or a failover) ends every session
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    thread.join(timeout=60)
    assert not thread.is_alive()
    # The error is the lost connection itself, not a clean-up statement failing after it.
    assert raised, "the batch carried on as if nothing happened"
    message = str(raised[0]).lower()
    assert "terminat" in message or "closed" in message or "connection" in message, raised[0]
    assert "reset synchronous_commit" not in message
    left = rows(w.db, "source LIKE 'drill:%' AND status = 'pending'")
    assert left, "the whole batch went out before the termination"
    # The rest of the batch is claimable at once: no lease to wait out.
    assert all(r["claim"] is None and r["lease_until"] is None and r["attempts"] == 0
               for r in left)
    now = datetime.now(UTC)
    retaken = claim(w.db, channels=["email"], now=now, batch=n, lease_seconds=60, token="next:1")
    assert {r.id for r in retaken} == {r["id"] for r in left}
    with w.db.engine.begin() as conn:  # give them back for the next delivery
        conn.execute(text("UPDATE notification SET claim = NULL, lease_until = NULL,"
                          " attempts = attempts - 1 WHERE claim = 'next:1'"))
    report = deliver_all(w.db, channels=channels_for(relay), worker_id="next", base_url=BASE_URL)
    print(f"\nterminated mid-batch: {n - len(left)} sent before, {len(left)} handed back,"
          f" {report.sent} sent by the next delivery")
    got = collections.Counter(received_pairs(relay))
    assert sorted(got) == expected
    assert set(got.values()) == {1}, {k: v for k, v in got.items() if v > 1}  # none twice
    assert _status(w.db) == {"sent": n}


def test_a_run_ends_when_its_time_is_up_and_hands_the_rest_back(
    any_world: World, relay: SmtpServer
) -> None:
    w = any_world
    n = 300
    backlog(w.db, n)
    report = deliver_all(w.db, channels=channels_for(relay), worker_id="bounded", batch=100,
                         base_url=BASE_URL, connections=1, max_seconds=1.0)
    assert report.out_of_time and not report.stopped
    assert 0 < report.sent < n
    left = rows(w.db, "source LIKE 'drill:%' AND status = 'pending'")
    assert len(left) == n - report.sent
    assert all(r["claim"] is None and r["lease_until"] is None for r in left)
