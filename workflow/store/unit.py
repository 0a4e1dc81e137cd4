"""The unit of work's transaction and its Core statements: SQLAlchemy alone, no ORM.

:class:`CoreUnitOfWork` opens a transaction on a connection (``BEGIN IMMEDIATE`` on SQLite for
writes) and rolls back unless :meth:`CoreUnitOfWork.commit` is called. It holds the statements of
the clerk's everyday commands (``show``, ``purchase-add``, ``purchase-list``, ``fire`` but
``summarize``) and of the transition's hot path, written against :mod:`workflow.store.schema`: a
process that runs only these never imports SQLModel nor builds the ORM's classes (CLI start-up
time). Its reads return rows (the columns as attributes, read-only) where the ORM unit
(:class:`workflow.store.uow.UnitOfWork`, a subclass) returns mapped objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from types import TracebackType
from typing import Any, NamedTuple, Self

from sqlalchemy import (
    String,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from workflow.domain.errors import NotFound, Refusal, RuleViolation
from workflow.domain.policy import Policy, parse_policy
from workflow.store import rollup
from workflow.store.bulk import driver_value
from workflow.store.engine import Database, driver_execute
from workflow.store.schema import (
    AGGREGATE_LINE,
    HISTORY,
    MEMBERSHIP,
    ORGANISATION,
    POLICY,
    PURCHASE,
    RECORD,
    ROUND,
    SNAPSHOT,
    USER,
    UTCDateTime,
)

_RETURNS = ("return_for_revision", "revoke_acceptance")

#: Parsed policies by digest, so a transition reads only the digest (in its context statement).
_POLICIES: dict[str, Policy] = {}


@lru_cache(maxsize=32)
def _parse_cached(digest: str, text: str) -> Policy:
    return parse_policy(text, source=f"policy:{digest}")


INSERT_HISTORY = (
    insert(HISTORY)
    .values({c.name: bindparam(c.name) for c in HISTORY.columns if c.name != "id"})
    .returning(HISTORY.c.id)
)


# --- the transition's hot path: Core statements built once, compiled once per dialect --------

_R, _O, _RD = RECORD, ORGANISATION, ROUND
_P = _R.alias("parent_record")
_U, _M = USER, MEMBERSHIP
_MO = _O.alias("seat_org")
_S = SNAPSHOT
_PD = POLICY


def _lit(value: str) -> Any:
    """A SQL string literal (no bind: prepared statements take only the named parameters)."""
    return literal_column(f"'{value}'")


@lru_cache(maxsize=1)
def fire_context_statement() -> Any:
    """Record, organisation, round cap, parent record's state, the user and every seat (membership
    with its organisation's id, path and parent) of the user: one statement, one row per seat
    (one row without seats) when the record exists. Access is decided from these by
    :func:`workflow.domain.access.relation`.

    Built on first use (a command that fires no trigger never builds it: start-up time).
    """
    # Four eyes: whether the acting user submitted the record, acted on its behalf, or entered its
    # purchases or aggregate lines since its last return or revocation (asked of submitted records;
    # the same rows as UnitOfWork.record_fillers, for one user, inside the context statement).
    hist, pur, agg = HISTORY, PURCHASE, AGGREGATE_LINE
    h_return, h_return_at, h_fill = hist.alias("h_return"), hist.alias("h_return_at"), hist.alias("h_fill")
    last_return = (
        select(func.max(h_return.c.id))
        .where(h_return.c.record_id == _R.c.id,
               or_(h_return.c.trigger == _lit("return_for_revision"), h_return.c.trigger == _lit("revoke_acceptance")))
        .correlate(_R)  # nested two levels down: name the outer record explicitly
        .scalar_subquery()
    )
    last_return_at = select(h_return_at.c.at).where(h_return_at.c.id == last_return).correlate(_R).scalar_subquery()

    def entered_since(table: Any) -> Any:
        return exists(select(literal_column("1")).select_from(table).where(
            table.c.record_id == _R.c.id, table.c.entered_by_user_id == bindparam("user_id"),
            or_(last_return_at.is_(None), table.c.entered_at >= last_return_at)).correlate(_R))

    actor_filled = case((and_(_R.c.state == _lit("submitted"), or_(
        exists(select(literal_column("1")).select_from(h_fill).where(
            h_fill.c.record_id == _R.c.id, h_fill.c.actor_user_id == bindparam("user_id"),
            h_fill.c.id > func.coalesce(last_return, literal_column("0")),
            or_(h_fill.c.trigger == _lit("submit"), h_fill.c.on_behalf.is_(True))).correlate(_R)),
        entered_since(pur), entered_since(agg),
    )), literal_column("1")), else_=literal_column("0"))
    return (
        select(
            _R.c.id, _R.c.org_id, _R.c.round_id, _R.c.parent_id, _R.c.state, _R.c.version,
            _R.c.is_grassroots, _R.c.is_reporting_unit, _R.c.amount_per_member_fen, _R.c.members,
            _R.c.work_experience, _R.c.work_highlights, _R.c.snapshot_id, _R.c.snapshot_stale,
            _R.c.reporter, _R.c.phone, _R.c.fill_date, _R.c.report_deadline, _R.c.is_overdue, _R.c.is_late,
            _S.c.people_total, _S.c.amount_total_fen,
            _O.c.code.label("org_code"), _O.c.name.label("org_name"), _O.c.parent_id.label("org_parent_id"),
            _O.c.path.label("org_path"),
            _RD.c.cap_fen_per_member, _RD.c.policy_code, _PD.c.digest.label("policy_digest"),
            actor_filled.label("actor_filled"), _P.c.state.label("parent_state"),
            _U.c.id.label("user_id"), _U.c.display_name, _U.c.is_active,
            _M.c.role.label("seat_role"), _MO.c.id.label("seat_org_id"), _MO.c.path.label("seat_org_path"),
            _MO.c.parent_id.label("seat_org_parent_id"),
        )
        .select_from(
            _R.join(_O, _O.c.id == _R.c.org_id)
            .join(_RD, _RD.c.id == _R.c.round_id)
            .outerjoin(_PD, _PD.c.code == _RD.c.policy_code)
            .outerjoin(_P, _P.c.id == _R.c.parent_id)
            .outerjoin(_S, _S.c.id == _R.c.snapshot_id)
            .outerjoin(_U, _U.c.id == bindparam("user_id"))
            .outerjoin(_M, _M.c.user_id == _U.c.id)
            .outerjoin(_MO, _MO.c.id == _M.c.org_id)
        )
        .where(_R.c.id == bindparam("record_id"))
    )


_MARK_STALE = (
    update(_R)
    .where(_R.c.id == bindparam("record_id"), _R.c.state == bindparam("only_state"),
           _R.c.snapshot_id.is_not(None))
    .values(snapshot_stale=bindparam("stale"))
)
#: One outbox row per active member of ``role`` in ``org_id`` (the actor excepted) and channel
#: they chose: the inbox always, e-mail with an address, SMS; the inbox copy is delivered at once.
#: Same rows as :func:`workflow.app.records.notification_rows`, as one ``INSERT … SELECT``.
_EVENT_NOTIFICATIONS = text(
    "INSERT INTO notification (user_id, channel, source, kind, record_id, payload, status,"
    " attempts, created_at, sent_at)"
    " SELECT u.id, c.ch, :source, :kind, :record_id, :payload,"
    " CASE WHEN c.ch = 'inbox' THEN 'sent' ELSE 'pending' END, 0, :now,"
    " CASE WHEN c.ch = 'inbox' THEN :now END"
    " FROM membership m JOIN app_user u ON u.id = m.user_id"
    " CROSS JOIN (SELECT 'inbox' AS ch UNION ALL SELECT 'email' UNION ALL SELECT 'sms') c"
    " WHERE m.org_id = :org_id AND m.role = :role AND u.is_active = :active AND u.id <> :actor"
    " AND (c.ch = 'inbox' OR ((',' || REPLACE(u.channels, ' ', '') || ',') LIKE '%,' || c.ch || ',%'"
    "      AND (c.ch <> 'email' OR (u.email IS NOT NULL AND u.email <> ''))))"
    " ON CONFLICT (user_id, channel, source) DO NOTHING RETURNING id"
).bindparams(bindparam("now", type_=UTCDateTime))



class Prepared:
    """A Core statement compiled once per dialect into the driver's SQL and parameter order,
    executed on the driver's cursor of the unit's connection (inside its transaction).

    The transition's hot path pays neither SQLAlchemy's per-execution cache key nor its result
    metadata and processors (W1 measured them as a third of a transition's client CPU). Engine
    listeners of ``before_cursor_execute`` / ``after_cursor_execute`` are still called for each
    statement (statement counters, logs; a listener's rewritten statement is not applied), and
    driver errors are raised as SQLAlchemy's ``DBAPIError`` subclasses, a lost connection being
    invalidated. Parameters must be driver-ready (:func:`driver_value`); rows come back as the
    driver returns them (tuples in column order).
    """

    def __init__(self, statement: Any = None, *, build: Callable[[], Any] | None = None) -> None:
        """``statement``, or ``build``: a function returning it, called at the first run (a
        process that never runs it never builds it: start-up time)."""
        self._statement, self._build = statement, build
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None]] = {}

    @property
    def statement(self) -> Any:
        if self._statement is None and self._build is not None:
            self._statement = self._build()
        return self._statement

    def run(self, conn: Connection, params: dict[str, Any]) -> tuple[list[Any], int]:
        """Execute; returns (rows, or [] for a statement without any, the row count)."""
        dialect = conn.dialect
        got = self._compiled.get(dialect.name)
        if got is None:
            compiled = self.statement.compile(dialect=dialect)
            order = tuple(compiled.positiontup) if compiled.positional else None
            got = self._compiled[dialect.name] = (compiled.string, order)
        sql, order = got
        args: Any = params if order is None else tuple(params[k] for k in order)
        return driver_execute(conn, sql, args)


def _instant_of(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite's text
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _date_of(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


_FIRE_CONTEXT = Prepared(build=fire_context_statement)
_MARK_STALE_P = Prepared(_MARK_STALE)
_EVENT_NOTIFICATIONS_P = Prepared(_EVENT_NOTIFICATIONS)
_INSERT_HISTORY_P = Prepared(INSERT_HISTORY)

class OrgRef(NamedTuple):
    """An organisation as the access policy reads it."""

    id: int
    path: str
    parent_id: int | None


@dataclass(frozen=True)
class FireContext:
    """What a transition reads, as plain values (no ORM objects): the record, its organisation,
    the round's cap, the parent record's state, the actor and their roles."""

    record_id: int
    org_id: int
    round_id: int
    parent_id: int | None
    state: str
    version: int
    is_grassroots: bool
    is_reporting_unit: bool
    amount_per_member_fen: int | None
    members: int | None
    work_experience: str | None
    work_highlights: str | None
    snapshot_id: int | None
    snapshot_stale: bool
    reporter: str | None
    phone: str | None
    fill_date: date | None
    report_deadline: datetime
    org_code: str
    org_name: str
    org_parent_id: int | None
    cap_fen_per_member: int
    parent_state: str | None
    user_id: int
    user_name: str
    org: OrgRef  # the record's organisation
    seats: tuple[tuple[OrgRef, str], ...]  # the user's memberships
    is_overdue: bool
    is_late: bool
    snapshot_people: int | None
    snapshot_fen: int | None
    four_eyes: bool  # the round's policy's switch
    actor_filled: bool  # the actor entered or submitted the (submitted) record since its last return

    def rollup_entry(self) -> rollup.Entry:
        """The record's rollup key and measures as read."""
        return rollup.entry(state=self.state, is_grassroots=self.is_grassroots, is_overdue=self.is_overdue,
                            is_late=self.is_late, has_snapshot=self.snapshot_id is not None,
                            report_deadline=self.report_deadline, snapshot_people=self.snapshot_people,
                            snapshot_fen=self.snapshot_fen)


@lru_cache(maxsize=64)
def _write_record_statement(columns: tuple[str, ...]) -> Prepared:
    """The versioned UPDATE for one set of columns, built once per set (each trigger writes the
    same columns every time)."""
    table = RECORD
    return Prepared(
        update(table)
        .where(table.c.id == bindparam("record_id"), table.c.version == bindparam("seen_version"))
        .values(version=table.c.version + literal_column("1"),
                **{c: bindparam(f"new_{c}", type_=table.c[c].type) for c in columns})
    )

def _filler_exists(record_id: Any, user_id: int) -> Any:
    """SQL: did ``user_id`` submit the record, fire a trigger on its behalf, or enter its
    purchases or aggregate lines since its last return? History rows count by id (after the
    return's row), entries by time (one at the very instant of the return counts)."""
    last = HISTORY.alias("last_return")
    last_id = (select(func.max(last.c.id)).where(last.c.record_id == record_id, last.c.trigger.in_(_RETURNS))
               .scalar_subquery())
    ret = HISTORY.alias("return_row")
    last_at = select(ret.c.at).where(ret.c.id == last_id).scalar_subquery()
    h, p, agg = HISTORY, PURCHASE, AGGREGATE_LINE
    return or_(
        exists().where(h.c.record_id == record_id, h.c.id > func.coalesce(last_id, 0),
                       h.c.actor_user_id == user_id, or_(h.c.trigger == "submit", h.c.on_behalf.is_(True))),
        exists().where(p.c.record_id == record_id, p.c.entered_by_user_id == user_id,
                       or_(last_at.is_(None), p.c.entered_at >= last_at)),
        exists().where(agg.c.record_id == record_id, agg.c.entered_by_user_id == user_id,
                       or_(last_at.is_(None), agg.c.entered_at >= last_at)),
    )


_ROUND_BY_LABEL = (
    select(ROUND)
    .where((ROUND.c.label == bindparam("label")) | (func.cast(ROUND.c.year, String) == bindparam("label")))
    .order_by(ROUND.c.id.desc())
)
_SEATS = (
    select(ORGANISATION, MEMBERSHIP.c.role)
    .join(MEMBERSHIP, MEMBERSHIP.c.org_id == ORGANISATION.c.id)
    .where(MEMBERSHIP.c.user_id == bindparam("user_id"))
)


#: The one refusal per lookup, for the Core rows here and the ORM objects of ``uow``:
#: (message template, code) by what was looked up.
_MISSING = {
    "org": ("找不到单位 #{}", "org.not_found"),
    "org_code": ("找不到单位代码“{}”", "org.not_found"),
    "user": ("找不到用户 #{}", "user.not_found"),
    "username": ("找不到用户“{}”", "user.not_found"),
    "round": ("找不到年度 #{}", "round.not_found"),
    "round_label": ("找不到年度“{}”", "round.not_found"),
    "record": ("找不到记录 #{}", "record.not_found"),
}


def not_found(what: str, key: object) -> NotFound:
    """The :class:`NotFound` for a missing ``what`` (a key of :data:`_MISSING`) named ``key``."""
    message, code = _MISSING[what]
    return NotFound(message.format(key), code=code)


def duplicate_order(order_no: str, line_no: int, channel: str) -> RuleViolation:
    return RuleViolation(Refusal(
        "purchase.duplicate", f"订单 {order_no} 第 {line_no} 行（渠道 {channel}）已经录入过",
    ))


class CoreUnitOfWork:
    """A transaction plus the Core repository methods of the everyday commands.

    Usage::

        with CoreUnitOfWork(database) as uow:
            ...
            uow.commit()        # without this, everything rolls back

    Reads return rows whose attributes are the table's columns. Statements run on the ORM
    session once a subclass has built one (so its pending objects are flushed first), else on
    the unit's own connection.
    """

    def __init__(self, database: Database, *, readonly: bool = False) -> None:
        self.database = database
        self.readonly = readonly
        self._committed = False
        self._session: Any = None  # the ORM session of a subclass, once built
        self._conn: Connection | None = None
        self._tx: Any = None  # the transaction of a connection this unit opened itself
        self._fillers: dict[tuple[int, int], bool] = {}

    def __enter__(self) -> Self:
        self._committed = False
        return self

    def connection(self) -> Connection:
        """The transaction's connection, for Core statements that need no ORM objects. Without
        a session yet, a plain connection from the pool (no ORM session is built at all)."""
        if self._conn is None:
            if self._session is not None:
                self._conn = self._session.connection()
            else:
                engine = self.database.read_engine if self.readonly else self.database.engine
                self._conn = engine.connect()
                self._tx = self._conn.begin()
        return self._conn

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if not self._committed:
                if self._session is not None:
                    self._session.rollback()
                if self._tx is not None and self._tx.is_active:
                    self._tx.rollback()
        finally:
            if self._session is not None:
                self._session.close()
            if self._tx is not None and self._conn is not None:
                self._conn.close()
            self._session, self._conn, self._tx = None, None, None

    def commit(self) -> None:
        if self._session is not None:
            self._session.commit()
        if self._tx is not None:
            self._tx.commit()
        self._committed = True

    @property
    def dialect(self) -> str:
        return self.database.dialect

    def execute(self, statement: Any, params: Any = None) -> Any:
        """Run a Core statement in the unit's transaction (on the ORM session when there is one)."""
        return (self._session if self._session is not None else self.connection()).execute(statement, params)

    def _first(self, statement: Any, params: Any = None) -> Any:
        return self.execute(statement, params).first()

    # --- directory, policy and rounds (rows) ------------------------------------------------

    def org(self, org_id: int) -> Any:
        org = self._first(select(ORGANISATION).where(ORGANISATION.c.id == org_id))
        if org is None:
            raise not_found("org", org_id)
        return org

    def org_by_code(self, code: str) -> Any:
        org = self._first(select(ORGANISATION).where(ORGANISATION.c.code == code))
        if org is None:
            raise not_found("org_code", code)
        return org

    def user_by_name(self, username: str) -> Any:
        user = self._first(select(USER).where(USER.c.username == username))
        if user is None or not user.is_active:
            raise not_found("username", username)
        return user

    def user_with_memberships(self, user_id: int) -> tuple[Any, list[tuple[Any, str]]]:
        """The active user and their memberships (organisation, role)."""
        user = self._first(select(USER).where(USER.c.id == user_id))
        if user is None or not user.is_active:
            raise not_found("user", user_id)
        return user, [(row, row.role) for row in self.execute(_SEATS, {"user_id": user_id})]

    def policy(self, code: str) -> Policy:
        doc = self._first(select(POLICY.c.digest, POLICY.c.source_text).where(POLICY.c.code == code))
        if doc is None:
            raise NotFound(f"未加载策略“{code}”", code="policy.not_found")
        policy = _parse_cached(doc.digest, doc.source_text)
        _POLICIES[doc.digest] = policy
        return policy

    def round(self, round_id: int) -> Any:
        rnd = self._first(select(ROUND).where(ROUND.c.id == round_id))
        if rnd is None:
            raise not_found("round", round_id)
        return rnd

    def rounds(self) -> list[Any]:
        return list(self.execute(select(ROUND).order_by(ROUND.c.year, ROUND.c.id)))

    def round_by_label(self, label: str) -> Any:
        rnd = self._first(_ROUND_BY_LABEL, {"label": label})
        if rnd is None:
            raise not_found("round_label", label)
        return rnd

    # --- records (rows) ---------------------------------------------------------------------

    def record(self, record_id: int) -> Any:
        rec = self._first(select(RECORD).where(RECORD.c.id == record_id))
        if rec is None:
            raise not_found("record", record_id)
        return rec

    def record_for(self, org_id: int, round_id: int) -> Any:
        rec = self._first(select(RECORD).where(RECORD.c.org_id == org_id, RECORD.c.round_id == round_id))
        if rec is None:
            raise NotFound("该单位在本年度没有记录", code="record.not_found")
        return rec

    # --- the transition's hot path ----------------------------------------------------------

    def fire_context(self, record_id: int, user_id: int) -> FireContext:
        """Everything a transition checks, in one statement.

        Raises:
            NotFound: no such record (``record.not_found``); no such active user (``user.not_found``).
        """
        rows, _n = _FIRE_CONTEXT.run(self.connection(), {"record_id": record_id, "user_id": user_id})
        if not rows:
            raise not_found("record", record_id)
        (rid, org_id, round_id, parent_id, state, version, is_grassroots, is_reporting_unit, amount, members,
         experience, highlights, snapshot_id, stale, reporter, phone, fill_date, deadline, is_overdue, is_late,
         snap_people, snap_fen, org_code, org_name,
         org_parent_id, org_path, cap, policy_code, policy_digest, actor_filled, parent_state, uid, user_name,
         is_active, *_seat) = rows[0]
        if uid is None or not is_active:
            raise not_found("user", user_id)
        seats = tuple((OrgRef(x[-3], x[-2], x[-1]), x[-4]) for x in rows if x[-4] is not None)
        policy = _POLICIES.get(policy_digest) or self.policy(policy_code)
        return FireContext(
            record_id=rid, org_id=org_id, round_id=round_id, parent_id=parent_id, state=state,
            version=version, is_grassroots=bool(is_grassroots), is_reporting_unit=bool(is_reporting_unit),
            amount_per_member_fen=amount, members=members, work_experience=experience,
            work_highlights=highlights, snapshot_id=snapshot_id, snapshot_stale=bool(stale), reporter=reporter,
            phone=phone, fill_date=_date_of(fill_date), report_deadline=_instant_of(deadline),
            org_code=org_code, org_name=org_name, org_parent_id=org_parent_id, cap_fen_per_member=cap,
            parent_state=parent_state, user_id=uid, user_name=user_name,
            org=OrgRef(org_id, org_path, org_parent_id), seats=seats, is_overdue=bool(is_overdue),
            is_late=bool(is_late), snapshot_people=snap_people, snapshot_fen=snap_fen,
            four_eyes=policy.four_eyes, actor_filled=bool(actor_filled),
        )

    def add_event_notifications(self, *, org_id: int, role: str, actor_user_id: int, source: str,
                                record_id: int, payload: str, now: datetime, kind: str = "record_event") -> int:
        """Outbox rows for an event to the members of ``role`` in ``org_id``, in one statement;
        rows whose (user, channel, source) key exists are skipped. Returns the rows inserted."""
        d = self.dialect
        return len(_EVENT_NOTIFICATIONS_P.run(self.connection(), {
            "org_id": org_id, "role": role, "actor": actor_user_id, "source": source, "kind": kind,
            "record_id": record_id, "payload": payload, "now": driver_value(d, now),
            "active": driver_value(d, True),
        })[0])

    def add_history_values(self, values: dict[str, Any]) -> int:
        """Append a history row from plain values (every column but ``id``)."""
        d = self.dialect
        rows, _n = _INSERT_HISTORY_P.run(self.connection(), {k: driver_value(d, v) for k, v in values.items()})
        return int(rows[0][0])

    def write_record(self, record_id: int, seen_version: int, values: dict[str, Any]) -> bool:
        """``UPDATE record SET … , version = version + 1 WHERE id = :id AND version = :seen``.

        Returns:
            False when somebody else wrote first (the caller raises VersionConflict).
        """
        params = {"record_id": record_id, "seen_version": seen_version}
        d = self.dialect
        params.update({f"new_{k}": driver_value(d, v) for k, v in values.items()})
        _rows, count = _write_record_statement(tuple(sorted(values))).run(self.connection(), params)
        return count == 1

    def mark_snapshot_stale(self, record_id: int | None, *, only_state: str) -> None:
        if record_id is None:
            return
        _MARK_STALE_P.run(self.connection(), {"record_id": record_id, "only_state": only_state,
                                              "stale": driver_value(self.dialect, True)})

    def rollup_move(self, round_id: int, path: str, old: rollup.Entry | None, new: rollup.Entry | None) -> None:
        """A record's change of rollup key, applied to its organisation and ancestors (one upsert)."""
        rollup.move(self.connection(), round_id, path, old, new, driver_execute)

    # --- purchases --------------------------------------------------------------------------

    def insert_purchase(self, values: dict[str, Any]) -> int:
        """Insert one purchase line (a savepoint around it); its id. A live line with the same
        (channel, order, line) is refused as ``purchase.duplicate``."""
        savepoint = (self._session if self._session is not None else self.connection()).begin_nested()
        try:
            with savepoint:
                return int(self.execute(insert(PURCHASE).values(values).returning(PURCHASE.c.id)).scalar_one())
        except IntegrityError:
            raise duplicate_order(values["order_no"], values["line_no"], values["channel"]) from None

    def find_purchase(self, record_id: int, channel: str, order_no: str, line_no: int) -> Any:
        """The live line (a row) of an order, or None."""
        p = PURCHASE
        return self._first(select(p).where(p.c.record_id == record_id, p.c.channel == channel,
                                           p.c.order_no == order_no, p.c.line_no == line_no,
                                           p.c.voided_at.is_(None)))

    def purchases(self, record_id: int) -> list[Any]:
        """The record's ledger (rows), voided lines included, by payment time."""
        p = PURCHASE
        return list(self.execute(select(p).where(p.c.record_id == record_id).order_by(p.c.paid_at, p.c.id)))

    def display_names(self, user_ids: Iterable[int]) -> dict[int, str]:
        ids = list(user_ids)
        if not ids:
            return {}
        return {i: n for i, n in self.execute(select(USER.c.id, USER.c.display_name).where(USER.c.id.in_(ids)))}

    def order_and_refunds(self, record_id: int, channel: str, order_no: str) -> tuple[int, int, int, int]:
        """(order amount, order people, refunds' amount, refunds' people) of one order: its
        positive lines, and the refund lines linked to its line 1. The order's line 1 is locked
        (PostgreSQL) so two refunds of one order are checked one after the other."""
        p = PURCHASE
        first = self.execute(
            select(p.c.id).where(p.c.record_id == record_id, p.c.channel == channel,
                                 p.c.order_no == order_no, p.c.line_no == 1)
            .with_for_update()
        ).scalar_one_or_none()
        totals = (func.coalesce(func.sum(p.c.amount_fen), 0), func.coalesce(func.sum(p.c.people), 0))
        amount, people = self.execute(
            select(*totals).where(p.c.record_id == record_id, p.c.channel == channel,
                                  p.c.order_no == order_no, p.c.amount_fen > 0)
        ).one()
        r_amount, r_people = (0, 0) if first is None else self.execute(
            select(*totals).where(p.c.refund_of_id == first)
        ).one()
        return int(amount), int(people), int(r_amount), int(r_people)

    def spent_by_budget(self, record_id: int) -> dict[str, int]:
        p = PURCHASE
        rows = self.execute(
            select(p.c.budget, func.coalesce(func.sum(p.c.amount_fen), 0))
            .where(p.c.record_id == record_id, p.c.voided_at.is_(None))
            .group_by(p.c.budget)
        ).all()
        return {b: int(s) for b, s in rows}

    # --- four eyes --------------------------------------------------------------------------

    def is_filler(self, record_id: int, user_id: int) -> bool:
        """Whether ``user_id``, since the record's last return (or revocation), submitted it,
        fired a trigger on its behalf, or entered its purchases or aggregate lines. Answered by
        :meth:`fire_context` for a transition, else by one query."""
        cached = self._fillers.get((record_id, user_id))
        if cached is not None:
            return cached
        return bool(self.execute(select(_filler_exists(literal(record_id), user_id))).scalar_one())

    # --- snapshots --------------------------------------------------------------------------

    def take_snapshot(self, rec: Any, *, now: datetime, as_of: date) -> Any:
        """Freezing a record's Annex 2 numbers (``summarize``) reads and writes through the ORM:
        :class:`workflow.store.uow.UnitOfWork` does it; this unit refuses."""
        raise TypeError("take_snapshot needs the ORM unit of work (workflow.store.uow.UnitOfWork)")
