"""The chain of numbers recomputed from the ledger, set-based, to find where the stored figures
differ: every snapshot against its parts, every rollup row against the records, every quota
against its plan and every lapsed amount against the purchases (``bangfu verify``).

Each check is a handful of ``GROUP BY`` statements over a round, whatever its size (no statement
per record): a province of 215,000 unions is checked in one pass per table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, func, literal, select, union_all

import states
from workflow.store import rollup, supplements
from workflow.store.tables import (
    AggregateLine,
    Organisation,
    Purchase,
    Record,
    Snapshot,
    SnapshotLine,
    Supplement,
    SupplementLine,
)
from workflow.store.transaction import Transaction

R, ORG, S = Record.__table__, Organisation.__table__, Snapshot.__table__  # type: ignore[attr-defined]
P, A, SL = Purchase.__table__, AggregateLine.__table__, SnapshotLine.__table__  # type: ignore[attr-defined]
SUP, SUPL = Supplement.__table__, SupplementLine.__table__  # type: ignore[attr-defined]

#: States whose snapshot has been sent up: it must hold every part as it stands.
SENT = (states.SUBMITTED, states.ACCEPTED)


@dataclass(frozen=True)
class Difference:
    """One stored figure that is not what the ledger says."""

    org_id: int
    check: str  # snapshot_line | snapshot_total | snapshot_stale_sent | snapshot_missing | rollup | quota | lapsed
    detail: str  # the channel's code, the snapshot's day, the rollup key in words
    expected: tuple[int, ...]
    stored: tuple[int, ...]


class Checks:
    """Recomputations of a round's stored figures (read-only)."""

    def __init__(self, uow: Transaction) -> None:
        self._uow = uow

    def snapshot_lines(self, round_id: int) -> list[Difference]:
        """Each current snapshot's lines against its own live purchases, its aggregate lines and
        its accepted children's snapshot lines now. A snapshot marked stale (summarized, then
        changed) is skipped: it is known to differ until summarized again."""
        holder = and_(R.c.round_id == round_id, R.c.snapshot_id.is_not(None), R.c.snapshot_stale.is_(False))
        child = R.alias("child")
        parts = union_all(
            select(R.c.id.label("rid"), P.c.channel.label("ch"), P.c.people.label("n"), P.c.amount_fen.label("fen"))
            .select_from(R.join(P, P.c.record_id == R.c.id)).where(holder, P.c.voided_at.is_(None)),
            select(R.c.id, A.c.channel, A.c.people, A.c.amount_fen)
            .select_from(R.join(A, A.c.record_id == R.c.id)).where(holder),
            select(R.c.id, SL.c.channel, SL.c.people, SL.c.amount_fen)
            .select_from(R.join(child, and_(child.c.parent_id == R.c.id, child.c.state == states.ACCEPTED))
                         .join(SL, SL.c.snapshot_id == child.c.snapshot_id)).where(holder),
            select(R.c.id, SL.c.channel, -SL.c.people, -SL.c.amount_fen)
            .select_from(R.join(SL, SL.c.snapshot_id == R.c.snapshot_id)).where(holder),
            # 补报: an accepted child's accepted supplements count like its snapshot; the
            # record's own sent supplements stand beside its snapshot.
            select(R.c.id, SUPL.c.channel, SUPL.c.people, SUPL.c.amount_fen)
            .select_from(R.join(child, and_(child.c.parent_id == R.c.id, child.c.state == states.ACCEPTED))
                         .join(SUP, and_(SUP.c.record_id == child.c.id, SUP.c.state == supplements.ACCEPTED))
                         .join(SUPL, SUPL.c.supplement_id == SUP.c.id)).where(holder),
            select(R.c.id, SUPL.c.channel, -SUPL.c.people, -SUPL.c.amount_fen)
            .select_from(R.join(SUP, and_(SUP.c.record_id == R.c.id, SUP.c.state.in_(supplements.LIVE)))
                         .join(SUPL, SUPL.c.supplement_id == SUP.c.id)).where(holder),
        ).subquery("parts")
        stored = SL.alias("stored")
        rows = self._uow.execute(
            select(R.c.org_id, parts.c.ch, func.sum(parts.c.n), func.sum(parts.c.fen),
                   func.coalesce(stored.c.people, 0), func.coalesce(stored.c.amount_fen, 0))
            .select_from(parts.join(R, R.c.id == parts.c.rid)
                         .outerjoin(stored, and_(stored.c.snapshot_id == R.c.snapshot_id,
                                                 stored.c.channel == parts.c.ch)))
            .group_by(R.c.org_id, parts.c.ch, stored.c.people, stored.c.amount_fen)
            .having((func.sum(parts.c.n) != 0) | (func.sum(parts.c.fen) != 0))
            .order_by(R.c.org_id, parts.c.ch)
        ).all()
        return [Difference(int(org), "snapshot_line", str(ch),
                           (int(p_) + int(sp), int(f_) + int(sf)), (int(sp), int(sf)))
                for org, ch, p_, f_, sp, sf in rows]

    def snapshot_totals(self, round_id: int) -> list[Difference]:
        """Each snapshot's totals against the sum of its own lines (every snapshot of the round)."""
        lines = (select(SL.c.snapshot_id, func.sum(SL.c.people).label("n"), func.sum(SL.c.amount_fen).label("fen"))
                 .group_by(SL.c.snapshot_id).subquery("lines"))
        rows = self._uow.execute(
            select(R.c.org_id, S.c.as_of, func.coalesce(lines.c.n, 0), func.coalesce(lines.c.fen, 0),
                   S.c.people_total, S.c.amount_total_fen)
            .select_from(S.join(R, R.c.id == S.c.record_id).outerjoin(lines, lines.c.snapshot_id == S.c.id))
            .where(R.c.round_id == round_id,
                   (func.coalesce(lines.c.n, 0) != S.c.people_total)
                   | (func.coalesce(lines.c.fen, 0) != S.c.amount_total_fen))
            .order_by(R.c.org_id, S.c.id)
        ).all()
        return [Difference(int(org), "snapshot_total", f"{as_of}", (int(n), int(f)), (int(sp), int(sf)))
                for org, as_of, n, f, sp, sf in rows]

    def snapshots_sent(self, round_id: int) -> list[Difference]:
        """A submitted or accepted record must hold a snapshot, and not one marked stale."""
        rows = self._uow.execute(
            select(R.c.org_id, R.c.snapshot_id.is_(None), R.c.state)
            .where(R.c.round_id == round_id, R.c.state.in_(SENT),
                   (R.c.snapshot_id.is_(None)) | (R.c.snapshot_stale.is_(True)))
            .order_by(R.c.org_id)
        ).all()
        return [Difference(int(org), "snapshot_missing" if missing else "snapshot_stale_sent", str(state), (), ())
                for org, missing, state in rows]

    def rollup(self, round_id: int) -> list[Difference]:
        """Every rollup row against the records (:func:`workflow.store.rollup.computed`)."""
        session = self._uow.session
        want, have = rollup.computed(session, round_id), rollup.stored(session, round_id)
        # Compared shard by shard; a difference is told per organisation and key (the shards of
        # the differing rows summed: shards are storage, not something a reader knows).
        wrong: dict[tuple[Any, ...], list[int]] = {}
        for key in set(want) | set(have):
            if want.get(key) != have.get(key):
                acc = wrong.setdefault((key[0], *key[2:]), [0, 0, 0, 0, 0, 0])
                for i, v in enumerate((*want.get(key, (0, 0, 0)), *have.get(key, (0, 0, 0)))):
                    acc[i] += v
        out = []
        for key, acc in sorted(wrong.items(), key=repr):
            org_id, state, gr, overdue, late, has_snapshot, deadline = key
            words = (f"{states.STATE_LABELS.get(state, state)}，{'基层' if gr else '上级'}"
                     f"{'，逾期' if overdue else ''}{'，迟报' if late else ''}{'，有快照' if has_snapshot else ''}，"
                     f"截止 {deadline:%Y-%m-%d}")
            out.append(Difference(int(org_id), "rollup", words, tuple(acc[:3]), tuple(acc[3:])))
        return out

    def quotas(self, round_id: int) -> list[Difference]:
        """A grassroots record's extra quota is its chosen amount per member × its members."""
        expected = func.coalesce(R.c.amount_per_member_fen, 0) * func.coalesce(R.c.members, 0)
        rows = self._uow.execute(
            select(R.c.org_id, expected, R.c.quota_fen)
            .where(R.c.round_id == round_id, R.c.is_grassroots.is_(True), expected != R.c.quota_fen)
            .order_by(R.c.org_id)
        ).all()
        return [Difference(int(org), "quota", "", (int(e),), (int(q),)) for org, e, q in rows]

    def lapsed(self, round_id: int) -> list[Difference]:
        """A lapsed amount is the quota left after the live extra-quota purchases (never negative)."""
        used = (select(P.c.record_id, func.sum(P.c.amount_fen).label("used"))
                .where(P.c.budget == "extra_quota", P.c.voided_at.is_(None))
                .group_by(P.c.record_id).subquery("used"))
        spent = func.coalesce(used.c.used, literal(0))
        left = case((R.c.quota_fen > spent, R.c.quota_fen - spent), else_=literal(0))
        rows = self._uow.execute(
            select(R.c.org_id, left, R.c.lapsed_fen)
            .select_from(R.outerjoin(used, used.c.record_id == R.c.id))
            .where(R.c.round_id == round_id, R.c.is_grassroots.is_(True), R.c.lapsed_fen.is_not(None),
                   left != R.c.lapsed_fen)
            .order_by(R.c.org_id)
        ).all()
        return [Difference(int(org), "lapsed", "", (int(e),), (int(s),)) for org, e, s in rows]

    def org_names(self, org_ids: set[int]) -> dict[int, tuple[str, str]]:
        """(code, name) of some organisations."""
        ids = sorted(org_ids)
        out: dict[int, tuple[str, str]] = {}
        for start in range(0, len(ids), 1000):
            for i, code, name in self._uow.execute(
                    select(ORG.c.id, ORG.c.code, ORG.c.name).where(ORG.c.id.in_(ids[start:start + 1000]))):
                out[int(i)] = (str(code), str(name))
        return out


__all__ = ["Checks", "Difference", "SENT"]
