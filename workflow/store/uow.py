"""The unit of work and its repository methods: the SQL the use cases need, in one place.

:class:`UnitOfWork` opens a write transaction (``BEGIN IMMEDIATE`` on SQLite) and rolls back
unless :meth:`UnitOfWork.commit` is called, so state, history and outbox rows land together or not
at all. The services in :mod:`workflow.app.records` call these methods and never write SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from functools import lru_cache
from types import TracebackType
from typing import Any

from sqlalchemy import and_, bindparam, case, func, insert, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as lite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session

from workflow.domain.errors import NotFound, Refusal, RuleViolation
from workflow.domain.policy import Policy, parse_policy
from workflow.store import aggregates, tables
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


@lru_cache(maxsize=32)
def _parse_cached(digest: str, text: str) -> Policy:
    return parse_policy(text, source=f"policy:{digest}")


# Built once: an alias made per call costs more than the query it saves.
_PARENT_RECORD = aliased(Record, name="parent_record")
_RECORD_WITH_CONTEXT = (
    select(Record, Organisation, Round, _PARENT_RECORD)
    .join(Organisation, Organisation.id == Record.org_id)
    .join(Round, Round.id == Record.round_id)
    .outerjoin(_PARENT_RECORD, _PARENT_RECORD.id == Record.parent_id)
    .where(Record.id == bindparam("record_id"))
)

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
_INSERT_HISTORY = insert(History.__table__).returning(History.__table__.c.id)


@lru_cache(maxsize=64)
def _write_record_statement(columns: tuple[str, ...]) -> Any:
    """The versioned UPDATE for one set of columns, built once per set (each trigger writes the
    same columns every time)."""
    table = Record.__table__
    return (
        update(table)
        .where(table.c.id == bindparam("record_id"), table.c.version == bindparam("seen_version"))
        .values(version=table.c.version + 1,
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
        self.session: Session
        self._committed = False
        self._held: list[Any] = []

    def __enter__(self) -> UnitOfWork:
        self.session = self.database.session(readonly=self.readonly)
        self.session.begin()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if not self._committed:
                self.session.rollback()
        finally:
            self._held.clear()
            self.session.close()

    def commit(self) -> None:
        self.session.commit()
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
        return _parse_cached(doc.digest, doc.source_text)

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

    def open_records(self, rnd: Round, policy: Policy, *, now: datetime) -> int:
        """Create the round's missing records, set-based: one per organisation in scope, none
        for the receiver or observers; then link each to its parent's record. Idempotent."""
        org = Organisation.__table__
        rec = Record.__table__
        conds = [org.c.is_observer.is_(False), org.c.kind != policy.receiver_kind]
        if rnd.scope_org_id is not None:
            scope = self.org(rnd.scope_org_id)
            conds.append(org.c.path.like(scope.path + "%"))
            conds.append(org.c.id != scope.id)
        exists = select(rec.c.id).where(rec.c.org_id == org.c.id, rec.c.round_id == rnd.id).exists()
        ru = list(policy.reporting_unit_kinds)
        gr = list(policy.grassroots_kinds)
        sel = select(
            org.c.id,
            literal(rnd.id),
            literal("planned"),
            literal(1),
            org.c.kind.in_(gr),
            org.c.kind.in_(ru),
            literal(0),
            case((org.c.kind.in_(ru), literal(rnd.report_deadline_reporting_unit, tables.UTCDateTime)),
                 else_=literal(rnd.report_deadline_default, tables.UTCDateTime)),
            literal(False),
            literal(False),
            literal(False),
            literal(now, tables.UTCDateTime),
        ).where(and_(*conds), ~exists)
        result = self.session.execute(
            insert(rec).from_select(
                ["org_id", "round_id", "state", "version", "is_grassroots", "is_reporting_unit",
                 "quota_fen", "report_deadline", "snapshot_stale", "is_overdue", "is_late", "updated_at"],
                sel,
            ).execution_options(preserve_rowcount=True)  # psycopg reports -1 for INSERT otherwise
        )
        created = result.rowcount or 0
        # Link records to their parent's record of the same round.
        self.session.execute(
            text(
                "UPDATE record SET parent_id = ("
                " SELECT p.id FROM record p JOIN organisation o ON o.parent_id = p.org_id"
                " WHERE o.id = record.org_id AND p.round_id = record.round_id)"
                " WHERE round_id = :round_id AND parent_id IS NULL"
            ),
            {"round_id": rnd.id},
        )
        return created

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

    def record_with_context(self, record_id: int) -> Record:
        """The record, with its organisation, round and parent record loaded by the same query.

        One round trip instead of four: the neighbours land in the session's identity map, so
        the :meth:`org`, :meth:`round` and :meth:`record` calls that follow read no SQL.
        """
        row = self.session.execute(_RECORD_WITH_CONTEXT, {"record_id": record_id}).first()
        if row is None:
            raise NotFound(f"找不到记录 #{record_id}", code="record.not_found")
        # The identity map holds objects weakly: keep the neighbours alive for this unit of work.
        self._held.extend(row)
        return row[0]

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
        params.update({f"new_{k}": v for k, v in values.items()})
        result = self.session.execute(_write_record_statement(tuple(sorted(values))), params)
        return (result.rowcount or 0) == 1

    def mark_snapshot_stale(self, record_id: int | None, *, only_state: str) -> None:
        if record_id is None:
            return
        self.session.execute(
            update(Record)
            .where(Record.id == record_id, Record.state == only_state, Record.snapshot_id.is_not(None))  # type: ignore[union-attr]
            .values(snapshot_stale=True)
            .execution_options(synchronize_session=False)
        )

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
            )
        ).scalar_one_or_none()

    def purchases(self, record_id: int) -> list[Purchase]:
        return list(
            self.session.execute(
                select(Purchase).where(Purchase.record_id == record_id).order_by(Purchase.paid_at, Purchase.id)
            ).scalars()
        )

    def spent_by_budget(self, record_id: int) -> dict[str, int]:
        rows = self.session.execute(
            select(Purchase.budget, func.coalesce(func.sum(Purchase.amount_fen), 0))
            .where(Purchase.record_id == record_id)
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

    def add_all(self, objs: Sequence[Any]) -> None:
        self.session.add_all(objs)
        self.session.flush()

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
