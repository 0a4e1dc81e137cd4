"""Who acts on a record: the user, their relation to the record's organisation (the one access
policy, :mod:`workflow.domain.access`), and who may enter its data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import states
from workflow.domain import access
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


def _conflict(version: int) -> VersionConflict:
    return VersionConflict(f"记录已被他人修改（当前版本 {version}），请刷新后重试", code="version.conflict")
