"""A decision on a child and a transition of its parent serialize (issue 20, point 1).

The drill: a district clerk summarizes and submits the district while the district's reviewer
accepts one of its unions, both at once, again and again. Whatever the interleaving, a submitted
or accepted district's snapshot holds every accepted union (its own lines plus its accepted
children's snapshots), or the union's acceptance was refused because the district is locked.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest

import states
from tests.conftest import NOW_2021, World
from workflow.app import lifecycle
from workflow.domain.errors import BangfuError, PermissionDenied, RuleViolation, VersionConflict
from workflow.domain.figures import add_lines

REASON = "请核对后重新提交"
DRILL_ROUNDS = 25


def frozen_snapshot_faults(w: World, orgs: list[str]) -> list[str]:
    """Every submitted or accepted record (and every summarized one whose snapshot is not stale)
    whose frozen snapshot (with its sent supplements) differs from what summarizing now would
    freeze: its own purchases and aggregate lines plus its accepted children's snapshots."""
    faults: list[str] = []
    with w.uow(True) as uow:
        for org in orgs:
            rec = uow.records.get(w.rid(org))
            frozen = rec.state in (states.SUBMITTED, states.ACCEPTED) or (
                rec.state == states.SUMMARIZED and not rec.snapshot_stale)
            if not frozen:
                continue
            if rec.snapshot_id is None:
                faults.append(f"{org} {rec.state} without a snapshot")
                continue
            snap, lines = uow.records.snapshot(rec.snapshot_id)
            stored = {ln.channel: (ln.people, ln.amount_fen) for ln in lines}
            # A sent report and its sent supplements (补报: children accepted late) together
            # hold every accepted part (the rule `bangfu verify` checks).
            sent = [s.lines for s in uow.supplements.for_record(rec.id or 0) if s.state in ("submitted", "accepted")]
            if sent and rec.state not in (states.SUBMITTED, states.ACCEPTED):
                faults.append(f"{org} {rec.state} with sent supplements")
            stored = add_lines(stored, *sent)
            now, missing = uow.reports.snapshot_lines(rec.id or 0)
            if stored != now:
                faults.append(f"{org} {rec.state} (stale={rec.snapshot_stale}): snapshot {stored} "
                              f"!= own lines + accepted children {now}; missing then {snap.missing_children}, now {missing}")
    return faults


def _both(first: Any, second: Any) -> list[Any]:
    """Run two callables at once (a barrier between them); each one's result or exception."""
    barrier = threading.Barrier(2, timeout=30)
    out: list[Any] = [None, None]

    def run(i: int, fn: Any) -> None:
        barrier.wait()
        try:
            out[i] = fn()
        except BangfuError as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def _summarize_and_submit(w: World, org: str) -> None:
    clerk = f"{org.lower()}-clerk"
    w.fire(org, "summarize", clerk)
    w.fire(org, "submit", clerk)


def _accept(w: World, rid: int, version: int, reviewer: int, delay: float) -> lifecycle.FireResult:
    time.sleep(delay)
    return lifecycle.fire(w.uow(), record_id=rid, trigger="accept", user_id=reviewer, seen_version=version,
                          now=NOW_2021)


def drill(w: World, rounds: int = DRILL_ROUNDS, seed: int = 20) -> tuple[int, list[str]]:
    """Race D1's summarize-and-submit against its reviewer's accept of G1, ``rounds`` times.

    Returns:
        (how many rounds ended in the bad state, the faults of the first bad round).
    """
    rng = random.Random(seed)
    w.to_submitted("G2", members=50)
    w.fire("G2", "accept", "d1-reviewer")
    w.buy("D1", "D1-own", 50000, 5)
    w.fire("D1", "finish_purchasing", "d1-clerk")
    w.info("D1")
    w.to_submitted("G1")
    bad, first = 0, []
    for _ in range(rounds):
        assert (w.state("D1"), w.state("G1")) == (states.PURCHASED, states.SUBMITTED)
        g1_rid, g1_version, reviewer = w.rid("G1"), w.version("G1"), w.uid("d1-reviewer")
        delay = rng.uniform(0, 0.03)  # sweep the accept across the district's two transactions
        _both(partial(_summarize_and_submit, w, "D1"), partial(_accept, w, g1_rid, g1_version, reviewer, delay))
        faults = frozen_snapshot_faults(w, ["D1", "G1", "G2"])
        if faults:
            bad += 1
            first = first or faults
        # Back to the start: the district open again, G1 submitted.
        state = w.state("D1")
        if state == states.SUBMITTED:
            w.fire("D1", "return_for_revision", "c1-reviewer", reason=REASON)
        elif state == states.SUMMARIZED:
            w.fire("D1", "reopen", "d1-clerk")
        if w.state("G1") == states.ACCEPTED:
            w.fire("G1", "revoke_acceptance", "d1-reviewer", reason=REASON)
            w.fire("G1", "summarize", "g1-clerk")
            w.fire("G1", "submit", "g1-clerk")
    return bad, first


@pytest.mark.postgres
def test_drill_district_submits_while_its_reviewer_accepts_a_union_pg(pg_world: World) -> None:
    bad, faults = drill(pg_world)
    assert bad == 0, f"{bad} of {DRILL_ROUNDS} rounds left a submitted district without an accepted union: {faults}"


def test_drill_district_submits_while_its_reviewer_accepts_a_union_sqlite(world: World) -> None:
    bad, faults = drill(world, rounds=8)
    assert bad == 0, f"{bad} of 8 rounds left a submitted district without an accepted union: {faults}"


# --- many threads, every level ----------------------------------------------------------------

#: Every record of the small world with a few more unions under D1, and whose reviewer decides
#: it (the province's reviewers decide the cities and the industry union).
PARENT = {"C1": "GD", "C2": "GD", "IND": "GD", "D1": "C1", "D2": "C1", "D3": "C2",
          "G1": "D1", "G2": "D1", "G6": "D1", "G7": "D1", "G3": "D2", "G8": "D2", "G4": "D3", "G5": "IND"}
EXTRA_UNIONS = {"G6": "D1", "G7": "D1", "G8": "D2"}
ORGS = list(PARENT)
FORWARD = {states.PLANNED: "finish_purchasing", states.PURCHASED: "summarize", states.SUMMARIZED: "submit",
           states.SUBMITTED: "accept"}
BACK = {states.PURCHASED: ["reopen"], states.SUMMARIZED: ["reopen"],
        states.SUBMITTED: ["withdraw", "return_for_revision"], states.ACCEPTED: ["revoke_acceptance"]}
OWN_TRIGGERS = {"finish_purchasing", "summarize", "submit", "withdraw", "reopen"}


def _setup_every_level(w: World) -> None:
    """Three more unions under the districts; every union planned with a purchase, every
    federation with its own purchase line and its report's footer (and texts where required)."""
    from workflow.app import directory

    directory.import_organisations(w.uow(), now=NOW_2021, data=(
        "code,name,kind,parent_code\n"
        + "".join(f"{o},并发基层工会{o},grassroots,{p}\n" for o, p in EXTRA_UNIONS.items())).encode())
    directory.import_users(w.uow(), now=NOW_2021, data=(
        "username,display_name,org_code,role\n"
        + "".join(f"{o.lower()}-clerk,{o}填报员,{o},clerk\n" for o in EXTRA_UNIONS)).encode())
    for n, org in enumerate(ORGS):
        if org.startswith("G"):
            w.plan(org, 30000, 40 + n)
        w.buy(org, f"{org}-own", 10000 * (n + 1), 3 + n)
        texts = {"work_experience": "经验", "work_highlights": "亮点"} if org in ("C1", "C2", "IND") else {}
        w.info(org, **texts)


def _pick(rng: random.Random, org: str, state: str) -> tuple[str, str, str | None]:
    """(trigger, username, reason): mostly the next step forward, else a step back, sometimes
    any trigger by either of the record's people."""
    clerk, reviewer = f"{org.lower()}-clerk", f"{PARENT[org].lower()}-reviewer"
    roll = rng.random()
    if roll < 0.65 and state in FORWARD:
        trigger = FORWARD[state]
    elif roll < 0.92 and state in BACK:
        trigger = rng.choice(BACK[state])
    else:
        trigger = rng.choice(states.TRIGGERS)
        return trigger, rng.choice([clerk, reviewer]), rng.choice([None, REASON])
    return trigger, clerk if trigger in OWN_TRIGGERS else reviewer, REASON


def _history_faults(w: World) -> list[str]:
    """Each record's state is its last history row's; no child was accepted or revoked while its
    parent stood submitted or accepted (the parent's state as of the decision: its last history
    row before the decision's, both written under the parent's row lock)."""
    faults: list[str] = []
    with w.uow(True) as uow:
        rows = {org: uow.records.history(w.rid(org)) for org in ORGS}
        for org in ORGS:
            rec = uow.records.get(w.rid(org))
            last = rows[org][-1].to_state if rows[org] else states.PLANNED
            if rec.state != last:
                faults.append(f"{org} is {rec.state}, its history says {last}")
            parent = PARENT[org]
            if parent not in rows:
                continue
            for h in rows[org]:
                if h.trigger not in ("accept", "revoke_acceptance"):
                    continue
                before = [p for p in rows[parent] if (p.id or 0) < (h.id or 0)]
                parent_state = before[-1].to_state if before else states.PLANNED
                if parent_state in (states.SUBMITTED, states.ACCEPTED):
                    faults.append(f"{org} {h.trigger} (history {h.id}) while {parent} was {parent_state}")
    return faults


def _rollup_faults(w: World) -> list[str]:
    from workflow.store import rollup

    with w.uow(True) as uow:
        return [f"rollup of round {rnd.id} differs from its recomputation"
                for rnd in uow.directory.rounds()
                if rollup.stored(uow.session, rnd.id or 0) != rollup.computed(uow.session, rnd.id or 0)]


def run_threads(w: World, *, threads: int, steps: int, seed: int) -> Counter[str]:
    """``steps`` steps; in each, ``threads`` threads fire one random transition each at once
    (every record has one or two threads), then every invariant is checked. Returns what
    happened, by outcome."""
    _setup_every_level(w)
    rng = random.Random(seed)
    rids = {org: w.rid(org) for org in ORGS}
    users = {name: w.uid(name) for org in ORGS
             for name in (f"{org.lower()}-clerk", f"{PARENT[org].lower()}-reviewer")}
    outcomes: Counter[str] = Counter()
    for step in range(steps):
        with w.uow(True) as uow:
            seen = {org: (r.state, r.version) for org in ORGS for r in [uow.records.get(rids[org])]}
        order = rng.sample(ORGS, len(ORGS))
        plan = []
        for i in range(threads):
            org = order[i % len(order)]
            trigger, user, reason = _pick(rng, org, seen[org][0])
            plan.append((org, trigger, user, reason, seen[org][1], rng.uniform(0, 0.01)))
        barrier = threading.Barrier(threads, timeout=60)

        def act(item: tuple[str, str, str, str | None, int, float], barrier: threading.Barrier = barrier) -> Any:
            org, trigger, user, reason, version, delay = item
            barrier.wait()
            time.sleep(delay)
            try:
                return lifecycle.fire(w.uow(), record_id=rids[org], trigger=trigger, user_id=users[user],
                                      seen_version=version, reason=reason, now=NOW_2021)
            except Exception as exc:  # judged below: nothing but the domain's refusals may come out
                return exc

        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = list(pool.map(act, plan))
        for (org, trigger, *_rest), result in zip(plan, results, strict=True):
            if isinstance(result, lifecycle.FireResult):
                outcomes[f"{trigger} {'union' if org.startswith('G') else 'federation'}"] += 1
            elif isinstance(result, VersionConflict | RuleViolation | PermissionDenied):
                outcomes[getattr(result, "code", type(result).__name__)] += 1
            else:
                raise AssertionError(f"step {step}: {org} {trigger} raised {result!r}")
        faults = frozen_snapshot_faults(w, ORGS) + _history_faults(w) + _rollup_faults(w)
        assert faults == [], f"step {step}: {faults}"
    return outcomes


@pytest.mark.postgres
def test_24_threads_fire_random_transitions_at_every_level_pg(pg_world: World) -> None:
    outcomes = run_threads(pg_world, threads=24, steps=18, seed=2021)
    done = sum(n for k, n in outcomes.items() if " " in k)
    assert done >= 60, outcomes  # the walk went somewhere: many transitions, not just refusals
    assert outcomes["accept federation"] > 0, outcomes  # cities and districts were accepted too


def test_threads_fire_random_transitions_at_every_level_sqlite(world: World) -> None:
    """SQLite's writers queue behind BEGIN IMMEDIATE: the same rule holds without row locks."""
    outcomes = run_threads(world, threads=20, steps=6, seed=17)
    assert sum(n for k, n in outcomes.items() if " " in k) >= 15, outcomes


# --- the locks, one at a time ------------------------------------------------------------------


def _in_thread(fn: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(fn())
        except Exception as exc:
            out.append(exc)

    t = threading.Thread(target=run)
    t.start()
    return t, out


def _district_summarized_union_submitted(w: World) -> None:
    w.to_submitted("G1")
    w.buy("D1", "D1-own", 50000, 5)
    w.fire("D1", "finish_purchasing", "d1-clerk")
    w.info("D1")
    w.fire("D1", "summarize", "d1-clerk")


@pytest.mark.postgres
def test_a_childs_accept_waits_for_its_parents_transaction_and_obeys_its_outcome(pg_world: World) -> None:
    """The district's row is being written (its submit, say) when its reviewer accepts a union:
    the accept waits for that transaction, then reads the district as submitted and is refused."""
    from sqlalchemy import text

    w = pg_world
    _district_summarized_union_submitted(w)
    with w.db.engine.connect() as other:
        other.execute(text("UPDATE record SET state = 'submitted' WHERE id = :id"), {"id": w.rid("D1")})
        t, out = _in_thread(lambda: w.fire("G1", "accept", "d1-reviewer"))
        t.join(0.5)
        assert t.is_alive() and out == []  # waiting for the district's row
        # A page showing the district locks nothing: it is not kept waiting.
        from workflow.app import record_views

        view = record_views.record_view(w.uow(), record_id=w.rid("D1"), user_id=w.uid("d1-clerk"))
        assert view.state == states.SUMMARIZED
        other.commit()
    t.join(30)
    assert len(out) == 1 and isinstance(out[0], RuleViolation), out
    assert out[0].code == "decision.parent_locked"
    assert w.state("G1") == states.SUBMITTED


@pytest.mark.postgres
def test_a_parents_summarize_waits_for_a_childs_decision_and_counts_it(pg_world: World) -> None:
    """A union's acceptance holds the district's row until it commits: the district's summarize,
    fired meanwhile, waits for it, then freezes the accepted union's numbers."""
    from sqlalchemy import text

    w = pg_world
    _district_summarized_union_submitted(w)
    w.fire("D1", "reopen", "d1-clerk")
    with w.db.engine.connect() as other:  # what a union's accept holds until its commit
        other.execute(text("SELECT id FROM record WHERE id = :id FOR NO KEY UPDATE"), {"id": w.rid("D1")})
        other.execute(text("UPDATE record SET state = 'accepted' WHERE id = :id"), {"id": w.rid("G1")})
        t, out = _in_thread(lambda: w.fire("D1", "summarize", "d1-clerk"))
        t.join(0.5)
        assert t.is_alive() and out == []  # waiting for the district's row
        other.commit()
    t.join(30)
    assert len(out) == 1 and isinstance(out[0], lifecycle.FireResult), out
    with w.uow(True) as uow:
        snap, _lines = uow.records.snapshot(uow.records.get(w.rid("D1")).snapshot_id or 0)
        g1 = uow.records.snapshot(uow.records.get(w.rid("G1")).snapshot_id or 0)[0]
    assert snap.people_total == 5 + g1.people_total
    assert snap.amount_total_fen == 50000 + g1.amount_total_fen
    assert "G1" not in snap.missing_children


def test_a_childs_accept_marks_a_summarized_parent_stale_in_the_locking_statement(any_world: World) -> None:
    """One statement locks the parent, reads its state and marks its snapshot stale: accepting
    a union of a summarized district costs no more statements than before."""
    w = any_world
    _district_summarized_union_submitted(w)
    w.fire("G1", "accept", "d1-reviewer")
    with w.uow(True) as uow:
        assert uow.records.get(w.rid("D1")).snapshot_stale
    with pytest.raises(RuleViolation) as exc:
        w.fire("D1", "submit", "d1-clerk")
    assert exc.value.code == "snapshot.stale"
