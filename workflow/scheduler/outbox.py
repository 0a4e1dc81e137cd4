"""Delivery from the outbox: claim with a lease, render, send, mark — never lost, at most one
repeat.

``deliver_pending`` claims up to ``batch`` pending rows whose lease is free (PostgreSQL:
``SELECT … FOR UPDATE SKIP LOCKED``; SQLite: inside ``BEGIN IMMEDIATE``), writes their lease and
a claim token (``<worker id>:<claim id>``) and commits, so two workers never hold the same row.
It then sends the rows one by one and marks each in its own short transaction before sending
the next; a mark succeeds only ``WHERE claim = :mine``, so a worker whose lease was taken over
cannot mark (nor count) another's rows.

Leases run on the machine clock (:func:`machine_clock`): the real time, never ``BANGFU_NOW``;
given an as-of start (tests, demos) it advances with real time from there. Each batch reads it
afresh, and before each message the worker checks its lease: once half of it is gone it renews
the lease of the rows it still holds (and drops any it no longer holds), so no batch outlives
its lease at a slow relay. ``sent_at`` is the machine time of each mark. What a crash can do:

- killed after claiming, before sending: the rows stay ``pending``; once the lease expires the
  next delivery claims and sends them, once;
- killed after the server accepted a message, before it was marked sent: that one message is
  sent again by the next delivery, with the same ``Message-ID`` (derived from the notification
  key), so a mail client shows it once. That is the only repeat window, and it is one message
  wide.

A temporary failure (SMTP 4xx, robot rate limit) leaves the row pending with an exponential
backoff in ``lease_until``; a permanent one (bad address, SMTP 5xx) marks it ``failed`` with
``last_error``. While the server is unreachable for everybody (connection refused, dropped) the
attempt is given back: attempts count only the errors of that message. ``should_stop`` (the
worker's shutdown) is checked before each message; rows not yet sent are released at once. Kill points for drills: ``BANGFU_KILL_AT=after_claim`` or
``after_send`` ends the process with ``os._exit(137)`` at that point, as a SIGKILL would.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import smtplib
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Dialect, bindparam, select, text, update

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
    errors: list[tuple[int, str]] = field(default_factory=list)
    sent_by_channel: dict[str, int] = field(default_factory=dict)
    failed_by_channel: dict[str, int] = field(default_factory=dict)

    def add(self, other: DeliveryReport) -> None:
        for name in ("claimed", "sent", "retry", "failed", "released", "renewed", "lost",
                     "batches"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.stopped = self.stopped or other.stopped
        self.errors.extend(other.errors)
        for mine, theirs in ((self.sent_by_channel, other.sent_by_channel),
                             (self.failed_by_channel, other.failed_by_channel)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v

    def to_dict(self) -> dict[str, Any]:
        return {"worker_id": self.worker_id, "claimed": self.claimed, "sent": self.sent,
                "retry": self.retry, "failed": self.failed, "released": self.released,
                "renewed": self.renewed, "lost": self.lost, "batches": self.batches,
                "stopped": self.stopped,
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
    """One batch's claim as its worker sees it."""

    token: str
    until: datetime
    seconds: float
    held: set[int]
    renewals: int = 0
    conn: Connection | None = None  # the batch's connection for its marks


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
) -> DeliveryReport:
    """Claim, send and mark one batch of pending notifications.

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

    Returns:
        What was claimed, sent, left for retry and failed.
    """
    settings = get_settings()
    clock = clock or machine_clock(now)
    batch = batch or settings.delivery_batch
    lease = float(lease_seconds or settings.lease_seconds)
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
    base = (base_url or settings.base_url).rstrip("/")
    recipients = _recipients(database, rows)
    by_channel: dict[str, list[Claimed]] = {}
    for row in rows:
        by_channel.setdefault(row.channel, []).append(row)
    # Each mark is one autocommitted UPDATE on this batch's connection, sent to the driver
    # itself: one round trip on PostgreSQL; on SQLite (the connection has no transaction open,
    # so the statement is its own) no BEGIN IMMEDIATE … COMMIT and no statement handling.
    pg = database.dialect == "postgresql"
    conn = database.engine.connect()
    if pg:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
    with conn:
        if pg:
            # The marks need not wait for the WAL flush: if the database server itself crashed
            # before flushing, a row would be sent once more with the same Message-ID, the
            # same window as a worker killed before marking. A worker crash loses nothing.
            # Session-level on this batch's connection only, reset before it goes back.
            conn.execute(text("SET synchronous_commit TO OFF"))
        held.conn = conn
        try:
            _send_groups(database, channels, by_channel, recipients, base, clock, report,
                         held, stop)
        finally:
            held.conn = None
            if pg:
                conn.execute(text("RESET synchronous_commit"))
    report.released += _release(database, held)
    report.renewed += held.renewals
    log.info("delivery batch", extra={"event": "delivery_batch", **_batch_fields(
        report, time.perf_counter() - started)})
    return report


def _send_groups(database: Database, channels: Mapping[str, Channel],
                 by_channel: dict[str, list[Claimed]], recipients: dict[tuple[str, int], str],
                 base: str, clock: MachineClock, report: DeliveryReport, held: _Lease,
                 stop: Callable[[], bool]) -> None:
    for name, group in by_channel.items():
        channel = channels[name]
        with _sender(channel) as send:
            down: DeliveryError | None = None
            for row in group:
                if report.stopped or stop():
                    report.stopped = True
                    break
                if down is not None:
                    # The server is unreachable: don't knock once per row, try again later.
                    _retry(database, row, clock(), f"not tried: {down}", report, held,
                           spent=False)
                    continue
                if not _keep(database, held, clock()):
                    break
                if row.id not in held.held:
                    continue
                error = _deliver_one(database, channel, send, row, recipients, base, clock,
                                     report, held)
                if isinstance(error, TemporaryDeliveryError) and _unreachable(error):
                    down = error


def _batch_fields(report: DeliveryReport, seconds: float) -> dict[str, Any]:
    return {"worker": report.worker_id, "claimed": report.claimed, "sent": report.sent,
            "retry": report.retry, "failed": report.failed, "released": report.released,
            "renewed": report.renewed, "lost": report.lost, "stopped": report.stopped,
            "seconds": round(seconds, 3)}


def _keep(database: Database, lease: _Lease, now: datetime) -> bool:
    """Renew the batch's lease once half of it is gone; False if nothing is held any more."""
    if now < lease.until - timedelta(seconds=lease.seconds / 2):
        return bool(lease.held)
    n = Notification.__table__
    until = now + timedelta(seconds=lease.seconds)
    with database.begin() as session:
        session.execute(update(n).where(n.c.claim == lease.token, n.c.status == "pending",
                                        n.c.id.in_(lease.held)).values(lease_until=until))
        still = {r[0] for r in session.execute(
            select(n.c.id).where(n.c.claim == lease.token, n.c.status == "pending",
                                 n.c.id.in_(lease.held))).all()}
    if still != lease.held:
        log.warning("lease %s lost %d rows to another worker", lease.token,
                    len(lease.held - still))
    lease.held, lease.until = still, until
    lease.renewals += 1
    return bool(still)


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
           report: DeliveryReport, lease: _Lease, *, spent: bool = True) -> None:
    """Leave the row pending with a backoff, or fail it after the last attempt. ``spent=False``
    (the server is unreachable for everybody) gives the attempt back."""
    attempts = row.attempts if spent else row.attempts - 1
    if spent and attempts >= MAX_ATTEMPTS:
        if _mark(database, row, lease, "failed", now,
                 error=f"{error} (after {attempts} attempts)"):
            report.failed += 1
            report.failed_by_channel[row.channel] = report.failed_by_channel.get(row.channel, 0) + 1
    elif _mark(database, row, lease, "pending", now, error=error,
               lease_until=now + _backoff(max(attempts, 1)), give_back=not spent):
        report.retry += 1
    report.errors.append((row.id, error))


@translated()  # the worker retries StoreUnavailable, never a SQLAlchemy name
def deliver_all(database: Database, *, channels: Mapping[str, Channel],
                now: datetime | None = None, worker_id: str, batch: int | None = None,
                lease_seconds: float | None = None, max_batches: int = 50,
                base_url: str | None = None, clock: MachineClock | None = None,
                should_stop: Callable[[], bool] | None = None) -> DeliveryReport:
    """Deliver batch after batch until a batch comes back short (or ``max_batches``, or the
    worker is shutting down). Each batch reads the machine clock afresh."""
    clock = clock or machine_clock(now)
    batch = batch or get_settings().delivery_batch
    stop = should_stop or (lambda: False)
    total = DeliveryReport(worker_id=worker_id)
    for _ in range(max_batches):
        if stop():
            total.stopped = True
            break
        one = deliver_pending(database, channels=channels, worker_id=worker_id, batch=batch,
                              lease_seconds=lease_seconds, base_url=base_url, clock=clock,
                              should_stop=stop)
        total.add(one)
        if one.claimed < batch or one.stopped:
            break
    if total.stopped:
        log.info("delivery stopped for shutdown", extra={
            "event": "delivery_stopped", "worker": worker_id, "sent": total.sent,
            "released": total.released})
    return total


@contextmanager
def _sender(channel: Channel) -> Iterator[Callable[[OutgoingMessage], None]]:
    if isinstance(channel, EmailChannel):
        with channel.session() as send:
            yield send
    else:
        yield channel.send


def _deliver_one(database: Database, channel: Channel, send: Callable[[OutgoingMessage], None],
                 row: Claimed, recipients: dict[tuple[str, int], str], base: str,
                 clock: MachineClock, report: DeliveryReport, lease: _Lease) -> DeliveryError | None:
    try:
        msg = _message(channel, row, recipients, base)
        if msg is not None:
            send(msg)
    except TemporaryDeliveryError as exc:
        _retry(database, row, clock(), str(exc), report, lease, spent=not _unreachable(exc))
        return exc
    except DeliveryError as exc:
        _fail(database, row, lease, clock(), str(exc), report)
        return exc
    except Exception as exc:  # a template or payload bug: retrying will not fix it
        log.exception("notification %s cannot be rendered", row.id)
        _fail(database, row, lease, clock(), f"{type(exc).__name__}: {exc}", report)
        return None
    _kill_point("after_send")
    if _mark(database, row, lease, "sent", clock()):
        report.sent += 1
        report.sent_by_channel[row.channel] = report.sent_by_channel.get(row.channel, 0) + 1
    else:
        report.lost += 1
        log.warning("notification %s was sent but its lease had been taken over", row.id)
    return None


def _fail(database: Database, row: Claimed, lease: _Lease, now: datetime, error: str,
          report: DeliveryReport) -> None:
    if _mark(database, row, lease, "failed", now, error=error):
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
          give_back: bool = False) -> bool:
    """Mark one row of this claim; False (and nothing changed) if the claim no longer holds."""
    lease.held.discard(row.id)
    params: dict[str, Any] = {
        "row_id": row.id, "token": lease.token, "new_status": status, "new_lease": lease_until,
        "error": error, "sent": now if status == "sent" else None,
        "give_back": 1 if give_back else 0}
    conn = lease.conn
    if conn is None:
        with database.engine.begin() as conn:
            return bool(conn.execute(_MARK, params).rowcount)
    # The stored instant format (text on SQLite), then the driver's own statement on the
    # lease's autocommitting connection: the UPDATE is its own transaction, without
    # SQLAlchemy's per-statement execution context (PostgreSQL's psycopg prepares it after a
    # few marks).
    instant = _bind_instant(database.engine.dialect)
    params["new_lease"], params["sent"] = instant(params["new_lease"]), instant(params["sent"])
    driver = conn.connection.driver_connection
    assert driver is not None
    sql = _PG_MARK if database.dialect == "postgresql" else _SQLITE_MARK
    return bool(driver.execute(sql, params).rowcount)


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
