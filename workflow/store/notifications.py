"""Notifications: the outbox rows an event or a reminder writes (one per recipient and channel
they chose; the inbox copy delivered at once) and the in-app inbox."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, select, text, update

from workflow.store.bulk import driver_value
from workflow.store.dialects import upsert_insert
from workflow.store.prepared import Prepared
from workflow.store.tables import Notification, Record
from workflow.store.transaction import Transaction
from workflow.store.types import UTCDateTime

#: One outbox row per active member of ``role`` in ``org_id`` (the actor excepted) and channel
#: they chose: the inbox always, e-mail with an address, SMS; the inbox copy is delivered at once.
#: Same rows as :func:`workflow.app.lifecycle.notification_rows`, as one ``INSERT … SELECT``.
_EVENT_NOTIFICATIONS = text(
    "INSERT INTO notification (user_id, channel, source, kind, record_id, payload, status,"
    " attempts, created_at, sent_at, available_at)"
    " SELECT DISTINCT u.id, c.ch, :source, :kind, :record_id, :payload,"
    " CASE WHEN c.ch = 'inbox' THEN 'sent' ELSE 'pending' END, 0, :now,"
    " CASE WHEN c.ch = 'inbox' THEN :now END, :avail"
    " FROM membership m JOIN app_user u ON u.id = m.user_id"
    " CROSS JOIN (SELECT 'inbox' AS ch UNION ALL SELECT 'email' UNION ALL SELECT 'sms') c"
    " WHERE ((m.org_id = :org_id AND m.role = :role) OR (m.org_id = :org_id2 AND m.role = :role2))"
    " AND u.is_active = :active AND u.id <> :actor"
    " AND (c.ch = 'inbox' OR ((',' || REPLACE(u.channels, ' ', '') || ',') LIKE '%,' || c.ch || ',%'"
    "      AND (c.ch <> 'email' OR (u.email IS NOT NULL AND u.email <> ''))))"
    " ON CONFLICT (user_id, channel, source) DO NOTHING RETURNING id"
).bindparams(bindparam("now", type_=UTCDateTime), bindparam("avail", type_=UTCDateTime))

_EVENT_NOTIFICATIONS_P = Prepared(_EVENT_NOTIFICATIONS)
#: The same for many events at once (the driver's executemany: one round trip on psycopg's pipeline).
_EVENT_NOTIFICATIONS_MANY = text(_EVENT_NOTIFICATIONS.text.removesuffix(" RETURNING id")).bindparams(
    bindparam("now", type_=UTCDateTime), bindparam("avail", type_=UTCDateTime))


def available_now() -> datetime:
    """A new outbox row's ``available_at``: the real time (never the business time a sweep or
    a demo runs in), from which the outbox's age is measured."""
    return datetime.now(UTC)


class Notifications:
    """The outbox rows of events and reminders, and each user's in-app inbox."""

    def __init__(self, uow: Transaction) -> None:
        self._uow = uow

    def add_event_notifications(self, *, org_id: int, role: str, actor_user_id: int, source: str,
                                record_id: int, payload: str, now: datetime, kind: str = "record_event",
                                also: tuple[int, str] | None = None) -> int:
        """Outbox rows for an event to the members of ``role`` in ``org_id`` (and of the second
        audience ``also``, an (organisation, role)), in one statement; rows whose (user, channel,
        source) key exists are skipped. Returns the rows inserted."""
        d = self._uow.dialect
        org_id2, role2 = also if also is not None else (-1, role)
        return len(_EVENT_NOTIFICATIONS_P.run(self._uow.connection(), {
            "org_id": org_id, "role": role, "org_id2": org_id2, "role2": role2,
            "actor": actor_user_id, "source": source, "kind": kind,
            "record_id": record_id, "payload": payload, "now": driver_value(d, now),
            "avail": driver_value(d, available_now()), "active": driver_value(d, True),
        })[0])

    def add_event_notifications_many(self, events: Sequence[dict[str, Any]]) -> None:
        """:meth:`add_event_notifications` for many events (each its keyword arguments), in one
        executemany."""
        if not events:
            return
        avail = available_now()
        params = []
        for e in events:
            org_id2, role2 = e.get("also") or (-1, e["role"])
            params.append({"org_id": e["org_id"], "role": e["role"], "org_id2": org_id2, "role2": role2,
                           "actor": e["actor_user_id"], "source": e["source"], "kind": e.get("kind", "record_event"),
                           "record_id": e["record_id"], "payload": e["payload"], "now": e["now"], "avail": avail,
                           "active": True})
        self._uow.execute(_EVENT_NOTIFICATIONS_MANY, params)

    def add(self, rows: Iterable[dict[str, Any]]) -> int:
        """Insert outbox rows, skipping any whose (user, channel, source) key exists."""
        avail = available_now()
        rows = [{"available_at": avail, **row} for row in rows]
        if not rows:
            return 0
        table = Notification.__table__
        stmt = upsert_insert(self._uow.dialect, table).on_conflict_do_nothing(
            index_elements=["user_id", "channel", "source"])
        # executemany of one cached statement; RETURNING counts the rows really inserted (the
        # driver's rowcount is -1 for executemany on psycopg).
        return len(self._uow.session.execute(stmt.returning(table.c.id), rows).all())

    def unread_count(self, user_id: int) -> int:
        """How many of the user's in-app notifications are unread (the 通知 link shows it)."""
        return int(self._uow.session.execute(
            select(func.count()).select_from(Notification).where(
                Notification.user_id == user_id, Notification.channel == "inbox", Notification.read_at.is_(None))
        ).scalar_one())

    def inbox_page(self, user_id: int, *, page: int, per_page: int) -> tuple[int, int, list[Notification]]:
        """(total, unread, one page newest first) of the user's in-app notifications."""
        cond = and_(Notification.user_id == user_id, Notification.channel == "inbox")
        total = self._uow.session.execute(select(func.count()).select_from(Notification).where(cond)).scalar_one()
        unread = self._uow.session.execute(
            select(func.count()).select_from(Notification).where(cond, Notification.read_at.is_(None))
        ).scalar_one()
        rows = list(self._uow.session.execute(
            select(Notification).where(cond).order_by(Notification.id.desc())
            .limit(per_page).offset((page - 1) * per_page)
        ).scalars())
        return int(total), int(unread), rows

    def record_states(self, record_ids: Iterable[int]) -> dict[int, str]:
        """The current state of each of these records (an inbox page's), in one query."""
        wanted = sorted(set(record_ids))
        if not wanted:
            return {}
        return {rid: state for rid, state in self._uow.session.execute(
            select(Record.id, Record.state).where(Record.id.in_(wanted)))}

    def mark_inbox_read(self, user_id: int, *, now: datetime, ids: Sequence[int] | None = None) -> int:
        """Mark the user's unread inbox rows read (all, or only ``ids``); how many changed."""
        cond = [Notification.user_id == user_id, Notification.channel == "inbox", Notification.read_at.is_(None)]
        if ids is not None:
            cond.append(Notification.id.in_(list(ids)))
        return int(self._uow.session.execute(update(Notification).where(*cond).values(read_at=now)).rowcount or 0)

    def notification(self, notification_id: int) -> Notification | None:
        return self._uow.session.get(Notification, notification_id)
