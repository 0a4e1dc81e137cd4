"""Annex 2 snapshots, roll-ups and completeness as SQL aggregates.

A record's snapshot adds, per channel, its own purchases, its own aggregate lines and its
children's *accepted* snapshots: GROUP BY queries, never a Python loop over rows. The Annex 2 row
and the official share both derive from the channel through the policy
(:mod:`workflow.domain.figures`).

Which numbers a view shows:

- a **submitted or accepted** record is read from its snapshot only, so the province sees what
  the reviewer accepted, whatever was entered later;
- a **summarized** record shows its snapshot unless the caller asks for live sums;
- a **draft** (planned, purchased, or summarized with ``live=True``) shows live sums: its own
  purchases and aggregate lines plus its children's accepted snapshots, i.e. what ``summarize``
  would freeze now.

Roll-ups go level by level: a unit's figure is its own snapshot (which already holds what it
accepted below it), so the province's roll-up over its reporting units reads one snapshot per
unit. Units' figures are computed for all units of a level in one GROUP BY over a UNION ALL of
snapshot lines, purchases and aggregate lines. :func:`live_rollup_by_path` is the other way: the
purchases of every record below each unit, joined by materialised path prefix, whatever their
states (the live progress of a round).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from sqlalchemy import Integer, and_, case, cast, false, func, null, or_, select, union_all
from sqlmodel import Session

import states
from workflow.domain import clock
from workflow.domain.errors import BadInput, NotFound
from workflow.domain.figures import (
    FROZEN_STATES,
    STATUS_ACCEPTED,
    STATUS_PENDING,
    Annex2Table,
    Lines,
    UnitFigures,
    add_lines,
    annex2_rows,
    wan_people,
    wan_yuan,
)
from workflow.domain.policy import Policy
from workflow.store import rollup
from workflow.store import supplements as supplement_rule
from workflow.store.tables import (
    AggregateLine,
    Membership,
    Organisation,
    Purchase,
    Record,
    Round,
    Snapshot,
    SnapshotLine,
    Supplement,
    SupplementLine,
    User,
)
from workflow.store.transaction import Transaction

# --- per-record snapshot lines (used by summarize) ------------------------------------------



def snapshot_lines(session: Session, record_id: int) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """The per-channel (people, amount_fen) a snapshot of ``record_id`` would freeze, and the
    codes of the children not yet accepted.

    Args:
        session: an open session.
        record_id: the record to summarize.

    Returns:
        ``({channel: (people, amount_fen)}, [missing child org codes])``: its own purchases and
        aggregate lines plus its children's accepted snapshots.
    """
    has_children = _has_children(session, record_id)
    parts = snapshot_parts(session, record_id, has_children=has_children)
    lines = add_lines(parts["own"], parts["aggregate"], parts["children"])
    if not has_children:
        return lines, []
    child = Record.__table__.alias("child")
    missing = [
        code
        for (code,) in session.execute(
            select(Organisation.code)
            .join(child, child.c.org_id == Organisation.id)
            .where(child.c.parent_id == record_id, child.c.state != "accepted")
            .order_by(Organisation.code)
        ).all()
    ]
    return lines, missing


def _has_children(session: Session, record_id: int) -> bool:
    """Whether any record has this one as its parent: one index probe. A grassroots union's
    summarize asks it first because PostgreSQL plans the children's GROUP BY from the average
    family (about 1,300 children at province scale) and runs it in parallel for the 0 a union has
    (4.8–10.4 ms against 0.11 ms)."""
    child = Record.__table__.alias("child")
    return session.execute(select(child.c.id).where(child.c.parent_id == record_id).limit(1)).first() is not None


def snapshot_parts(session: Session, record_id: int, *, has_children: bool | None = None) -> dict[str, Lines]:
    """The three parts a snapshot of ``record_id`` adds up, per channel: ``own`` purchases (live
    lines), ``aggregate`` lines, and the accepted ``children``'s snapshot lines (three GROUP BYs)."""
    own = session.execute(
        select(Purchase.channel, func.sum(Purchase.people), func.sum(Purchase.amount_fen))
        .where(Purchase.record_id == record_id, Purchase.voided_at.is_(None))  # type: ignore[union-attr]
        .group_by(Purchase.channel)
    ).all()
    aggregates = session.execute(
        select(AggregateLine.channel, func.sum(AggregateLine.people), func.sum(AggregateLine.amount_fen))
        .where(AggregateLine.record_id == record_id)
        .group_by(AggregateLine.channel)
    ).all()
    child = Record.__table__.alias("child")
    if has_children is None:
        has_children = _has_children(session, record_id)
    from_children = session.execute(
        select(SnapshotLine.channel, func.sum(SnapshotLine.people), func.sum(SnapshotLine.amount_fen))
        .join(child, child.c.snapshot_id == SnapshotLine.snapshot_id)
        .where(child.c.parent_id == record_id, child.c.state == "accepted")
        .group_by(SnapshotLine.channel)
    ).all() if has_children else []
    # A child's figures are its snapshot and its accepted supplements (补报).
    late = supplement_rule.accepted_lines_of(child.c.id, child.c.parent_id == record_id,
                                             child.c.state == "accepted").subquery("late")
    from_late = session.execute(
        select(late.c.channel, func.sum(late.c.people), func.sum(late.c.amount_fen)).group_by(late.c.channel)
    ).all() if has_children else []

    def as_lines(rows: Sequence[Any]) -> Lines:
        return {channel: (int(people or 0), int(amount or 0)) for channel, people, amount in rows}

    return {"own": as_lines(own), "aggregate": as_lines(aggregates),
            "children": add_lines(as_lines(from_children), as_lines(from_late))}


def children_status(session: Session, record_id: int, *, limit: int = 50) -> tuple[dict[str, int], list[Any]]:
    """A federation record's direct children: how many in each state (one GROUP BY), and the
    first ``limit`` not yet accepted with their organisation, state, snapshot figures and last
    return reason."""
    child = Record.__table__.alias("child")
    counts = {state: int(n) for state, n in session.execute(
        select(child.c.state, func.count()).where(child.c.parent_id == record_id).group_by(child.c.state)
    ).all()}
    org, snap = Organisation.__table__, Snapshot.__table__
    missing = list(session.execute(
        select(child.c.id, org.c.code, org.c.name, child.c.state, child.c.is_overdue,
               snap.c.people_total, snap.c.amount_total_fen, child.c.last_reason)
        .select_from(child.join(org, org.c.id == child.c.org_id).outerjoin(snap, snap.c.id == child.c.snapshot_id))
        .where(child.c.parent_id == record_id, child.c.state != states.ACCEPTED)
        .order_by(org.c.code).limit(limit)
    ).all())
    return counts, missing



def _units_query(round_id: int, *, parent_org_id: int | None = None, record_ids: Sequence[int] = ()) -> Any:
    """The unit records with what a view shows of them (state, footer, organisation)."""
    rec, org = Record.__table__, Organisation.__table__
    q = select(
        rec.c.id, rec.c.state, rec.c.snapshot_id, rec.c.snapshot_stale, rec.c.reporter, rec.c.phone,
        rec.c.fill_date, rec.c.is_overdue, rec.c.is_late, rec.c.report_deadline,
        org.c.id.label("org_id"), org.c.code, org.c.name, org.c.kind, org.c.path,
    ).join(org, org.c.id == rec.c.org_id)
    return _unit_filter(q, round_id, parent_org_id, record_ids)



def _unit_filter(q: Any, round_id: int, parent_org_id: int | None, record_ids: Sequence[int]) -> Any:
    rec, org = Record.__table__, Organisation.__table__
    if record_ids:  # ids imply the round; the primary key finds them
        return q.where(rec.c.id.in_(list(record_ids)))
    q = q.where(rec.c.round_id == round_id)
    if parent_org_id is not None:
        # Through the (org_id, round_id) unique index: the children's ids, then their records.
        q = q.where(rec.c.org_id.in_(select(org.c.id).where(org.c.parent_id == parent_org_id)))
    return q



#: Units per statement: id lists stay well below SQLite's bound-parameter limit (32,766).
UNIT_CHUNK = 5_000



def _is_frozen(state: str, snapshot_id: int | None, live: bool) -> bool:
    """Submitted/accepted units read their snapshot; a summarized one too unless ``live``."""
    return state in FROZEN_STATES or (not live and state == states.SUMMARIZED and snapshot_id is not None)



def unit_lines(
    session: Session, round_id: int, *, parent_org_id: int | None = None, record_ids: Sequence[int] = (),
    live: bool = False,
) -> dict[int, Lines]:
    """Per unit record and channel, (people, amount_fen), for the child units of
    ``parent_org_id`` or the given records.

    The units (one small query) are split into frozen ones, read from their snapshot lines, and
    live ones, read from their purchases, aggregate lines and accepted children's snapshot lines:
    one statement, a UNION ALL of those four parts each grouped by (unit, channel). The units are
    passed as literal id lists so the planner sees how many there are (a ``state NOT IN (…)``
    filter made PostgreSQL expect one unit and choose nested loops over a million lines).
    """
    rec = Record.__table__
    units = session.execute(
        _unit_filter(select(rec.c.id, rec.c.state, rec.c.snapshot_id), round_id, parent_org_id, record_ids)
    ).all()
    out: dict[int, Lines] = {}
    for start in range(0, len(units), UNIT_CHUNK):
        chunk = units[start:start + UNIT_CHUNK]
        frozen = [u.id for u in chunk if _is_frozen(u.state, u.snapshot_id, live)]
        drafts = [u.id for u in chunk if not _is_frozen(u.state, u.snapshot_id, live)]
        for unit_id, channel, people, amount in session.execute(_lines_statement(frozen, drafts)).all():
            lines = out.setdefault(int(unit_id), {})
            p, a = lines.get(channel, (0, 0))  # a draft's parts may share a channel
            lines[channel] = (p + int(people or 0), a + int(amount or 0))
    return out



def _lines_statement(frozen: list[int], drafts: list[int]) -> Any:
    rec, sl, pur, agg = Record.__table__, SnapshotLine.__table__, Purchase.__table__, AggregateLine.__table__
    child = rec.alias("child")

    def part(key: Any, table: Any, source: Any, *where: Any) -> Any:
        return (
            select(key.label("unit_id"), table.c.channel.label("channel"),
                   func.sum(table.c.people).label("people"), func.sum(table.c.amount_fen).label("amount"))
            .select_from(source).where(*where).group_by(key, table.c.channel)
        )

    sup, supl = Supplement.__table__, SupplementLine.__table__  # type: ignore[attr-defined]
    child_sup = sup.alias("child_sup")
    parts = [
        part(rec.c.id, sl, rec.join(sl, sl.c.snapshot_id == rec.c.snapshot_id), rec.c.id.in_(frozen)),
        # A sent record's figures: its snapshot and its accepted supplements (补报).
        part(sup.c.record_id, supl, sup.join(supl, supl.c.supplement_id == sup.c.id),
             sup.c.record_id.in_(frozen), sup.c.state == supplement_rule.ACCEPTED),
        part(pur.c.record_id, pur, pur, pur.c.record_id.in_(drafts), pur.c.voided_at.is_(None)),
        part(agg.c.record_id, agg, agg, agg.c.record_id.in_(drafts)),
        part(child.c.parent_id, sl, child.join(sl, sl.c.snapshot_id == child.c.snapshot_id),
             child.c.parent_id.in_(drafts), child.c.state == states.ACCEPTED),
        part(child.c.parent_id, supl, child.join(child_sup, child_sup.c.record_id == child.c.id)
             .join(supl, supl.c.supplement_id == child_sup.c.id),
             child.c.parent_id.in_(drafts), child.c.state == states.ACCEPTED,
             child_sup.c.state == supplement_rule.ACCEPTED),
    ]
    return union_all(*parts)



def unit_figures(
    session: Session, round_id: int, *, parent_org_id: int | None = None, record_ids: Sequence[int] = (),
    live: bool = False,
) -> list[UnitFigures]:
    """The figures of the child units of ``parent_org_id`` (or of the given records) in a round:
    two small queries and one aggregate, ordered by organisation code."""
    q = _units_query(round_id, parent_org_id=parent_org_id, record_ids=record_ids)
    meta = session.execute(q.order_by(Organisation.__table__.c.code)).all()
    lines = unit_lines(session, round_id, parent_org_id=parent_org_id, record_ids=record_ids, live=live)
    out = []
    for m in meta:
        frozen = _is_frozen(m.state, m.snapshot_id, live)
        out.append(UnitFigures(
            org_id=m.org_id, org_code=m.code, org_name=m.name, org_kind=m.kind, path=m.path, record_id=m.id,
            state=m.state, source="snapshot" if frozen else "live", lines=lines.get(m.id, {}),
            reporter=m.reporter, phone=m.phone, fill_date=m.fill_date, snapshot_stale=bool(m.snapshot_stale),
            is_overdue=bool(m.is_overdue), is_late=bool(m.is_late),
        ))
    return out



def _snapshot_date(session: Session, record_id: int) -> date | None:
    rec = session.get(Record, record_id)
    if rec is None or rec.snapshot_id is None:
        return None
    snap = session.get(Snapshot, rec.snapshot_id)
    return snap.as_of if snap else None



def _round_label(session: Session, round_id: int) -> str:
    rnd = session.get(Round, round_id)
    if rnd is None:
        raise NotFound(f"找不到年度 #{round_id}", code="round.not_found")
    return rnd.label



def annex2_for_record(session: Session, record_id: int, policy: Policy, *, live: bool = False) -> Annex2Table:
    """The Annex 2 table of one record.

    Args:
        session: an open session.
        record_id: the record.
        policy: its round's policy (rows and channels).
        live: for drafts, live sums even when a snapshot exists. A submitted or accepted record
            is read from its snapshot whatever ``live`` says.

    Returns:
        The table (exact numbers; the writers round), with the footer and a status note.
    """
    rec = session.get(Record, record_id)
    if rec is None:
        raise NotFound(f"找不到记录 #{record_id}", code="record.not_found")
    (unit,) = unit_figures(session, rec.round_id, record_ids=[record_id], live=live)
    return unit_table(session, unit, policy, _round_label(session, rec.round_id))



def unit_table(session: Session, unit: UnitFigures, policy: Policy, round_label: str) -> Annex2Table:
    fill = unit.fill_date
    if fill is None and unit.source == "snapshot":
        fill = _snapshot_date(session, unit.record_id)
    rows = annex2_rows(unit.lines, policy)
    late = None
    if unit.source == "snapshot":  # a sent report: its supplements (补报) beside it
        late = supplement_rule.note(
            supplement_rule.views(session.execute, Supplement.__table__.c.record_id == unit.record_id),  # type: ignore[attr-defined]
            total_people=sum(r.people for r in rows), total_fen=sum(r.amount_fen for r in rows))
    return Annex2Table(
        unit_name=unit.org_name, round_label=round_label, rows=rows,
        reporter=unit.reporter, fill_date=fill, phone=unit.phone, status_note=unit.status_note,
        draft=unit.state not in FROZEN_STATES, supplement_note=late,
    )



@dataclass
class SubtreeStats:
    """What a federation (or the province) sees of its subtree in a round."""

    org_id: int
    org_code: str
    org_name: str
    round_id: int
    round_label: str
    own: Lines  # its own purchases and aggregate lines (live; empty for the province)
    units: list[UnitFigures]  # its direct subordinates
    record_id: int | None = None
    record_state: str | None = None

    @property
    def accepted(self) -> Lines:
        """Own entries plus the accepted subordinates' snapshots: what a snapshot would freeze."""
        return add_lines(self.own, *(u.lines for u in self.units if u.state == states.ACCEPTED))

    @property
    def pending(self) -> Lines:
        """Submitted subordinates' snapshots, not yet accepted (not counted in ``accepted``)."""
        return add_lines(*(u.lines for u in self.units if u.state == states.SUBMITTED))

    def count(self, *wanted: str) -> int:
        return sum(1 for u in self.units if u.state in wanted)

    def note(self) -> str:
        pend = self.pending
        p, a = sum(x for x, _ in pend.values()), sum(y for _, y in pend.values())
        not_sub = len(self.units) - self.count(*FROZEN_STATES)
        return (f"下级{STATUS_ACCEPTED} {self.count(states.ACCEPTED)} 个（已计入）；"
                f"{STATUS_PENDING} {self.count(states.SUBMITTED)} 个"
                f"（人次 {wan_people(p)} 万、金额 {wan_yuan(a)} 万元，未计入）；未提交 {not_sub} 个")



def subtree_stats(session: Session, org_id: int, round_id: int) -> SubtreeStats:
    """An organisation's own live entries and its direct subordinates' figures (snapshots for
    submitted and accepted ones)."""
    org = session.get(Organisation, org_id)
    if org is None:
        raise NotFound(f"找不到单位 #{org_id}", code="org.not_found")
    rec = session.execute(
        select(Record).where(Record.org_id == org_id, Record.round_id == round_id)
    ).scalar_one_or_none()
    own: Lines = {}
    if rec is not None:
        for table in (Purchase, AggregateLine):
            live = [table.voided_at.is_(None)] if table is Purchase else []  # type: ignore[attr-defined]
            for channel, people, amount in session.execute(
                select(table.channel, func.sum(table.people), func.sum(table.amount_fen))
                .where(table.record_id == rec.id, *live).group_by(table.channel)
            ).all():
                own = add_lines(own, {channel: (int(people or 0), int(amount or 0))})
    return SubtreeStats(
        org_id=org_id, org_code=org.code, org_name=org.name, round_id=round_id,
        round_label=_round_label(session, round_id), own=own,
        units=unit_figures(session, round_id, parent_org_id=org_id),
        record_id=rec.id if rec else None, record_state=rec.state if rec else None,
    )



def annex2_for_subtree(session: Session, org_id: int, round_id: int, policy: Policy) -> Annex2Table:
    """The Annex 2 table of an organisation's subtree: its own entries plus its accepted
    subordinates' snapshots; submitted-but-not-accepted subordinates are named in the status
    note with their numbers, not counted. A submitted or accepted organisation shows its
    snapshot (what it sent up)."""
    rec = session.execute(
        select(Record).where(Record.org_id == org_id, Record.round_id == round_id)
    ).scalar_one_or_none()
    if rec is not None and rec.state in FROZEN_STATES:
        return annex2_for_record(session, rec.id or 0, policy)
    st = subtree_stats(session, org_id, round_id)
    return Annex2Table(
        unit_name=st.org_name, round_label=st.round_label, rows=annex2_rows(st.accepted, policy),
        # No 填表时间 given: blank for the hand to fill, not today's date.
        reporter=rec.reporter if rec else None, fill_date=rec.fill_date if rec else None,
        phone=rec.phone if rec else None, status_note=st.note(), draft=rec is not None,
    )



def live_rollup_by_path(session: Session, parent_org_id: int, round_id: int) -> dict[int, Lines]:
    """Live progress: per direct subordinate of ``parent_org_id`` (by org id), the purchases and
    aggregate lines of every record in its subtree, whatever their states.

    One GROUP BY per ledger table over the ledger joined to record and organisation, restricted
    by the parent's materialised path prefix; the subordinate's id is read off each path (the
    component after the prefix), so no join to the subordinates is needed.
    """
    parent = session.get(Organisation, parent_org_id)
    if parent is None:
        raise NotFound(f"找不到单位 #{parent_org_id}", code="org.not_found")
    org, rec = Organisation.__table__, Record.__table__
    rest = func.substr(org.c.path, len(parent.path) + 1)
    slash = func.instr(rest, "/") if session.get_bind().dialect.name == "sqlite" else func.strpos(rest, "/")
    unit_id = cast(func.substr(rest, 1, slash - 1), Integer).label("unit_id")
    out: dict[int, Lines] = {}
    for table in (Purchase.__table__, AggregateLine.__table__):
        rows = session.execute(
            select(unit_id, table.c.channel, func.sum(table.c.people), func.sum(table.c.amount_fen))
            .select_from(table.join(rec, rec.c.id == table.c.record_id).join(org, org.c.id == rec.c.org_id))
            .where(rec.c.round_id == round_id, org.c.path.startswith(parent.path), org.c.id != parent_org_id,
                   *([table.c.voided_at.is_(None)] if "voided_at" in table.c else []))
            .group_by(unit_id, table.c.channel)
        ).all()
        for uid, channel, people, amount in rows:
            out[int(uid)] = add_lines(out.get(int(uid), {}), {channel: (int(people or 0), int(amount or 0))})
    return out



def province_tables(session: Session, round_id: int, policy: Policy, *, root_org_id: int) -> list[Annex2Table]:
    """One Annex 2 table per reporting unit under ``root_org_id`` (the receiver), from
    snapshots: submitted and accepted units show what they sent; the others show zeros and
    "未报送"."""
    label = _round_label(session, round_id)
    tables = []
    units = unit_figures(session, round_id, parent_org_id=root_org_id)
    # The notice's official order (policy data), then code order for units it does not name.
    for unit in sorted(units, key=lambda u: policy.official_rank(u.org_name)):
        if unit.state in FROZEN_STATES:
            tables.append(unit_table(session, unit, policy, label))
        else:
            tables.append(Annex2Table(
                unit_name=unit.org_name, round_label=label, rows=annex2_rows({}, policy),
                reporter=unit.reporter, fill_date=None, phone=unit.phone,
                status_note=f"未报送（{unit.state_label}）", reported=False,
            ))
    return tables



# --- comparison between rounds --------------------------------------------------------------


@dataclass(frozen=True)
class ComparisonRow:
    org_code: str
    org_name: str
    before_label: str
    before_state: str | None
    before_people: int
    before_fen: int
    after_label: str
    after_state: str | None
    after_people: int
    after_fen: int

    @property
    def change_fen(self) -> int:
        return self.after_fen - self.before_fen

    @property
    def change_percent(self) -> Decimal | None:
        if self.before_fen == 0:
            return None
        return (Decimal(self.change_fen) * 100 / Decimal(self.before_fen)).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )



def comparison(session: Session, parent_org_id: int, before_round_id: int, after_round_id: int) -> list[ComparisonRow]:
    """Per direct subordinate of ``parent_org_id``: its figure in two rounds (snapshots for
    submitted/accepted, live otherwise), the change and the change in percent."""
    before = {u.org_id: u for u in unit_figures(session, before_round_id, parent_org_id=parent_org_id)}
    after = {u.org_id: u for u in unit_figures(session, after_round_id, parent_org_id=parent_org_id)}
    b_label, a_label = _round_label(session, before_round_id), _round_label(session, after_round_id)
    orgs = session.execute(
        select(Organisation.id, Organisation.code, Organisation.name)
        .where(Organisation.parent_id == parent_org_id).order_by(Organisation.code)
    ).all()
    out = []
    for oid, code, name in orgs:
        b, a = before.get(oid), after.get(oid)
        if b is None and a is None:
            continue
        out.append(ComparisonRow(
            org_code=code, org_name=name,
            before_label=b_label, before_state=b.state if b else None,
            before_people=b.people if b else 0, before_fen=b.amount_fen if b else 0,
            after_label=a_label, after_state=a.state if a else None,
            after_people=a.people if a else 0, after_fen=a.amount_fen if a else 0,
        ))
    return out



# --- completeness and chasing ---------------------------------------------------------------

#: ``children``: per federation, its direct subordinates; ``subtree``: per reporting unit (or per
#: organisation directly under ``under_org_id``), every record below it.
Scope = Literal["children", "subtree"]

SCOPES: tuple[Scope, ...] = ("children", "subtree")



@dataclass(frozen=True)
class CompletenessRow:
    """One group's records in a round (the last row is the total, ``org_id`` None).

    Attributes:
        org_id, org_code, org_name: the federation (``children``) or the unit (``subtree``).
        total: its subordinates (direct ones, or its whole subtree below it).
        planned … accepted: of those, per state.
        overdue: of those, not submitted and past their report deadline (or flagged).
        late: of those, submitted after their deadline.
        snapshots: records with a snapshot (in ``subtree`` scope the unit's own included, as for
            every field below).
        mismatched: of those, fresh snapshots whose people or amount total differs from the
            record's live sums: its purchases, aggregate lines and accepted children's snapshots
            (None when not checked).
        grassroots, grassroots_accepted: grassroots records, and the accepted ones.
        accepted_people, accepted_fen: the accepted grassroots records' snapshot totals.
        own_state, own_overdue: ``subtree`` only: the unit's own record.
    """

    org_id: int | None
    org_code: str
    org_name: str
    total: int = 0
    planned: int = 0
    purchased: int = 0
    summarized: int = 0
    submitted: int = 0
    accepted: int = 0
    overdue: int = 0
    late: int = 0
    snapshots: int = 0
    mismatched: int | None = 0
    grassroots: int = 0
    grassroots_accepted: int = 0
    accepted_people: int = 0
    accepted_fen: int = 0
    own_state: str | None = None
    own_overdue: bool = False

    @property
    def not_submitted(self) -> int:
        return self.planned + self.purchased + self.summarized

    @property
    def subordinates(self) -> int:
        return self.total

    @property
    def by_state(self) -> dict[str, int]:
        return {s: getattr(self, s) for s in states.STATES}

    @property
    def adds_up(self) -> bool | None:
        return None if self.mismatched is None else self.mismatched == 0

    @property
    def submitted_percent(self) -> Decimal:
        if self.total == 0:
            return Decimal("0.00")
        return (Decimal(self.submitted + self.accepted) * 100 / self.total).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "subordinates": self.subordinates, "by_state": self.by_state,
                "not_submitted": self.not_submitted,
                "submitted_percent": str(self.submitted_percent), "adds_up": self.adds_up}



#: Per-record measures summed per group: below the unit only, or (``subtree``) the unit included.
_BELOW = ("overdue", "late")

_INCLUDED = ("snapshots", "mismatched", "grassroots", "grassroots_accepted", "accepted_people",
             "accepted_fen")



def _live_totals(round_id: int) -> Any:
    """Per record of the round, the live (people, amount_fen) a snapshot would freeze now: its
    purchases, its aggregate lines and its accepted children's snapshots (one GROUP BY)."""
    rec, pur, agg, snap = Record.__table__, Purchase.__table__, AggregateLine.__table__, Snapshot.__table__
    sup = Supplement.__table__  # type: ignore[attr-defined]
    own_sup = sup.alias("own_sup")
    child = rec.alias("child")

    def part(key: Any, people: Any, amount: Any, source: Any, *where: Any) -> Any:
        return select(key.label("rid"), people.label("people"), amount.label("amount")) \
            .select_from(source).where(*where)

    parts = union_all(
        part(pur.c.record_id, pur.c.people, pur.c.amount_fen,
             pur.join(rec, rec.c.id == pur.c.record_id), rec.c.round_id == round_id, pur.c.voided_at.is_(None)),
        part(agg.c.record_id, agg.c.people, agg.c.amount_fen,
             agg.join(rec, rec.c.id == agg.c.record_id), rec.c.round_id == round_id),
        part(child.c.parent_id, snap.c.people_total, snap.c.amount_total_fen,
             child.join(snap, snap.c.id == child.c.snapshot_id),
             child.c.round_id == round_id, child.c.state == states.ACCEPTED),
        # 补报: the accepted children's accepted supplements count like their snapshots; the
        # record's own sent supplements stand beside its snapshot (so are taken off here).
        part(child.c.parent_id, sup.c.people_total, sup.c.amount_total_fen,
             child.join(sup, sup.c.record_id == child.c.id),
             child.c.round_id == round_id, child.c.state == states.ACCEPTED,
             sup.c.state == supplement_rule.ACCEPTED),
        part(own_sup.c.record_id, -own_sup.c.people_total, -own_sup.c.amount_total_fen,
             own_sup.join(rec, rec.c.id == own_sup.c.record_id),
             rec.c.round_id == round_id, own_sup.c.state.in_(supplement_rule.LIVE)),
    ).subquery("parts")
    return (
        select(parts.c.rid, func.sum(parts.c.people).label("people"), func.sum(parts.c.amount).label("amount"))
        .group_by(parts.c.rid)
        .subquery("live")
    )



def _grouped(session: Session, source: Any, where: list[Any], keys: dict[str, Any],
             measures: dict[str, Any]) -> list[Any]:
    """``SUM`` of per-record ``measures`` grouped by ``keys`` (a subquery names the keys, so a
    key with bound parameters groups the same on PostgreSQL); rows with a NULL ``grp`` dropped."""
    per = (
        select(*(v.label(k) for k, v in keys.items()), *(v.label(k) for k, v in measures.items()))
        .select_from(source).where(*where).subquery("per_record")
    )
    return list(session.execute(
        select(*(per.c[k] for k in keys), func.count().label("n"), *(func.sum(per.c[k]).label(k) for k in measures))
        .where(per.c.grp.is_not(None))
        .group_by(*(per.c[k] for k in keys))
    ).all())



def _group_sums(
    session: Session, round_id: int, *, now: datetime, group: Any, is_self: Any, join_org: bool,
    check_snapshots: bool,
) -> tuple[list[Any], list[Any]]:
    """Two set-based statements over the round's records, keyed (``grp``, ``is_self``): counts
    and flags per state (no join but the snapshot check's), and the accepted grassroots records'
    snapshot totals (only those records, through the state index)."""
    rec, org, snap = Record.__table__, Organisation.__table__, Snapshot.__table__

    def flag(*cond: Any) -> Any:
        return case((and_(*cond), 1), else_=0)

    base = rec.join(org, org.c.id == rec.c.org_id) if join_org else rec
    grassroots = rec.c.is_grassroots.is_(True)
    measures = {
        "overdue": flag(rec.c.state.not_in(FROZEN_STATES), or_(rec.c.is_overdue, rec.c.report_deadline <= now)),
        "late": flag(rec.c.is_late),
        "snapshots": flag(rec.c.snapshot_id.is_not(None)),
        "mismatched": cast(null(), Integer),
        "grassroots": flag(grassroots),
        "grassroots_accepted": flag(grassroots, rec.c.state == states.ACCEPTED),
    }
    source = base
    if check_snapshots:
        live = _live_totals(round_id)
        source = base.outerjoin(snap, snap.c.id == rec.c.snapshot_id).outerjoin(live, live.c.rid == rec.c.id)
        adds_up = and_(snap.c.people_total == func.coalesce(live.c.people, 0),
                       snap.c.amount_total_fen == func.coalesce(live.c.amount, 0))
        measures["mismatched"] = flag(snap.c.id.is_not(None), rec.c.snapshot_stale.is_(False), ~adds_up)
    keys = {"grp": group, "is_self": is_self}
    counts = _grouped(session, source, [rec.c.round_id == round_id], {**keys, "state": rec.c.state}, measures)
    accepted = _grouped(
        session, base.join(snap, snap.c.id == rec.c.snapshot_id),
        [rec.c.round_id == round_id, rec.c.state == states.ACCEPTED, grassroots], keys,
        {"accepted_people": snap.c.people_total, "accepted_fen": snap.c.amount_total_fen},
    )
    return counts, accepted



def completeness(
    session: Session, round_id: int, *, now: datetime, scope: Scope = "children",
    under_org_id: int | None = None, check_snapshots: bool = True, use_rollup: bool = True,
) -> list[CompletenessRow]:
    """How complete a round is, per group, then a total row (全省合计, or 合计 under
    ``under_org_id``). The completeness report (issue 4), the round status (issue 3) and the web
    overview all read it.

    Two grouped statements over the round's records (counts and flags per state; the accepted
    grassroots records' snapshot totals), keyed by an integer on the record row: the parent
    organisation (``children``), or (``subtree``) the record itself for a unit and its parent
    record otherwise; then the distinct group keys are mapped to their units through their
    materialised paths and summed (a loop over groups — hundreds at province scale — never over
    records). No ``path LIKE`` join over the round.

    Args:
        session: an open session.
        round_id: the round.
        now: the instant overdue is judged at.
        scope: ``children``: one row per federation (every organisation with subordinate
            records in the round) counting its *direct* subordinates; ``subtree``: one row per
            reporting unit (with ``under_org_id``: per organisation directly under it with a
            record in the round) counting every record below it, with the unit's own state.
        under_org_id: ``children``: only federations in this organisation's subtree (itself
            included); ``subtree``: the organisation whose children are the units.
        check_snapshots: compare fresh snapshots with live sums (``mismatched``); without it
            ``mismatched`` is None and no purchase is read.
        use_rollup: ``subtree`` without the snapshot check reads the units' rows of the rollup
            table (:mod:`workflow.store.rollup`: tens of rows per unit, kept current by every
            transition) instead of grouping the round's records; False forces the full scan
            (the test compares both).

    Returns:
        :class:`CompletenessRow` per group (by depth, code), then the total row.
    """
    if scope not in SCOPES:
        raise BadInput(f"统计范围只能是 {'、'.join(SCOPES)}，收到“{scope}”", code="report.scope")
    rec, org = Record.__table__, Organisation.__table__
    root = None
    if under_org_id is not None:
        root = session.get(Organisation, under_org_id)
        if root is None:
            raise NotFound(f"找不到单位 #{under_org_id}", code="org.not_found")
    info = select(org.c.id, org.c.code, org.c.name, org.c.depth, org.c.path)
    own_state: dict[int, str] = {}  # subtree: unit organisation -> its record's state
    if scope == "children":
        counts, accepted = _group_sums(session, round_id, now=now, group=org.c.parent_id, is_self=false(),
                                       join_org=True, check_snapshots=check_snapshots)
        if root is not None:
            info = info.where(org.c.path.startswith(root.path))
    else:
        # A unit's record: a reporting unit's, or one of an organisation directly under root,
        # i.e. whose parent record is root's (an integer compare on the row), or, when root has
        # no record (the receiving province), a parentless record of one of root's children.
        root_record = None if root is None else session.execute(
            select(rec.c.id).where(rec.c.org_id == root.id, rec.c.round_id == round_id)
        ).scalar_one_or_none()
        if root is None:
            is_self = rec.c.is_reporting_unit.is_(True)
        elif root_record is not None:
            is_self = rec.c.parent_id == root_record
        else:
            is_self = and_(rec.c.parent_id.is_(None),
                           rec.c.org_id.in_(select(org.c.id).where(org.c.parent_id == root.id)))
        if use_rollup and not check_snapshots:
            return _completeness_from_rollup(session, round_id, now=now, root=root, is_self=is_self)
        own_state = dict(session.execute(
            select(rec.c.org_id, rec.c.state).where(rec.c.round_id == round_id, is_self)
        ).all())
        counts, accepted = _group_sums(
            session, round_id, now=now, group=case((is_self, rec.c.id), else_=rec.c.parent_id),
            is_self=is_self, join_org=False, check_snapshots=check_snapshots,
        )
        info = info.where(org.c.id.in_(select(rec.c.org_id).where(rec.c.round_id == round_id, is_self)))
    if scope == "children":  # the federations: the distinct parent organisations (hundreds)
        info = info.where(org.c.id.in_(sorted({g.grp for g in counts})))
    orgs = {o.id: o for o in session.execute(info).all()}
    if scope == "children":
        unit_of = {g.grp: g.grp for g in counts if g.grp in orgs}
    else:
        unit_of = _units_of_groups(session, {g.grp for g in counts}, {o.path: o.id for o in orgs.values()})
    sums: dict[int, dict[str, Any]] = {}
    for row in [*counts, *accepted]:
        if (unit := unit_of.get(row.grp)) is None:
            continue  # outside the units' subtrees
        acc = sums.setdefault(unit, {"mismatched": 0 if check_snapshots else None})
        named = row._mapping
        if "state" in named:  # a counts row
            if row.is_self:
                acc["own_overdue"] = bool(named["overdue"])
            else:
                for f in ("total", row.state):
                    acc[f] = acc.get(f, 0) + int(row.n)
                for f in _BELOW:
                    acc[f] = acc.get(f, 0) + int(named[f] or 0)
        for f in _INCLUDED:
            if f in named and acc.get(f, 0) is not None:
                acc[f] = acc.get(f, 0) + int(named[f] or 0)
    rows = [
        CompletenessRow(o.id, o.code, o.name, **sums.get(o.id, {}),
                        **({"own_state": own_state[o.id]} if scope == "subtree" else {}))
        for o in sorted(orgs.values(), key=lambda o: (o.depth, o.code))
        if o.id in sums or scope == "subtree"
    ]
    return [*rows, _total_row(root, rows, check_snapshots)]



def _total_row(root: Organisation | None, rows: list[CompletenessRow], check_snapshots: bool) -> CompletenessRow:
    total_name = f"{root.name}合计" if root is not None and root.parent_id is not None else "全省合计"
    return CompletenessRow(None, "", total_name, **{
        f: (None if f == "mismatched" and not check_snapshots else sum(getattr(r, f) or 0 for r in rows))
        for f in ("total", *states.STATES, *_BELOW, *_INCLUDED)
    })


def _completeness_from_rollup(session: Session, round_id: int, *, now: datetime, root: Organisation | None,
                              is_self: Any) -> list[CompletenessRow]:
    """:func:`completeness` in ``subtree`` scope without the snapshot check, from the rollup:
    each unit's rows are the records below it; its own record is added to the included figures."""
    rec, org, snap = Record.__table__, Organisation.__table__, Snapshot.__table__
    own = {r.org_id: r for r in session.execute(
        select(rec.c.org_id, rec.c.state, rec.c.is_overdue, rec.c.is_late, rec.c.report_deadline,
               rec.c.is_grassroots, rec.c.snapshot_id, snap.c.people_total, snap.c.amount_total_fen,
               org.c.code, org.c.name, org.c.depth)
        .join(org, org.c.id == rec.c.org_id)
        .outerjoin(snap, snap.c.id == rec.c.snapshot_id)
        .where(rec.c.round_id == round_id, is_self)
    ).all()}
    frozen = set(FROZEN_STATES)

    def overdue(state: str, flag: bool, deadline: datetime) -> bool:
        return state not in frozen and (bool(flag) or deadline <= now)

    def add_included(acc: dict[str, Any], n: int, state: str, grassroots: bool, has_snapshot: bool,
                     people: int, fen: int) -> None:
        acc["snapshots"] += n if has_snapshot else 0
        if grassroots:
            acc["grassroots"] += n
            acc["grassroots_accepted"] += n if state == states.ACCEPTED else 0
            acc["accepted_people"] += people
            acc["accepted_fen"] += fen

    rows = []
    by_unit = rollup.read(session, round_id, sorted(own))
    for unit_id, u in sorted(own.items(), key=lambda kv: (kv[1].depth, kv[1].code)):
        acc: dict[str, Any] = dict.fromkeys(("total", *states.STATES, *_BELOW, *_INCLUDED), 0)
        acc["mismatched"] = None
        for key, n, people, fen in by_unit.get(unit_id, []):
            acc["total"] += n
            acc[key.state] += n
            acc["overdue"] += n if overdue(key.state, key.is_overdue, key.report_deadline) else 0
            acc["late"] += n if key.is_late else 0
            add_included(acc, n, key.state, key.is_grassroots, key.has_snapshot, people, fen)
        accepted = u.state == states.ACCEPTED
        add_included(acc, 1, u.state, bool(u.is_grassroots), u.snapshot_id is not None,
                     int(u.people_total or 0) if accepted else 0, int(u.amount_total_fen or 0) if accepted else 0)
        rows.append(CompletenessRow(unit_id, u.code, u.name, **acc, own_state=u.state,
                                    own_overdue=overdue(u.state, u.is_overdue, u.report_deadline)))
    return [*rows, _total_row(root, rows, False)]


def _units_of_groups(session: Session, group_ids: set[int], unit_paths: dict[str, int]) -> dict[int, int]:
    """Group key (a record id) -> the unit organisation whose subtree holds its organisation."""
    rec, org = Record.__table__, Organisation.__table__
    ids = sorted(group_ids)
    out: dict[int, int] = {}
    for start in range(0, len(ids), UNIT_CHUNK):
        for gid, path in session.execute(
            select(rec.c.id, org.c.path).join(org, org.c.id == rec.c.org_id)
            .where(rec.c.id.in_(ids[start:start + UNIT_CHUNK]))
        ).all():
            cut = 0
            while (cut := path.find("/", cut + 1)) != -1:
                if (unit := unit_paths.get(path[:cut + 1])) is not None:
                    out[gid] = unit
                    break
    return out



CHASE_HEADERS = ("单位代码", "单位名称", "状态", "报送截止", "是否逾期", "填报员", "填报员电话", "单位电话")



@dataclass(frozen=True)
class UnsubmittedUnit:
    """A direct subordinate whose record has not been sent up yet (the 催报 list's row and the
    province workbook's 未报送单位 sheet)."""

    org_id: int
    code: str
    name: str
    state: str
    deadline: datetime
    overdue: bool
    phone: str | None
    clerks: tuple[tuple[str, str | None], ...]  # (name, phone) of the active clerks
    reporter: str | None = None  # the record's 填报人, if filled in

    @property
    def state_label(self) -> str:
        return states.STATE_LABELS[self.state]

    @property
    def deadline_text(self) -> str:
        return f"{clock.deadline_last_day(self.deadline):%Y年%m月%d日}"


def unsubmitted_units(session: Session, round_id: int, parent_org_id: int, *, now: datetime | None = None,
                      ) -> list[UnsubmittedUnit]:
    """The direct subordinates of ``parent_org_id`` not yet submitted in a round (not in a
    frozen state), with their active clerks; ordered by code. ``overdue`` also counts a
    deadline passed at ``now``."""
    now = now or clock.now()
    rec, org = Record.__table__, Organisation.__table__
    mem, usr = Membership.__table__, User.__table__
    rows = session.execute(
        select(org.c.id, org.c.code, org.c.name, rec.c.state, rec.c.report_deadline, rec.c.is_overdue, org.c.phone,
               rec.c.reporter)
        .select_from(rec.join(org, org.c.id == rec.c.org_id))
        .where(rec.c.round_id == round_id, org.c.parent_id == parent_org_id, rec.c.state.not_in(FROZEN_STATES))
        .order_by(org.c.code)
    ).all()
    # The clerks' names and phones, joined here rather than aggregated in SQL: a phone may be
    # encrypted at rest (workflow.store.types.PersonalText), read back in clear only row by row.
    clerks: dict[int, list[tuple[str, str | None]]] = {}
    if rows:
        for org_id, name, phone in session.execute(
            select(mem.c.org_id, usr.c.display_name, usr.c.phone)
            .select_from(mem.join(usr, usr.c.id == mem.c.user_id))
            .where(mem.c.role == states.CLERK, usr.c.is_active.is_(True), mem.c.org_id.in_([r[0] for r in rows]))
            .order_by(mem.c.org_id, usr.c.id)
        ):
            clerks.setdefault(org_id, []).append((name, phone))
    return [
        UnsubmittedUnit(org_id, code, name, state, deadline, bool(overdue or deadline <= now), phone,
                        tuple(clerks.get(org_id, [])), reporter)
        for org_id, code, name, state, deadline, overdue, phone, reporter in rows
    ]


def chase_list(session: Session, round_id: int, parent_org_id: int, *, now: datetime | None = None) -> list[tuple[Any, ...]]:
    """The direct subordinates of ``parent_org_id`` not yet submitted in a round, with their
    clerks' names and phones (催报), one row per subordinate in :data:`CHASE_HEADERS` order."""
    return [
        (u.code, u.name, u.state_label, u.deadline_text, "是" if u.overdue else "否",
         "、".join(n for n, _p in u.clerks) or "（无填报员）",
         "、".join(p or "未登记" for _n, p in u.clerks), u.phone or "")
        for u in unsubmitted_units(session, round_id, parent_org_id, now=now)
    ]



def record_of(session: Session, org_id: int, round_id: int) -> Record | None:
    """An organisation's record in a round, if it has one."""
    return session.execute(
        select(Record).where(Record.org_id == org_id, Record.round_id == round_id)
    ).scalar_one_or_none()


def receiver_root(session: Session, receiver_kind: str) -> Organisation | None:
    """The root organisation of the receiver's kind (the province)."""
    return session.execute(
        select(Organisation).where(Organisation.kind == receiver_kind, Organisation.parent_id.is_(None))
        .order_by(Organisation.id)
    ).scalars().first()


def child_highlights(session: Session, record_id: int) -> list[Any]:
    """(name, work highlights, state) of the children of a record that wrote highlights."""
    child_org = Organisation.__table__
    return list(session.execute(
        select(child_org.c.name, Record.work_highlights, Record.state)
        .join(child_org, child_org.c.id == Record.org_id)
        .where(Record.parent_id == record_id, Record.work_highlights.is_not(None), Record.work_highlights != "")
        .order_by(child_org.c.code)
    ).all())


class Reports:
    """The read side's sums as the use cases ask for them, on the unit's transaction (the
    functions above take the session; nothing above the store sees it)."""

    def __init__(self, uow: Transaction) -> None:
        self._uow = uow

    def snapshot_lines(self, record_id: int) -> tuple[dict[str, tuple[int, int]], list[str]]:
        """See :func:`snapshot_lines`."""
        return snapshot_lines(self._uow.session, record_id)

    def snapshot_parts(self, record_id: int) -> dict[str, Lines]:
        """See :func:`snapshot_parts`."""
        return snapshot_parts(self._uow.session, record_id)

    def children_status(self, record_id: int, *, limit: int = 50) -> tuple[dict[str, int], list[Any]]:
        """See :func:`children_status`."""
        return children_status(self._uow.session, record_id, limit=limit)

    def unit_figures(self, round_id: int, *, parent_org_id: int | None = None, record_ids: Sequence[int] = (), live: bool = False) -> list[UnitFigures]:
        """See :func:`unit_figures`."""
        return unit_figures(self._uow.session, round_id, parent_org_id=parent_org_id, record_ids=record_ids, live=live)

    def unit_table(self, unit: UnitFigures, policy: Policy, round_label: str) -> Annex2Table:
        return unit_table(self._uow.session, unit, policy, round_label)

    def subtree_stats(self, org_id: int, round_id: int) -> SubtreeStats:
        """See :func:`subtree_stats`."""
        return subtree_stats(self._uow.session, org_id, round_id)

    def annex2_for_subtree(self, org_id: int, round_id: int, policy: Policy) -> Annex2Table:
        """See :func:`annex2_for_subtree`."""
        return annex2_for_subtree(self._uow.session, org_id, round_id, policy)

    def province_tables(self, round_id: int, policy: Policy, *, root_org_id: int) -> list[Annex2Table]:
        """See :func:`province_tables`."""
        return province_tables(self._uow.session, round_id, policy, root_org_id=root_org_id)

    def comparison(self, parent_org_id: int, before_round_id: int, after_round_id: int) -> list[ComparisonRow]:
        """See :func:`comparison`."""
        return comparison(self._uow.session, parent_org_id, before_round_id, after_round_id)

    def completeness(self, round_id: int, *, now: datetime, scope: Scope = 'children', under_org_id: int | None = None, check_snapshots: bool = True, use_rollup: bool = True) -> list[CompletenessRow]:
        """See :func:`completeness`."""
        return completeness(self._uow.session, round_id, now=now, scope=scope, under_org_id=under_org_id, check_snapshots=check_snapshots, use_rollup=use_rollup)

    def unsubmitted_units(self, round_id: int, parent_org_id: int, *, now: datetime | None = None,
                          ) -> list[UnsubmittedUnit]:
        """See :func:`unsubmitted_units`."""
        return unsubmitted_units(self._uow.session, round_id, parent_org_id, now=now)

    def chase_list(self, round_id: int, parent_org_id: int, *, now: datetime | None = None) -> list[tuple[Any, ...]]:
        """See :func:`chase_list`."""
        return chase_list(self._uow.session, round_id, parent_org_id, now=now)

    def record_of(self, org_id: int, round_id: int) -> Record | None:
        """An organisation's record in a round, if it has one."""
        return record_of(self._uow.session, org_id, round_id)

    def receiver_root(self, receiver_kind: str) -> Organisation | None:
        """The root organisation of the receiver's kind (the province)."""
        return receiver_root(self._uow.session, receiver_kind)

    def child_highlights(self, record_id: int) -> list[Any]:
        """(name, work highlights, state) of the children of a record that wrote highlights."""
        return child_highlights(self._uow.session, record_id)
