"""The lifecycle of a union's yearly record, as data (stdlib only)."""

from states.lifecycle import (
    ACCEPTED,
    ADMIN,
    CLERK,
    FINAL_STATES,
    GUARDS,
    INITIAL,
    OBSERVER,
    OWN,
    PARENT,
    PLANNED,
    PURCHASED,
    REVIEWER,
    ROLES,
    SCOPE_ROLES,
    STATE_LABELS,
    STATES,
    SUBMITTED,
    SUMMARIZED,
    TRANSITIONS,
    TRIGGER_LABELS,
    TRIGGERS,
    LifecycleDefinitionError,
    Transition,
    find,
    mermaid,
    transitions_from,
    validate,
)

__all__ = [
    "ACCEPTED", "ADMIN", "CLERK", "FINAL_STATES", "GUARDS", "INITIAL", "OBSERVER", "OWN",
    "PARENT", "PLANNED", "PURCHASED", "REVIEWER", "ROLES", "SCOPE_ROLES", "STATE_LABELS",
    "STATES", "SUBMITTED", "SUMMARIZED", "TRANSITIONS", "TRIGGER_LABELS", "TRIGGERS",
    "LifecycleDefinitionError", "Transition", "find", "mermaid", "transitions_from", "validate",
]
