"""Supplements (补报): figures accepted below a record after it sent its report up.

A supplement belongs to one record (the federation whose sent report it completes) and is
decided by that record's parent's reviewers, like the report. Its lines are a copy of what it
carries: the late child's snapshot lines, or a child's accepted supplement forwarded up.

The one rule the read side and ``bangfu verify`` share (see :func:`accepted_lines_of`): a sent
record's figures are its snapshot plus its **accepted** supplements; a record's live sums add
its children's figures, so a child's accepted supplement counts in its parent's next summary
exactly as the child's snapshot does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update

from workflow.domain.errors import NotFound
from workflow.domain.figures import Lines
from workflow.domain.money import yuan
from workflow.store.tables import Supplement, SupplementLine
from workflow.store.transaction import Transaction

SUP, SUPL = Supplement.__table__, SupplementLine.__table__  # type: ignore[attr-defined]

SUBMITTED, ACCEPTED, SUPERSEDED = "submitted", "accepted", "superseded"
#: States in which a supplement has been sent up (and so stands beside the record's snapshot).
LIVE = (SUBMITTED, ACCEPTED)

STATE_LABELS = {SUBMITTED: "待上级审核", ACCEPTED: "已通过", SUPERSEDED: "已并入重新汇总"}


@dataclass(frozen=True)
class SupplementView:
    """A supplement as plain values."""

    id: int
    record_id: int
    seq: int
    state: str
    people_total: int
    amount_total_fen: int
    late_units: list[tuple[str, str]]  # (code, name)
    lines: Lines
    created_at: datetime
    decided_at: datetime | None

    @property
    def state_label(self) -> str:
        return STATE_LABELS.get(self.state, self.state)

    @property
    def label(self) -> str:
        return f"补报{self.seq}"

    @property
    def units_text(self) -> str:
        return "、".join(f"{name}（{code}）" for code, name in self.late_units)


def accepted_lines_of(record_id_column: Any, *where: Any) -> Any:
    """``(record id, channel, people, amount)`` of the accepted supplements of the records whose
    id is ``record_id_column`` (a correlated column of the caller's FROM), for a UNION ALL of
    figures; ``where`` restricts the caller's side."""
    return (select(record_id_column, SUPL.c.channel, SUPL.c.people, SUPL.c.amount_fen)
            .select_from(SUP.join(SUPL, SUPL.c.supplement_id == SUP.c.id))
            .where(SUP.c.record_id == record_id_column, SUP.c.state == ACCEPTED, *where))


def views(execute: Callable[[Any], Any], *where: Any) -> list[SupplementView]:
    """Supplements with their lines, by record and number (two statements, whatever the count)."""
    rows = execute(select(SUP).where(*where).order_by(SUP.c.record_id, SUP.c.seq)).mappings().all()
    if not rows:
        return []
    ids = [int(r["id"]) for r in rows]
    lines: dict[int, Lines] = {}
    for sid, ch, p, a in execute(
            select(SUPL.c.supplement_id, SUPL.c.channel, SUPL.c.people, SUPL.c.amount_fen)
            .where(SUPL.c.supplement_id.in_(ids))):
        lines.setdefault(int(sid), {})[str(ch)] = (int(p), int(a))
    return [SupplementView(
        id=int(r["id"]), record_id=int(r["record_id"]), seq=int(r["seq"]), state=str(r["state"]),
        people_total=int(r["people_total"]), amount_total_fen=int(r["amount_total_fen"]),
        late_units=[(str(c), str(n)) for c, n in json.loads(r["late_units"] or "[]")],
        lines=lines.get(int(r["id"]), {}), created_at=r["created_at"], decided_at=r["decided_at"],
    ) for r in rows]


def note(supplements: list[SupplementView], *, total_people: int, total_fen: int) -> str | None:
    """The Annex 2 note of a sent report with supplements: the original, then each live
    supplement with the units that came late (the rows count the original and the accepted
    ones); None without live supplements."""
    live = [s for s in supplements if s.state in LIVE]
    if not live:
        return None
    accepted = [s for s in live if s.state == ACCEPTED]
    people = total_people - sum(s.people_total for s in accepted)
    fen = total_fen - sum(s.amount_total_fen for s in accepted)
    parts = [f"原报：{people:,} 人次、{yuan(fen)} 元"]
    for s in live:
        counted = "已计入" if s.state == ACCEPTED else "未计入"
        parts.append(f"{s.label}（迟交单位：{s.units_text}；{s.state_label}，{counted}）："
                     f"{s.people_total:,} 人次、{yuan(s.amount_total_fen)} 元")
    return "含补报。" + "；".join(parts)


class Supplements:
    """The supplements of a round's records."""

    def __init__(self, uow: Transaction) -> None:
        self._uow = uow

    def add(self, *, record_id: int, lines: Lines, late_units: list[tuple[str, str]], now: datetime,
            source_record_id: int | None = None, source_supplement_id: int | None = None) -> SupplementView:
        """File a new supplement of ``record_id`` (state submitted), numbered after its last."""
        seq = int(self._uow.execute(
            select(func.coalesce(func.max(SUP.c.seq), 0)).where(SUP.c.record_id == record_id)).scalar_one()) + 1
        people = sum(p for p, _a in lines.values())
        amount = sum(a for _p, a in lines.values())
        sid = int(self._uow.execute(insert(SUP).values(
            record_id=record_id, seq=seq, state=SUBMITTED, people_total=people, amount_total_fen=amount,
            late_units=json.dumps([list(u) for u in late_units], ensure_ascii=False),
            source_record_id=source_record_id, source_supplement_id=source_supplement_id, created_at=now,
        ).returning(SUP.c.id)).scalar_one())
        if lines:
            self._uow.execute(insert(SUPL), [
                {"supplement_id": sid, "channel": c, "people": p, "amount_fen": a} for c, (p, a) in sorted(lines.items())])
        return self.get(sid)

    def get(self, supplement_id: int) -> SupplementView:
        """One supplement with its lines.

        Raises:
            NotFound: ``supplement.not_found``.
        """
        found = self._views(SUP.c.id == supplement_id)
        if not found:
            raise NotFound(f"找不到补报 #{supplement_id}", code="supplement.not_found")
        return found[0]

    def for_record(self, record_id: int) -> list[SupplementView]:
        """Every supplement of a record, in order (superseded ones too: the page shows them)."""
        return self._views(SUP.c.record_id == record_id)

    def for_records(self, record_ids: list[int]) -> dict[int, list[SupplementView]]:
        """The supplements of many records (a workbook's units), by record."""
        out: dict[int, list[SupplementView]] = {}
        for start in range(0, len(record_ids), 5000):
            for v in self._views(SUP.c.record_id.in_(record_ids[start:start + 5000])):
                out.setdefault(v.record_id, []).append(v)
        return out

    def _views(self, *where: Any) -> list[SupplementView]:
        return views(self._uow.execute, *where)

    def accept(self, supplement_id: int, *, user_id: int, now: datetime) -> bool:
        """Mark a submitted supplement accepted; False when it is no longer submitted."""
        result = self._uow.execute(
            update(SUP).where(SUP.c.id == supplement_id, SUP.c.state == SUBMITTED)
            .values(state=ACCEPTED, decided_at=now, decided_by_user_id=user_id))
        return bool(result.rowcount == 1)

    def supersede(self, record_id: int, *, now: datetime) -> int:
        """A record's report leaves the sent states (withdrawn, returned, revoked): its live
        supplements are folded into its next summary. Returns how many there were."""
        result = self._uow.execute(
            update(SUP).where(and_(SUP.c.record_id == record_id, SUP.c.state.in_(LIVE)))
            .values(state=SUPERSEDED, decided_at=now))
        return int(result.rowcount or 0)

    def pending_count(self, record_ids: list[int]) -> int:
        """How many submitted supplements the given records hold (a reviewer's inbox)."""
        if not record_ids:
            return 0
        return int(self._uow.execute(select(func.count()).select_from(SUP).where(
            SUP.c.record_id.in_(record_ids), SUP.c.state == SUBMITTED)).scalar_one())


__all__ = ["ACCEPTED", "LIVE", "SUBMITTED", "SUPERSEDED", "SupplementView", "Supplements", "accepted_lines_of",
           "note", "views"]
