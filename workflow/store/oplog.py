"""The operation audit log's SQL: appending a chained row, reading pages of rows, walking the
chain.

The same design as the history chain (:mod:`workflow.store.chain`): the same keyed hash
(:func:`workflow.store.chain.sealer`, ``BANGFU_AUDIT_KEY``/``BANGFU_AUDIT_HASH``), a canonical
form of its own (:data:`FORMAT`, :data:`FIELDS`), ``seq``/``prev_hash``/``row_hash``, a unique
``seq`` so no fork, append-only triggers. Unlike the history (one chain per record) the log is
one chain: appenders take a transaction-scoped lock on PostgreSQL (SQLite's writers are already
serial), held from the head's read to the commit a moment later.

Writing (inside a unit of work, see :class:`OpLog`)::

    uow.oplog.write(actor_id, role, org_id, action, object, outcome, address, detail)

``role``/``org_id`` None: the actor's seats are read (every role held, comma separated; the
organisation of the first seat). Use cases rather call :mod:`workflow.app.oplog`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    String,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    null,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite

from workflow.domain import oplog as catalogue
from workflow.domain.errors import StoreError
from workflow.store import chain
from workflow.store.bulk import driver_value
from workflow.store.prepared import Prepared
from workflow.store.tables import History, Membership, OpLog, Organisation, User
from workflow.store.transaction import Transaction

T = OpLog.__table__  # type: ignore[attr-defined]
_O = Organisation.__table__  # type: ignore[attr-defined]
_M = Membership.__table__  # type: ignore[attr-defined]
_U = User.__table__  # type: ignore[attr-defined]
_H = History.__table__  # type: ignore[attr-defined]

FORMAT = "bangfu-oplog-v1"
#: The row's content in the canonical form, in this order.
FIELDS = ("seq", "at", "actor_user_id", "actor_name", "actor_role", "actor_org_id", "action", "object",
          "outcome", "channel", "address", "detail", "prev_hash")
COLUMNS = tuple(c.name for c in T.columns if c.name != "id")
#: The PostgreSQL advisory lock that orders appenders (any constant no other lock uses: "oplog").
LOCK_KEY = 0x6F706C6F67
APPEND_TRIES = 20


def canonical(values: dict[str, Any]) -> bytes:
    """The row as the hash sees it: a JSON array of :data:`FIELDS` after the format tag (the
    history's encoding: instants as UTC ISO text with microseconds, text as UTF-8)."""
    g = values.get
    return chain.ENCODER.encode([
        FORMAT, g("seq"), chain.instant(values["at"]), g("actor_user_id"), g("actor_name"), g("actor_role"),
        g("actor_org_id"), g("action"), g("object"), g("outcome"), g("channel"), g("address"), g("detail"),
        g("prev_hash"),
    ]).encode()


_HEAD = Prepared(select(T.c.seq, T.c.row_hash).where(T.c.seq == select(func.max(T.c.seq)).scalar_subquery()))


def _insert(dialect_insert: Any) -> Prepared:
    return Prepared(dialect_insert(T).values({c: bindparam(c) for c in COLUMNS})
                    .on_conflict_do_nothing(index_elements=["seq"]).returning(T.c.id))


_INSERT = {"postgresql": _insert(postgresql.insert), "sqlite": _insert(sqlite.insert)}


@dataclass(frozen=True)
class Entry:
    """One row to write (the writer fills in the chain)."""

    action: str
    outcome: str = catalogue.OK
    actor_id: int | None = None
    actor_name: str | None = None
    role: str | None = None
    org_id: int | None = None
    object: str | None = None
    channel: str | None = None
    address: str | None = None
    detail: dict[str, Any] | None = None


@dataclass(frozen=True)
class Row:
    """A row as the page, the CLI and the CSV read it."""

    seq: int
    at: datetime
    actor_user_id: int | None
    actor_name: str | None
    actor_display: str | None
    actor_role: str | None
    org_code: str | None
    org_name: str | None
    action: str
    object: str | None
    outcome: str
    channel: str | None
    address: str | None
    detail: dict[str, Any]
    source: str = "log"  # log | history (a transition's history row)


@dataclass(frozen=True)
class Filters:
    """What a reader narrows the log to (all optional)."""

    actor: str | None = None  # username
    action: str | None = None  # an action code, or a prefix ending in "." ("user.")
    org_paths: tuple[str, ...] | None = None  # the actor's organisation at or under one of these
    since: datetime | None = None
    until: datetime | None = None  # exclusive
    outcome: str | None = None


class OpLogRepo:
    """The unit of work's operation log (``uow.oplog``): write a row, read pages, walk the chain.

    A use case may also leave an :class:`Entry` pending (:meth:`expect`): the unit's
    :meth:`~workflow.store.uow.UnitOfWork.commit` writes it in the same transaction as the change
    it records, so no committed write goes without its row.
    """

    def __init__(self, uow: Transaction) -> None:
        self._uow = uow
        self.pending: Entry | None = None
        self.extra: dict[str, Any] = {}

    # --- writing -------------------------------------------------------------------------------

    def expect(self, entry: Entry | None) -> None:
        """Leave ``entry`` for the next commit of this unit (None: forget it)."""
        self.pending, self.extra = entry, {}

    def note(self, **detail: Any) -> None:
        """Add to the pending entry's detail (what the use case alone knows: before and after)."""
        self.extra.update(detail)

    def flush_pending(self) -> bool:
        """Write the pending entry, if any (the unit's commit calls this); whether one was."""
        entry, extra = self.pending, self.extra
        if entry is None:
            return False
        self.pending, self.extra = None, {}
        detail = dict(entry.detail or {}, **extra)
        self.write(entry.actor_id, entry.role, entry.org_id, entry.action, entry.object, entry.outcome,
                   entry.address, detail or None, actor_name=entry.actor_name, channel=entry.channel)
        return True

    def write(self, actor_id: int | None, role: str | None, org_id: int | None, action: str,
              object: str | None, outcome: str, address: str | None, detail: dict[str, Any] | None, *,
              actor_name: str | None = None, channel: str | None = None, at: datetime | None = None) -> int:
        """Append one row to the log's chain in the unit's transaction; its ``seq``.

        ``role``/``org_id`` None with an ``actor_id``: the actor's seats (all roles, comma
        separated; the first seat's organisation). ``detail``: plain JSON values; never a
        password or a phone number (the caller's duty)."""
        catalogue.check(action, outcome)
        conn = self._uow.connection()
        if actor_id is not None and (role is None or org_id is None or actor_name is None):
            seats = conn.execute(
                select(_M.c.role, _M.c.org_id, _U.c.username).join(_U, _U.c.id == _M.c.user_id)
                .join(_O, _O.c.id == _M.c.org_id).where(_M.c.user_id == actor_id)
                .order_by(_O.c.depth, _M.c.role)).all()
            if role is None and seats:
                role = ",".join(sorted({r for r, _o, _n in seats}))
            if org_id is None and seats:
                org_id = seats[0][1]
            if actor_name is None:
                actor_name = seats[0][2] if seats else conn.execute(
                    select(_U.c.username).where(_U.c.id == actor_id)).scalar_one_or_none()
        values = {
            "at": at or datetime.now(UTC), "actor_user_id": actor_id, "actor_name": _cut(actor_name, 64),
            "actor_role": _cut(role, 100), "actor_org_id": org_id, "action": action,
            "object": _cut(object, 200), "outcome": outcome, "channel": _cut(channel, 16),
            "address": _cut(address, 64),
            "detail": json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str) if detail else None,
        }
        d = conn.dialect.name
        if d == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOCK_KEY})
        seal = chain.sealer().seal
        for _ in range(APPEND_TRIES):
            rows, _n = _HEAD.run(conn, {})
            head = (int(rows[0][0]), rows[0][1]) if rows else None
            row = seal(values, head, canonical)
            inserted, _n = _INSERT[d].run(conn, {k: driver_value(d, v) for k, v in row.items()})
            if inserted:
                return int(row["seq"])
        raise StoreError("审计日志追加时反复冲突", code="internal")

    # --- reading -------------------------------------------------------------------------------

    def _where(self, stmt: Any, f: Filters, c: Any, org: Any) -> Any:
        if f.actor:
            stmt = stmt.where(c.actor_name == f.actor)
        if f.action:
            stmt = stmt.where(c.action.startswith(f.action) if f.action.endswith(".") else c.action == f.action)
        if f.outcome:
            stmt = stmt.where(c.outcome == f.outcome)
        if f.since is not None:
            stmt = stmt.where(c.at >= f.since)
        if f.until is not None:
            stmt = stmt.where(c.at < f.until)
        if f.org_paths is not None:
            stmt = stmt.where(or_(*[org.c.path.startswith(p) for p in f.org_paths]) if f.org_paths else false())
        return stmt

    def _union(self) -> Any:
        """The log's rows and the history's transitions as one relation: a transition's audit row
        is its history row (written, chained and append-only in the transition's own
        transaction, so the hot path writes nothing twice); refused transitions are log rows."""
        log = select(T.c.seq, literal("log").label("src"), T.c.at, T.c.actor_user_id, T.c.actor_name,
                     T.c.actor_role, T.c.actor_org_id, T.c.action, T.c.object, T.c.outcome, T.c.channel,
                     T.c.address, T.c.detail, null().label("trigger"), null().label("from_state"),
                     null().label("to_state"), null().label("reason"), null().label("on_behalf"))
        actor = _U.alias("hu")
        user_triggers = sorted(catalogue.FIRE_TRIGGERS)
        hist = (select(
            _H.c.id.label("seq"), literal("history").label("src"), _H.c.at, _H.c.actor_user_id,
            actor.c.username.label("actor_name"), _H.c.actor_role, _H.c.actor_org_id,
            case((_H.c.trigger.in_(user_triggers), literal("record.fire")), else_=literal("record.sweep")).label("action"),
            (literal("record:") + cast(_H.c.record_id, String)).label("object"), literal("ok").label("outcome"),
            null().label("channel"), null().label("address"), _H.c.detail, _H.c.trigger, _H.c.from_state,
            _H.c.to_state, _H.c.reason, _H.c.on_behalf)
            .select_from(_H.outerjoin(actor, actor.c.id == _H.c.actor_user_id))
            .where(_H.c.trigger.in_(user_triggers + sorted(catalogue.SWEEP_TRIGGERS))))
        return union_all(log, hist).subquery("oplog_all")

    def search(self, f: Filters, *, limit: int | None = 100, offset: int = 0) -> list[Row]:
        """Rows matching ``f`` (the log's and the transitions'), newest first."""
        u = self._union()
        stmt = self._where(
            select(u, _O.c.code.label("org_code"), _O.c.name.label("org_name"),
                   _U.c.display_name.label("actor_display"))
            .select_from(u.outerjoin(_O, _O.c.id == u.c.actor_org_id).outerjoin(_U, _U.c.id == u.c.actor_user_id)),
            f, u.c, _O).order_by(u.c.at.desc(), u.c.src, u.c.seq.desc()).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [_row(m) for m in self._uow.connection().execute(stmt).mappings()]

    def count(self, f: Filters) -> int:
        u = self._union()
        stmt = self._where(select(func.count()).select_from(u.outerjoin(_O, _O.c.id == u.c.actor_org_id)), f, u.c, _O)
        return int(self._uow.connection().execute(stmt).scalar_one())

    def walk(self, *, after_seq: int = 0, batch: int = 5_000) -> Iterator[dict[str, Any]]:
        """Every row after ``after_seq`` in chain order, as stored (streamed)."""
        result = (self._uow.connection().execution_options(stream_results=True, yield_per=batch)
                  .execute(select(T).where(T.c.seq > after_seq).order_by(T.c.seq)))
        for m in result.mappings():
            yield dict(m)

    def last_seq_before(self, instant: datetime) -> int | None:
        """The last row's seq written before ``instant`` (None: none)."""
        got = self._uow.connection().execute(select(func.max(T.c.seq)).where(T.c.at < instant)).scalar_one()
        return None if got is None else int(got)

    def head(self) -> tuple[int, str] | None:
        rows, _n = _HEAD.run(self._uow.connection(), {})
        return (int(rows[0][0]), str(rows[0][1])) if rows else None


def _cut(value: str | None, size: int) -> str | None:
    return None if value is None else value[:size]


def _row(m: Any) -> Row:
    detail = json.loads(m["detail"]) if m["detail"] else {}
    if m["src"] == "history":  # a transition: what the history row says, the submission's detail aside
        detail = {k: v for k, v in (("trigger", m["trigger"]), ("from_state", m["from_state"]),
                                    ("to_state", m["to_state"]), ("reason", m["reason"]),
                                    ("on_behalf", bool(m["on_behalf"]) if m["on_behalf"] is not None else None))
                  if v is not None}
    return Row(seq=m["seq"], at=m["at"], actor_user_id=m["actor_user_id"], actor_name=m["actor_name"],
               actor_display=m["actor_display"], actor_role=m["actor_role"], org_code=m["org_code"],
               org_name=m["org_name"], action=m["action"], object=m["object"], outcome=m["outcome"],
               channel=m["channel"], address=m["address"], detail=detail, source=m["src"])
