"""Issue 23 point 8: bulk accept (批量通过所选) set-based, with per-item results as before.

The batch reads every item's context in one statement and writes in batches; what a reviewer
reads back is what accepting the items one by one through the lifecycle gives: the same
outcomes, the same history rows (chained), the same messages, the overview's rollup equal to
its recomputation, and ``bangfu verify`` clean.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.app import test_parent_child_race as race
from tests.conftest import NOW_2021, World
from workflow.app import audit, oversight
from workflow.app import verify as verifying
from workflow.store import rollup
from workflow.store.oplog import Filters

MISSING = 987_654


def _d1_summarized(w: World) -> None:
    """D1 (the parent of G1 and G2) summarized, its snapshot fresh."""
    w.plan("D1", 0, 0)
    w.buy("D1", "D1-own", 30000, 3)
    w.fire("D1", "finish_purchasing", "d1-clerk")
    w.info("D1", work_experience="先进经验", work_highlights="工作亮点")
    w.fire("D1", "summarize", "d1-clerk")


def _results(out: list[oversight.BulkOutcome]) -> list[tuple[int, str, str, str, str]]:
    return [(o.record_id, o.status, o.org_name, o.code, o.message) for o in out]


def test_refusals_are_the_same_as_one_by_one_and_write_nothing(any_world: World) -> None:
    w = any_world
    w.to_submitted("G1")
    w.to_submitted("G2")
    w.to_submitted("G3")
    w.fire("G2", "withdraw", "g2-clerk")  # G2 is back to summarized: accept is not allowed
    reviewer = w.uid("d1-reviewer")
    items = [
        (w.rid("G1"), w.version("G1") - 1),  # somebody changed it since the page was shown
        (w.rid("G2"), w.version("G2")),
        (w.rid("G3"), w.version("G3")),  # another district's union: not in D1's view
        (MISSING, 1),
        (w.rid("D1"), w.version("D1")),  # D1's own record: its reviewer is not its parent's
    ]
    before = oversight._accept_one_by_one(w.db, user_id=reviewer, items=items, now=NOW_2021)
    batch = oversight.accept_many(w.uow(), user_id=reviewer, items=items, now=NOW_2021)
    assert _results(batch) == _results(before)
    assert [o.status for o in batch] == ["refused", "refused", "not_found", "not_found", "refused"]
    assert batch[0].code == "version.conflict" and batch[0].org_name == "天河一中工会"
    assert batch[1].message == "当前状态“已汇总”不能执行“通过”"
    assert batch[2].org_name == ""  # nothing leaks about a record outside the view
    assert [w.state(g) for g in ("G1", "G2", "G3")] == ["submitted", "summarized", "submitted"]


def test_a_mixed_batch_accepts_what_it_may_and_keeps_every_invariant(any_world: World) -> None:
    w = any_world
    w.to_submitted("G1")
    w.to_submitted("G2")
    w.to_submitted("G3")
    _d1_summarized(w)
    g1, g2, g3 = (w.rid(g) for g in ("G1", "G2", "G3"))
    items = [(g1, w.version("G1")), (g2, w.version("G2") - 1), (g3, w.version("G3")), (MISSING, 1),
             (g1, w.version("G1"))]  # the same record twice: the second sees it accepted
    out = oversight.bulk_accept(w.db, user_id=w.uid("d1-reviewer"), items=items, now=NOW_2021)
    assert _results(out) == [
        (g1, "accepted", "天河一中工会", "ok", "已通过"),
        (g2, "refused", "天河供电局工会", "version.conflict", f"记录已被他人修改（当前版本 {w.version('G2')}），请刷新后重试"),
        (g3, "not_found", "", "record.not_found", f"找不到记录 #{g3}"),
        (MISSING, "not_found", "", "record.not_found", out[3].message),
        (g1, "refused", "天河一中工会", "transition.not_allowed", "当前状态“已通过”不能执行“通过”"),
    ]
    assert [w.state(g) for g in ("G1", "G2", "G3")] == ["accepted", "submitted", "submitted"]
    with w.uow(True) as uow:
        d1 = uow.records.get(w.rid("D1"))
        assert d1.snapshot_stale  # D1's sum no longer includes all its accepted unions
        (accepted,) = [h for h in uow.records.history(g1) if h.trigger == "accept"]
        assert (accepted.from_state, accepted.to_state, accepted.actor_role) == ("submitted", "accepted", "reviewer")
        assert accepted.actor_user_id == w.uid("d1-reviewer")
        assert accepted.actor_org_id == uow.directory.org_by_code("D1").id
        assert not [h for h in uow.records.history(g2) if h.trigger == "accept"]
        told = uow.execute(text(
            "SELECT u.username, n.channel FROM notification n JOIN app_user u ON u.id = n.user_id"
            " WHERE n.source = :s ORDER BY u.username, n.channel"), {"s": f"history:{accepted.id}"}).all()
        # the union's clerk and the parent's clerk (who compiles the report), as one accept tells them
        assert {u for u, _c in told} == {"g1-clerk", "d1-clerk"} and ("g1-clerk", "inbox") in told
        round_id = uow.records.get(g1).round_id
        assert rollup.stored(uow.session, round_id) == rollup.computed(uow.session, round_id)
        (row,) = uow.oplog.search(Filters(action="record.bulk_accept"), limit=None)  # type: ignore[arg-type]
        assert row.outcome == "ok" and row.actor_name == "d1-reviewer"
        assert row.detail["accepted"] == 1 and row.detail["refused"]["record.not_found"] == [g3, MISSING]
    with tempfile.TemporaryDirectory() as var_dir:
        chain = audit.verify(w.uow(True), var_dir=Path(var_dir))
    assert chain.ok and chain.rows > 0
    (report,) = verifying.verify(w.uow(True), round_label=w.round_label)
    assert report.ok, report.text()


def test_a_batch_equals_the_same_accepts_one_by_one(any_world: World) -> None:
    """G1 by the batch, G2 through the lifecycle: the same history and messages."""
    w = any_world
    w.to_submitted("G1")
    w.to_submitted("G2")
    oversight.bulk_accept(w.db, user_id=w.uid("d1-reviewer"), items=[(w.rid("G1"), w.version("G1"))], now=NOW_2021)
    w.fire("G2", "accept", "d1-reviewer")

    def seen(org: str) -> tuple[object, ...]:
        with w.uow(True) as uow:
            rec = uow.records.get(w.rid(org))
            (h,) = [h for h in uow.records.history(rec.id or 0) if h.trigger == "accept"]
            told = uow.execute(text(
                "SELECT u.username, n.channel, n.status, n.kind FROM notification n"
                " JOIN app_user u ON u.id = n.user_id WHERE n.source = :s ORDER BY 1, 2"),
                {"s": f"history:{h.id}"}).all()
        return (rec.state, rec.version, rec.decided_at, rec.last_reason, h.actor_role, h.actor_org_id,
                h.on_behalf, h.detail, sorted((u.split("-")[1], c, s, k) for u, c, s, k in told))

    assert seen("G1") == seen("G2")


def _bulk_accept_one(w: World, rid: int, version: int, reviewer: int, delay: float) -> list[oversight.BulkOutcome]:
    time.sleep(delay)
    return oversight.bulk_accept(w.db, user_id=reviewer, items=[(rid, version)], now=NOW_2021)


@pytest.mark.postgres
def test_bulk_accept_serializes_with_its_district_submitting_pg(pg_world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent-child drill (tests/app/test_parent_child_race.py) with the union accepted by the
    batch: the children's locks, then the parent's, hold as for one accept."""
    monkeypatch.setattr(race, "_accept", _bulk_accept_one)
    bad, faults = race.drill(pg_world, rounds=12)
    assert bad == 0, faults


def test_bulk_accept_serializes_with_its_district_submitting_sqlite(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(race, "_accept", _bulk_accept_one)
    bad, faults = race.drill(world, rounds=4)
    assert bad == 0, faults
