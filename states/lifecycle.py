"""The yearly record's lifecycle as plain data.

Five states, their transitions, which side of the tree may fire each trigger, and the names of
the guards (rules) the engine evaluates before it lets a trigger through. Nothing here imports
anything of ours or a third party: the table is validated when this module is imported, so a
broken lifecycle fails at start-up, not in the middle of a reviewer's afternoon.

Scopes:
    ``own``     the record's own organisation (its clerks; a parent's reviewer may act on the
                child's behalf, 代填报, and the history says so).
    ``parent``  the reviewers of the record's reporting parent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PLANNED = "planned"
PURCHASED = "purchased"
SUMMARIZED = "summarized"
SUBMITTED = "submitted"
ACCEPTED = "accepted"

STATES: tuple[str, ...] = (PLANNED, PURCHASED, SUMMARIZED, SUBMITTED, ACCEPTED)
INITIAL = PLANNED
#: States a record rests in for good: the round's goal. A final state's only exits are
#: *exceptional* transitions (``revoke_acceptance``), each of which needs a reason; ``validate``
#: refuses a table where a final state has an ordinary exit.
FINAL_STATES: frozenset[str] = frozenset({ACCEPTED})

STATE_LABELS: dict[str, str] = {
    PLANNED: "计划中",
    PURCHASED: "已采购",
    SUMMARIZED: "已汇总",
    SUBMITTED: "已提交",
    ACCEPTED: "已通过",
}

OWN = "own"
PARENT = "parent"
SCOPES: frozenset[str] = frozenset({OWN, PARENT})

CLERK = "clerk"
REVIEWER = "reviewer"
ADMIN = "admin"
OBSERVER = "observer"
ROLES: frozenset[str] = frozenset({CLERK, REVIEWER, ADMIN, OBSERVER})

#: Roles that may fire a trigger, by scope.
SCOPE_ROLES: dict[str, frozenset[str]] = {
    OWN: frozenset({CLERK}),
    PARENT: frozenset({REVIEWER}),
}


@dataclass(frozen=True)
class Transition:
    """One edge of the lifecycle.

    Attributes:
        trigger: the verb a user fires (``submit``).
        source: the state it leaves.
        dest: the state it enters.
        scope: ``own`` or ``parent``: whose people may fire it.
        guards: names of the rules checked before it fires, in order.
        label: the Chinese name shown to users.
        exceptional: an exit from a final state (a correction, not a step of the round); it
            must need a reason.
        on_behalf: for an ``own`` trigger, whether the parent's reviewer may fire it on the
            record's behalf (代填报). Withdrawing a submission is the clerks' own: the reviewer
            it waits for returns it instead (退回修改, with a reason).
    """

    trigger: str
    source: str
    dest: str
    scope: str
    guards: tuple[str, ...] = field(default_factory=tuple)
    label: str = ""
    exceptional: bool = False
    on_behalf: bool = True

    @property
    def needs_reason(self) -> bool:
        return "reason_given" in self.guards

    @property
    def locks_parent(self) -> bool:
        """A decision that changes what the parent's snapshot adds up (its accepted children):
        guarded by the parent's state, and taken under the parent record's lock."""
        return "parent_unlocked" in self.guards or "parent_sent" in self.guards


TRANSITIONS: tuple[Transition, ...] = (
    Transition("finish_purchasing", PLANNED, PURCHASED, OWN, ("plan_valid",), "完成采购"),
    Transition(
        "summarize", PURCHASED, SUMMARIZED, OWN, ("plan_valid", "work_report_given"), "汇总"
    ),
    Transition(
        "submit",
        SUMMARIZED,
        SUBMITTED,
        OWN,
        ("snapshot_fresh", "contact_valid"),
        "提交",
    ),
    Transition("withdraw", SUBMITTED, SUMMARIZED, OWN, (), "撤回", on_behalf=False),
    Transition("reopen", PURCHASED, PLANNED, OWN, (), "退回计划"),
    Transition("reopen", SUMMARIZED, PURCHASED, OWN, (), "重新采购"),
    Transition("accept", SUBMITTED, ACCEPTED, PARENT, ("parent_unlocked", "four_eyes"), "通过"),
    # 补报: a child that comes late, after its parent has sent its report up. Its parent's sent
    # report is not reopened: the child's figures travel up as a supplement of the parent's
    # record (workflow.app.supplements), decided level by level like the report itself.
    Transition("accept_late", SUBMITTED, ACCEPTED, PARENT, ("parent_sent", "four_eyes"), "补报通过"),
    Transition(
        "return_for_revision", SUBMITTED, PURCHASED, PARENT, ("reason_given",), "退回修改"
    ),
    Transition(
        "revoke_acceptance",
        ACCEPTED,
        PURCHASED,
        PARENT,
        ("reason_given", "parent_unlocked"),
        "撤销通过",
        exceptional=True,
    ),
)

TRIGGERS: tuple[str, ...] = tuple(dict.fromkeys(t.trigger for t in TRANSITIONS))

TRIGGER_LABELS: dict[str, str] = {}
for _t in TRANSITIONS:
    TRIGGER_LABELS.setdefault(_t.trigger, _t.label)

#: Every guard name a transition may use; the engine must provide a rule for each.
GUARDS: frozenset[str] = frozenset(g for t in TRANSITIONS for g in t.guards)


class LifecycleDefinitionError(Exception):
    """The lifecycle table contradicts itself (raised at import, never at run time)."""


def transitions_from(state: str) -> tuple[Transition, ...]:
    """Return the transitions leaving ``state``, in table order."""
    return tuple(t for t in TRANSITIONS if t.source == state)


def find(trigger: str, source: str) -> Transition | None:
    """Return the transition ``trigger`` fires from ``source``, or None."""
    for t in TRANSITIONS:
        if t.trigger == trigger and t.source == source:
            return t
    return None


def validate(
    states: tuple[str, ...] = STATES,
    transitions: tuple[Transition, ...] = TRANSITIONS,
    initial: str = INITIAL,
    final: frozenset[str] = FINAL_STATES,
) -> None:
    """Check a lifecycle table: known states, no unreachable or dead-end state, one edge per
    (trigger, source), known scopes.

    Raises:
        LifecycleDefinitionError: naming the first problem found.
    """
    known = set(states)
    if initial not in known:
        raise LifecycleDefinitionError(f"initial state {initial!r} is not a state")
    if not final <= known:
        raise LifecycleDefinitionError(f"final states {sorted(final - known)} are not states")
    seen: set[tuple[str, str]] = set()
    for t in transitions:
        if t.source not in known or t.dest not in known:
            raise LifecycleDefinitionError(f"{t.trigger}: {t.source}->{t.dest} names an unknown state")
        if t.scope not in SCOPES:
            raise LifecycleDefinitionError(f"{t.trigger}: unknown scope {t.scope!r}")
        if (t.trigger, t.source) in seen:
            raise LifecycleDefinitionError(f"{t.trigger} from {t.source} is defined twice")
        seen.add((t.trigger, t.source))
    reachable = {initial}
    frontier = [initial]
    while frontier:
        here = frontier.pop()
        for t in transitions:
            if t.source == here and t.dest not in reachable:
                reachable.add(t.dest)
                frontier.append(t.dest)
    if unreachable := known - reachable:
        raise LifecycleDefinitionError(f"unreachable states: {sorted(unreachable)}")
    for t in transitions:
        if t.source in final and not (t.exceptional and t.needs_reason):
            raise LifecycleDefinitionError(
                f"{t.trigger} leaves the final state {t.source!r}: only an exceptional transition "
                "that needs a reason may")
    dead_ends = {s for s in known - final if not any(t.source == s for t in transitions)}
    if dead_ends:
        raise LifecycleDefinitionError(f"dead-end states that are not final: {sorted(dead_ends)}")


def mermaid() -> str:
    """Render the lifecycle as a Mermaid state diagram (the README embeds this output)."""
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL}"]
    for t in TRANSITIONS:
        lines.append(f"    {t.source} --> {t.dest}: {t.trigger}")
    for s in sorted(FINAL_STATES):
        lines.append(f"    {s} --> [*]")
    return "\n".join(lines) + "\n"


validate()
