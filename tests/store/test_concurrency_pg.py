"""Concurrent deciders: the version the caller saw is checked by ``UPDATE … WHERE version``.

On PostgreSQL, 20 threads (one pooled connection each) decide one submitted record at once with
the same seen version: exactly one wins, exactly one history row is written, every other thread
gets a conflict or a refusal. On SQLite (WAL, busy timeout, BEGIN IMMEDIATE) concurrent writers
queue: a loser sees a conflict, never "database is locked".
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select, text

from tests.conftest import NOW_2021, World
from workflow.app import lifecycle, purchases
from workflow.domain.errors import BangfuError, RuleViolation, VersionConflict
from workflow.store.tables import History, Notification
from workflow.store.uow import UnitOfWork

THREADS = 20


def _race(n: int, work: Callable[[int, threading.Barrier], Any]) -> list[Any]:
    """Run ``work(i, barrier)`` in n threads; return each result or the exception it raised."""
    barrier = threading.Barrier(n, timeout=60)

    def run(i: int) -> Any:
        try:
            return work(i, barrier)
        except Exception as exc:  # collected and judged by the test
            return exc

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def _history_count(w: World, rid: int) -> int:
    with w.uow(True) as uow:
        return int(uow.session.execute(
            select(func.count()).select_from(History).where(History.record_id == rid)
        ).scalar_one())


@pytest.mark.postgres
@pytest.mark.parametrize("org", ["G1", "G2", "G3", "G4", "G5"])
def test_twenty_threads_decide_one_submitted_record(pg_world: World, org: str) -> None:
    w = pg_world
    assert w.db.engine.pool.size() >= THREADS  # one connection per thread, no queueing in the pool
    w.to_submitted(org)
    rid = w.rid(org)
    reviewer = w.uid({"G1": "d1-reviewer", "G2": "d1-reviewer", "G3": "d2-reviewer",
                      "G4": "d3-reviewer", "G5": "ind-reviewer"}[org])
    history_before = _history_count(w, rid)

    def decide(i: int, barrier: threading.Barrier) -> lifecycle.FireResult:
        with UnitOfWork(w.db, readonly=True) as uow:
            seen = uow.records.get(rid).version
        barrier.wait()
        trigger, reason = ("accept", None) if i % 2 == 0 else ("return_for_revision", "数据不全")
        return lifecycle.fire(UnitOfWork(w.db), record_id=rid, trigger=trigger, user_id=reviewer,
                             seen_version=seen, reason=reason, now=NOW_2021)

    results = _race(THREADS, decide)
    wins = [r for r in results if isinstance(r, lifecycle.FireResult)]
    losses = [r for r in results if not isinstance(r, lifecycle.FireResult)]
    unexpected = [r for r in losses if not isinstance(r, VersionConflict | RuleViolation)]
    assert unexpected == []
    assert len(wins) == 1, Counter(type(r).__name__ for r in results)
    assert len(losses) == THREADS - 1
    for loss in losses:
        if isinstance(loss, RuleViolation):  # read the record after the winner committed
            assert loss.code == "transition.not_allowed"
    win = wins[0]
    assert _history_count(w, rid) == history_before + 1
    assert w.state(org) == win.to_state
    assert w.version(org) == win.version
    with w.uow(True) as uow:
        last = uow.records.history(rid)[-1]
        assert (last.id, last.trigger) == (win.history_id, win.trigger)
        # The clerks hear of the winner's decision only (the submit went to the reviewer).
        sources = set(uow.session.execute(
            select(Notification.source).where(Notification.record_id == rid,
                                              Notification.user_id != reviewer)
        ).scalars())
    assert sources == {f"history:{win.history_id}"}


# --- SQLite ---------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", range(5))
def test_sqlite_two_writers_one_conflict_never_locked(world: World, attempt: int) -> None:
    w = world
    w.to_submitted("G1")
    rid = w.rid("G1")
    reviewer = w.uid("d1-reviewer")
    before = _history_count(w, rid)

    def decide(i: int, barrier: threading.Barrier) -> lifecycle.FireResult:
        with UnitOfWork(w.db, readonly=True) as uow:
            seen = uow.records.get(rid).version
        barrier.wait()
        trigger, reason = ("accept", None) if i == 0 else ("return_for_revision", "请补充")
        return lifecycle.fire(UnitOfWork(w.db), record_id=rid, trigger=trigger, user_id=reviewer,
                             seen_version=seen, reason=reason, now=NOW_2021)

    results = _race(2, decide)
    assert not any("locked" in str(r) for r in results), results
    assert sum(isinstance(r, lifecycle.FireResult) for r in results) == 1, results
    loser = next(r for r in results if not isinstance(r, lifecycle.FireResult))
    assert isinstance(loser, VersionConflict | RuleViolation), repr(loser)
    assert _history_count(w, rid) == before + 1


def test_sqlite_many_writers_on_distinct_records_all_succeed(world: World) -> None:
    w = world
    orgs = ["G1", "G2", "G3", "G4", "G5", "D1", "D2", "D3"]
    for org in [o for o in orgs if o.startswith("G")]:
        w.plan(org)
    ids = {org: w.rid(org) for org in orgs}
    clerks = {org: w.uid(f"{org.lower()}-clerk") for org in orgs}

    def work(i: int, barrier: threading.Barrier) -> Any:
        org = orgs[i]
        with UnitOfWork(w.db, readonly=True) as uow:
            seen = uow.records.get(ids[org]).version
        barrier.wait()
        return lifecycle.fire(UnitOfWork(w.db), record_id=ids[org], trigger="finish_purchasing",
                             user_id=clerks[org], seen_version=seen, now=NOW_2021)

    results = _race(len(orgs), work)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    assert all(w.state(org) == "purchased" for org in orgs)


def test_sqlite_writer_waits_for_an_open_write_transaction(world: World) -> None:
    """A long write transaction (another process's sweep, say) holds the write lock; a user's
    action waits for it instead of failing with "database is locked"."""
    w = world
    w.plan("G1")
    holding = threading.Event()
    release = threading.Event()

    def long_writer() -> None:
        with UnitOfWork(w.db) as uow:  # BEGIN IMMEDIATE: takes the write lock now
            uow.session.execute(text("UPDATE organisation SET phone = '020-1' WHERE code = 'GD'"))
            holding.set()
            release.wait(10)
            uow.commit()

    t = threading.Thread(target=long_writer)
    t.start()
    assert holding.wait(10)
    outcome: list[Any] = []

    def user_action() -> None:
        try:
            outcome.append(w.fire("G1", "finish_purchasing", "g1-clerk"))
        except BangfuError as exc:
            outcome.append(exc)
        except Exception as exc:
            outcome.append(exc)

    u = threading.Thread(target=user_action)
    u.start()
    u.join(0.3)
    assert u.is_alive() and outcome == []  # still waiting for the lock, not failed
    # A reader is not blocked by the writer in WAL mode.
    assert w.state("G1") == "planned"
    release.set()
    t.join(10)
    u.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], lifecycle.FireResult), outcome
    assert w.state("G1") == "purchased"


@pytest.mark.postgres
def test_concurrent_duplicate_order_lines_store_one(pg_world: World) -> None:
    """Ten clerks' browsers submit the same order line at once: one row, nine refusals."""
    w = pg_world
    w.plan("G1")
    rid, uid = w.rid("G1"), w.uid("g1-clerk")
    line = purchases.PurchaseInput(paid_at=NOW_2021, channel="ygh", amount_fen=8800, people=2,
                                  order_no="DUP-1")

    def add(i: int, barrier: threading.Barrier) -> int:
        barrier.wait()
        return purchases.add_purchase(UnitOfWork(w.db), record_id=rid, user_id=uid, purchase=line, now=NOW_2021)

    results = _race(10, add)
    stored = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, RuleViolation)]
    assert len(stored) == 1 and len(refused) == 9, results
    assert all(r.code == "purchase.duplicate" for r in refused)
    with w.uow(True) as uow:
        assert [p.order_no for p in uow.purchases.of_record(rid)] == ["DUP-1"]


@pytest.mark.postgres
def test_twenty_four_threads_deciding_one_districts_records_keep_the_rollup_exact(pg_world: World) -> None:
    """Every accept upserts the rollup rows of the same ancestors (district, city, province):
    24 threads accepting 24 records of one district at once all succeed (rows locked in one
    order: no deadlock) and the rollup equals its recomputation afterwards (no lost update)."""
    from workflow.app import directory
    from workflow.store import rollup

    w = pg_world
    n = 24
    orgs = [f"R{i:02d}" for i in range(n)]
    directory.import_organisations(w.uow(), now=NOW_2021, data=(
        "code,name,kind,parent_code\n" + "".join(f"{o},并发基层工会{o},grassroots,D1\n" for o in orgs)).encode())
    directory.import_users(w.uow(), now=NOW_2021, data=(
        "username,display_name,org_code,role\n"
        + "".join(f"{o.lower()}-clerk,{o}填报员,{o},clerk\n" for o in orgs)).encode())
    for o in orgs:
        w.to_submitted(o)
    reviewer = w.uid("d1-reviewer")
    work = [(w.rid(o), w.version(o)) for o in orgs]

    def accept(i: int, barrier: threading.Barrier) -> Any:
        rid, version = work[i]
        barrier.wait()
        return lifecycle.fire(UnitOfWork(w.db), record_id=rid, trigger="accept", user_id=reviewer,
                            seen_version=version, now=NOW_2021)

    results = _race(n, accept)
    assert [r for r in results if isinstance(r, Exception)] == []
    assert all(w.state(o) == "accepted" for o in orgs)
    with w.uow(True) as uow:
        for rnd in uow.directory.rounds():
            assert rollup.stored(uow.session, rnd.id or 0) == rollup.computed(uow.session, rnd.id or 0)


@pytest.mark.postgres
def test_no_rollup_row_is_shared_by_siblings_or_cousins(pg_world: World) -> None:
    """Issue 25: the rollup's rows are sharded at every level, so two unions of one district and
    a union of another district of the same city move their counters without waiting for each
    other, even with the first transaction open; the same record's rows are one (the contrast
    that shows the test can fail: the second move waits and hits its lock timeout)."""
    from sqlalchemy.exc import OperationalError

    from workflow.store import rollup
    from workflow.store.errors import StoreError

    w = pg_world
    with w.uow(True) as uow:
        rows = {code: uow.session.execute(text(
            "SELECT r.id, r.round_id, o.path FROM record r JOIN organisation o ON o.id = r.org_id"
            " JOIN round x ON x.id = r.round_id WHERE o.code = :c AND x.label = :l"),
            {"c": code, "l": w.round_label}).one() for code in ("G1", "G2", "G3")}
    (g1, g2, g3) = (rows[c] for c in ("G1", "G2", "G3"))
    assert len({r.id % min(rollup.SHARDS) for r in (g1, g2, g3)}) == 3, "three different shards at every level"
    key = rollup.Key("purchased", True, False, False, False, NOW_2021)
    old, new = rollup.Entry(key, 0, 0), rollup.Entry(key._replace(state="summarized"), 0, 0)

    first = w.uow()
    first.__enter__()
    try:
        first.records.rollup_move(g1.id, g1.round_id, g1.path, old, new)  # held open: not committed
        for other, blocked in ((g3, False), (g2, False), (g1, True)):
            with w.uow() as uow:
                uow.connection().exec_driver_sql("SET LOCAL lock_timeout = '1500ms'")
                try:
                    uow.records.rollup_move(other.id, other.round_id, other.path, old, new)
                    waited = False
                except (OperationalError, StoreError):
                    waited = True
                assert waited is blocked, (other, blocked)
    finally:
        first.__exit__(None, None, None)
