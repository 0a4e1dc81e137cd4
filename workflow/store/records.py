"""Records: a union's yearly record, its history, its snapshots and attachments; the transition's
hot path (one context statement, the versioned write, the history row, the rollup's move), and
the set-based opening and re-linking of a round's records.

The hot path's statements are Core over the tables of :mod:`workflow.store.tables`, compiled once
per dialect and run on the driver's cursor (:class:`~workflow.store.prepared.Prepared`); the
other reads return mapped objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
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
    tuple_,
    update,
)

from workflow.domain.errors import NotFound
from workflow.domain.policy import Policy
from workflow.store import chain, rollup, tables
from workflow.store import reports as aggregates
from workflow.store.bulk import driver_value, nextval
from workflow.store.engine import driver_execute
from workflow.store.errors import not_found
from workflow.store.prepared import Prepared
from workflow.store.tables import (
    AggregateLine,
    Attachment,
    History,
    Membership,
    Organisation,
    Purchase,
    Record,
    Round,
    Snapshot,
    SnapshotLine,
    User,
)
from workflow.store.transaction import Transaction
from workflow.store.types import PERSONAL_COLUMNS, seal, unseal

HISTORY, PURCHASE, AGGREGATE_LINE = History.__table__, Purchase.__table__, AggregateLine.__table__  # type: ignore[attr-defined]
RECORD, ORGANISATION, ROUND = Record.__table__, Organisation.__table__, Round.__table__  # type: ignore[attr-defined]
USER, MEMBERSHIP, SNAPSHOT = User.__table__, Membership.__table__, Snapshot.__table__  # type: ignore[attr-defined]

# --- the transition's hot path: Core statements built once, compiled once per dialect --------

_R, _O, _RD = RECORD, ORGANISATION, ROUND
_P = _R.alias("parent_record")
_U, _M = USER, MEMBERSHIP
_MO = _O.alias("seat_org")
_S = SNAPSHOT


def _lit(value: str) -> Any:
    """A SQL string literal (no bind: prepared statements take only the named parameters)."""
    return literal_column(f"'{value}'")


@lru_cache(maxsize=4)
def fire_context_statement(lock: bool = True, many: bool = False) -> Any:
    """Record, organisation, round cap, parent record's state, the user and every seat (membership
    with its organisation's id, path and parent) of the user: one statement, one row per seat
    (one row without seats) when the record exists. Access is decided from these by
    :func:`workflow.domain.access.relation`.

    With ``lock`` (a transition), the record's own row is locked first on PostgreSQL
    (``FOR NO KEY UPDATE OF record``: the lock its versioned UPDATE takes anyway, taken before
    anything is decided; rows that only reference the record, history and purchases, still go
    in). So a transition decides on the record as it is, not as it was when another
    transition of it began: a parent's ``summarize`` waits for a child's decision that holds
    the parent's row and then reads that child's new state; a ``submit`` reads the stale flag a
    child's decision set. The parent record, on the nullable side of an outer join, is not
    locked here (see :meth:`Records.lock_parent`). SQLite has no row locks and needs none: its
    writers queue behind ``BEGIN IMMEDIATE`` before their first read.

    With ``many`` (a bulk decision), the records are those of the expanding ``record_ids``,
    ordered (and so locked) by id: every bulk writer locks in the one order.

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
    # The record's chain head (its last history row's seq and hash): the history row this
    # transition appends is chained after it (re-read when stale, see workflow.store.chain).
    h_seq, h_hash = hist.alias("h_head_seq"), hist.alias("h_head")
    head_seq = select(func.max(h_seq.c.seq)).where(h_seq.c.record_id == _R.c.id).correlate(_R).scalar_subquery()
    head_hash = (select(h_hash.c.row_hash).where(h_hash.c.record_id == _R.c.id, h_hash.c.seq == head_seq)
                 .correlate(_R).scalar_subquery())
    statement = (
        select(
            _R.c.id, _R.c.org_id, _R.c.round_id, _R.c.parent_id, _R.c.state, _R.c.version,
            _R.c.is_grassroots, _R.c.is_reporting_unit, _R.c.amount_per_member_fen, _R.c.members,
            _R.c.work_experience, _R.c.work_highlights, _R.c.snapshot_id, _R.c.snapshot_stale,
            _R.c.reporter, _R.c.phone, _R.c.fill_date, _R.c.report_deadline, _R.c.is_overdue, _R.c.is_late,
            _S.c.people_total, _S.c.amount_total_fen,
            _O.c.code.label("org_code"), _O.c.name.label("org_name"), _O.c.parent_id.label("org_parent_id"),
            _O.c.path.label("org_path"),
            _RD.c.cap_fen_per_member, _RD.c.four_eyes,
            actor_filled.label("actor_filled"), _P.c.state.label("parent_state"),
            head_seq.label("head_seq"), head_hash.label("head_hash"),
            _U.c.id.label("user_id"), _U.c.display_name, _U.c.is_active,
            _M.c.role.label("seat_role"), _MO.c.id.label("seat_org_id"), _MO.c.path.label("seat_org_path"),
            _MO.c.parent_id.label("seat_org_parent_id"),
        )
        .select_from(
            _R.join(_O, _O.c.id == _R.c.org_id)
            .join(_RD, _RD.c.id == _R.c.round_id)
            .outerjoin(_P, _P.c.id == _R.c.parent_id)
            .outerjoin(_S, _S.c.id == _R.c.snapshot_id)
            .outerjoin(_U, _U.c.id == bindparam("user_id"))
            .outerjoin(_M, _M.c.user_id == _U.c.id)
            .outerjoin(_MO, _MO.c.id == _M.c.org_id)
        )
    )
    if many:
        statement = statement.where(_R.c.id.in_(bindparam("record_ids", expanding=True))).order_by(_R.c.id)
    else:
        statement = statement.where(_R.c.id == bindparam("record_id"))
    return statement.with_for_update(of=_R, key_share=True) if lock else statement


_MARK_STALE = (
    update(_R)
    .where(_R.c.id == bindparam("record_id"), _R.c.state == bindparam("only_state"),
           _R.c.snapshot_id.is_not(None))
    .values(snapshot_stale=bindparam("stale"))
)

#: A decision on a child locks its parent's row (child, then parent: the one order; a parent's
#: own transition locks only its own row, so no two transitions wait on each other in a circle),
#: reads the parent's state under that lock and marks a summarized parent's snapshot stale, in
#: one statement: the UPDATE's row lock, and on PostgreSQL the row as committed last (a
#: concurrent summarize or submit of the parent is waited for, then read).
_LOCK_PARENT = (
    update(_R)
    .where(_R.c.id == bindparam("record_id"))
    .values(snapshot_stale=case(
        (and_(_R.c.state == _lit("summarized"), _R.c.snapshot_id.is_not(None)), bindparam("stale")),
        else_=_R.c.snapshot_stale))
    .returning(_R.c.state)
)
def _instant_of(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite's text
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _date_of(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


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
    four_eyes: bool  # the round's switch (from its policy)
    actor_filled: bool  # the actor entered or submitted the (submitted) record since its last return
    chain_head: tuple[int, str | None] | None = None  # the record's last history row (seq, hash)

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



_FIRE_CONTEXT = Prepared(build=fire_context_statement)
_VIEW_CONTEXT = Prepared(build=lambda: fire_context_statement(lock=False))
_MARK_STALE_P = Prepared(_MARK_STALE)
_LOCK_PARENT_P = Prepared(_LOCK_PARENT)


def _context_of(rows: Sequence[Any], user_id: int) -> FireContext:
    """The :class:`FireContext` of one record's rows of the context statement (one per seat)."""
    (rid, org_id, round_id, parent_id, state, version, is_grassroots, is_reporting_unit, amount, members,
     experience, highlights, snapshot_id, stale, reporter, phone, fill_date, deadline, is_overdue, is_late,
     snap_people, snap_fen, org_code, org_name,
     org_parent_id, org_path, cap, four_eyes, actor_filled, parent_state, head_seq, head_hash, uid, user_name,
     is_active, *_seat) = rows[0]
    if uid is None or not is_active:
        raise not_found("user", user_id)
    seats = tuple((OrgRef(x[-3], x[-2], x[-1]), x[-4]) for x in rows if x[-4] is not None)
    return FireContext(
        record_id=rid, org_id=org_id, round_id=round_id, parent_id=parent_id, state=state,
        version=version, is_grassroots=bool(is_grassroots), is_reporting_unit=bool(is_reporting_unit),
        amount_per_member_fen=amount, members=members, work_experience=experience,
        work_highlights=highlights, snapshot_id=snapshot_id, snapshot_stale=bool(stale), reporter=reporter,
        phone=unseal(phone), fill_date=_date_of(fill_date), report_deadline=_instant_of(deadline),
        org_code=org_code, org_name=org_name, org_parent_id=org_parent_id, cap_fen_per_member=cap,
        parent_state=parent_state, user_id=uid, user_name=user_name,
        org=OrgRef(org_id, org_path, org_parent_id), seats=seats, is_overdue=bool(is_overdue),
        is_late=bool(is_late), snapshot_people=snap_people, snapshot_fen=snap_fen,
        four_eyes=bool(four_eyes), actor_filled=bool(actor_filled),
        chain_head=None if head_seq is None else (int(head_seq), head_hash),
    )


class Records:
    """Records and what hangs off them (history, snapshots, attachments), the transition's
    statements and the round's set-based record work."""

    def __init__(self, uow: Transaction) -> None:
        self._uow = uow

    def get(self, record_id: int) -> Record:
        rec = self._uow.session.get(Record, record_id)
        if rec is None:
            raise not_found("record", record_id)
        return rec

    def for_org(self, org_id: int, round_id: int) -> Any:
        rec = self._uow.session.execute(select(Record).where(Record.org_id == org_id, Record.round_id == round_id)).scalar_one_or_none()
        if rec is None:
            raise NotFound("该单位在本年度没有记录", code="record.not_found")
        return rec

    def history(self, record_id: int) -> list[History]:
        return list(
            self._uow.session.execute(
                select(History).where(History.record_id == record_id).order_by(History.id)
            ).scalars()
        )

    def add_history(self, values: dict[str, Any], *, after: FireContext | None = None) -> int:
        """Append a history row from plain values (every column but ``id`` and the chain's) to
        its record's chain (:mod:`workflow.store.chain`); its id. ``after``: the transition's
        context, whose statement read the chain's head (else the head is read here)."""
        if after is not None:
            return chain.append(self._uow.connection(), values, seen=after.chain_head, seen_read=True)
        return chain.append(self._uow.connection(), values)

    def fire_context(self, record_id: int, user_id: int, *, lock: bool = True) -> FireContext:
        """Everything a transition checks, in one statement; with ``lock`` (a transition; a page
        showing the actions open passes False) the record's row is locked first on PostgreSQL.

        Raises:
            NotFound: no such record (``record.not_found``); no such active user (``user.not_found``).
        """
        rows, _n = (_FIRE_CONTEXT if lock else _VIEW_CONTEXT).run(self._uow.connection(), {"record_id": record_id, "user_id": user_id})
        if not rows:
            raise not_found("record", record_id)
        return _context_of(rows, user_id)

    def fire_contexts(self, record_ids: Sequence[int], user_id: int) -> dict[int, FireContext | NotFound]:
        """:meth:`fire_context` for many records in one statement (a bulk decision), each
        record's row locked on PostgreSQL in id order. A record that does not exist maps to its
        NotFound; when the user does not exist (or is inactive) every existing record maps to that one."""
        ids = sorted(set(record_ids))
        by_record: dict[int, list[Any]] = {}
        for start in range(0, len(ids), 1000):  # SQLite's bound parameters stay few
            for row in self._uow.execute(fire_context_statement(lock=True, many=True),
                                         {"record_ids": ids[start:start + 1000], "user_id": user_id}):
                by_record.setdefault(int(row[0]), []).append(tuple(row))
        out: dict[int, FireContext | NotFound] = {rid: not_found("record", rid) for rid in ids}
        for rid, rows in by_record.items():
            try:
                out[rid] = _context_of(rows, user_id)
            except NotFound as exc:
                out[rid] = exc
        return out

    def lock_parents(self, parent_ids: Sequence[int]) -> dict[int, str]:
        """:meth:`lock_parent` for the parents of a bulk decision, without the stale mark (see
        :meth:`mark_parents_stale`): their rows locked in id order after the children's, and
        their states as of the lock."""
        ids = sorted(set(parent_ids))
        if not ids:
            return {}
        stmt = (select(_R.c.id, _R.c.state).where(_R.c.id.in_(bindparam("ids", expanding=True)))
                .order_by(_R.c.id).with_for_update(of=_R))
        return {int(i): str(st) for i, st in self._uow.execute(stmt, {"ids": ids})}

    def mark_parents_stale(self, parent_ids: Sequence[int]) -> None:
        """The stale mark of :meth:`lock_parent`, once per parent of a bulk decision that
        accepted a child: a summarized parent's snapshot no longer adds up its children."""
        ids = sorted(set(parent_ids))
        if ids:
            self._uow.execute(update(_R).where(
                _R.c.id.in_(bindparam("ids", expanding=True)), _R.c.state == "summarized",
                _R.c.snapshot_id.is_not(None)).values(snapshot_stale=True), {"ids": ids})

    def write_many(self, seen: Sequence[tuple[int, int]], values: dict[str, Any]) -> set[int]:
        """:meth:`write` of the same values to many (record id, seen version) pairs in one
        statement; the ids written (a pair whose version moved on is not)."""
        written: set[int] = set()
        new = dict(values)  # through the column types (personal columns sealed by theirs)
        stmt = (update(_R).where(tuple_(_R.c.id, _R.c.version).in_(bindparam("seen", expanding=True)))
                .values(version=_R.c.version + literal_column("1"), **new).returning(_R.c.id))
        for start in range(0, len(seen), 500):
            part = [(int(r), int(v)) for r, v in seen[start:start + 500]]
            written |= {int(i) for (i,) in self._uow.execute(stmt, {"seen": part})}
        return written

    def add_history_many(self, rows: Sequence[tuple[dict[str, Any], FireContext]]) -> dict[int, int]:
        """Append one history row to each of many records' chains (distinct records, each
        after the head its context statement read under the record's lock) in one bulk insert;
        ``{record id: history id}``."""
        if not rows:
            return {}
        chain.append_many(self._uow.connection(), [
            (values, *(fc.chain_head if fc.chain_head is not None else (None, None))) for values, fc in rows])
        ids = [fc.record_id for _v, fc in rows]
        found: dict[int, int] = {}
        for start in range(0, len(ids), 1000):
            found.update({int(r): int(h) for r, h in self._uow.execute(
                select(HISTORY.c.record_id, func.max(HISTORY.c.id))
                .where(HISTORY.c.record_id.in_(bindparam("ids", expanding=True))).group_by(HISTORY.c.record_id),
                {"ids": ids[start:start + 1000]})})
        return found

    def rollup_move_many(self, moves: Sequence[tuple[int, int, str, rollup.Entry | None, rollup.Entry | None]]) -> None:
        """Many records' :meth:`rollup_move` (record id, round, path, old, new) as one upsert
        of the summed deltas. The transaction's last write, as the single move."""
        rollup.move_many(self._uow.connection(), moves, driver_execute)


    def fillers_since_return(self, record_id: int) -> set[int]:
        """Who filled the record in since its last return or revocation (four eyes): the users
        who submitted it or acted on its behalf, and who entered its purchases or aggregate lines
        (the rows the context statement's ``actor_filled`` asks about one user)."""
        hist, pur, agg = HISTORY, PURCHASE, AGGREGATE_LINE
        last = self._uow.execute(
            select(hist.c.id, hist.c.at).where(
                hist.c.record_id == record_id,
                hist.c.trigger.in_(("return_for_revision", "revoke_acceptance"))).order_by(hist.c.id.desc()).limit(1)
        ).first()
        last_id, last_at = (int(last[0]), last[1]) if last else (0, None)
        users = {int(u) for (u,) in self._uow.execute(
            select(hist.c.actor_user_id).where(
                hist.c.record_id == record_id, hist.c.id > last_id, hist.c.actor_user_id.is_not(None),
                or_(hist.c.trigger == "submit", hist.c.on_behalf.is_(True))).distinct())}
        for table in (pur, agg):
            since = [table.c.entered_at >= last_at] if last_at is not None else []
            users |= {int(u) for (u,) in self._uow.execute(
                select(table.c.entered_by_user_id).where(
                    table.c.record_id == record_id, table.c.entered_by_user_id.is_not(None), *since).distinct())}
        return users

    def write(self, record_id: int, seen_version: int, values: dict[str, Any]) -> bool:
        """``UPDATE record SET … , version = version + 1 WHERE id = :id AND version = :seen``.

        Returns:
            False when somebody else wrote first (the caller raises VersionConflict).
        """
        params = {"record_id": record_id, "seen_version": seen_version}
        d = self._uow.dialect
        params.update({f"new_{k}": driver_value(d, seal(v) if k in PERSONAL_COLUMNS else v)
                       for k, v in values.items()})
        _rows, count = _write_record_statement(tuple(sorted(values))).run(self._uow.connection(), params)
        return count == 1

    def mark_snapshot_stale(self, record_id: int | None, *, only_state: str) -> None:
        if record_id is None:
            return
        _MARK_STALE_P.run(self._uow.connection(), {"record_id": record_id, "only_state": only_state,
                                              "stale": driver_value(self._uow.dialect, True)})

    def lock_parent(self, parent_id: int) -> str:
        """For a decision on a child that changes what its parent adds up (accept, revoke):
        lock the parent record's row after the child's own, mark its snapshot stale if it is
        summarized, and return its state as of the lock (the state the decision must obey).
        The parent's row stays locked until the child's transaction ends, so no summarize or
        submit of the parent comes between the decision and its commit.

        Raises:
            NotFound: no such record (``record.not_found``).
        """
        rows, _n = _LOCK_PARENT_P.run(self._uow.connection(), {
            "record_id": parent_id, "stale": driver_value(self._uow.dialect, True)})
        if not rows:
            raise not_found("record", parent_id)
        return str(rows[0][0])

    def rollup_move(self, record_id: int, round_id: int, path: str, old: rollup.Entry | None,
                    new: rollup.Entry | None) -> None:
        """A record's change of rollup key, applied to its organisation and ancestors (one upsert).
        Make it the transaction's last write: the rows it takes are held until the commit."""
        rollup.move(self._uow.connection(), record_id, round_id, path, old, new, driver_execute)

    def take_snapshot(self, record_id: int, *, now: datetime, as_of: date) -> Snapshot:
        """Freeze the record's Annex 2 numbers per channel: its own purchases plus its
        children's accepted snapshots, as two GROUP BY queries."""
        lines, missing = aggregates.snapshot_lines(self._uow.session, record_id)
        snap = Snapshot(
            record_id=record_id,
            taken_at=now,
            as_of=as_of,
            people_total=sum(p for p, _ in lines.values()),
            amount_total_fen=sum(a for _, a in lines.values()),
            missing_children=tables.dumps(missing),
        )
        self._uow.session.add(snap)
        self._uow.session.flush()
        if lines:
            self._uow.session.execute(
                insert(SnapshotLine.__table__),
                [{"snapshot_id": snap.id, "channel": c, "people": p, "amount_fen": a}
                 for c, (p, a) in sorted(lines.items())],
            )
        return snap

    def snapshot(self, snapshot_id: int) -> tuple[Snapshot, list[SnapshotLine]]:
        snap = self._uow.session.get(Snapshot, snapshot_id)
        if snap is None:
            raise NotFound(f"找不到汇总快照 #{snapshot_id}", code="snapshot.not_found")
        lines = list(self._uow.session.execute(
            select(SnapshotLine).where(SnapshotLine.snapshot_id == snapshot_id).order_by(SnapshotLine.channel)
        ).scalars())
        return snap, lines

    def snapshot_lines_map(self, snapshot_id: int | None) -> dict[str, tuple[int, int]]:
        """A snapshot's lines as ``{channel: (people, amount_fen)}`` (empty for None)."""
        if snapshot_id is None:
            return {}
        rows = self._uow.session.execute(
            select(SnapshotLine.channel, SnapshotLine.people, SnapshotLine.amount_fen)
            .where(SnapshotLine.snapshot_id == snapshot_id)
        ).all()
        return {c: (int(p), int(a)) for c, p, a in rows}

    def snapshot_before(self, record_id: int, at: datetime) -> int | None:
        """The id of the record's latest snapshot taken at or before ``at``."""
        return self._uow.session.execute(
            select(func.max(Snapshot.id)).where(Snapshot.record_id == record_id, Snapshot.taken_at <= at)
        ).scalar_one_or_none()

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
            scope = self._uow.session.get(Organisation, rnd.scope_org_id)
            if scope is None:
                raise not_found("org", rnd.scope_org_id)
            conds.append(org.c.path.like(scope.path + "%"))
            conds.append(org.c.id != scope.id)
        exists = select(rec.c.id).where(rec.c.org_id == org.c.id, rec.c.round_id == rnd.id).exists()
        if self._uow.dialect == "postgresql":
            # The CTE's row estimates are guesses: no JIT compilation for this transaction's bulk SQL.
            self._uow.session.execute(text("SET LOCAL jit = off"))
            new_id: Any = literal_column(nextval(self._uow, "record"))
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
        result = self._uow.session.execute(
            insert(rec).from_select(
                ["id", "org_id", "round_id", "parent_id", "state", "version", "is_grassroots",
                 "is_reporting_unit", "quota_fen", "report_deadline", "snapshot_stale", "is_overdue", "is_late",
                 "updated_at"],
                sel,
            ).execution_options(preserve_rowcount=True)  # psycopg reports -1 for INSERT otherwise
        )
        created = result.rowcount or 0
        if self._uow.dialect == "sqlite":  # its driver counts no rows for a statement opening with WITH
            created = int(self._uow.session.execute(text("SELECT changes()")).scalar() or 0)
        if link:
            self.link_record_parents(rnd.id or 0)
        return created

    def link_record_parents(self, round_id: int) -> None:
        """Link the round's records without a parent record to their parent organisation's record
        where it has one (a repair after moves; :meth:`open_records` links the records it opens).
        Uses the ``parent_id`` index: call it with the record table's indexes in place."""
        self._uow.session.execute(
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
            self._uow.session.execute(update(rec).where(rec.c.org_id.in_(ids[start:start + 5000])).values(parent_id=new_parent))

    def rollup_rebuild(self, round_id: int | None = None) -> int:
        """Recompute the rollup of a round (all rounds without one) from the records; rows written."""
        ids = [round_id] if round_id is not None else [int(i) for (i,) in self._uow.execute(select(Round.id).order_by(Round.year, Round.id))]
        return sum(rollup.rebuild(self._uow.session, rid) for rid in ids)

    def attachment_list(self, record_id: int) -> list[Any]:
        """A record's attachments without their bytes, oldest first."""
        return list(self._uow.session.execute(
            select(Attachment.id, Attachment.kind, Attachment.filename, Attachment.content_type,
                   Attachment.size, Attachment.uploaded_at, Attachment.on_behalf)
            .where(Attachment.record_id == record_id).order_by(Attachment.id)
        ).all())

    def attachment(self, record_id: int, attachment_id: int) -> Attachment:
        row = self._uow.session.get(Attachment, attachment_id)
        if row is None or row.record_id != record_id:
            raise NotFound(f"找不到附件 #{attachment_id}", code="attachment.not_found")
        return row
