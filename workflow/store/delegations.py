"""Delegations (代理): who stands in for which reviewer, where and when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.orm import aliased

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


@dataclass(frozen=True)
class Listed:
    """A delegation as the 审核 page lists it (and the cancel use case reads it)."""

    delegation_id: int
    org: OrgRef
    org_code: str
    org_name: str
    delegator_user_id: int
    delegator_name: str
    standin_user_id: int
    standin_name: str
    starts_on: date
    ends_on: date
    revoked: bool


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

    def _listed(self, where: Any) -> list[Listed]:
        du, su = aliased(USER), aliased(USER)
        rows = self._uow.execute(
            select(D.c.id, ORG.c.id, ORG.c.path, ORG.c.parent_id, ORG.c.code, ORG.c.name, du.c.id, du.c.display_name,
                   su.c.id, su.c.display_name, D.c.starts_on, D.c.ends_on, D.c.revoked_at)
            .select_from(D.join(ORG, ORG.c.id == D.c.org_id).join(du, du.c.id == D.c.delegator_user_id)
                         .join(su, su.c.id == D.c.standin_user_id))
            .where(where).order_by(D.c.starts_on, D.c.id)).all()
        return [Listed(int(i), OrgRef(int(o), str(p), pid), str(code), str(name), int(dui), str(dn), int(sui), str(sn),
                       s, e, r is not None)
                for i, o, p, pid, code, name, dui, dn, sui, sn, s, e, r in rows]

    def get(self, delegation_id: int) -> Listed | None:
        found = self._listed(D.c.id == delegation_id)
        return found[0] if found else None

    def current(self, *, user_id: int, admin_org_ids: list[int], day: date) -> list[Listed]:
        """Running and coming delegations (not revoked, not ended on ``day``) where the user is
        the reviewer away or the stand-in, or of the federations the user administers."""
        return self._listed(and_(D.c.revoked_at.is_(None), D.c.ends_on >= day, or_(
            D.c.delegator_user_id == user_id, D.c.standin_user_id == user_id, D.c.org_id.in_(admin_org_ids))))

    def revoke(self, delegation_id: int, now: datetime) -> bool:
        """Cancel a delegation (once): whether this call did."""
        done = self._uow.execute(update(D).where(and_(D.c.id == delegation_id, D.c.revoked_at.is_(None)))
                                 .values(revoked_at=now))
        return bool(done.rowcount)


__all__ = ["Delegations", "Listed", "StandIn"]
