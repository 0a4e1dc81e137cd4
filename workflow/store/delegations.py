"""Delegations (代理): who stands in for which reviewer, where and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, insert, select

from workflow.store.records import OrgRef
from workflow.store.tables import Delegation, Organisation, User
from workflow.store.transaction import Transaction

D, ORG, USER = Delegation.__table__, Organisation.__table__, User.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class StandIn:
    """A running delegation as the stand-in holds it: the federation whose reviewer they stand
    in for, and that reviewer."""

    delegation_id: int
    org: OrgRef
    delegator_user_id: int
    delegator_name: str


class Delegations:
    def __init__(self, uow: Transaction) -> None:
        self._uow = uow

    def add(self, *, org_id: int, delegator_user_id: int, standin_user_id: int, starts_on: date, ends_on: date,
            created_by_user_id: int, now: datetime) -> int:
        return int(self._uow.execute(insert(D).values(
            org_id=org_id, delegator_user_id=delegator_user_id, standin_user_id=standin_user_id,
            starts_on=starts_on, ends_on=ends_on, created_by_user_id=created_by_user_id, created_at=now,
        ).returning(D.c.id)).scalar_one())

    def running_for(self, standin_user_id: int, day: date) -> list[StandIn]:
        """The delegations a user holds on a China day (not revoked, the day inside the range),
        with active delegators only."""
        rows = self._uow.execute(
            select(D.c.id, ORG.c.id, ORG.c.path, ORG.c.parent_id, USER.c.id, USER.c.display_name)
            .select_from(D.join(ORG, ORG.c.id == D.c.org_id).join(USER, USER.c.id == D.c.delegator_user_id))
            .where(and_(D.c.standin_user_id == standin_user_id, D.c.starts_on <= day, D.c.ends_on >= day,
                        D.c.revoked_at.is_(None), USER.c.is_active.is_(True)))
            .order_by(D.c.id)).all()
        return [StandIn(int(i), OrgRef(int(o), str(p), pid), int(u), str(n)) for i, o, p, pid, u, n in rows]


__all__ = ["Delegations", "StandIn"]
