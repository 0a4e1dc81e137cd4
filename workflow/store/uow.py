"""The unit of work and its repository methods: the SQL the use cases need, in one place.

:class:`UnitOfWork` opens a write transaction (``BEGIN IMMEDIATE`` on SQLite) and rolls back
unless :meth:`UnitOfWork.commit` is called, so state, history and outbox rows land together or not
at all. The services in :mod:`workflow.app.records` call these methods and never write SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as lite_insert
from sqlalchemy.exc import SQLAlchemyError as DatabaseError  # noqa: F401 - what callers catch for a failed statement
from sqlalchemy.orm import aliased
from sqlmodel import Session

from workflow.domain.errors import NotFound
from workflow.domain.policy import Policy
from workflow.store import aggregates, bulk, rollup, tables
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
from workflow.store.unit import INSERT_HISTORY, CoreUnitOfWork, not_found

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

#: Rows a bulk load writes before it refreshes the planner's statistics (ANALYZE).
ANALYZE_MIN_ROWS = 1_000
#: SQLite's ANALYZE reads at most about this many index entries per index.
SQLITE_ANALYSIS_LIMIT = 2_000


class UnitOfWork(CoreUnitOfWork):
    """A transaction plus the repository methods the use cases call: the Core ones of
    :class:`~workflow.store.unit.CoreUnitOfWork` and the ORM's (reads return mapped objects).

    Usage::

        with UnitOfWork(database) as uow:
            ...
            uow.commit()        # without this, everything rolls back
    """

    _session: Session | None

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

    # --- directory ---------------------------------------------------------------------------

    def org(self, org_id: int) -> Organisation:
        org = self.session.get(Organisation, org_id)
        if org is None:
            raise not_found("org", org_id)
        return org

    def org_by_code(self, code: str) -> Organisation:
        org = self.session.exec(select(Organisation).where(Organisation.code == code)).scalar_one_or_none()  # type: ignore[call-overload]
        if org is None:
            raise not_found("org_code", code)
        return org

    def user(self, user_id: int) -> User:
        user = self.session.get(User, user_id)
        if user is None or not user.is_active:
            raise not_found("user", user_id)
        return user

    def user_by_name(self, username: str) -> User:
        user = self.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
        if user is None or not user.is_active:
            raise not_found("username", username)
        return user

    def user_with_memberships(self, user_id: int) -> tuple[User, list[tuple[Organisation, str]]]:
        """The active user and their memberships, in one query."""
        rows = self.session.execute(_USER_WITH_MEMBERSHIPS, {"user_id": user_id}).all()
        if not rows or not rows[0][0].is_active:
            raise not_found("user", user_id)
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

    def round(self, round_id: int) -> Round:
        rnd = self.session.get(Round, round_id)
        if rnd is None:
            raise not_found("round", round_id)
        return rnd

    def rounds(self) -> list[Round]:
        return list(self.session.execute(select(Round).order_by(Round.year, Round.id)).scalars())

    def round_by_label(self, label: str) -> Round:
        rows = list(self.session.execute(
            select(Round).where((Round.label == label) | (func.cast(Round.year, tables.String) == label))
            .order_by(Round.id.desc())  # type: ignore[union-attr]
        ).scalars())
        if not rows:
            raise not_found("round_label", label)
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

    def record(self, record_id: int) -> Record:
        rec = self.session.get(Record, record_id)
        if rec is None:
            raise not_found("record", record_id)
        return rec

    def refresh(self, obj: Any) -> None:
        self.session.refresh(obj)

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
        row.id = int(self.session.execute(INSERT_HISTORY, values).scalar_one())
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

    def purchases(self, record_id: int) -> list[Purchase]:
        return list(
            self.session.execute(
                select(Purchase).where(Purchase.record_id == record_id).order_by(Purchase.paid_at, Purchase.id)
            ).scalars()
        )

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
