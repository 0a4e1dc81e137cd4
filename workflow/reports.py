"""Annex 2 snapshots, roll-ups and completeness as SQL aggregates.

A record's snapshot adds, per channel, its own purchases and its children's *accepted* snapshots:
two GROUP BY queries, never a Python loop over rows. The Annex 2 row and the official share both
derive from the channel through the policy.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlmodel import Session

from workflow.db import Organisation, Purchase, Record, SnapshotLine


def snapshot_lines(session: Session, record_id: int) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """The per-channel (people, amount_fen) a snapshot of ``record_id`` would freeze, and the
    codes of the children not yet accepted.

    Args:
        session: an open session.
        record_id: the record to summarize.

    Returns:
        ``({channel: (people, amount_fen)}, [missing child org codes])``.
    """
    lines: dict[str, tuple[int, int]] = {}
    own = session.execute(
        select(Purchase.channel, func.sum(Purchase.people), func.sum(Purchase.amount_fen))
        .where(Purchase.record_id == record_id)
        .group_by(Purchase.channel)
    ).all()
    child = Record.__table__.alias("child")
    from_children = session.execute(
        select(SnapshotLine.channel, func.sum(SnapshotLine.people), func.sum(SnapshotLine.amount_fen))
        .join(child, child.c.snapshot_id == SnapshotLine.snapshot_id)
        .where(child.c.parent_id == record_id, child.c.state == "accepted")
        .group_by(SnapshotLine.channel)
    ).all()
    for channel, people, amount in [*own, *from_children]:
        p, a = lines.get(channel, (0, 0))
        lines[channel] = (p + int(people or 0), a + int(amount or 0))
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
