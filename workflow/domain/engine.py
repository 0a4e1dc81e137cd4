"""Fires lifecycle triggers with ``transitions``, guarded by the notice's rules.

One :class:`transitions.Machine` is built once from :mod:`states`, with auto transitions off and
no model of its own. Each call binds a throw-away :class:`_Token` (a plain object: ``transitions``
sets attributes on its model, which a SQLModel row would refuse) and fires the event on it; the
machine holds no per-call state, so one instance serves every thread.

Order of checks, all inside the engine: the actor's relation to the record (membership), then the
transition's guards (rules). The version the caller saw is checked when the store writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from transitions import Machine, MachineError

import states
from states import Transition
from workflow.domain import access, rules
from workflow.domain.access import Relation
from workflow.domain.errors import PermissionDenied, Refusal, RuleViolation


@dataclass(frozen=True)
class GuardContext:
    """The plain values the guards read. Services fill it from the record and its neighbours."""

    cap_fen: int = 60000
    amount_per_member_fen: int | None = None
    members: int | None = None
    is_grassroots: bool = False
    is_reporting_unit: bool = False
    work_experience: str | None = None
    work_highlights: str | None = None
    has_snapshot: bool = False
    snapshot_stale: bool = False
    reporter: str | None = None
    phone: str | None = None
    fill_date: date | None = None
    today: date = date(2000, 1, 1)
    reason: str | None = None
    parent_state: str | None = None
    #: Four eyes: the policy's switch, and whether the actor entered data on the record's
    #: behalf or submitted it since its last return.
    four_eyes: bool = True
    actor_is_filler: bool = False
    #: The organisation whose reviewers decide when every reviewer of the parent filled the
    #: record in (four eyes with one reviewer), or None.
    four_eyes_to: str | None = None


@dataclass(frozen=True)
class Decision:
    transition: Transition
    acting_role: str
    on_behalf: bool

    @property
    def dest(self) -> str:
        return self.transition.dest


@dataclass(frozen=True)
class Action:
    """One trigger as the pages show it: allowed, or the rule that refuses it."""

    trigger: str
    label: str
    allowed: bool
    refusal: Refusal | None = None
    needs_reason: bool = False
    dest: str | None = None


GuardFn = Callable[[GuardContext], Refusal | None]

GUARD_RULES: dict[str, GuardFn] = {
    "plan_valid": lambda c: rules.check_plan(c.amount_per_member_fen, c.members, cap_fen=c.cap_fen),
    "work_report_given": lambda c: rules.check_work_report(
        c.is_reporting_unit, c.work_experience, c.work_highlights
    ),
    "snapshot_fresh": lambda c: rules.check_snapshot_fresh(c.has_snapshot, c.snapshot_stale),
    "contact_valid": lambda c: rules.check_contact(c.reporter, c.phone, c.fill_date, c.today),
    "reason_given": lambda c: rules.check_reason(c.reason),
    "parent_unlocked": lambda c: rules.check_parent_unlocked(c.parent_state),
    "parent_sent": lambda c: rules.check_parent_sent(c.parent_state),
    "four_eyes": lambda c: rules.check_four_eyes(c.four_eyes, c.actor_is_filler, c.four_eyes_to),
}

_missing = states.GUARDS - GUARD_RULES.keys()
if _missing:  # a lifecycle naming a guard the engine cannot evaluate is a definition error
    raise states.LifecycleDefinitionError(f"guards without a rule: {sorted(_missing)}")


@dataclass
class _Token:
    """The plain object the machine moves; lives for one call."""

    state: str
    refusal: Refusal | None = field(default=None)


def _condition(guards: tuple[str, ...]) -> Callable[[Any], bool]:
    def check(event: Any) -> bool:
        ctx: GuardContext = event.kwargs["ctx"]
        for name in guards:
            refusal = GUARD_RULES[name](ctx)
            if refusal is not None:
                event.model.refusal = refusal
                return False
        return True

    check.__name__ = "guards_" + "_".join(guards) if guards else "no_guards"
    return check


def _build_machine() -> Machine:
    machine = Machine(
        model=None,
        states=list(states.STATES),
        initial=states.INITIAL,
        auto_transitions=False,
        send_event=True,
        ignore_invalid_triggers=False,
    )
    for t in states.TRANSITIONS:
        machine.add_transition(t.trigger, t.source, t.dest, conditions=[_condition(t.guards)])
    return machine


MACHINE = _build_machine()


def _not_allowed(trigger: str, state: str) -> Refusal:
    label = states.TRIGGER_LABELS.get(trigger, trigger)
    return Refusal(
        "transition.not_allowed",
        f"当前状态“{states.STATE_LABELS.get(state, state)}”不能执行“{label}”",
    )


def decide(state: str, trigger: str, ctx: GuardContext, relation: Relation) -> Decision:
    """Check membership and rules for ``trigger`` from ``state``, and fire it on the machine.

    Args:
        state: the record's current state.
        trigger: the verb.
        ctx: values for the guards.
        relation: the actor's roles in the record's organisation and its parent.

    Returns:
        The decision: the transition taken, the acting role and whether it is on behalf.

    Raises:
        RuleViolation: unknown trigger, a trigger not allowed from this state, or a guard's refusal.
        PermissionDenied: the actor has no membership that allows it.
    """
    if trigger not in states.TRIGGERS:
        raise RuleViolation(Refusal("transition.unknown", f"未知操作“{trigger}”"), trigger=trigger)
    transition = states.find(trigger, state)
    if transition is None:
        raise RuleViolation(_not_allowed(trigger, state), trigger=trigger, state=state)
    who = access.authorize(transition, relation)
    if isinstance(who, Refusal):
        raise PermissionDenied(who.message, code=who.code)
    refusal = _refusal(transition, ctx)
    if refusal is not None:
        raise RuleViolation(refusal, trigger=trigger, state=state)
    return Decision(transition=transition, acting_role=who[0], on_behalf=who[1])


def available_actions(state: str, ctx: GuardContext, relation: Relation) -> list[Action]:
    """Every trigger, each allowed or with the rule (or membership) that refuses it."""
    actions: list[Action] = []
    for trigger in states.TRIGGERS:
        transition = states.find(trigger, state)
        label = states.TRIGGER_LABELS[trigger]
        if transition is None:
            actions.append(Action(trigger, label, False, _not_allowed(trigger, state)))
            continue
        who = access.authorize(transition, relation)
        if isinstance(who, Refusal):
            actions.append(Action(trigger, transition.label, False, who, transition.needs_reason))
            continue
        # Reason is asked for when the user acts; don't refuse for its absence here.
        probe = ctx if ctx.reason or not transition.needs_reason else _with_reason(ctx)
        refusal = _refusal(transition, probe)
        actions.append(
            Action(
                trigger,
                transition.label,
                refusal is None,
                refusal,
                transition.needs_reason,
                transition.dest,
            )
        )
    return actions


def _refusal(transition: Transition, ctx: GuardContext) -> Refusal | None:
    """Fire ``transition`` on a throw-away token: the one path by which guards are evaluated
    (:func:`decide` and :func:`available_actions` both come here)."""
    token = _Token(transition.source)
    try:
        fired = MACHINE.events[transition.trigger].trigger(token, ctx=ctx)
    except MachineError:  # the table and the machine disagree: cannot happen after validate()
        return _not_allowed(transition.trigger, transition.source)
    if not fired:
        return token.refusal or _not_allowed(transition.trigger, transition.source)
    assert token.state == transition.dest
    return None


def _with_reason(ctx: GuardContext) -> GuardContext:
    return replace(ctx, reason="(pending)")
