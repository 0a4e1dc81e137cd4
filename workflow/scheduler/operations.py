"""The outbox as an operator sees it: status, failed rows, retry (audited), health.

Used by ``bangfu outbox …``, the web's ``/readyz`` and ``/metrics``, and the worker's health
check. Ages use the real clock, measured from each row's ``available_at`` (the real time it was
written), never from ``created_at``, which a sweep run in business time (``BANGFU_NOW``) dates in
that time: the figures are the same whether the reader runs in business or real time.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, text, update

from workflow.store.tables import Database, Notification, OutboxEvent, User

_N = Notification.__table__  # type: ignore[attr-defined]
_U = User.__table__  # type: ignore[attr-defined]


@dataclass
class OutboxStatus:
    """Rows per (channel, kind) and status, and the oldest pending row's age.

    Attributes:
        lines: ``{"channel", "kind", "pending", "leased", "retrying", "sent", "failed"}``
            per channel and kind; ``leased`` are pending rows whose lease (or backoff) has
            not run out, ``retrying`` pending rows that failed before.
        oldest_pending_seconds: real seconds since the oldest pending row became deliverable
            (``available_at``; ``created_at`` for rows older than that column), ``None`` if
            none.
    """

    lines: list[dict[str, Any]] = field(default_factory=list)
    oldest_pending_seconds: float | None = None

    def totals(self) -> dict[str, int]:
        out = {"pending": 0, "leased": 0, "retrying": 0, "sent": 0, "failed": 0}
        for line in self.lines:
            for k in out:
                out[k] += int(line[k])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"lines": self.lines, "totals": self.totals(),
                "oldest_pending_seconds": self.oldest_pending_seconds}


def outbox_status(database: Database, now: datetime | None = None) -> OutboxStatus:
    """Count the outbox (one grouped statement) and age its oldest pending row."""
    now = now or datetime.now(UTC)
    pending = _N.c.status == "pending"
    leased = pending & _N.c.lease_until.is_not(None) & (_N.c.lease_until > now)
    status = OutboxStatus()
    with database.engine.connect() as conn:
        for channel, kind, p, le, rt, s, f in conn.execute(
            select(_N.c.channel, _N.c.kind,
                   func.count().filter(pending), func.count().filter(leased),
                   func.count().filter(pending & _N.c.last_error.is_not(None)),
                   func.count().filter(_N.c.status == "sent"),
                   func.count().filter(_N.c.status == "failed"))
            .where(_N.c.channel != "inbox")
            .group_by(_N.c.channel, _N.c.kind).order_by(_N.c.channel, _N.c.kind)
        ).all():
            status.lines.append({"channel": channel, "kind": kind, "pending": p, "leased": le,
                                 "retrying": rt, "sent": s, "failed": f})
        oldest = conn.execute(select(func.min(func.coalesce(_N.c.available_at, _N.c.created_at)))
                              .where(pending)).scalar()
    if oldest is not None:
        if isinstance(oldest, str):  # SQLite through a bare aggregate
            oldest = datetime.fromisoformat(oldest)
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=UTC)
        status.oldest_pending_seconds = max((now - oldest).total_seconds(), 0.0)
    return status


def failed_rows(database: Database, *, limit: int = 100) -> list[dict[str, Any]]:
    """Failed rows, newest first: id, channel, kind, user, attempts, last error."""
    with database.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(_N.c.id, _N.c.channel, _N.c.kind, _U.c.username, _N.c.attempts,
                   _N.c.last_error, _N.c.created_at)
            .select_from(_N.join(_U, _U.c.id == _N.c.user_id))
            .where(_N.c.status == "failed").order_by(_N.c.id.desc()).limit(limit)
        ).all()]


def retry(database: Database, *, actor: str, ids: list[int] | None = None,
          kind: str | None = None, all_failed: bool = False) -> int:
    """Put failed rows back to pending with their attempts reset, and audit it.

    Args:
        actor: who asked (``cli@host:user`` or the admin's username).
        ids: these rows (failed ones only).
        kind: or every failed row of this kind.
        all_failed: or every failed row.

    Returns:
        The rows put back.
    """
    where = _N.c.status == "failed"
    if ids:
        where = where & _N.c.id.in_(ids)
    elif kind:
        where = where & (_N.c.kind == kind)
    elif not all_failed:
        return 0
    now = datetime.now(UTC)
    with database.engine.begin() as conn:
        count = conn.execute(update(_N).where(where).values(
            status="pending", attempts=0, lease_until=None, claim=None,
            last_error=None)).rowcount or 0
        conn.execute(insert(OutboxEvent.__table__).values(  # type: ignore[attr-defined]
            at=now, actor=actor[:120], action="retry", rows=count,
            detail=json.dumps({"ids": ids, "kind": kind, "all_failed": all_failed},
                              ensure_ascii=False)))
    return int(count)


def healthy(database: Database, *, max_age: float) -> tuple[bool, OutboxStatus]:
    """The delivery side is healthy when no pending row is older than ``max_age`` seconds
    (``celery inspect ping`` only says a process answers, not that mail goes out)."""
    status = outbox_status(database)
    age = status.oldest_pending_seconds
    return (age is None or age <= max_age), status


def backup_sqlite(database: Database, target: Path) -> int:
    """Copy a SQLite database to ``target`` with SQLite's online backup (readers and writers
    carry on; the copy is one consistent moment). Returns the pages copied."""
    raw = database.engine.raw_connection()
    try:
        source = raw.driver_connection
        assert isinstance(source, sqlite3.Connection)
        dest = sqlite3.connect(str(target))
        try:
            source.backup(dest, pages=1024)
            pages = int(dest.execute("PRAGMA page_count").fetchone()[0])
        finally:
            dest.close()
    finally:
        raw.close()
    return pages


def transition_counts(database: Database) -> dict[str, int]:
    """History rows per trigger (transitions and the system's facts), one grouped statement."""
    with database.engine.connect() as conn:
        return {str(t): int(n) for t, n in conn.execute(
            text('SELECT "trigger", COUNT(*) FROM history GROUP BY "trigger"')).all()}
