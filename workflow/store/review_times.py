"""Time in state: how long submitted records waited for their parent's decision.

One statement over ``history``: the round's submits and decisions below an organisation, each
decision paired with the row before it on the same record (a window ``LAG`` over the record's
submits and decisions, in insertion order); a decision whose previous row is a ``submit`` is one
wait. A withdrawn and resubmitted record counts from its last submit. The rows are streamed
(``yield_per``): the durations, medians and percentiles are the use case's arithmetic
(:mod:`workflow.app.review_times`) — SQLite has no ``percentile_cont``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from workflow.store.tables import History, Organisation, Record, User
from workflow.store.transaction import Transaction

H, REC, ORG, USER = (t.__table__ for t in (History, Record, Organisation, User))  # type: ignore[attr-defined]

#: The parent's decisions that end a wait (补报通过 is one).
DECISIONS = ("accept", "accept_late", "return_for_revision")
SUBMIT = "submit"
#: Rows fetched per round trip while streaming.
BATCH = 5_000


@dataclass(frozen=True)
class Wait:
    """One submit and the decision that ended it."""

    record_id: int
    unit_code: str
    unit_name: str
    decision: str
    submitted_at: datetime
    decided_at: datetime
    reviewer_id: int | None
    reviewer_name: str | None
    federation_code: str | None
    federation_name: str | None
    federation_kind: str | None


class ReviewTimes:
    def __init__(self, uow: Transaction) -> None:
        self._uow = uow

    def waits(self, round_id: int, under_org_id: int, under_path: str) -> Iterator[Wait]:
        """Every ended wait of the round's records strictly below ``under_path`` (the
        organisation's own record waits on its parent, outside its subtree)."""
        events = (
            select(
                H.c.record_id, H.c.trigger, H.c.at, H.c.actor_user_id, H.c.actor_org_id,
                func.lag(H.c.trigger).over(partition_by=H.c.record_id, order_by=H.c.id).label("prev_trigger"),
                func.lag(H.c.at, type_=H.c.at.type).over(partition_by=H.c.record_id, order_by=H.c.id).label("prev_at"),
            )
            .join(REC, REC.c.id == H.c.record_id)
            .join(ORG, ORG.c.id == REC.c.org_id)
            .where(REC.c.round_id == round_id, ORG.c.path.startswith(under_path, autoescape=True),
                   ORG.c.id != under_org_id, H.c.trigger.in_((SUBMIT, *DECISIONS)))
            .subquery("events")
        )
        unit, fed = aliased(ORG, name="unit"), aliased(ORG, name="fed")
        stmt = (
            select(events.c.record_id, unit.c.code, unit.c.name, events.c.trigger, events.c.prev_at,
                   events.c.at, events.c.actor_user_id, USER.c.display_name, fed.c.code, fed.c.name, fed.c.kind)
            .join(REC, REC.c.id == events.c.record_id)
            .join(unit, unit.c.id == REC.c.org_id)
            # The deciding federation: the decision's seat (the grandparent under four eyes'
            # escalation), else the unit's parent.
            .outerjoin(fed, fed.c.id == func.coalesce(events.c.actor_org_id, unit.c.parent_id))
            .outerjoin(USER, USER.c.id == events.c.actor_user_id)
            .where(events.c.trigger.in_(DECISIONS), events.c.prev_trigger == SUBMIT)
            .execution_options(yield_per=BATCH)
        )
        for row in self._uow.execute(stmt):
            yield Wait(*row)
