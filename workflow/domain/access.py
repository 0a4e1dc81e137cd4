"""Who may do what to an organisation's record: the one access policy.

Every edge (CLI, JSON API, pages) and every use case asks this module; nothing else decides
access. It is pure: it reads a user's *seats* (memberships: an organisation and a role) and the
target organisation, both plain values.

The rules (also in the README's Security section):

=====================  ======================================================================
capability             who
=====================  ======================================================================
view a record          any seat at the organisation or above it (its subtree): a clerk sees
                       its own unit and, for a federation, the units below it; a reviewer,
                       admin or observer their seat's subtree. Outside the view a record does
                       not exist for the user (404).
view statistics        the same as viewing the record (a federation's clerk compiles the
                       report of its whole system, so it must see its subordinates' figures).
enter data             the record's own clerk, or a reviewer of its reporting parent on its
                       behalf (代填报; the history says so).
decide                 a reviewer (or admin) of the record's reporting parent: accept, return,
                       revoke; the grandparent's reviewer when every reviewer of the parent
                       filled the record in (four eyes with one reviewer, :func:`escalate`).
                       Own triggers (finish purchasing, summarize, submit, reopen): own
                       clerk, or the parent's reviewer on its behalf; withdraw: own clerk only.
see contact data       the chain of federations: a clerk, reviewer or admin seat at the
                       organisation or above. Observers (the rural-revitalisation department)
                       see figures, never clerks' names and phone numbers.
view completeness      a reviewer, admin or observer seat at the organisation or above.
download the 催报 list  completeness *and* contact data: reviewers and admins of the chain.
see duplicate orders   completeness: a reviewer, admin or observer seat at the organisation or
                       above sees the orders held by two or more unions of its subtree.
explain a duplicate    a reviewer whose seat covers every union holding the order (their
                       common ancestor's reviewer, or one above it).
name a stand-in (代理)  the reviewer, or an admin of the reviewer's federation; the stand-in
                       holds a seat there or at its parent, and decides as that reviewer
                       while the date range runs (:func:`delegation_refusal`).
manage an account      a reviewer of the direct parent of every organisation the account clerks
                       for; only clerk accounts (reset password, hand over). A system
                       administrator whose seat covers every organisation of the account
                       (clerk or reviewer accounts): reset, deactivate.
add an account         a clerk or a reviewer to an organisation: a system administrator whose
                       seat covers it, or a reviewer of that organisation or of its direct
                       parent (a district's reviewer adds a second reviewer to the district, or
                       a clerk to one of its unions).
manage organisations   add, rename, move, deactivate: a system administrator whose seat covers
                       the organisation (and, for a move, the new parent).
read the audit log     an auditor: the rows of every actor whose organisation is in the
                       auditor's subtree (a province auditor: every row, the operators' and
                       both administrators' included). Nobody else, administrators included.
=====================  ======================================================================

三员分立 (three separate administrators, GB/T 22239 level 3): ``system_admin`` (organisations,
accounts, settings), ``security_admin`` (password policy, lockouts, role grants) and ``auditor``
(the audit log) hold no business role: they see no record, no figure and no phone number, enter
nothing and decide nothing. The system administrator cannot read the audit log; the auditor
changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Protocol

import states
from states import OWN, PARENT, Transition
from workflow.domain.errors import Refusal

SYSTEM_ADMIN = "system_admin"
SECURITY_ADMIN = "security_admin"
AUDITOR = "auditor"
#: The three separate administrators (三员分立): seats that grant no business capability.
ADMIN_ROLES = frozenset({SYSTEM_ADMIN, SECURITY_ADMIN, AUDITOR})
#: Every role a membership may hold (the user import and the account pages accept these).
ALL_ROLES = states.ROLES | ADMIN_ROLES
#: Seats that see records and figures (the three administrators' do not).
BUSINESS_ROLES = states.ROLES
#: Roles an account page may give (a clerk, or a second reviewer).
ADDABLE_ROLES = (states.CLERK, states.REVIEWER)

#: Roles that can see clerks' contact data (the chain of federations).
CONTACT_ROLES = frozenset({states.CLERK, states.REVIEWER, states.ADMIN})
#: Roles that can watch a subtree's completeness.
OVERSIGHT_ROLES = frozenset({states.REVIEWER, states.ADMIN, states.OBSERVER})


class Org(Protocol):
    """What access reads of an organisation (a table row or any value with these fields)."""

    @property
    def id(self) -> int | None: ...
    @property
    def path(self) -> str: ...
    @property
    def parent_id(self) -> int | None: ...


Seat = tuple[Org, str]  # (organisation, role): one membership


@dataclass(frozen=True)
class Relation:
    """Who the actor is to a record: roles held in the record's own organisation and in its
    reporting parent, and whether the organisation is in the actor's view."""

    own_roles: frozenset[str] = frozenset()
    parent_roles: frozenset[str] = frozenset()
    visible: bool = True
    #: Whether the actor may see the record's contact data (:func:`can_see_contacts`).
    contacts: bool = False
    #: Roles held at the grandparent when four eyes sends the decision there (the parent's
    #: only reviewers filled the record in: :func:`escalate`).
    escalated_roles: frozenset[str] = frozenset()


def _covers(seat_org: Org, target: Org) -> bool:
    """Whether ``target`` is the seat's organisation or below it (materialised path prefix)."""
    return target.path.startswith(seat_org.path)


def relation(seats: Iterable[Seat], target: Org) -> Relation:
    """The actor's roles in ``target`` and in its parent, and whether ``target`` is in view."""
    seats = list(seats)
    own = frozenset(r for o, r in seats if o.id == target.id)
    parent = frozenset(r for o, r in seats if target.parent_id is not None and o.id == target.parent_id)
    return Relation(own_roles=own, parent_roles=parent, visible=can_view(seats, target),
                    contacts=can_see_contacts(seats, target))


def business_seats(seats: Iterable[Seat]) -> list[Seat]:
    """The seats that see records (every seat but the three administrators')."""
    return [(o, r) for o, r in seats if r in BUSINESS_ROLES]


def can_view(seats: Iterable[Seat], target: Org) -> bool:
    """A record (and its statistics) is visible from any business seat at or above its
    organisation (never from an administrator's: 三员分立)."""
    return any(_covers(o, target) for o, _r in business_seats(seats))


def _roles_over(seats: Iterable[Seat], target: Org) -> set[str]:
    return {r for o, r in seats if _covers(o, target)}


def can_see_contacts(seats: Iterable[Seat], target: Org) -> bool:
    """Clerks' names and phone numbers (填报人, 联系电话) are for the chain of federations, not for
    observers: every view and export of a record or a table asks this (the API's record, the
    Annex 2 XLSX/CSV/HTML, the work report, the province workbook, the 催报 list)."""
    return bool(_roles_over(seats, target) & CONTACT_ROLES)


def may_see_contacts(rel: Relation) -> bool:
    """:func:`can_see_contacts` for a record the actor's :class:`Relation` was worked out for."""
    return rel.contacts


def can_view_completeness(seats: Iterable[Seat], target: Org) -> bool:
    return bool(_roles_over(seats, target) & OVERSIGHT_ROLES)


def explaining_seat(seats: Iterable[Seat], holders: Iterable[Org]) -> Org | None:
    """The reviewer seat from which the actor may explain an order held by several unions: one
    covering every holder (the holders' common ancestor or above; the deepest such seat), or
    None when no reviewer seat of the actor covers them all."""
    holders = list(holders)
    covering = [o for o, r in seats if r == states.REVIEWER and holders and all(_covers(o, h) for h in holders)]
    return max(covering, key=lambda o: len(o.path), default=None)


def entry_role(rel: Relation, what: str) -> tuple[str, bool] | Refusal:
    """Who may enter a record's data: its clerks, or the parent's reviewer on its behalf.

    Returns:
        ``(acting_role, on_behalf)``, or the refusal naming ``what`` the user tried.
    """
    if states.CLERK in rel.own_roles:
        return states.CLERK, False
    if states.REVIEWER in rel.parent_roles:
        return states.REVIEWER, True
    return Refusal("permission.not_clerk", f"只有本单位填报员或上级审核人可以{what}")


def authorize(transition: Transition, rel: Relation) -> tuple[str, bool] | Refusal:
    """Which seat lets the actor fire ``transition``.

    Returns:
        ``(acting_role, on_behalf)`` or the refusal. A parent's reviewer may fire a child's own
        triggers on its behalf (代填报); the history records it.
    """
    if transition.scope == OWN:
        if rel.own_roles & states.SCOPE_ROLES[OWN]:
            return (states.CLERK, False)
        if states.REVIEWER in rel.parent_roles and transition.on_behalf:
            return (states.REVIEWER, True)
        return Refusal("permission.not_clerk", f"只有本单位的填报员可以执行“{transition.label}”")
    if rel.parent_roles & states.SCOPE_ROLES[PARENT] or rel.escalated_roles & states.SCOPE_ROLES[PARENT]:
        return (states.REVIEWER, False)
    return Refusal("permission.not_parent_reviewer", f"只有上级单位的审核人可以执行“{transition.label}”")


def escalate(rel: Relation, seats: Iterable[Seat], grandparent_id: int | None) -> Relation:
    """Four eyes with one reviewer: when every active reviewer of the record's parent filled the
    record in (代填报 or submitted it), its decision goes to the grandparent's reviewers. The
    caller establishes that; this adds the actor's roles at the grandparent to ``rel``."""
    if grandparent_id is None:
        return rel
    roles = frozenset(r for o, r in seats if o.id == grandparent_id)
    return replace(rel, escalated_roles=roles)


def may_manage_delegation(actor_seats: Iterable[Seat], org: Org, *, actor_is_delegator: bool) -> bool:
    """代理: the reviewer away themself, or an admin of the federation ``org``, names a stand-in and
    may cancel it."""
    return actor_is_delegator or any(o.id == org.id and r == states.ADMIN for o, r in actor_seats)


def delegation_refusal(actor_seats: Iterable[Seat], delegator_seats: Iterable[Seat], standin_seats: Iterable[Seat],
                       org: Org, *, actor_is_delegator: bool, same_user: bool) -> Refusal | None:
    """代理: who may name a stand-in for a reviewer of ``org``, and who may stand in.

    The reviewer themself, or an admin of ``org``, names a stand-in; the stand-in holds a seat at
    ``org`` or at its parent, and is not the reviewer."""
    if not any(o.id == org.id and r == states.REVIEWER for o, r in delegator_seats):
        return Refusal("delegation.not_reviewer", "只能为本单位的审核人指定代理人")
    if not may_manage_delegation(actor_seats, org, actor_is_delegator=actor_is_delegator):
        return Refusal("delegation.not_allowed", "只有审核人本人或本单位的管理员可以指定代理人")
    if same_user or not any(o.id in (org.id, org.parent_id) for o, _r in standin_seats):
        return Refusal("delegation.standin_outside", "代理人须是本单位或上级单位的其他人员")
    return None


def account_refusal(actor_seats: Iterable[Seat], target_seats: Iterable[Seat]) -> Refusal | None:
    """Whether the actor may manage (reset, hand over) the account holding ``target_seats``.

    Returns:
        None when allowed; else the refusal (the caller answers "not found" when the account is
        outside the actor's view: see :func:`can_view_account`).
    """
    actor_seats, target_seats = list(actor_seats), list(target_seats)
    reviewer_of = {o.id for o, r in actor_seats if r == states.REVIEWER}
    clerk_orgs = [o for o, r in target_seats if r == states.CLERK]
    if not clerk_orgs or any(r != states.CLERK for _o, r in target_seats):
        return Refusal("account.not_clerk", "只能管理下级单位填报员的账号")
    if not all(o.parent_id in reviewer_of for o in clerk_orgs):
        return Refusal("account.not_parent_reviewer", "只有直接上级单位的审核人可以管理该账号")
    return None


def can_view_account(actor_seats: Iterable[Seat], target_seats: Iterable[Seat]) -> bool:
    """An account exists for the actor when one of its seats is in the actor's view."""
    actor_seats = list(actor_seats)
    return any(can_view(actor_seats, o) for o, _r in target_seats)


# --- 三员分立: the administrators' capabilities ----------------------------------------------


def _seats_of(seats: Iterable[Seat], role: str) -> list[Org]:
    return [o for o, r in seats if r == role]


def oplog_scope(seats: Iterable[Seat]) -> list[str] | None:
    """The organisation paths whose actors' rows of the audit log the user may read: an
    auditor's seats; ``[]`` for a root auditor means every row (operators' and the system's
    too, which have no organisation). None: not an auditor (refused)."""
    orgs = _seats_of(seats, AUDITOR)
    if not orgs:
        return None
    if any(o.parent_id is None for o in orgs):
        return []
    return [o.path for o in orgs]


def directory_refusal(seats: Iterable[Seat], *targets: Org) -> Refusal | None:
    """Whether the user may add, rename, move or deactivate organisations at ``targets``
    (a system administrator whose seat covers each)."""
    admins = _seats_of(seats, SYSTEM_ADMIN)
    if not admins:
        return Refusal("permission.not_system_admin", "只有系统管理员可以维护单位")
    if not all(any(_covers(a, t) for a in admins) for t in targets):
        return Refusal("permission.outside_subtree", "该单位不在你管理的范围内")
    return None


def account_add_refusal(seats: Iterable[Seat], target: Org, role: str) -> Refusal | None:
    """Whether the user may add an account of ``role`` (a clerk or a reviewer) to ``target``:
    a system administrator covering it, or a reviewer of ``target`` or of its direct parent."""
    seats = list(seats)
    if role not in ADDABLE_ROLES:
        return Refusal("account.role_not_addable", "这里只能新增填报员或审核人账号")
    if any(_covers(a, target) for a in _seats_of(seats, SYSTEM_ADMIN)):
        return None
    reviewer_of = {o.id for o in _seats_of(seats, states.REVIEWER)}
    if target.id in reviewer_of or (target.parent_id is not None and target.parent_id in reviewer_of):
        return None
    return Refusal("account.not_parent_reviewer", "只有系统管理员或本单位、直接上级单位的审核人可以为该单位新增账号")


def admin_account_refusal(actor_seats: Iterable[Seat], target_seats: Iterable[Seat]) -> Refusal | None:
    """Whether a system administrator may reset or deactivate the account holding
    ``target_seats``: clerk and reviewer accounts whose every seat it covers (never another
    administrator's: the security administrator grants those)."""
    admins = _seats_of(actor_seats, SYSTEM_ADMIN)
    target_seats = list(target_seats)
    if not admins:
        return Refusal("permission.not_system_admin", "只有系统管理员可以管理该账号")
    if not target_seats or any(r not in ADDABLE_ROLES for _o, r in target_seats):
        return Refusal("account.not_clerk", "只能管理填报员和审核人的账号")
    if not all(any(_covers(a, o) for a in admins) for o, _r in target_seats):
        return Refusal("permission.outside_subtree", "该账号不在你管理的范围内")
    return None


def unlock_refusal(actor_seats: Iterable[Seat]) -> Refusal | None:
    """Lifting a login lockout is the security administrator's (三员分立: not the system
    administrator's, who manages the accounts themselves)."""
    if any(r == SECURITY_ADMIN for _o, r in actor_seats):
        return None
    return Refusal("permission.not_security_admin", "只有安全管理员可以解除账号锁定")
