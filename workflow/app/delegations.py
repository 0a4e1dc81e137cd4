"""代理: a reviewer away names a stand-in for a date range (or the federation's admin does).

While it runs (China dates, both days included) the stand-in sees and decides what the reviewer
decides: :func:`workflow.app.actors.decision_relation` adds the reviewer's seat to the stand-in's
for the decision, the history row says on whose behalf (``detail.standin_for``) and four eyes is
asked of the stand-in as of anyone. Both are told when it is named, when a range named ahead
starts and when it ends (the daily sweep, :mod:`workflow.scheduler.sweeps`), and when it is
cancelled early (:func:`cancel`).

Outbox keys (one row per person, channel and event): ``delegation:<id>:start`` (naming a range
that starts today is its start notice, so the sweep adds none), ``delegation:<id>:named``
(named ahead), ``delegation:<id>:end``, ``delegation:<id>:cancel``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import states
from workflow.app.lifecycle import notification_rows
from workflow.app.oplog import audited
from workflow.domain import access, clock
from workflow.domain.errors import NotFound, PermissionDenied, Refusal, RuleViolation
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
        event = "start" if starts_on <= clock.china_date(now) else "named"
        uow.notifications.add(notification_rows([away, stand], kind="record_event",
                                                source=f"delegation:{did}:{event}",
                                                record_id=None, payload=payload, now=now))
        uow.commit()
        return named


@dataclass(frozen=True)
class Cancelled:
    delegation_id: int
    delegator: str
    standin: str

    @property
    def message(self) -> str:
        return f"已取消代理：{self.standin}不再代{self.delegator}审核"


def _subject(kwargs: dict[str, Any]) -> str:
    return f"delegation:{kwargs.get('delegation_id')}"


@audited('delegation.cancel', subject=_subject)
def cancel(uow: UnitOfWork, *, user_id: int, delegation_id: int, now: datetime | None = None) -> Cancelled:
    """Cancel a running or coming delegation early (the reviewer away or the federation's
    admin); both people are told.

    Raises:
        NotFound: no such delegation, or the actor may not see it.
        RuleViolation: it has ended or was cancelled already.
    """
    now = now or clock.now()
    with uow:
        found = uow.delegations.get(delegation_id)
        if found is None or not access.may_manage_delegation(
                uow.directory.memberships(user_id), found.org, actor_is_delegator=found.delegator_user_id == user_id):
            raise NotFound("找不到这项代理（或您无权取消）", code="delegation.not_found")
        if found.revoked or found.ends_on < clock.china_date(now) or not uow.delegations.revoke(delegation_id, now):
            raise RuleViolation(Refusal("delegation.over", "这项代理已经结束或已被取消"))
        done = Cancelled(delegation_id, found.delegator_name, found.standin_name)
        who = uow.directory.user(user_id)
        payload = {"org_name": found.org_name, "org_code": found.org_code, "event": "取消代理",
                   "trigger": "delegate", "actor_name": who.display_name,
                   "reason": f"{done.message}（原定{found.starts_on:%Y年%m月%d日}至{found.ends_on:%Y年%m月%d日}）",
                   "path": "/review"}
        people = [uow.directory.user(found.delegator_user_id), uow.directory.user(found.standin_user_id)]
        uow.notifications.add(notification_rows(people, kind="record_event", source=f"delegation:{delegation_id}:cancel",
                                                record_id=None, payload=payload, now=now))
        uow.commit()
        return done


def current(uow: UnitOfWork, *, user_id: int, now: datetime | None = None) -> list[dict[str, Any]]:
    """The running and coming delegations the 审核 page lists: the user's own (away or standing
    in) and, for a federation's admin, the federation's; each says whether the user may cancel it."""
    today = clock.china_date(now or clock.now())
    with uow:
        seats = uow.directory.memberships(user_id)
        admin_orgs = [o.id or 0 for o, r in seats if r == states.ADMIN]
        rows = uow.delegations.current(user_id=user_id, admin_org_ids=admin_orgs, day=today)
        return [{"id": d.delegation_id, "org_code": d.org_code, "org_name": d.org_name, "delegator": d.delegator_name,
                 "standin": d.standin_name, "starts_on": d.starts_on, "ends_on": d.ends_on,
                 "running": d.starts_on <= today,
                 "may_cancel": access.may_manage_delegation(seats, d.org,
                                                            actor_is_delegator=d.delegator_user_id == user_id)}
                for d in rows]
