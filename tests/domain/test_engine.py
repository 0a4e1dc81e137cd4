"""The lifecycle table (``states/``), its validation, the Mermaid diagram and the engine."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

import states
from states import Transition
from workflow.domain import engine
from workflow.domain.access import Relation
from workflow.domain.engine import GuardContext
from workflow.domain.errors import PermissionDenied, RuleViolation
from workflow.entrypoints.cli import exit_code_for
from workflow.entrypoints.web.errors import http_status

README = Path(__file__).resolve().parents[2] / "README.md"


# --- the table as the design draws it -------------------------------------------------------


def test_the_table_matches_the_design() -> None:
    edges = {(t.trigger, t.source, t.dest, t.scope) for t in states.TRANSITIONS}
    assert edges == {
        ("finish_purchasing", "planned", "purchased", "own"),
        ("summarize", "purchased", "summarized", "own"),
        ("submit", "summarized", "submitted", "own"),
        ("withdraw", "submitted", "summarized", "own"),
        ("reopen", "purchased", "planned", "own"),
        ("reopen", "summarized", "purchased", "own"),
        ("accept", "submitted", "accepted", "parent"),
        # 补报: a child accepted after its parent sent its report (a supplement travels up).
        ("accept_late", "submitted", "accepted", "parent"),
        ("return_for_revision", "submitted", "purchased", "parent"),
        ("revoke_acceptance", "accepted", "purchased", "parent"),
    }
    assert len(edges) == len(states.TRANSITIONS)
    assert states.STATES == ("planned", "purchased", "summarized", "submitted", "accepted")
    assert states.INITIAL == "planned"
    assert frozenset({"accepted"}) == states.FINAL_STATES


def test_only_return_and_revoke_need_a_reason() -> None:
    assert {t.trigger for t in states.TRANSITIONS if t.needs_reason} == {
        "return_for_revision", "revoke_acceptance"
    }


def test_every_state_and_trigger_has_a_chinese_label() -> None:
    assert set(states.STATE_LABELS) == set(states.STATES)
    assert set(states.TRIGGER_LABELS) == set(states.TRIGGERS)
    for label in [*states.STATE_LABELS.values(), *(t.label for t in states.TRANSITIONS)]:
        assert re.search(r"[\u4e00-\u9fff]", label), label


def test_every_guard_has_a_rule_in_the_engine() -> None:
    assert set(engine.GUARD_RULES) >= states.GUARDS


def test_the_shipped_table_is_valid() -> None:
    states.validate()


def test_find_and_transitions_from() -> None:
    assert states.find("reopen", "summarized").dest == "purchased"  # type: ignore[union-attr]
    assert states.find("reopen", "submitted") is None
    assert [t.trigger for t in states.transitions_from("submitted")] == [
        "withdraw", "accept", "accept_late", "return_for_revision"
    ]


# --- validation refuses a broken table ------------------------------------------------------

S = states.STATES
T = states.TRANSITIONS


@pytest.mark.parametrize(
    ("name", "kwargs", "words"),
    [
        (
            "unreachable state",
            {"states": (*S, "archived"),
             "transitions": (*T, Transition("unarchive", "archived", "planned", "own"))},
            "unreachable",
        ),
        (
            "dead end",
            {"states": (*S, "frozen"),
             "transitions": (*T, Transition("freeze", "planned", "frozen", "own"))},
            "dead-end",
        ),
        (
            "unknown destination",
            {"transitions": (*T, Transition("lose", "planned", "lost", "own"))},
            "unknown state",
        ),
        (
            "unknown source",
            {"transitions": (*T, Transition("find", "lost", "planned", "own"))},
            "unknown state",
        ),
        (
            "duplicate edge",
            {"transitions": (*T, Transition("submit", "summarized", "accepted", "own"))},
            "defined twice",
        ),
        (
            "unknown scope",
            {"transitions": (*T, Transition("skip", "planned", "accepted", "grandparent"))},
            "unknown scope",
        ),
        ("unknown initial", {"initial": "draft"}, "initial state"),
        ("unknown final", {"final": frozenset({"archived"})}, "final states"),
        (
            "a final state removed leaves a dead end",
            {"transitions": tuple(t for t in T if t.trigger != "revoke_acceptance"),
             "final": frozenset()},
            "dead-end",
        ),
    ],
)
def test_a_broken_table_is_refused(name: str, kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(states.LifecycleDefinitionError, match=words):
        states.validate(**kwargs)  # type: ignore[arg-type]


# --- the Mermaid diagram --------------------------------------------------------------------


def test_readme_embeds_the_generated_mermaid_diagram() -> None:
    blocks = re.findall(r"```mermaid\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, "the README should embed exactly one mermaid block"
    assert blocks[0] == states.mermaid()


def test_mermaid_lists_every_transition_and_the_final_state() -> None:
    text = states.mermaid()
    assert text.startswith("stateDiagram-v2\n    [*] --> planned\n")
    for t in states.TRANSITIONS:
        assert f"    {t.source} --> {t.dest}: {t.trigger}\n" in text
    assert "    accepted --> [*]\n" in text


# --- the machine ----------------------------------------------------------------------------


def test_machine_is_built_once_without_auto_transitions(monkeypatch: pytest.MonkeyPatch) -> None:
    assert engine.MACHINE.auto_transitions is False
    assert set(engine.MACHINE.events) == set(states.TRIGGERS)  # no to_<state> events

    def boom() -> None:
        raise AssertionError("a machine was built per call")

    monkeypatch.setattr(engine, "_build_machine", boom)
    assert engine.decide("planned", "finish_purchasing", GOOD, CLERK).dest == "purchased"


# --- decide ---------------------------------------------------------------------------------

TODAY = date(2021, 12, 1)
GOOD = GuardContext(
    amount_per_member_fen=30000, members=10, is_grassroots=True, has_snapshot=True,
    reporter="张三", phone="13812345678", fill_date=TODAY, today=TODAY, reason="原因",
)
CLERK = Relation(own_roles=frozenset({"clerk"}))
PARENT_REVIEWER = Relation(parent_roles=frozenset({"reviewer"}))
NOBODY = Relation()


def test_unknown_trigger_is_refused_with_its_code() -> None:
    with pytest.raises(RuleViolation) as exc:
        engine.decide("planned", "approve_everything", GOOD, CLERK)
    assert exc.value.code == "transition.unknown"
    assert http_status(exc.value) == 409 and exit_code_for(exc.value) == 3


WRONG_STATE = [(s, t) for s in states.STATES for t in states.TRIGGERS if states.find(t, s) is None]


@pytest.mark.parametrize(("state", "trigger"), WRONG_STATE)
def test_a_trigger_from_the_wrong_state_is_refused(state: str, trigger: str) -> None:
    for relation in (CLERK, PARENT_REVIEWER):
        with pytest.raises(RuleViolation) as exc:
            engine.decide(state, trigger, GOOD, relation)
        assert exc.value.code == "transition.not_allowed"
        assert exc.value.state == state and exc.value.trigger == trigger
        assert states.STATE_LABELS[state] in exc.value.message


@pytest.mark.parametrize("t", states.TRANSITIONS, ids=lambda t: f"{t.trigger}@{t.source}")
def test_every_transition_fires_for_its_scope(t: Transition) -> None:
    relation = CLERK if t.scope == "own" else PARENT_REVIEWER
    # 补报 fires past a parent that has sent its report; every other decision before that.
    ctx = replace(GOOD, parent_state="accepted") if "parent_sent" in t.guards else GOOD
    decision = engine.decide(t.source, t.trigger, ctx, relation)
    assert decision.dest == t.dest
    assert decision.on_behalf is False
    assert decision.acting_role == ("clerk" if t.scope == "own" else "reviewer")


@pytest.mark.parametrize("t", states.TRANSITIONS, ids=lambda t: f"{t.trigger}@{t.source}")
def test_membership_is_checked_by_the_engine(t: Transition) -> None:
    with pytest.raises(PermissionDenied):
        engine.decide(t.source, t.trigger, GOOD, NOBODY)
    if t.scope == "parent":
        with pytest.raises(PermissionDenied) as exc:
            engine.decide(t.source, t.trigger, GOOD, CLERK)  # a clerk cannot accept their own record
        assert exc.value.code == "permission.not_parent_reviewer"
    elif t.on_behalf:
        decision = engine.decide(t.source, t.trigger, GOOD, PARENT_REVIEWER)
        assert decision.on_behalf is True and decision.acting_role == "reviewer"
    else:  # withdraw: the clerks' own; the reviewer it waits for returns it instead
        with pytest.raises(PermissionDenied) as exc:
            engine.decide(t.source, t.trigger, GOOD, PARENT_REVIEWER)
        assert exc.value.code == "permission.not_clerk"


def test_four_eyes_escalation_lets_the_grandparents_reviewer_decide() -> None:
    """The parent's only reviewer filled the record in: the grandparent's reviewer may decide it
    (access.escalate), the filler may not, and is told who will."""
    grandparent = Relation(escalated_roles=frozenset({"reviewer"}))
    decision = engine.decide("submitted", "accept", GOOD, grandparent)
    assert (decision.dest, decision.acting_role, decision.on_behalf) == ("accepted", "reviewer", False)
    with pytest.raises(PermissionDenied):
        engine.decide("submitted", "accept", GOOD, Relation(escalated_roles=frozenset({"clerk"})))
    with pytest.raises(RuleViolation) as exc:
        engine.decide("submitted", "accept", replace(GOOD, actor_is_filler=True, four_eyes_to="广州市总工会"),
                      PARENT_REVIEWER)
    assert exc.value.code == "review.four_eyes" and "改由“广州市总工会”的审核人审核" in exc.value.message


def test_membership_is_checked_before_rules() -> None:
    # A stranger learns nothing about the record's rules.
    with pytest.raises(PermissionDenied):
        engine.decide("summarized", "submit", replace(GOOD, phone=None), NOBODY)


@pytest.mark.parametrize(
    ("state", "trigger", "change", "code"),
    [
        ("planned", "finish_purchasing", {"amount_per_member_fen": 60001}, "plan.amount_out_of_range"),
        ("planned", "finish_purchasing", {"amount_per_member_fen": None}, "plan.amount_missing"),
        ("purchased", "summarize", {"is_reporting_unit": True}, "report.texts_missing"),
        ("summarized", "submit", {"snapshot_stale": True}, "snapshot.stale"),
        ("summarized", "submit", {"has_snapshot": False}, "snapshot.missing"),
        ("summarized", "submit", {"phone": "12345"}, "contact.phone_invalid"),
        ("summarized", "submit", {"reporter": ""}, "contact.reporter_missing"),
        ("summarized", "submit", {"fill_date": date(2021, 12, 2)}, "contact.fill_date_future"),
        ("submitted", "accept", {"parent_state": "submitted"}, "decision.parent_locked"),
        ("submitted", "return_for_revision", {"reason": None}, "decision.reason_missing"),
        ("accepted", "revoke_acceptance", {"reason": " "}, "decision.reason_missing"),
        ("accepted", "revoke_acceptance", {"parent_state": "accepted"}, "decision.parent_locked"),
    ],
)
def test_guard_refusals_carry_their_code(state: str, trigger: str, change: dict[str, object], code: str) -> None:
    ctx = replace(GOOD, **change)  # type: ignore[arg-type]
    relation = CLERK if states.find(trigger, state).scope == "own" else PARENT_REVIEWER  # type: ignore[union-attr]
    with pytest.raises(RuleViolation) as exc:
        engine.decide(state, trigger, ctx, relation)
    assert exc.value.code == code
    assert exc.value.refusal.code == code and exc.value.refusal.message


def test_nil_plan_passes_finish_purchasing() -> None:
    engine.decide("planned", "finish_purchasing", replace(GOOD, amount_per_member_fen=0), CLERK)


# --- available_actions ----------------------------------------------------------------------


def _by_trigger(actions: list[engine.Action]) -> dict[str, engine.Action]:
    return {a.trigger: a for a in actions}


def test_available_actions_lists_every_trigger_once() -> None:
    for state in states.STATES:
        actions = engine.available_actions(state, GOOD, CLERK)
        assert [a.trigger for a in actions] == list(states.TRIGGERS)


def test_available_actions_for_a_clerk_on_a_submitted_record() -> None:
    acts = _by_trigger(engine.available_actions("submitted", GOOD, CLERK))
    assert acts["withdraw"].allowed and acts["withdraw"].dest == "summarized"
    assert not acts["accept"].allowed
    assert acts["accept"].refusal.code == "permission.not_parent_reviewer"  # type: ignore[union-attr]
    assert acts["submit"].refusal.code == "transition.not_allowed"  # type: ignore[union-attr]


def test_available_actions_asks_for_the_reason_later_instead_of_refusing() -> None:
    acts = _by_trigger(engine.available_actions("submitted", replace(GOOD, reason=None), PARENT_REVIEWER))
    assert acts["return_for_revision"].allowed
    assert acts["return_for_revision"].needs_reason
    assert acts["accept"].allowed and not acts["accept"].needs_reason


def test_available_actions_names_the_refusing_rule() -> None:
    acts = _by_trigger(engine.available_actions("summarized", replace(GOOD, snapshot_stale=True), CLERK))
    assert not acts["submit"].allowed
    assert acts["submit"].refusal.code == "snapshot.stale"  # type: ignore[union-attr]
    assert acts["reopen"].allowed


CONTEXTS = [
    GOOD,
    replace(GOOD, snapshot_stale=True),
    replace(GOOD, phone="bad"),
    replace(GOOD, amount_per_member_fen=None),
    replace(GOOD, is_reporting_unit=True),
    replace(GOOD, parent_state="accepted"),
]
RELATIONS = [CLERK, PARENT_REVIEWER, NOBODY, Relation(own_roles=frozenset({"admin", "observer"}))]


@pytest.mark.parametrize("state", states.STATES)
def test_available_actions_agrees_with_decide(state: str) -> None:
    """What the pages show as allowed is exactly what firing lets through, and a refusal shown
    is the refusal raised."""
    for ctx in CONTEXTS:
        for relation in RELATIONS:
            for action in engine.available_actions(state, ctx, relation):
                try:
                    engine.decide(state, action.trigger, ctx, relation)
                    fired, code = True, None
                except (RuleViolation, PermissionDenied) as exc:
                    fired, code = False, exc.code
                assert fired == action.allowed, (state, action.trigger, ctx, relation)
                if not fired:
                    assert action.refusal is not None and action.refusal.code == code


def test_a_final_state_is_left_only_by_an_exceptional_transition_with_a_reason() -> None:
    """``accepted`` is final: its one exit (revoke_acceptance) is marked exceptional and needs a
    reason; a table with an ordinary exit from a final state is refused when defined."""
    exits = states.transitions_from(states.ACCEPTED)
    assert [t.trigger for t in exits] == ["revoke_acceptance"]
    assert all(t.exceptional and t.needs_reason for t in exits)
    assert not any(t.exceptional for t in states.TRANSITIONS if t.source not in states.FINAL_STATES)
    ordinary_exit = (*states.TRANSITIONS,
                     states.Transition("reopen", states.ACCEPTED, states.PURCHASED, states.OWN, (), "重新采购"))
    with pytest.raises(states.LifecycleDefinitionError, match="final state"):
        states.validate(transitions=ordinary_exit)
    no_reason = tuple(
        states.Transition(t.trigger, t.source, t.dest, t.scope, ("parent_unlocked",), t.label, exceptional=True)
        if t.trigger == "revoke_acceptance" else t for t in states.TRANSITIONS)
    with pytest.raises(states.LifecycleDefinitionError, match="final state"):
        states.validate(transitions=no_reason)
