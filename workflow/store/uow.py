"""The unit of work and its repository methods: the SQL the use cases need, in one place.

:class:`UnitOfWork` opens a write transaction (``BEGIN IMMEDIATE`` on SQLite) and rolls back
unless :meth:`UnitOfWork.commit` is called, so state, history and outbox rows land together or not
at all. The services in :mod:`workflow.app.records` call these methods and never write SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from types import TracebackType
from typing import Any, NamedTuple

from sqlalchemy import (
    and_,
    bindparam,
    case,
    delete,
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
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as lite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import SQLAlchemyError as DatabaseError  # noqa: F401 - what callers catch for a failed statement
from sqlalchemy.orm import aliased
from sqlmodel import Session

from workflow.domain.errors import NotFound, Refusal, RuleViolation
from workflow.domain.policy import Policy, parse_policy
from workflow.store import aggregates, bulk, rollup, tables
from workflow.store.bulk import driver_value
from workflow.store.tables import (
    Attachment,
    History,
    MemberCount,
    Membership,
    Notification,
    Organisation,
    PolicyDoc,
    Purchase,
    Record,
    Round,
    Snapshot,
    SnapshotLine,
    User,
)

_RETURNS = ("return_for_revision", "revoke_acceptance")


def _filler_exists(record_id: Any, user_id: int) -> Any:
    """SQL: did ``user_id`` submit the record, fire a trigger on its behalf, or enter its
    purchases or aggregate lines since its last return? History rows count by id (after the
    return's row), entries by time (one at the very instant of the return counts)."""
    last = aliased(History, name="last_return")
    last_id = (select(func.max(last.id)).where(last.record_id == record_id, last.trigger.in_(_RETURNS))
               .scalar_subquery())
    ret = aliased(History, name="return_row")
    last_at = select(ret.at).where(ret.id == last_id).scalar_subquery()
    agg = tables.AggregateLine
    return or_(
        exists().where(History.record_id == record_id, History.id > func.coalesce(last_id, 0),
                       History.actor_user_id == user_id,
                       or_(History.trigger == "submit", History.on_behalf.is_(True))),
        exists().where(Purchase.record_id == record_id, Purchase.entered_by_user_id == user_id,
                       or_(last_at.is_(None), Purchase.entered_at >= last_at)),
        exists().where(agg.record_id == record_id, agg.entered_by_user_id == user_id,
                       or_(last_at.is_(None), agg.entered_at >= last_at)),
    )


#: Parsed policies by digest, so a transition reads only the digest (in its context statement).
_POLICIES: dict[str, Policy] = {}


@lru_cache(maxsize=32)
def _parse_cached(digest: str, text: str) -> Policy:
    return parse_policy(text, source=f"policy:{digest}")


_MEMBERSHIPS = (
    select(Organisation, Membership.role)
    .join(Membership, Membership.org_id == Organisation.id)
    .where(Membership.user_id == bindparam("user_id"))
)
_USER_WITH_MEMBERSHIPS = (
    select(User, Organisation, Membership.role)
    .outerjoin(Membership, Membership.user_id == User.id)
    .outerjoin(Organisation, Organisation.id == Membership.org_id)
    .where(User.id == bindparam("user_id"))
)
_USERS_WITH_ROLE = (
    select(User)
    .join(Membership, Membership.user_id == User.id)
    .where(Membership.org_id == bindparam("org_id"), Membership.role == bindparam("role"),
           User.is_active.is_(True))  # type: ignore[attr-defined]
    .order_by(User.id)
)
_INSERT_HISTORY = (
    insert(History.__table__)
    .values({c.name: bindparam(c.name) for c in History.__table__.columns if c.name != "id"})
    .returning(History.__table__.c.id)
)


# --- the transition's hot path: Core statements built once, compiled once per dialect --------

_R, _O, _RD = Record.__table__, Organisation.__table__, Round.__table__
_P = _R.alias("parent_record")
_U, _M = User.__table__, Membership.__table__
_MO = _O.alias("seat_org")
_S = Snapshot.__table__
_PD = PolicyDoc.__table__


def _lit(value: str) -> Any:
    """A SQL string literal (no bind: prepared statements take only the named parameters)."""
    return literal_column(f"'{value}'")


# Four eyes: whether the acting user submitted the record, acted on its behalf, or entered its
# purchases or aggregate lines since its last return or revocation (asked of submitted records;
# the same rows as UnitOfWork.record_fillers, for one user, inside the context statement).
_H, _PU, _AG = History.__table__, Purchase.__table__, tables.AggregateLine.__table__
_HR, _HRA, _HF = _H.alias("h_return"), _H.alias("h_return_at"), _H.alias("h_fill")
_LAST_RETURN = (
    select(func.max(_HR.c.id))
    .where(_HR.c.record_id == _R.c.id,
           or_(_HR.c.trigger == _lit("return_for_revision"), _HR.c.trigger == _lit("revoke_acceptance")))
    .correlate(_R)  # nested two levels down: name the outer record explicitly
    .scalar_subquery()
)
_LAST_RETURN_AT = select(_HRA.c.at).where(_HRA.c.id == _LAST_RETURN).correlate(_R).scalar_subquery()


def _entered_since(table: Any) -> Any:
    return exists(select(literal_column("1")).select_from(table).where(
        table.c.record_id == _R.c.id, table.c.entered_by_user_id == bindparam("user_id"),
        or_(_LAST_RETURN_AT.is_(None), table.c.entered_at >= _LAST_RETURN_AT)).correlate(_R))


_ACTOR_FILLED = case((and_(_R.c.state == _lit("submitted"), or_(
    exists(select(literal_column("1")).select_from(_HF).where(
        _HF.c.record_id == _R.c.id, _HF.c.actor_user_id == bindparam("user_id"),
        _HF.c.id > func.coalesce(_LAST_RETURN, literal_column("0")),
        or_(_HF.c.trigger == _lit("submit"), _HF.c.on_behalf.is_(True))).correlate(_R)),
    _entered_since(_PU), _entered_since(_AG),
)), literal_column("1")), else_=literal_column("0"))
#: Record, organisation, round cap, parent record's state, the user and every seat (membership
#: with its organisation's id, path and parent) of the user: one statement, one row per seat
#: (one row without seats) when the record exists. Access is decided from these by
#: :func:`workflow.domain.access.relation`.
FIRE_CONTEXT = (
    select(
        _R.c.id, _R.c.org_id, _R.c.round_id, _R.c.parent_id, _R.c.state, _R.c.version,
        _R.c.is_grassroots, _R.c.is_reporting_unit, _R.c.amount_per_member_fen, _R.c.members,
        _R.c.work_experience, _R.c.work_highlights, _R.c.snapshot_id, _R.c.snapshot_stale,
        _R.c.reporter, _R.c.phone, _R.c.fill_date, _R.c.report_deadline, _R.c.is_overdue, _R.c.is_late,
        _S.c.people_total, _S.c.amount_total_fen,
        _O.c.code.label("org_code"), _O.c.name.label("org_name"), _O.c.parent_id.label("org_parent_id"),
        _O.c.path.label("org_path"),
        _RD.c.cap_fen_per_member, _RD.c.policy_code, _PD.c.digest.label("policy_digest"),
        _ACTOR_FILLED.label("actor_filled"), _P.c.state.label("parent_state"),
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
).bindparams(bindparam("now", type_=tables.UTCDateTime))


#: Rows a bulk load writes before it refreshes the planner's statistics (ANALYZE).
ANALYZE_MIN_ROWS = 1_000
#: SQLite's ANALYZE reads at most about this many index entries per index.
SQLITE_ANALYSIS_LIMIT = 2_000


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

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None]] = {}

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


def driver_execute(conn: Connection, sql: str, args: Any) -> tuple[list[Any], int]:
    """Execute driver SQL on the connection's driver cursor, inside its transaction: engine
    cursor listeners called, driver errors raised as ``DBAPIError`` (see :class:`Prepared`)."""
    dialect = conn.dialect
    raw = conn.connection.driver_connection
    assert raw is not None
    cur = raw.cursor()
    try:
        events = conn.dispatch
        if events.before_cursor_execute:
            events.before_cursor_execute(conn, cur, sql, args, None, False)
        try:
            cur.execute(sql, args)
            rows = cur.fetchall() if cur.description is not None else []
        except dialect.loaded_dbapi.Error as e:
            if dialect.is_disconnect(e, conn.connection.dbapi_connection, cur):
                conn.invalidate(e)
            raise DBAPIError.instance(sql, args, e, dialect.loaded_dbapi.Error) from e
        if events.after_cursor_execute:
            events.after_cursor_execute(conn, cur, sql, args, None, False)
        return rows, cur.rowcount
    finally:
        cur.close()


def _instant_of(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite's text
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _date_of(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


_FIRE_CONTEXT = Prepared(FIRE_CONTEXT)
_MARK_STALE_P = Prepared(_MARK_STALE)
_EVENT_NOTIFICATIONS_P = Prepared(_EVENT_NOTIFICATIONS)
_INSERT_HISTORY_P = Prepared(_INSERT_HISTORY)


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
    table = Record.__table__
    return Prepared(
        update(table)
        .where(table.c.id == bindparam("record_id"), table.c.version == bindparam("seen_version"))
        .values(version=table.c.version + literal_column("1"),
                **{c: bindparam(f"new_{c}", type_=table.c[c].type) for c in columns})
    )


class UnitOfWork:
    """A transaction plus the repository methods the use cases call.

    Usage::

        with UnitOfWork(database) as uow:
            ...
            uow.commit()        # without this, everything rolls back
    """

    def __init__(self, database: tables.Database, *, readonly: bool = False) -> None:
        self.database = database
        self.readonly = readonly
        self._committed = False
        self._session: Session | None = None
        self._conn: Connection | None = None
        self._tx: Any = None  # the transaction of a connection this unit opened itself
        self._fillers: dict[tuple[int, int], bool] = {}

    def __enter__(self) -> UnitOfWork:
        self._committed = False
        return self

    @property
    def session(self) -> Session:
        """The ORM session, begun on first use; on the unit's own connection when Core
        statements (:meth:`connection`) came first, so both see one transaction."""
        if self._session is None:
            if self._conn is None:
                self._session = self.database.session(readonly=self.readonly)
                self._session.begin()
            else:
                # Joins the unit's transaction: the session flushes into it and never commits it.
                self._session = Session(bind=self._conn, expire_on_commit=False,
                                        join_transaction_mode="rollback_only")
        return self._session

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

    # --- directory ---------------------------------------------------------------------------

    def org(self, org_id: int) -> Organisation:
        org = self.session.get(Organisation, org_id)
        if org is None:
            raise NotFound(f"找不到单位 #{org_id}", code="org.not_found")
        return org

    def org_by_code(self, code: str) -> Organisation:
        org = self.session.exec(select(Organisation).where(Organisation.code == code)).scalar_one_or_none()  # type: ignore[call-overload]
        if org is None:
            raise NotFound(f"找不到单位代码“{code}”", code="org.not_found")
        return org

    def user(self, user_id: int) -> User:
        user = self.session.get(User, user_id)
        if user is None or not user.is_active:
            raise NotFound(f"找不到用户 #{user_id}", code="user.not_found")
        return user

    def user_by_name(self, username: str) -> User:
        user = self.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
        if user is None or not user.is_active:
            raise NotFound(f"找不到用户“{username}”", code="user.not_found")
        return user

    def user_with_memberships(self, user_id: int) -> tuple[User, list[tuple[Organisation, str]]]:
        """The active user and their memberships, in one query."""
        rows = self.session.execute(_USER_WITH_MEMBERSHIPS, {"user_id": user_id}).all()
        if not rows or not rows[0][0].is_active:
            raise NotFound(f"找不到用户 #{user_id}", code="user.not_found")
        return rows[0][0], [(o, r) for _u, o, r in rows if o is not None]

    def memberships(self, user_id: int) -> list[tuple[Organisation, str]]:
        rows = self.session.execute(_MEMBERSHIPS, {"user_id": user_id}).all()
        return [(o, r) for o, r in rows]

    def users_with_role(self, org_id: int, role: str) -> list[User]:
        return list(self.session.execute(_USERS_WITH_ROLE, {"org_id": org_id, "role": role}).scalars())

    # --- policy and rounds -------------------------------------------------------------------

    def save_policy(self, policy: Policy, *, now: datetime) -> None:
        doc = self.session.get(PolicyDoc, policy.code)
        if doc is None:
            doc = PolicyDoc(code=policy.code, document=policy.document, title=policy.title,
                            digest=policy.digest, source_text=policy.source_text, loaded_at=now)
        else:
            doc.document, doc.title = policy.document, policy.title
            doc.digest, doc.source_text, doc.loaded_at = policy.digest, policy.source_text, now
        self.session.add(doc)
        self.session.flush()

    def policy(self, code: str) -> Policy:
        doc = self.session.get(PolicyDoc, code)
        if doc is None:
            raise NotFound(f"未加载策略“{code}”", code="policy.not_found")
        policy = _parse_cached(doc.digest, doc.source_text)
        _POLICIES[doc.digest] = policy
        return policy

    def round(self, round_id: int) -> Round:
        rnd = self.session.get(Round, round_id)
        if rnd is None:
            raise NotFound(f"找不到年度 #{round_id}", code="round.not_found")
        return rnd

    def rounds(self) -> list[Round]:
        return list(self.session.execute(select(Round).order_by(Round.year, Round.id)).scalars())

    def round_by_label(self, label: str) -> Round:
        rows = list(self.session.execute(
            select(Round).where((Round.label == label) | (func.cast(Round.year, tables.String) == label))
            .order_by(Round.id.desc())  # type: ignore[union-attr]
        ).scalars())
        if not rows:
            raise NotFound(f"找不到年度“{label}”", code="round.not_found")
        return rows[0]

    def upsert_round(self, values: dict[str, Any]) -> Round:
        existing = self.session.execute(
            select(Round).where(Round.policy_code == values["policy_code"], Round.year == values["year"])
        ).scalar_one_or_none()
        rnd = existing or Round(**values)
        for k, v in values.items():
            setattr(rnd, k, v)
        self.session.add(rnd)
        self.session.flush()
        return rnd

    def open_records(self, rnd: Round, policy: Policy, *, now: datetime, link: bool = True) -> int:
        """Create the round's missing records, set-based: one per organisation in scope, none
        for the receiver or observers, each linked to its parent's record of the round in the
        same ``INSERT … SELECT`` (the new records' ids are worked out first, in a materialised
        CTE: the sequence on PostgreSQL, after the statement's own ``max(id)`` on SQLite, so a
        new record's parent is found among the new ones or the round's existing records). Then
        records still without a parent whose parent organisation has a record are linked
        (:meth:`link_record_parents`; ``link=False`` leaves that to the caller, e.g. after the
        indexes of a bulk load are rebuilt). Idempotent."""
        org = Organisation.__table__
        rec = Record.__table__
        conds = [org.c.is_observer.is_(False), org.c.kind != policy.receiver_kind]
        if rnd.scope_org_id is not None:
            scope = self.org(rnd.scope_org_id)
            conds.append(org.c.path.like(scope.path + "%"))
            conds.append(org.c.id != scope.id)
        exists = select(rec.c.id).where(rec.c.org_id == org.c.id, rec.c.round_id == rnd.id).exists()
        if self.dialect == "postgresql":
            # The CTE's row estimates are guesses: no JIT compilation for this transaction's bulk SQL.
            self.session.execute(text("SET LOCAL jit = off"))
            new_id: Any = literal_column(self._nextval("record"))
        else:
            # max(id) read by the inserting statement itself: no writer can come between.
            top = select(func.coalesce(func.max(rec.c.id), 0)).scalar_subquery()
            new_id = top + func.row_number().over(order_by=org.c.id)
        new = (select(new_id.label("rid"), org.c.id.label("org_id"), org.c.parent_id.label("parent_org"),
                      org.c.kind.label("kind"))
               .where(and_(*conds), ~exists).cte("new_record").prefix_with("MATERIALIZED"))
        up = new.alias("new_parent")
        old = rec.alias("old_parent")
        ru = list(policy.reporting_unit_kinds)
        gr = list(policy.grassroots_kinds)
        sel = select(
            new.c.rid,
            new.c.org_id,
            literal(rnd.id),
            func.coalesce(up.c.rid, old.c.id),
            literal("planned"),
            literal(1),
            new.c.kind.in_(gr),
            new.c.kind.in_(ru),
            literal(0),
            case((new.c.kind.in_(ru), literal(rnd.report_deadline_reporting_unit, tables.UTCDateTime)),
                 else_=literal(rnd.report_deadline_default, tables.UTCDateTime)),
            literal(False),
            literal(False),
            literal(False),
            literal(now, tables.UTCDateTime),
        ).select_from(
            new.outerjoin(up, up.c.org_id == new.c.parent_org)
            .outerjoin(old, and_(old.c.org_id == new.c.parent_org, old.c.round_id == rnd.id))
        )
        result = self.session.execute(
            insert(rec).from_select(
                ["id", "org_id", "round_id", "parent_id", "state", "version", "is_grassroots",
                 "is_reporting_unit", "quota_fen", "report_deadline", "snapshot_stale", "is_overdue", "is_late",
                 "updated_at"],
                sel,
            ).execution_options(preserve_rowcount=True)  # psycopg reports -1 for INSERT otherwise
        )
        created = result.rowcount or 0
        if self.dialect == "sqlite":  # its driver counts no rows for a statement opening with WITH
            created = int(self.session.execute(text("SELECT changes()")).scalar() or 0)
        if link:
            self.link_record_parents(rnd.id or 0)
        return created

    def link_record_parents(self, round_id: int) -> None:
        """Link the round's records without a parent record to their parent organisation's record
        where it has one (a repair after moves; :meth:`open_records` links the records it opens).
        Uses the ``parent_id`` index: call it with the record table's indexes in place."""
        self.session.execute(
            text(
                "UPDATE record SET parent_id = ("
                " SELECT p.id FROM record p JOIN organisation o ON o.parent_id = p.org_id"
                " WHERE o.id = record.org_id AND p.round_id = record.round_id)"
                " WHERE round_id = :round_id AND parent_id IS NULL AND EXISTS ("
                " SELECT 1 FROM record p JOIN organisation o ON o.parent_id = p.org_id"
                " WHERE o.id = record.org_id AND p.round_id = record.round_id)"
            ),
            {"round_id": round_id},
        )

    def member_count(self, org_id: int, round_id: int) -> int | None:
        row = self.session.get(MemberCount, (org_id, round_id))
        return None if row is None else row.members

    def upsert_member_counts(self, round_id: int, counts: dict[int, int]) -> None:
        """Set members per organisation for a round, set-based (delete + insert)."""
        table = MemberCount.__table__
        ids = list(counts)
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            self.session.execute(table.delete().where(table.c.round_id == round_id, table.c.org_id.in_(chunk)))
            self.session.execute(
                insert(table), [{"org_id": o, "round_id": round_id, "members": counts[o]} for o in chunk]
            )

    # --- records -----------------------------------------------------------------------------

    def fire_context(self, record_id: int, user_id: int) -> FireContext:
        """Everything a transition checks, in one statement.

        Raises:
            NotFound: no such record (``record.not_found``); no such active user (``user.not_found``).
        """
        rows, _n = _FIRE_CONTEXT.run(self.connection(), {"record_id": record_id, "user_id": user_id})
        if not rows:
            raise NotFound(f"找不到记录 #{record_id}", code="record.not_found")
        (rid, org_id, round_id, parent_id, state, version, is_grassroots, is_reporting_unit, amount, members,
         experience, highlights, snapshot_id, stale, reporter, phone, fill_date, deadline, is_overdue, is_late,
         snap_people, snap_fen, org_code, org_name,
         org_parent_id, org_path, cap, policy_code, policy_digest, actor_filled, parent_state, uid, user_name,
         is_active, *_seat) = rows[0]
        if uid is None or not is_active:
            raise NotFound(f"找不到用户 #{user_id}", code="user.not_found")
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

    def record(self, record_id: int) -> Record:
        rec = self.session.get(Record, record_id)
        if rec is None:
            raise NotFound(f"找不到记录 #{record_id}", code="record.not_found")
        return rec

    def record_for(self, org_id: int, round_id: int) -> Record:
        rec = self.session.execute(
            select(Record).where(Record.org_id == org_id, Record.round_id == round_id)
        ).scalar_one_or_none()
        if rec is None:
            raise NotFound("该单位在本年度没有记录", code="record.not_found")
        return rec

    def refresh(self, obj: Any) -> None:
        self.session.refresh(obj)

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

    def history(self, record_id: int) -> list[History]:
        return list(
            self.session.execute(
                select(History).where(History.record_id == record_id).order_by(History.id)
            ).scalars()
        )

    def add_history(self, row: History) -> int:
        """Append a history row (a Core ``INSERT … RETURNING id``: no unit-of-work flush)."""
        table = History.__table__
        values = {c.name: getattr(row, c.name) for c in table.columns if c.name != "id"}
        row.id = int(self.session.execute(_INSERT_HISTORY, values).scalar_one())
        return row.id

    def add_notifications(self, rows: Iterable[dict[str, Any]]) -> int:
        """Insert outbox rows, skipping any whose (user, channel, source) key exists."""
        rows = list(rows)
        if not rows:
            return 0
        table = Notification.__table__
        if self.dialect == "postgresql":
            stmt = pg_insert(table).on_conflict_do_nothing(constraint="uq_notification_key")
        else:
            stmt = lite_insert(table).on_conflict_do_nothing()
        # executemany of one cached statement; RETURNING counts the rows really inserted (the
        # driver's rowcount is -1 for executemany on psycopg).
        return len(self.session.execute(stmt.returning(table.c.id), rows).all())

    # --- purchases ---------------------------------------------------------------------------

    def add_purchase(self, row: Purchase) -> Purchase:
        try:
            with self.session.begin_nested():
                self.session.add(row)
                self.session.flush()
        except IntegrityError:
            raise _duplicate_order(row) from None
        return row

    def find_purchase(self, record_id: int, channel: str, order_no: str, line_no: int) -> Purchase | None:
        return self.session.execute(
            select(Purchase).where(
                Purchase.record_id == record_id, Purchase.channel == channel,
                Purchase.order_no == order_no, Purchase.line_no == line_no,
                Purchase.voided_at.is_(None),  # type: ignore[union-attr]
            )
        ).scalar_one_or_none()

    def purchase(self, purchase_id: int) -> Purchase | None:
        return self.session.get(Purchase, purchase_id)

    def live_refunds_of(self, purchase_id: int) -> list[int]:
        return list(self.session.execute(
            select(Purchase.id).where(Purchase.refund_of_id == purchase_id,
                                      Purchase.voided_at.is_(None))  # type: ignore[union-attr]
        ).scalars())

    def void_purchase(self, purchase_id: int, *, user_id: int, reason: str, on_behalf: bool, now: datetime) -> bool:
        """Mark a live line voided; False if it was voided meanwhile."""
        result = self.session.execute(
            update(Purchase)
            .where(Purchase.id == purchase_id, Purchase.voided_at.is_(None))  # type: ignore[arg-type, union-attr]
            .values(voided_at=now, voided_by_user_id=user_id, void_reason=reason, void_on_behalf=on_behalf)
            .execution_options(synchronize_session=False)
        )
        return (result.rowcount or 0) == 1

    def display_names(self, user_ids: Iterable[int]) -> dict[int, str]:
        ids = list(user_ids)
        if not ids:
            return {}
        return dict(self.session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all())  # type: ignore[union-attr]

    def purchases(self, record_id: int) -> list[Purchase]:
        return list(
            self.session.execute(
                select(Purchase).where(Purchase.record_id == record_id).order_by(Purchase.paid_at, Purchase.id)
            ).scalars()
        )

    def order_and_refunds(self, record_id: int, channel: str, order_no: str) -> tuple[int, int, int, int]:
        """(order amount, order people, refunds' amount, refunds' people) of one order: its
        positive lines, and the refund lines linked to its line 1. The order's line 1 is locked
        (PostgreSQL) so two refunds of one order are checked one after the other."""
        first = self.session.execute(
            select(Purchase.id).where(Purchase.record_id == record_id, Purchase.channel == channel,
                                      Purchase.order_no == order_no, Purchase.line_no == 1)
            .with_for_update()
        ).scalar_one_or_none()
        amount, people = self.session.execute(
            select(func.coalesce(func.sum(Purchase.amount_fen), 0), func.coalesce(func.sum(Purchase.people), 0))
            .where(Purchase.record_id == record_id, Purchase.channel == channel,
                   Purchase.order_no == order_no, Purchase.amount_fen > 0)
        ).one()
        r_amount, r_people = (0, 0) if first is None else self.session.execute(
            select(func.coalesce(func.sum(Purchase.amount_fen), 0), func.coalesce(func.sum(Purchase.people), 0))
            .where(Purchase.refund_of_id == first)
        ).one()
        return int(amount), int(people), int(r_amount), int(r_people)

    def orders_with_refunds(self, record_id: int) -> dict[tuple[str, str], list[int]]:
        """Per (channel, order number) of the record's ledger: [order amount, order people,
        refunds' amount, refunds' people] (two grouped queries; refunds by their linked order)."""
        out: dict[tuple[str, str], list[int]] = {}
        for channel, order_no, amount, people in self.session.execute(
            select(Purchase.channel, Purchase.order_no, func.sum(Purchase.amount_fen), func.sum(Purchase.people))
            .where(Purchase.record_id == record_id, Purchase.amount_fen > 0, Purchase.voided_at.is_(None))
            .group_by(Purchase.channel, Purchase.order_no)
        ):
            out[(channel, order_no)] = [int(amount or 0), int(people or 0), 0, 0]
        orig = aliased(Purchase)
        for channel, order_no, amount, people in self.session.execute(
            select(orig.channel, orig.order_no, func.sum(Purchase.amount_fen), func.sum(Purchase.people))
            .join(orig, orig.id == Purchase.refund_of_id)
            .where(Purchase.record_id == record_id, Purchase.voided_at.is_(None))
            .group_by(orig.channel, orig.order_no)
        ):
            row = out.setdefault((channel, order_no), [0, 0, 0, 0])
            row[2], row[3] = int(amount or 0), int(people or 0)
        return out

    def spent_by_budget(self, record_id: int) -> dict[str, int]:
        rows = self.session.execute(
            select(Purchase.budget, func.coalesce(func.sum(Purchase.amount_fen), 0))
            .where(Purchase.record_id == record_id, Purchase.voided_at.is_(None))  # type: ignore[union-attr]
            .group_by(Purchase.budget)
        ).all()
        return {b: int(s) for b, s in rows}

    # --- snapshots ---------------------------------------------------------------------------

    def take_snapshot(self, rec: Record, *, now: datetime, as_of: date) -> Snapshot:
        """Freeze the record's Annex 2 numbers per channel: its own purchases plus its
        children's accepted snapshots, as two GROUP BY queries."""
        lines, missing = aggregates.snapshot_lines(self.session, rec.id or 0)
        snap = Snapshot(
            record_id=rec.id or 0,
            taken_at=now,
            as_of=as_of,
            people_total=sum(p for p, _ in lines.values()),
            amount_total_fen=sum(a for _, a in lines.values()),
            missing_children=tables.dumps(missing),
        )
        self.session.add(snap)
        self.session.flush()
        if lines:
            self.session.execute(
                insert(SnapshotLine.__table__),
                [{"snapshot_id": snap.id, "channel": c, "people": p, "amount_fen": a}
                 for c, (p, a) in sorted(lines.items())],
            )
        return snap

    def snapshot(self, snapshot_id: int) -> tuple[Snapshot, list[SnapshotLine]]:
        snap = self.session.get(Snapshot, snapshot_id)
        if snap is None:
            raise NotFound(f"找不到汇总快照 #{snapshot_id}", code="snapshot.not_found")
        lines = list(self.session.execute(
            select(SnapshotLine).where(SnapshotLine.snapshot_id == snapshot_id).order_by(SnapshotLine.channel)
        ).scalars())
        return snap, lines

    def snapshot_lines_map(self, snapshot_id: int | None) -> dict[str, tuple[int, int]]:
        """A snapshot's lines as ``{channel: (people, amount_fen)}`` (empty for None)."""
        if snapshot_id is None:
            return {}
        rows = self.session.execute(
            select(SnapshotLine.channel, SnapshotLine.people, SnapshotLine.amount_fen)
            .where(SnapshotLine.snapshot_id == snapshot_id)
        ).all()
        return {c: (int(p), int(a)) for c, p, a in rows}

    def snapshot_before(self, record_id: int, at: datetime) -> int | None:
        """The id of the record's latest snapshot taken at or before ``at``."""
        return self.session.execute(
            select(func.max(Snapshot.id)).where(Snapshot.record_id == record_id, Snapshot.taken_at <= at)
        ).scalar_one_or_none()

    def purchases_changed_since(self, record_id: int, at: datetime) -> tuple[list[Purchase], list[Purchase]]:
        """The record's lines entered after ``at``, and its lines voided after ``at``."""
        rows = list(self.session.execute(
            select(Purchase).where(Purchase.record_id == record_id,
                                   (Purchase.entered_at > at) | (Purchase.voided_at > at))  # type: ignore[operator]
            .order_by(Purchase.id)
        ).scalars())
        added = [p for p in rows if p.entered_at is not None and p.entered_at > at]
        voided = [p for p in rows if p.voided_at is not None and p.voided_at > at]
        return added, voided

    def aggregate_lines_since(self, record_id: int, at: datetime) -> list[tables.AggregateLine]:
        return list(self.session.execute(
            select(tables.AggregateLine).where(tables.AggregateLine.record_id == record_id,
                                               tables.AggregateLine.entered_at > at)  # type: ignore[operator]
            .order_by(tables.AggregateLine.id)
        ).scalars())

    def add_all(self, objs: Sequence[Any]) -> None:
        self.session.add_all(objs)
        self.session.flush()

    # --- bulk loads --------------------------------------------------------------------------

    def org_rows(self) -> list[Any]:
        """Every organisation as a plain row (id, code, name, kind, parent_id, path, depth, phone,
        is_observer): a province is 215,000 of them, no ORM objects."""
        o = Organisation.__table__
        return list(self.session.execute(
            select(o.c.id, o.c.code, o.c.name, o.c.kind, o.c.parent_id, o.c.path, o.c.depth, o.c.phone,
                   o.c.is_observer)).all())

    def reserve_ids(self, table: str, n: int) -> list[int]:
        """``n`` fresh primary keys for explicit-id bulk inserts: from the table's sequence on
        PostgreSQL (safe beside concurrent inserts), after ``max(id)`` on SQLite (the write
        transaction holds the database's write lock)."""
        if n <= 0:
            return []
        if self.dialect == "postgresql":
            seq = self._nextval(table)
            # One row back when the values drawn are one run (nobody drew between them): the run.
            low, high = self.session.execute(text(
                f"SELECT min(v), max(v) FROM (SELECT {seq} AS v FROM generate_series(1, :n)) s"), {"n": n}).one()
            if int(high) - int(low) + 1 == n:
                return list(range(int(low), int(high) + 1))
            return [int(i) for (i,) in self.session.execute(
                text(f"SELECT {seq} FROM generate_series(1, :n)"), {"n": n})]
        top = int(self.session.execute(text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar() or 0)
        return list(range(top + 1, top + 1 + n))

    def _nextval(self, table: str) -> str:
        """PostgreSQL: ``nextval('<the table's id sequence>'::regclass)``, the sequence looked up
        once (``pg_get_serial_sequence`` in the call itself is a catalogue lookup per row: 6× slower)."""
        seq = str(self.session.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table}).scalar())
        return "nextval('" + seq.replace("'", "''") + "'::regclass)"

    def bulk_insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
                    ready: bool = False) -> int:
        """Insert many rows inside the unit's transaction: ``COPY`` on PostgreSQL, the driver's
        ``executemany`` in batches on SQLite. Values are plain Python (instants aware)."""
        return bulk.bulk_insert(self.connection(), table, columns, rows, ready=ready)

    def deferred_indexes(self, *tables: str) -> AbstractContextManager[list[str]]:
        """Bulk-load the given tables that are empty without their secondary indexes (and, on
        PostgreSQL, constraints), rebuilt once at the end: :func:`workflow.store.bulk.deferred_indexes`."""
        return bulk.deferred_indexes(self.connection(), *tables)

    def bulk_update(self, table: str, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> int:
        """``UPDATE table SET columns… WHERE id = :id`` for many rows in one executemany."""
        if not rows:
            return 0
        t = tables.SQLModel.metadata.tables[table]
        stmt = (update(t).where(t.c.id == bindparam("b_id"))
                .values({c: bindparam(f"b_{c}") for c in columns}))
        self.session.execute(stmt, [{f"b_{k}": v for k, v in r.items()} for r in rows])
        return len(rows)

    def reparent_records(self, org_ids: Sequence[int]) -> None:
        """Moved organisations' records report to their new parent's records (every round)."""
        org, rec = Organisation.__table__, Record.__table__
        parent_rec = rec.alias("parent_rec")
        new_parent = (
            select(parent_rec.c.id)
            .join(org, org.c.parent_id == parent_rec.c.org_id)
            .where(org.c.id == rec.c.org_id, parent_rec.c.round_id == rec.c.round_id)
            .scalar_subquery()
        )
        ids = list(org_ids)
        for start in range(0, len(ids), 5000):
            self.session.execute(update(rec).where(rec.c.org_id.in_(ids[start:start + 5000])).values(parent_id=new_parent))

    def rollup_move(self, round_id: int, path: str, old: rollup.Entry | None, new: rollup.Entry | None) -> None:
        """A record's change of rollup key, applied to its organisation and ancestors (one upsert)."""
        rollup.move(self.connection(), round_id, path, old, new, driver_execute)

    def rollup_rebuild(self, round_id: int | None = None) -> int:
        """Recompute the rollup of a round (all rounds without one) from the records; rows written."""
        ids = [round_id] if round_id is not None else [r.id or 0 for r in self.rounds()]
        return sum(rollup.rebuild(self.session, rid) for rid in ids)

    def analyze(self, *names: str) -> None:
        """Refresh the planner's statistics after a bulk load (PostgreSQL planned the sweep as
        nested loops without them; SQLite's planner reads ``sqlite_stat1``). On SQLite the
        sample is bounded (``analysis_limit``), so it stays cheap on big tables."""
        if self.dialect == "sqlite":
            self.session.execute(text(f"PRAGMA analysis_limit={SQLITE_ANALYSIS_LIMIT}"))
        for name in names:
            self.session.execute(text(f"ANALYZE {name}"))

    # --- four eyes ----------------------------------------------------------------------------

    def is_filler(self, record_id: int, user_id: int) -> bool:
        """Whether ``user_id``, since the record's last return (or revocation), submitted it,
        fired a trigger on its behalf, or entered its purchases or aggregate lines. Answered by
        :meth:`record_with_context` when it was given the actor, else by one query."""
        cached = self._fillers.get((record_id, user_id))
        if cached is not None:
            return cached
        rid = literal(record_id)
        return bool(self.session.execute(select(_filler_exists(rid, user_id))).scalar_one())

    # --- login throttle ------------------------------------------------------------------------

    def count_login_attempt(self, username: str, client_ip: str, *, now: datetime, since: datetime) -> int:
        """Count one more login attempt for (username, address) and return the count in the
        current window, in one atomic statement (INSERT … ON CONFLICT DO UPDATE … RETURNING): the
        row lock serialises concurrent attempts, so no two of them read the same count. A window
        older than ``since`` starts again at 1."""
        table = tables.LoginThrottle.__table__
        dialect_insert = pg_insert if self.dialect == "postgresql" else lite_insert
        stmt = dialect_insert(table).values(username=username, client_ip=client_ip, window_start=now, attempts=1)
        stale = table.c.window_start <= since
        stmt = stmt.on_conflict_do_update(
            index_elements=["username", "client_ip"],
            set_={
                "attempts": case((stale, 1), else_=table.c.attempts + 1),
                "window_start": case((stale, now), else_=table.c.window_start),
            },
        ).returning(table.c.attempts)
        return int(self.session.execute(stmt).scalar_one())

    def clear_login_attempts(self, username: str, client_ip: str, *, upto: int) -> None:
        """After a success: forget the attempts counted up to this one (``upto``, the count it
        was given); attempts counted after it, still in flight, keep counting."""
        table = tables.LoginThrottle.__table__
        self.session.execute(
            update(table)
            .where(table.c.username == username, table.c.client_ip == client_ip)
            .values(attempts=case((table.c.attempts > upto, table.c.attempts - upto), else_=0))
        )

    def forget_old_login_attempts(self, since: datetime) -> None:
        table = tables.LoginThrottle.__table__
        self.session.execute(delete(table).where(table.c.window_start <= since))
        failures = tables.LoginFailure.__table__
        self.session.execute(delete(failures).where(failures.c.at <= since))

    def log_login_failure(self, username: str, client_ip: str, at: datetime) -> None:
        self.session.add(tables.LoginFailure(username=username, client_ip=client_ip, at=at))

    def clear_login_failures(self, username: str, client_ip: str) -> None:
        failures = tables.LoginFailure.__table__
        self.session.execute(delete(failures).where(failures.c.username == username,
                                                    failures.c.client_ip == client_ip))

    def user_named(self, username: str) -> User | None:
        return self.session.execute(select(User).where(User.username == username)).scalar_one_or_none()

    def end_sessions(self, user_id: int) -> None:
        """Move the user's session generation on: every cookie issued so far stops working."""
        self.session.execute(update(User).where(User.id == user_id).values(session_gen=User.session_gen + 1))

    # --- attachments -------------------------------------------------------------------------

    def attachment_list(self, record_id: int) -> list[Any]:
        """A record's attachments without their bytes, oldest first."""
        return list(self.session.execute(
            select(Attachment.id, Attachment.kind, Attachment.filename, Attachment.content_type,
                   Attachment.size, Attachment.uploaded_at, Attachment.on_behalf)
            .where(Attachment.record_id == record_id).order_by(Attachment.id)
        ).all())

    def attachment(self, record_id: int, attachment_id: int) -> Attachment:
        row = self.session.get(Attachment, attachment_id)
        if row is None or row.record_id != record_id:
            raise NotFound(f"找不到附件 #{attachment_id}", code="attachment.not_found")
        return row


def _duplicate_order(row: Purchase) -> Exception:
    return RuleViolation(Refusal(
        "purchase.duplicate",
        f"订单 {row.order_no} 第 {row.line_no} 行（渠道 {row.channel}）已经录入过",
    ))
