"""代理: a reviewer away names a stand-in for a date range (or the federation's admin does).

While it runs (China dates, both days included) the stand-in sees and decides what the reviewer
decides: :func:`workflow.app.actors.decision_relation` adds the reviewer's seat to the stand-in's
for the decision, the history row says on whose behalf (``detail.standin_for``) and four eyes is
asked of the stand-in as of anyone. Both are told when it is named.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from workflow.app.lifecycle import notification_rows
from workflow.app.oplog import audited
from workflow.domain import access, clock
from workflow.domain.errors import PermissionDenied, Refusal, RuleViolation
from workflow.store.uow import UnitOfWork


@dataclass(frozen=True)
class Named:
    delegation_id: int
    org_name: str
    delegator: str
    standin: str
    starts_on: date
    ends_on: date

    @property
    def message(self) -> str:
        return (f"已指定代理：{self.starts_on:%Y年%m月%d日}至{self.ends_on:%Y年%m月%d日}，"
                f"{self.standin}代{self.delegator}审核{self.org_name}的下级报表")


@audited('delegation.name', keep=('delegator', 'standin', 'starts_on', 'ends_on'))
def name_standin(uow: UnitOfWork, *, user_id: int, org_code: str, delegator: str, standin: str,
                 starts_on: date, ends_on: date, now: datetime | None = None) -> Named:
    """Name ``standin`` (a username) to decide for ``delegator`` (a reviewer of ``org_code``)
    from ``starts_on`` to ``ends_on``.

    Raises:
        NotFound: no such organisation or user.
        PermissionDenied: the actor is neither the reviewer nor an admin of the federation.
        RuleViolation: the stand-in is not of the federation or its parent; bad dates.
    """
    now = now or clock.now()
    if ends_on < starts_on or ends_on < clock.china_date(now):
        raise RuleViolation(Refusal("delegation.dates", "代理结束日期须不早于开始日期，且不早于今天"))
    with uow:
        org = uow.directory.org_by_code(org_code)
        who, away, stand = (uow.directory.user(user_id), uow.directory.user_by_name(delegator),
                            uow.directory.user_by_name(standin))
        refusal = access.delegation_refusal(
            uow.directory.memberships(user_id), uow.directory.memberships(away.id or 0),
            uow.directory.memberships(stand.id or 0), org,
            actor_is_delegator=who.id == away.id, same_user=stand.id == away.id)
        if refusal is not None:
            if refusal.code == "delegation.not_allowed":
                raise PermissionDenied(refusal.message, code=refusal.code)
            raise RuleViolation(refusal)
        did = uow.delegations.add(org_id=org.id or 0, delegator_user_id=away.id or 0, standin_user_id=stand.id or 0,
                                  starts_on=starts_on, ends_on=ends_on, created_by_user_id=user_id, now=now)
        named = Named(did, org.name, away.display_name, stand.display_name, starts_on, ends_on)
        payload = {"org_name": org.name, "org_code": org.code, "event": "指定代理", "trigger": "delegate",
                   "actor_name": who.display_name, "reason": named.message, "path": "/review"}
        uow.notifications.add(notification_rows([away, stand], kind="record_event", source=f"delegation:{did}",
                                                record_id=None, payload=payload, now=now))
        uow.commit()
        return named
