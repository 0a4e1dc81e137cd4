"""Delivery from the outbox: claim with a lease, render, send, mark — never lost, at most one
repeat per connection.

``deliver_pending`` claims up to ``batch`` pending rows whose lease is free (PostgreSQL:
``SELECT … FOR UPDATE SKIP LOCKED``; SQLite: inside ``BEGIN IMMEDIATE``), writes their lease and
a claim token (``<worker id>:<claim id>``) and commits, so two workers never hold the same row.
It then sends the rows on ``BANGFU_SMTP_CONNECTIONS`` lanes at once (a thread, an SMTP
connection and a database connection each; the run's SMTP connections stay open from batch to
batch), each row taken from the batch's queue by one lane only. A lane marks each row in its
own short transaction before sending its next; a mark succeeds only ``WHERE claim = :mine``, so
a worker whose lease was taken over cannot mark (nor count) another's rows.

Leases run on the machine clock (:func:`machine_clock`): the real time, never ``BANGFU_NOW``;
given an as-of start (tests, demos) it advances with real time from there. Each batch reads it
afresh, and before each message a lane checks the lease: once half of it is gone it renews the
lease of the rows the batch still holds (and drops any it no longer holds), so no batch outlives
its lease at a slow relay. ``sent_at`` is the machine time of each mark. What a crash can do:

- killed after claiming, before sending: the rows stay ``pending``; once the lease expires the
  next delivery claims and sends them, once;
- killed after the server accepted a message, before it was marked sent: that message is sent
  again by the next delivery, with the same ``Message-ID`` (derived from the notification key),
  so a mail client shows it once. That is the only repeat window: one message per connection
  (the one each lane had in flight).

A temporary failure (SMTP 4xx, robot rate limit) leaves the row pending with an exponential
backoff in ``lease_until``; a permanent one (bad address, SMTP 5xx) marks it ``failed`` with
``last_error``. While the server is unreachable (connection refused, dropped) the attempt is
given back (attempts count only the errors of that message), only the row that failed is
delayed, and the lane probes the relay until it answers; once every lane waits, the batch
hands its unsent rows back at once and :func:`deliver_all` probes until the relay returns.
A lost database connection stops the batch: the row just sent is marked on a fresh
connection, the rest handed back at once, the error raised. ``should_stop`` (the worker's
shutdown, or the run's time being up) is checked before each message; rows not yet sent are
released at once. Kill points for drills: ``BANGFU_KILL_AT=after_claim`` or ``after_send`` ends
the process with ``os._exit(137)`` at that point, as a SIGKILL would.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import smtplib
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Dialect, bindparam, select, text, update
from sqlalchemy.exc import DBAPIError

from notifications.channels import (
    EMAIL,
    INBOX,
    SMS,
    Channel,
    DeliveryError,
    EmailChannel,
    HttpSmsGateway,
    OutgoingMessage,
    PermanentDeliveryError,
    SmsChannel,
    TemporaryDeliveryError,
    WebhookChannel,
)
from notifications.templates import render
from workflow.settings import Settings, get_settings
from workflow.store.errors import translated
from workflow.store.tables import Database, Notification, OrgRobot, User, UTCDateTime

log = logging.getLogger("bangfu.outbox")

KILL_ENV = "BANGFU_KILL_AT"
MAX_ATTEMPTS = 8
ROBOT_CHANNELS = ("wecom", "dingtalk")

MachineClock = Callable[[], datetime]


def machine_clock(start: datetime | None = None) -> MachineClock:
    """The clock of leases, backoffs and ``sent_at``: the real time (never ``BANGFU_NOW``, which
    moves the business time only); from ``start`` if given, advancing with real time."""
    if start is None:
        return lambda: datetime.now(UTC)
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)


@dataclass
class DeliveryReport:
    """What one delivery pass did.

    Attributes:
        worker_id: who delivered.
        claimed: rows claimed.
        sent: rows sent and marked by this worker (a mark refused because the claim was lost
            is not counted).
        retry: rows left pending after a temporary failure.
        failed: rows marked failed.
        released: rows given back unsent (shutdown, or a lease lost before sending).
        renewed: lease renewals.
        lost: rows sent whose mark was refused (the lease had been taken over).
        stopped: the pass stopped early because the worker is shutting down.
        out_of_time: the run's time was up (the next task carries on).
        relay_down: a batch ended because no lane could reach the relay (the rest given back).
        connections: the most lanes (SMTP connections) one batch used at once.
        errors: ``(notification id, error text)`` for every failure.
    """

    worker_id: str
    claimed: int = 0
    sent: int = 0
    retry: int = 0
    failed: int = 0
    released: int = 0
    renewed: int = 0
    lost: int = 0
    batches: int = 0
    stopped: bool = False
    out_of_time: bool = False
    relay_down: bool = False
    connections: int = 0
    down_channel: str | None = None
    errors: list[tuple[int, str]] = field(default_factory=list)
    sent_by_channel: dict[str, int] = field(default_factory=dict)
    failed_by_channel: dict[str, int] = field(default_factory=dict)

    def add(self, other: DeliveryReport) -> None:
        for name in ("claimed", "sent", "retry", "failed", "released", "renewed", "lost",
                     "batches"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.stopped = self.stopped or other.stopped
        self.out_of_time = self.out_of_time or other.out_of_time
        self.relay_down = self.relay_down or other.relay_down
        self.down_channel = other.down_channel or self.down_channel
        self.connections = max(self.connections, other.connections)
        self.errors.extend(other.errors)
        for mine, theirs in ((self.sent_by_channel, other.sent_by_channel),
                             (self.failed_by_channel, other.failed_by_channel)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v

    def to_dict(self) -> dict[str, Any]:
        return {"worker_id": self.worker_id, "claimed": self.claimed, "sent": self.sent,
                "retry": self.retry, "failed": self.failed, "released": self.released,
                "renewed": self.renewed, "lost": self.lost, "batches": self.batches,
                "stopped": self.stopped, "out_of_time": self.out_of_time,
                "relay_down": self.relay_down, "connections": self.connections,
                "errors": [{"id": i, "error": e} for i, e in self.errors[:20]],
                "error_count": len(self.errors)}


@dataclass(frozen=True)
class Claimed:
    id: int
    user_id: int
    channel: str
    source: str
    kind: str
    payload: str
    attempts: int
    claim: str = ""

    @property
    def key(self) -> str:
        # The same key as Notification.key: the Message-ID derives from it.
        return f"{self.user_id}:{self.channel}:{self.source}"


def default_channels(settings: Settings | None = None) -> dict[str, Channel]:
    """The channels of a deployment: SMTP e-mail from the settings, both robot kinds, and SMS
    when a provider is configured (``BANGFU_SMS_URL``; without one the sweep writes no SMS
    rows, see :func:`sms_enabled`)."""
    s = settings or get_settings()
    out: dict[str, Channel] = {
        EMAIL: EmailChannel(s.smtp_host, s.smtp_port, s.smtp_sender, use_tls=s.smtp_tls,
                            username=s.smtp_user, password=s.smtp_password),
        "wecom": WebhookChannel("wecom"),
        "dingtalk": WebhookChannel("dingtalk"),
    }
    if s.sms_url:
        out[SMS] = SmsChannel(HttpSmsGateway(s.sms_url, s.sms_key or "", sign=s.sms_sign))
    return out


def sms_enabled(settings: Settings | None = None) -> bool:
    """Whether SMS can be delivered: a provider URL is configured."""
    return bool((settings or get_settings()).sms_url)


def _kill_point(name: str) -> None:
    if os.environ.get(KILL_ENV) == name:
        log.warning("kill point %s reached: exiting with 137", name)
        os._exit(137)


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(60 * 2 ** max(attempts - 1, 0), 3600))


# --- claiming -------------------------------------------------------------------------------


def new_token(worker_id: str) -> str:
    """A claim token: who claims, and which claim (unique per batch)."""
    return f"{worker_id}:{uuid.uuid4().hex[:12]}"[-120:]


def claim(database: Database, *, channels: list[str], now: datetime, batch: int,
          lease_seconds: float, token: str | None = None) -> list[Claimed]:
    """Claim up to ``batch`` pending rows of ``channels`` whose lease is free, and commit.

    Args:
        token: the claim token written with the lease (default: a new anonymous one).

    Returns:
        The claimed rows, their ``attempts`` already counting this one.
    """
    token = token or new_token("anonymous")
    n = Notification.__table__
    free = select(n.c.id).where(
        n.c.status == "pending",
        n.c.channel.in_(channels),
        (n.c.lease_until.is_(None)) | (n.c.lease_until <= now),
    ).order_by(n.c.id).limit(batch)
    if database.dialect == "postgresql":
        free = free.with_for_update(skip_locked=True)
    with database.begin() as session:
        ids = [row[0] for row in session.execute(free).all()]
        if not ids:
            return []
        session.execute(
            update(n).where(n.c.id.in_(ids))
            .values(lease_until=now + timedelta(seconds=lease_seconds), attempts=n.c.attempts + 1,
                    claim=token)
        )
        rows = session.execute(
            select(n.c.id, n.c.user_id, n.c.channel, n.c.source, n.c.kind, n.c.payload,
                   n.c.attempts, n.c.claim).where(n.c.id.in_(ids)).order_by(n.c.id)
        ).all()
    return [Claimed(*row) for row in rows]


# --- delivering -----------------------------------------------------------------------------


@dataclass
class _Lease:
    """One batch's claim as its worker sees it (shared by the batch's lanes)."""

    token: str
    until: datetime
    seconds: float
    held: set[int]
    renewals: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


#: A lane whose relay is unreachable waits this long before it probes again (seconds), then
#: doubles the wait up to :data:`PROBE_MAX`: mail resumes within that of the relay's return.
PROBE_FIRST = 0.5
PROBE_MAX = 5.0


@dataclass
class _Batch:
    """What the lanes of one batch share."""

    database: Database
    recipients: dict[tuple[str, int], str]
    base: str
    clock: MachineClock
    lease: _Lease
    stop: Callable[[], bool]
    lanes: int = 1
    down: int = 0
    halt: threading.Event = field(default_factory=threading.Event)
    failure: BaseException | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            if self.failure is None:
                self.failure = exc
        self.halt.set()


def deliver_pending(
    database: Database,
    *,
    channels: Mapping[str, Channel],
    now: datetime | None = None,
    worker_id: str,
    batch: int | None = None,
    lease_seconds: float | None = None,
    base_url: str | None = None,
    clock: MachineClock | None = None,
    should_stop: Callable[[], bool] | None = None,
    connections: int | None = None,
    senders: _Senders | None = None,
) -> DeliveryReport:
    """Claim, send and mark one batch of pending notifications.

    E-mail goes out on ``connections`` SMTP connections at once (lanes: one thread, one
    smtplib connection and one database connection for its marks each), taking the batch's
    rows from one queue, so each claimed row is sent by one lane only. Other channels use one
    lane.

    A lane that finds the relay unreachable delays only the row that failed (its attempt given
    back), then waits and probes the relay (:data:`PROBE_FIRST` doubling to :data:`PROBE_MAX`)
    and carries on when it answers. Once every lane is waiting, the rows still queued are given
    back at once (not pushed back) and the batch ends with ``relay_down``.

    A database error in a lane (a terminated connection) stops every lane: the message just
    sent is marked on a fresh connection, the rest of the batch is given back at once, and the
    error is raised (never masked by the clean-up).

    Args:
        database: the database.
        channels: the channels to deliver, by name (``email``, ``wecom``, ``sms`` ...); rows of
            other channels are left alone.
        now: the machine clock's start (tests, demos); default the real time.
        worker_id: who delivers (logged, and part of the claim token).
        batch: at most this many rows (default ``BANGFU_DELIVERY_BATCH``).
        lease_seconds: how long a claim keeps other workers off the rows (default
            ``BANGFU_LEASE_SECONDS``); renewed once half of it is gone.
        base_url: the site's base URL for links (default: the settings').
        clock: the machine clock (overrides ``now``).
        should_stop: asked before each message; when true the rest is released unsent.
        connections: SMTP connections in parallel (default ``BANGFU_SMTP_CONNECTIONS``).
        senders: the run's open connections (:func:`deliver_all`); default this batch's own.

    Returns:
        What was claimed, sent, left for retry and failed.
    """
    settings = get_settings()
    clock = clock or machine_clock(now)
    batch = batch or settings.delivery_batch
    lease = float(lease_seconds or settings.lease_seconds)
    lanes_wanted = max(int(connections or settings.smtp_connections), 1)
    stop = should_stop or (lambda: False)
    report = DeliveryReport(worker_id=worker_id)
    started = time.perf_counter()
    token = new_token(worker_id)
    claimed_at = clock()
    rows = claim(database, channels=sorted(channels), now=claimed_at, batch=batch,
                 lease_seconds=lease, token=token)
    report.claimed = len(rows)
    if not rows:
        return report
    report.batches = 1
    _kill_point("after_claim")
    held = _Lease(token, claimed_at + timedelta(seconds=lease), lease, {r.id for r in rows})
    run = _Batch(database, {}, (base_url or settings.base_url).rstrip("/"), clock, held, stop)
    own = senders is None
    pool = senders if senders is not None else _Senders()
    try:
        run.recipients = _recipients(database, rows)
        by_channel: dict[str, list[Claimed]] = {}
        for row in rows:
            by_channel.setdefault(row.channel, []).append(row)
        for name, group in by_channel.items():
            if run.halt.is_set():
                break
            channel = channels[name]
            lanes = min(lanes_wanted if isinstance(channel, EmailChannel) else 1, len(group))
            _run_lanes(run, channel, group, lanes, report, pool)
    except BaseException as exc:
        run.fail(exc)
    finally:
        if own:
            pool.close()
    report.released += _hand_back(database, held)
    report.renewed += held.renewals
    fields = _batch_fields(report, time.perf_counter() - started)
    if run.failure is not None:
        level = logging.ERROR if isinstance(run.failure, Exception) else logging.WARNING
        log.log(level, "delivery batch stopped by %s; %d rows handed back",
                type(run.failure).__name__, report.released,
                extra={"event": "delivery_batch", **fields,
                       "error": type(run.failure).__name__})
        raise run.failure
    log.info("delivery batch", extra={"event": "delivery_batch", **fields})
    return report


def _run_lanes(run: _Batch, channel: Channel, group: list[Claimed], lanes: int,
               report: DeliveryReport, senders: _Senders) -> None:
    """Send ``group`` on ``lanes`` lanes (threads beside this one when more than one)."""
    queue = deque(group)
    reports = [DeliveryReport(worker_id=report.worker_id) for _ in range(lanes)]
    run.lanes, run.down = lanes, 0
    run.halt.clear()
    if lanes == 1:
        _lane(run, channel, queue, reports[0], senders.get(channel, 0))
    else:
        threads = [threading.Thread(target=_lane, args=(run, channel, queue, r,
                                                        senders.get(channel, i)),
                                    name=f"delivery-lane-{i}", daemon=True)
                   for i, r in enumerate(reports)]
        for t in threads:
            t.start()
        try:
            for t in threads:
                t.join()
        except BaseException as exc:
            # Interrupted here (a signal's SystemExit): the lanes finish the message each is
            # sending and mark it before the batch hands the rest back, or a message sent
            # and then handed back would go twice.
            run.fail(exc)
            for t in threads:
                t.join()
            raise
    for r in reports:
        report.add(r)
    report.connections = max(report.connections, lanes)
    if run.down >= run.lanes and queue:
        report.relay_down = True
        report.down_channel = channel.name
    if run.failure is None and (report.stopped or report.relay_down):
        run.halt.set()  # the other channels' groups wait for the next batch too


def _lane(run: _Batch, channel: Channel, queue: deque[Claimed], report: DeliveryReport,
          send: Callable[[OutgoingMessage], None]) -> None:
    """One lane: its own connection for the marks and its own sender (an SMTP connection for
    e-mail), taking rows from the batch's queue until it is empty or the batch halts."""
    conn: Connection | None = None
    try:
        conn = _marks_connection(run.database)
        while not run.halt.is_set():
            if run.stop():
                report.stopped = True
                run.halt.set()
                break
            try:
                row = queue.popleft()
            except IndexError:
                break
            if not _keep(run.database, run.lease, run.clock()):
                break
            if row.id not in run.lease.held:
                continue
            error = _deliver_one(run.database, channel, send, row, run.recipients, run.base,
                                 run.clock, report, run.lease, conn)
            if (isinstance(error, TemporaryDeliveryError) and _unreachable(error)
                    and not _wait_for_relay(run, channel, queue)):
                break
    except BaseException as exc:  # the batch stops and hands its rows back; re-raised there
        run.fail(exc)
    finally:
        if conn is not None:
            _close_marks_connection(conn, clean=run.failure is None)


def _wait_for_relay(run: _Batch, channel: Channel, queue: deque[Claimed]) -> bool:
    """The relay did not answer this lane: wait and probe with a growing pause until it
    answers (True), or every lane is waiting, the queue is empty, the run must stop or the
    batch halts (False)."""
    with run.lock:
        run.down += 1
        if run.down >= run.lanes:
            run.halt.set()  # nobody is sending: give the queue back rather than hold it
            return False
    pause = PROBE_FIRST
    answered = False
    try:
        while not run.halt.wait(pause):
            if not queue or run.stop():
                return False
            if probe(channel):
                answered = True
                return True
            pause = min(pause * 2, PROBE_MAX)
        return False
    finally:
        if answered:
            with run.lock:
                run.down -= 1


def probe(channel: Channel) -> bool:
    """Whether the channel's server answers now (e-mail: a connection opened and closed);
    channels without a probe say yes and let the next message tell."""
    if not isinstance(channel, EmailChannel):
        return True
    try:
        channel.probe()
    except DeliveryError:
        return False
    return True


def _marks_connection(database: Database) -> Connection:
    """A lane's connection for its marks: each mark one autocommitted UPDATE sent to the driver
    itself (one round trip on PostgreSQL; on SQLite no BEGIN IMMEDIATE … COMMIT)."""
    conn = database.engine.connect()
    if database.dialect == "postgresql":
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        # The marks need not wait for the WAL flush: if the database server itself crashed
        # before flushing, a row would be sent once more with the same Message-ID, the
        # same window as a worker killed before marking. A worker crash loses nothing.
        # Session-level on this lane's connection only, reset before it goes back.
        conn.execute(text("SET synchronous_commit TO OFF"))
    return conn


def _close_marks_connection(conn: Connection, *, clean: bool) -> None:
    """Give a lane's connection back: reset on a clean end; after an error it is discarded
    (never reset on a connection that may be dead: that error would hide the real one)."""
    if clean and not conn.invalidated:
        try:
            if conn.dialect.name == "postgresql":
                conn.execute(text("RESET synchronous_commit"))
        except Exception:  # noqa: BLE001 - the real error, if any, was raised already
            conn.invalidate()
    else:
        conn.invalidate()
    conn.close()


def _batch_fields(report: DeliveryReport, seconds: float) -> dict[str, Any]:
    return {"worker": report.worker_id, "claimed": report.claimed, "sent": report.sent,
            "retry": report.retry, "failed": report.failed, "released": report.released,
            "renewed": report.renewed, "lost": report.lost, "stopped": report.stopped,
            "connections": report.connections, "relay_down": report.relay_down,
            "seconds": round(seconds, 3)}


def _keep(database: Database, lease: _Lease, now: datetime) -> bool:
    """Renew the batch's lease once half of it is gone; False if nothing is held any more."""
    with lease.lock:
        if now < lease.until - timedelta(seconds=lease.seconds / 2):
            return bool(lease.held)
        n = Notification.__table__
        until = now + timedelta(seconds=lease.seconds)
        held = set(lease.held)
        with database.begin() as session:
            session.execute(update(n).where(n.c.claim == lease.token, n.c.status == "pending",
                                            n.c.id.in_(held)).values(lease_until=until))
            still = {r[0] for r in session.execute(
                select(n.c.id).where(n.c.claim == lease.token, n.c.status == "pending",
                                     n.c.id.in_(held))).all()}
        # Marks wait for this lock, so only another worker can have taken rows meanwhile.
        lost = held - still
        if lost:
            log.warning("lease %s lost %d rows to another worker", lease.token, len(lost))
        lease.held &= still
        lease.until = until
        lease.renewals += 1
        return bool(lease.held)


def _hand_back(database: Database, lease: _Lease) -> int:
    """:func:`_release`, on a fresh connection if the first one turns out dead (a terminated
    connection leaves dead ones in the pool: the pool is invalidated and the next is new)."""
    for attempt in range(3):
        try:
            return _release(database, lease)
        except DBAPIError as exc:
            if not exc.connection_invalidated or attempt == 2:
                log.error("rows of claim %s not handed back (%s): they wait for the lease",
                          lease.token, type(exc).__name__)
                return 0
    return 0


def _release(database: Database, lease: _Lease) -> int:
    """Give back the rows of this claim that were not sent (attempt not spent)."""
    if not lease.held:
        return 0
    n = Notification.__table__
    with database.begin() as session:
        result = session.execute(
            update(n).where(n.c.claim == lease.token, n.c.status == "pending",
                            n.c.id.in_(lease.held))
            .values(lease_until=None, claim=None, attempts=n.c.attempts - 1))
    lease.held.clear()
    return int(result.rowcount or 0)


def _unreachable(error: DeliveryError) -> bool:
    """The server cannot be reached at all (refused, timed out, dropped), as opposed to one
    message or recipient being deferred (SMTP 4xx, which smtplib also raises as OSError)."""
    cause = error.__cause__
    if isinstance(cause, smtplib.SMTPServerDisconnected):
        return True
    return isinstance(cause, OSError) and not isinstance(cause, smtplib.SMTPException)


def _retry(database: Database, row: Claimed, now: datetime, error: str,
           report: DeliveryReport, lease: _Lease, *, spent: bool = True,
           conn: Connection | None = None) -> None:
    """Leave the row pending with a backoff, or fail it after the last attempt. ``spent=False``
    (the server is unreachable for everybody) gives the attempt back."""
    attempts = row.attempts if spent else row.attempts - 1
    if spent and attempts >= MAX_ATTEMPTS:
        if _mark(database, row, lease, "failed", now,
                 error=f"{error} (after {attempts} attempts)", conn=conn):
            report.failed += 1
            report.failed_by_channel[row.channel] = report.failed_by_channel.get(row.channel, 0) + 1
    elif _mark(database, row, lease, "pending", now, error=error,
               lease_until=now + _backoff(max(attempts, 1)), give_back=not spent, conn=conn):
        report.retry += 1
    report.errors.append((row.id, error))


@translated()  # the worker retries StoreUnavailable, never a SQLAlchemy name
def deliver_all(database: Database, *, channels: Mapping[str, Channel],
                now: datetime | None = None, worker_id: str, batch: int | None = None,
                lease_seconds: float | None = None, max_batches: int | None = None,
                max_seconds: float | None = None, connections: int | None = None,
                base_url: str | None = None, clock: MachineClock | None = None,
                should_stop: Callable[[], bool] | None = None) -> DeliveryReport:
    """Deliver batch after batch until a batch comes back short, the run's time is up
    (``max_seconds``, default ``BANGFU_DELIVERY_RUN_SECONDS``), ``max_batches`` (if given) are
    done, or the worker is shutting down. Each batch reads the machine clock afresh.

    The run is bounded by time, not batches: once its time is up the batch under way stops
    before its next message and hands the rest back, so a task lasts at most ``max_seconds``
    plus one message (its SMTP timeout) however slow the relay — well inside the broker's
    visibility timeout. While the relay is down the run probes it (:data:`PROBE_FIRST` doubling
    to :data:`PROBE_MAX`) and claims again as soon as it answers, until its time is up.
    """
    settings = get_settings()
    clock = clock or machine_clock(now)
    batch = batch or settings.delivery_batch
    budget = float(max_seconds or settings.delivery_run_seconds)
    deadline = time.monotonic() + budget
    stop = should_stop or (lambda: False)

    def out_of_time() -> bool:
        return time.monotonic() >= deadline

    def halted() -> bool:
        return stop() or out_of_time()

    total = DeliveryReport(worker_id=worker_id)
    with _Senders() as senders:
        _run(database, channels, worker_id, batch, lease_seconds, base_url, clock, stop,
             out_of_time, halted, connections, max_batches, senders, total)
    if total.stopped:
        log.info("delivery stopped for shutdown", extra={
            "event": "delivery_stopped", "worker": worker_id, "sent": total.sent,
            "released": total.released})
    return total


def _run(database: Database, channels: Mapping[str, Channel], worker_id: str, batch: int,
         lease_seconds: float | None, base_url: str | None, clock: MachineClock,
         stop: Callable[[], bool], out_of_time: Callable[[], bool],
         halted: Callable[[], bool], connections: int | None, max_batches: int | None,
         senders: _Senders, total: DeliveryReport) -> None:
    done = 0
    while max_batches is None or done < max_batches:
        if stop():
            total.stopped = True
            break
        if out_of_time():
            total.out_of_time = True
            break
        one = deliver_pending(database, channels=channels, worker_id=worker_id, batch=batch,
                              lease_seconds=lease_seconds, base_url=base_url, clock=clock,
                              should_stop=halted, connections=connections, senders=senders)
        done += 1
        total.add(one)
        if one.stopped:
            total.stopped = stop()
            total.out_of_time = not total.stopped and out_of_time()
            break
        if one.relay_down:
            if not _relay_back(channels.get(one.down_channel or EMAIL), halted):
                total.stopped = stop()
                total.out_of_time = not total.stopped and out_of_time()
                break
            continue
        if one.claimed < batch:
            break


def _relay_back(channel: Channel | None, halted: Callable[[], bool]) -> bool:
    """Probe the server that was down with a growing pause until it answers (True) or the run
    must end (False; at once for a channel without a probe: the next run tries again).
    Checked every tenth of a second for a stop."""
    if not isinstance(channel, EmailChannel):
        return False
    pause = PROBE_FIRST
    while True:
        waited = 0.0
        while waited < pause:
            if halted():
                return False
            time.sleep(0.1)
            waited += 0.1
        if probe(channel):
            return True
        pause = min(pause * 2, PROBE_MAX)


class _Senders:
    """The lanes' senders, kept open across the batches of one run: lane ``i`` of an e-mail
    channel always sends on its own SMTP connection (opened on its first message, reopened
    after a temporary error), so a run of many batches keeps ``connections`` connections."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._open: dict[tuple[str, int], Callable[[OutgoingMessage], None]] = {}
        self._lock = threading.Lock()

    def get(self, channel: Channel, lane: int) -> Callable[[OutgoingMessage], None]:
        if not isinstance(channel, EmailChannel):
            return channel.send
        key = (channel.name, lane)
        with self._lock:
            if key not in self._open:
                self._open[key] = self._stack.enter_context(channel.session())
            return self._open[key]

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> _Senders:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _deliver_one(database: Database, channel: Channel, send: Callable[[OutgoingMessage], None],
                 row: Claimed, recipients: dict[tuple[str, int], str], base: str,
                 clock: MachineClock, report: DeliveryReport, lease: _Lease,
                 conn: Connection | None = None) -> DeliveryError | None:
    try:
        msg = _message(channel, row, recipients, base)
        if msg is not None:
            send(msg)
    except TemporaryDeliveryError as exc:
        _retry(database, row, clock(), str(exc), report, lease, spent=not _unreachable(exc),
               conn=conn)
        return exc
    except DeliveryError as exc:
        _fail(database, row, lease, clock(), str(exc), report, conn)
        return exc
    except Exception as exc:  # a template or payload bug: retrying will not fix it
        log.exception("notification %s cannot be rendered", row.id)
        _fail(database, row, lease, clock(), f"{type(exc).__name__}: {exc}", report, conn)
        return None
    _kill_point("after_send")
    if _mark(database, row, lease, "sent", clock(), conn=conn):
        report.sent += 1
        report.sent_by_channel[row.channel] = report.sent_by_channel.get(row.channel, 0) + 1
    else:
        report.lost += 1
        log.warning("notification %s was sent but its lease had been taken over", row.id)
    return None


def _fail(database: Database, row: Claimed, lease: _Lease, now: datetime, error: str,
          report: DeliveryReport, conn: Connection | None = None) -> None:
    if _mark(database, row, lease, "failed", now, error=error, conn=conn):
        report.failed += 1
        report.failed_by_channel[row.channel] = report.failed_by_channel.get(row.channel, 0) + 1
    report.errors.append((row.id, error))


_N = Notification.__table__  # type: ignore[attr-defined]
# Built once: the compiled form is cached, so a mark costs one round trip and no SQL building.
_MARK = (update(_N)
         .where(_N.c.id == bindparam("row_id"), _N.c.status == "pending",
                _N.c.claim == bindparam("token"))
         .values(status=bindparam("new_status"), lease_until=bindparam("new_lease"),
                 last_error=bindparam("error"), sent_at=bindparam("sent"),
                 attempts=_N.c.attempts - bindparam("give_back")))


# The same statement for the driver itself (psycopg; sqlite3's named style), skipping the
# per-call statement handling.
_SET = ("status = {p}new_status{s}, lease_until = {p}new_lease{s}, last_error = {p}error{s},"
        " sent_at = {p}sent{s}, attempts = attempts - {p}give_back{s}")
_WHERE = " WHERE id = {p}row_id{s} AND status = 'pending' AND claim = {p}token{s}"
_PG_MARK = ("UPDATE notification SET " + _SET + _WHERE).format(p="%(", s=")s")
_SQLITE_MARK = ("UPDATE notification SET " + _SET + _WHERE).format(p=":", s="")


def _mark(database: Database, row: Claimed, lease: _Lease, status: str, now: datetime, *,
          error: str | None = None, lease_until: datetime | None = None,
          give_back: bool = False, conn: Connection | None = None) -> bool:
    """Mark one row of this claim; False (and nothing changed) if the claim no longer holds.

    On ``conn`` (a lane's autocommitting connection) the driver's own statement is sent. If
    that connection turns out dead the mark is made on a fresh one (so a message already sent
    is not sent again), then the connection's error is raised: the batch stops."""
    with lease.lock:
        lease.held.discard(row.id)
    params: dict[str, Any] = {
        "row_id": row.id, "token": lease.token, "new_status": status, "new_lease": lease_until,
        "error": error, "sent": now if status == "sent" else None,
        "give_back": 1 if give_back else 0}
    if conn is None:
        return _mark_fresh(database, params)
    # The stored instant format (text on SQLite), then the driver's own statement on the
    # lane's autocommitting connection: the UPDATE is its own transaction, without
    # SQLAlchemy's per-statement execution context (PostgreSQL's psycopg prepares it after a
    # few marks).
    instant = _bind_instant(database.engine.dialect)
    raw = dict(params, new_lease=instant(params["new_lease"]), sent=instant(params["sent"]))
    dialect = database.engine.dialect
    sql = _PG_MARK if database.dialect == "postgresql" else _SQLITE_MARK
    try:
        driver = conn.connection.driver_connection
        assert driver is not None
        return bool(driver.execute(sql, raw).rowcount)
    except dialect.loaded_dbapi.Error as exc:
        dead = dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)
        error_ = DBAPIError.instance(sql, raw, exc, dialect.loaded_dbapi.Error,
                                    connection_invalidated=dead)
        if not dead:
            raise error_ from exc
        conn.invalidate(exc)
        log.warning("the marks' connection was lost at notification %s: marked on a new one,"
                    " the batch stops", row.id)
        _mark_fresh(database, params)
        raise error_ from exc


def _mark_fresh(database: Database, params: dict[str, Any]) -> bool:
    """One mark in its own transaction on a pooled connection; once more on a new one if the
    pooled one was dead (a terminated connection invalidates the pool)."""
    for attempt in range(3):
        try:
            with database.engine.begin() as fresh:
                return bool(fresh.execute(_MARK, params).rowcount)
        except DBAPIError as exc:
            if not exc.connection_invalidated or attempt == 2:
                raise
    return False


@functools.cache
def _bind_instant(dialect: Dialect) -> Callable[[datetime | None], Any]:
    """How :class:`UTCDateTime` binds an instant on this dialect (SQLite stores text)."""
    proc = UTCDateTime().bind_processor(dialect)
    return proc if proc is not None else (lambda value: value)


def _recipients(database: Database, rows: list[Claimed]) -> dict[tuple[str, int], str]:
    """Addresses for the claimed rows: ``("user", id)`` → e-mail, ``("phone", id)``, and
    ``(robot kind, org id)`` → webhook URL. Two queries, whatever the batch size."""
    out: dict[tuple[str, int], str] = {}
    user_ids = {r.user_id for r in rows}
    robot_orgs = {_org_id(r) for r in rows if r.channel in ROBOT_CHANNELS}
    with database.session(readonly=True) as session:
        for uid, email, phone in session.execute(
            select(User.id, User.email, User.phone).where(User.id.in_(user_ids))
        ).all():
            if email:
                out[("user", uid)] = email
            if phone:
                out[("phone", uid)] = phone
        if robot_orgs:
            for org_id, kind, url in session.execute(
                select(OrgRobot.org_id, OrgRobot.kind, OrgRobot.url)
                .where(OrgRobot.org_id.in_(robot_orgs))
            ).all():
                out[(kind, org_id)] = url
    return out


def _org_id(row: Claimed) -> int:
    return int(json.loads(row.payload).get("org_id") or 0)


def _message(channel: Channel, row: Claimed, recipients: dict[tuple[str, int], str],
             base: str) -> OutgoingMessage | None:
    if row.channel == INBOX:
        return None  # the row is the inbox entry
    if row.channel == EMAIL:
        recipient = recipients.get(("user", row.user_id))
    elif row.channel == SMS:
        recipient = recipients.get(("phone", row.user_id))
    else:
        if isinstance(channel, WebhookChannel) and not channel.accepts(row.kind):
            raise PermanentDeliveryError(f"robots do not carry {row.kind}", channel=row.channel,
                                         key=row.key)
        recipient = recipients.get((row.channel, _org_id(row)))
    if not recipient:
        raise PermanentDeliveryError("no address for this channel", channel=row.channel,
                                     key=row.key)
    context = template_context(json.loads(row.payload), base)
    return OutgoingMessage(key=row.key, recipient=recipient, rendered=render(row.kind, context),
                           link=context["link"])


def template_context(payload: dict[str, Any], base: str) -> dict[str, Any]:
    """Turn a stored payload (JSON) into a template context: ``path`` → absolute ``link``,
    ``deadline`` → a date, ``submitted_at`` → an aware datetime, also inside lists."""
    ctx: dict[str, Any] = {}
    for key, value in payload.items():
        if key == "path":
            ctx["link"] = base + str(value)
        elif key == "deadline" and isinstance(value, str):
            ctx[key] = date.fromisoformat(value[:10])
        elif key == "submitted_at" and isinstance(value, str):
            ctx[key] = _instant(value)
        elif isinstance(value, list):
            ctx[key] = [template_context(v, base) if isinstance(v, dict) else v for v in value]
        else:
            ctx[key] = value
    ctx.setdefault("link", base + "/")
    return ctx


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace(" ", "T"))
    result = UTCDateTime().process_result_value(value, None)  # type: ignore[arg-type]
    assert result is not None
    return result
