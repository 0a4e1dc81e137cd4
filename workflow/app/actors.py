"""Who acts on a record: the user, their relation to the record's organisation (the one access
policy, :mod:`workflow.domain.access`), and who may enter its data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import states
from workflow.domain import access, clock
from workflow.domain.access import Relation
from workflow.domain.errors import (
    NotFound,
    PermissionDenied,
    Refusal,
    VersionConflict,
)
from workflow.domain.policy import Policy
from workflow.store.uow import UnitOfWork

if TYPE_CHECKING:
    from workflow.store.records import FireContext
    from workflow.store.tables import Organisation, Record, Round, User


@dataclass(frozen=True)
class Actor:
    """The user acting and their relation to one record."""

    user: User
    org: Organisation  # the record's organisation
    relation: Relation


def relation_to(uow: UnitOfWork, user_id: int, org: Organisation) -> tuple[User, Relation, bool]:
    """The user's roles in ``org`` and in its parent, and whether ``org`` is in their view
    (:mod:`workflow.domain.access`)."""
    user, mems = uow.directory.user_with_memberships(user_id)
    rel = access.relation(mems, org)
    return user, rel, rel.visible


def actor_for(uow: UnitOfWork, user_id: int, rec: Record) -> Actor:
    """The acting user and their relation to ``rec``; NotFound outside their subtree."""
    org = uow.directory.org(rec.org_id)
    user, relation, visible = relation_to(uow, user_id, org)
    if not visible:
        # Outside the user's subtree the record does not exist for them.
        raise NotFound(f"找不到记录 #{rec.id}", code="record.not_found")
    return Actor(user=user, org=org, relation=relation)


def entry_role(actor: Actor, what: str) -> tuple[str, bool]:
    """Who may enter a record's data: its clerks, or the parent's reviewer on its behalf."""
    who = access.entry_role(actor.relation, what)
    if isinstance(who, Refusal):
        raise PermissionDenied(who.message, code=who.code)
    return who


def policy_for(uow: UnitOfWork, rec: Record) -> tuple[Round, Policy]:
    rnd = uow.directory.round(rec.round_id)
    return rnd, uow.directory.policy(rnd.policy_code)


def _acting_org_id(actor: Actor, role: str) -> int | None:
    if role == states.REVIEWER:
        return actor.org.parent_id
    return actor.org.id


def version_conflict(rec: Record) -> VersionConflict:
    return _conflict(rec.version)


def version_conflict_at(version: int) -> VersionConflict:
    """The conflict of a record now at ``version``."""
    return _conflict(version)


def _conflict(version: int) -> VersionConflict:
    return VersionConflict(f"记录已被他人修改（当前版本 {version}），请刷新后重试", code="version.conflict")


@dataclass(frozen=True)
class Escalation:
    """Four eyes with one reviewer: the organisation whose reviewers decide a record instead of
    its parent's, because no active reviewer of the parent is free of filling it in."""

    org_id: int
    org_name: str


def four_eyes_escalation(uow: UnitOfWork, fc: FireContext, *, state: str | None = None) -> Escalation | None:
    """Where a submitted record's decision goes when every active reviewer of its parent filled
    it in (代填报, or submitted it) since its last return: to the grandparent's reviewers. None
    when four eyes is off, the parent has a reviewer who did not fill it in, or the parent has
    no parent (the province decides its own units).

    ``state``: the record's state if not ``fc.state`` (a submit asks about the state it enters).
    """
    if not fc.four_eyes or (state or fc.state) != states.SUBMITTED or fc.org_parent_id is None:
        return None
    parent = uow.directory.org(fc.org_parent_id)
    if parent.parent_id is None:
        return None
    if uow.directory.active_user_ids(parent.id or 0, states.REVIEWER) - uow.records.fillers_since_return(fc.record_id):
        return None
    grandparent = uow.directory.org(parent.parent_id)
    return Escalation(grandparent.id or 0, grandparent.name)


@dataclass(frozen=True)
class Deciding:
    """The actor's relation to a record for a decision: with four eyes' escalation and the
    reviewer seats they hold today as a stand-in (代理)."""

    relation: Relation
    escalation: Escalation | None = None
    standin_for: str | None = None  # the reviewer the actor stands in for, when that seat decides


def decision_relation(uow: UnitOfWork, fc: FireContext, now: datetime, *, trigger: str | None = None) -> Deciding:
    """The actor's relation to a record for a transition (``trigger``) or a page (None: every
    action is shown).

    A running delegation adds the absent reviewer's seat to the actor's (one indexed read, asked
    when the actor has no reviewer seat at the parent and the step is the parent's). Four eyes'
    escalation is asked only when it can matter (the actor filled the submitted record in, or
    holds no reviewer seat at its parent). So an ordinary step reads nothing more.
    """
    own = access.relation(fc.seats, fc.org)
    transition = states.find(trigger, fc.state) if trigger is not None else None
    parents_step = trigger is None or (transition is not None and transition.scope == states.PARENT)
    standing = (uow.delegations.running_for(fc.user_id, clock.china_date(now))
                if parents_step and states.REVIEWER not in own.parent_roles else [])
    seats = fc.seats + tuple((s.org, states.REVIEWER) for s in standing)
    relation = access.relation(seats, fc.org) if standing else own
    standin_for = None
    if states.REVIEWER in relation.parent_roles and not any(
            o.id == fc.org_parent_id and r == states.REVIEWER for o, r in fc.seats):
        standin_for = next(s.delegator_name for s in standing if s.org.id == fc.org_parent_id)
    if (fc.state != states.SUBMITTED or not parents_step
            or not (fc.actor_filled or states.REVIEWER not in relation.parent_roles)):
        return Deciding(relation, None, standin_for)
    escalation = four_eyes_escalation(uow, fc)
    if escalation is None:
        return Deciding(relation, None, standin_for)
    return Deciding(access.escalate(relation, seats, escalation.org_id), escalation, standin_for)
