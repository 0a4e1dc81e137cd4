"""The province's round status: per reporting unit, its subtree's records in each state, who is
overdue, and whether every snapshot adds up to its purchases. One GROUP BY query.

(Written on the scheduler branch beside ``workflow.reports``; the two ``completeness`` helpers are
to be reconciled into ``reports.py``.)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlmodel import Session

import states
from workflow.db import UTCDateTime

_NOT_SUBMITTED = ", ".join(f"'{s}'" for s in (states.PLANNED, states.PURCHASED, states.SUMMARIZED))


@dataclass(frozen=True)
class CompletenessRow:
    """One reporting unit's subtree in a round.

    Attributes:
        org_code, org_name: the reporting unit.
        own_state: the unit's own record state.
        by_state: subordinate records (the whole subtree below the unit) per state.
        subordinates: how many there are.
        overdue: subordinates past their report deadline and not submitted (or flagged).
        snapshots: records in the subtree (the unit included) with a snapshot.
        mismatched: of those, fresh snapshots whose total differs from the record's own
            purchases plus its accepted children's snapshots.
    """

    org_code: str
    org_name: str
    own_state: str
    by_state: dict[str, int] = field(default_factory=dict)
    subordinates: int = 0
    overdue: int = 0
    snapshots: int = 0
    mismatched: int = 0

    @property
    def adds_up(self) -> bool:
        return self.mismatched == 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "adds_up": self.adds_up}


def completeness(session: Session, round_id: int, *, now: datetime) -> list[CompletenessRow]:
    """The round status per reporting unit (see :class:`CompletenessRow`).

    Args:
        session: an open session.
        round_id: the round.
        now: the instant overdue is judged at.

    Returns:
        One row per reporting unit, by code.
    """
    below = "o.id <> ru.id"
    per_state = ", ".join(
        f"SUM(CASE WHEN {below} AND r.state = '{s}' THEN 1 ELSE 0 END) AS n_{s}"
        for s in states.STATES
    )
    sql = f"""
        SELECT ru.code, ru.name, rr.state,
               SUM(CASE WHEN {below} THEN 1 ELSE 0 END) AS subordinates, {per_state},
               SUM(CASE WHEN {below} AND r.state IN ({_NOT_SUBMITTED})
                        AND (r.is_overdue OR r.report_deadline <= :now) THEN 1 ELSE 0 END),
               SUM(CASE WHEN s.id IS NOT NULL THEN 1 ELSE 0 END),
               SUM(CASE WHEN s.id IS NOT NULL AND NOT r.snapshot_stale
                        AND s.amount_total_fen <> COALESCE(pp.amount, 0) + COALESCE(cs.amount, 0)
                        THEN 1 ELSE 0 END)
        FROM record rr
        JOIN organisation ru ON ru.id = rr.org_id
        JOIN organisation o ON o.path LIKE ru.path || '%'
        JOIN record r ON r.org_id = o.id AND r.round_id = rr.round_id
        LEFT JOIN snapshot s ON s.id = r.snapshot_id
        LEFT JOIN (SELECT p.record_id, SUM(p.amount_fen) AS amount
                   FROM purchase p JOIN record pr ON pr.id = p.record_id
                   WHERE pr.round_id = :rid GROUP BY p.record_id) pp ON pp.record_id = r.id
        LEFT JOIN (SELECT c.parent_id, SUM(cn.amount_total_fen) AS amount
                   FROM record c JOIN snapshot cn ON cn.id = c.snapshot_id
                   WHERE c.round_id = :rid AND c.state = 'accepted'
                   GROUP BY c.parent_id) cs ON cs.parent_id = r.id
        WHERE rr.round_id = :rid AND rr.is_reporting_unit
        GROUP BY ru.code, ru.name, rr.state
        ORDER BY ru.code
    """
    stmt = text(sql).bindparams(bindparam("now", type_=UTCDateTime))
    out = []
    for row in session.execute(stmt, {"rid": round_id, "now": now}).all():
        code, name, own, subordinates, *rest = row
        counts = rest[: len(states.STATES)]
        overdue, snapshots, mismatched = rest[len(states.STATES):]
        out.append(CompletenessRow(
            org_code=code, org_name=name, own_state=own,
            by_state={s: int(n or 0) for s, n in zip(states.STATES, counts, strict=True)},
            subordinates=int(subordinates or 0), overdue=int(overdue or 0),
            snapshots=int(snapshots or 0), mismatched=int(mismatched or 0),
        ))
    return out
