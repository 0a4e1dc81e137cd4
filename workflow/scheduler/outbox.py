"""Delivery from the outbox: claim with a lease, render, send, mark — never lost, at most one
repeat.

``deliver_pending`` claims up to ``batch`` pending rows whose lease is free (PostgreSQL:
``SELECT … FOR UPDATE SKIP LOCKED``; SQLite: inside ``BEGIN IMMEDIATE``), sets their lease and
commits, so two workers never hold the same row. It then sends the rows one by one and marks
each as sent in its own short transaction before sending the next. What a crash can do:

- killed after claiming, before sending: the rows stay ``pending``; once the lease expires the
  next delivery claims and sends them, once;
- killed after the server accepted a message, before it was marked sent: that one message is
  sent again by the next delivery, with the same ``Message-ID`` (derived from the notification
  key), so a mail client shows it once. That is the only repeat window, and it is one message
  wide.

A temporary failure (connection refused, SMTP 4xx, robot rate limit) leaves the row pending
with an exponential backoff in ``lease_until``; a permanent one (bad address, SMTP 5xx) marks
it ``failed`` with ``last_error``. Kill points for drills: ``BANGFU_KILL_AT=after_claim`` or
``after_send`` ends the process with ``os._exit(137)`` at that point, as a SIGKILL would.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update

from notifications.channels import (
    EMAIL,
    INBOX,
    SMS,
    Channel,
    DeliveryError,
    EmailChannel,
    OutgoingMessage,
    PermanentDeliveryError,
    TemporaryDeliveryError,
    WebhookChannel,
)
from notifications.templates import render
from workflow.settings import Settings, get_settings
from workflow.store.tables import Database, Notification, OrgRobot, User, UTCDateTime

log = logging.getLogger("bangfu.outbox")

KILL_ENV = "BANGFU_KILL_AT"
MAX_ATTEMPTS = 8
ROBOT_CHANNELS = ("wecom", "dingtalk")


@dataclass
class DeliveryReport:
    """What one delivery pass did.

    Attributes:
        worker_id: who delivered.
        claimed: rows claimed.
        sent: rows sent and marked.
        retry: rows left pending after a temporary failure.
        failed: rows marked failed.
        errors: ``(notification id, error text)`` for every failure.
    """

    worker_id: str
    claimed: int = 0
    sent: int = 0
    retry: int = 0
    failed: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"worker_id": self.worker_id, "claimed": self.claimed, "sent": self.sent,
                "retry": self.retry, "failed": self.failed,
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

    @property
    def key(self) -> str:
        # The same key as Notification.key: the Message-ID derives from it.
        return f"{self.user_id}:{self.channel}:{self.source}"


def default_channels(settings: Settings | None = None) -> dict[str, Channel]:
    """The channels of a deployment: SMTP e-mail from the settings and both robot kinds."""
    s = settings or get_settings()
    return {
        EMAIL: EmailChannel(s.smtp_host, s.smtp_port, s.smtp_sender, use_tls=s.smtp_tls,
                            username=s.smtp_user, password=s.smtp_password),
        "wecom": WebhookChannel("wecom"),
        "dingtalk": WebhookChannel("dingtalk"),
    }


def _kill_point(name: str) -> None:
    if os.environ.get(KILL_ENV) == name:
        log.warning("kill point %s reached: exiting with 137", name)
        os._exit(137)


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(60 * 2 ** max(attempts - 1, 0), 3600))


# --- claiming -------------------------------------------------------------------------------


def claim(database: Database, *, channels: list[str], now: datetime, batch: int,
          lease_seconds: int) -> list[Claimed]:
    """Claim up to ``batch`` pending rows of ``channels`` whose lease is free, and commit.

    Returns:
        The claimed rows, their ``attempts`` already counting this one.
    """
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
            .values(lease_until=now + timedelta(seconds=lease_seconds), attempts=n.c.attempts + 1)
        )
        rows = session.execute(
            select(n.c.id, n.c.user_id, n.c.channel, n.c.source, n.c.kind, n.c.payload,
                   n.c.attempts).where(n.c.id.in_(ids)).order_by(n.c.id)
        ).all()
    return [Claimed(*row) for row in rows]


# --- delivering -----------------------------------------------------------------------------


def deliver_pending(
    database: Database,
    *,
    channels: Mapping[str, Channel],
    now: datetime,
    worker_id: str,
    batch: int = 100,
    lease_seconds: int = 60,
    base_url: str | None = None,
) -> DeliveryReport:
    """Claim, send and mark one batch of pending notifications.

    Args:
        database: the database.
        channels: the channels to deliver, by name (``email``, ``wecom``, ``sms`` ...); rows of
            other channels are left alone.
        now: the as-of instant: leases and backoff are computed from it.
        worker_id: who delivers (logged).
        batch: at most this many rows.
        lease_seconds: how long a claim keeps other workers off the rows.
        base_url: the site's base URL for links (default: the settings').

    Returns:
        What was claimed, sent, left for retry and failed.
    """
    report = DeliveryReport(worker_id=worker_id)
    rows = claim(database, channels=sorted(channels), now=now, batch=batch,
                 lease_seconds=lease_seconds)
    report.claimed = len(rows)
    if not rows:
        return report
    log.info("%s claimed %d notifications", worker_id, len(rows))
    _kill_point("after_claim")
    base = (base_url or get_settings().base_url).rstrip("/")
    recipients = _recipients(database, rows)
    by_channel: dict[str, list[Claimed]] = {}
    for row in rows:
        by_channel.setdefault(row.channel, []).append(row)
    for name, group in by_channel.items():
        channel = channels[name]
        with _sender(channel) as send:
            down: DeliveryError | None = None
            for row in group:
                if down is not None:
                    # The server is unreachable: don't knock once per row, try again later.
                    _retry(database, row, now, f"not tried: {down}", report)
                    continue
                error = _deliver_one(database, channel, send, row, recipients, base, now, report)
                if isinstance(error, TemporaryDeliveryError) and _unreachable(error):
                    down = error
    return report


def _unreachable(error: DeliveryError) -> bool:
    """The server cannot be reached at all (refused, timed out, dropped), as opposed to one
    message or recipient being deferred (SMTP 4xx, which smtplib also raises as OSError)."""
    cause = error.__cause__
    if isinstance(cause, smtplib.SMTPServerDisconnected):
        return True
    return isinstance(cause, OSError) and not isinstance(cause, smtplib.SMTPException)


def _retry(database: Database, row: Claimed, now: datetime, error: str,
           report: DeliveryReport) -> None:
    if row.attempts >= MAX_ATTEMPTS:
        _mark(database, row.id, "failed", now, error=f"{error} (after {row.attempts} attempts)")
        report.failed += 1
    else:
        _mark(database, row.id, "pending", now, error=error, lease_until=now + _backoff(row.attempts))
        report.retry += 1
    report.errors.append((row.id, error))


def deliver_all(database: Database, *, channels: Mapping[str, Channel], now: datetime,
                worker_id: str, batch: int = 100, lease_seconds: int = 60,
                max_batches: int = 50, base_url: str | None = None) -> DeliveryReport:
    """Deliver batch after batch until a batch comes back short (or ``max_batches``)."""
    total = DeliveryReport(worker_id=worker_id)
    for _ in range(max_batches):
        one = deliver_pending(database, channels=channels, now=now, worker_id=worker_id,
                              batch=batch, lease_seconds=lease_seconds, base_url=base_url)
        total.claimed += one.claimed
        total.sent += one.sent
        total.retry += one.retry
        total.failed += one.failed
        total.errors.extend(one.errors)
        if one.claimed < batch:
            break
    return total


@contextmanager
def _sender(channel: Channel) -> Iterator[Callable[[OutgoingMessage], None]]:
    if isinstance(channel, EmailChannel):
        with channel.session() as send:
            yield send
    else:
        yield channel.send


def _deliver_one(database: Database, channel: Channel, send: Callable[[OutgoingMessage], None],
                 row: Claimed, recipients: dict[tuple[str, int], str], base: str, now: datetime,
                 report: DeliveryReport) -> DeliveryError | None:
    try:
        msg = _message(channel, row, recipients, base)
        if msg is not None:
            send(msg)
    except TemporaryDeliveryError as exc:
        _retry(database, row, now, str(exc), report)
        return exc
    except DeliveryError as exc:
        _mark(database, row.id, "failed", now, error=str(exc))
        report.failed += 1
        report.errors.append((row.id, str(exc)))
        return exc
    except Exception as exc:  # a template or payload bug: retrying will not fix it
        log.exception("notification %s cannot be rendered", row.id)
        _mark(database, row.id, "failed", now, error=f"{type(exc).__name__}: {exc}")
        report.failed += 1
        report.errors.append((row.id, f"{type(exc).__name__}: {exc}"))
        return None
    _kill_point("after_send")
    _mark(database, row.id, "sent", now)
    report.sent += 1
    return None


def _mark(database: Database, row_id: int, status: str, now: datetime, *, error: str | None = None,
          lease_until: datetime | None = None) -> None:
    n = Notification.__table__
    values: dict[str, Any] = {"status": status, "lease_until": lease_until, "last_error": error}
    if status == "sent":
        values["sent_at"] = now
    with database.begin() as session:
        if database.dialect == "postgresql":
            # The mark need not wait for the WAL flush: if the database server itself crashed
            # before flushing, the row would be sent once more with the same Message-ID, the
            # same window as a worker killed before marking. A worker crash loses nothing.
            session.execute(text("SET LOCAL synchronous_commit TO OFF"))
        session.execute(update(n).where(n.c.id == row_id, n.c.status == "pending").values(**values))


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


def inbox_rows(session: Any, user_id: int, *, limit: int) -> list[tuple[Any, ...]]:
    """A user's in-app notifications, newest first: ``(id, kind, payload, created_at, read_at)``."""
    n = Notification.__table__
    return [tuple(r) for r in session.execute(
        select(n.c.id, n.c.kind, n.c.payload, n.c.created_at, n.c.read_at)
        .where(n.c.user_id == user_id, n.c.channel == INBOX)
        .order_by(n.c.created_at.desc(), n.c.id.desc())
        .limit(limit)
    ).all()]


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
