"""The sweeps move the overview's rollup by the records they flag (issue 25: no full rebuild per
sweep): after the overdue and late sweeps, at every level, the kept rows equal the recomputation
and the accepted records' totals have moved with their keys."""

from __future__ import annotations

from tests.conftest import World
from tests.scheduler.conftest import at
from workflow.scheduler import sweeps
from workflow.store import rollup


def _same(w: World) -> None:
    with w.uow(True) as uow:
        for rnd in uow.directory.rounds():
            assert rollup.stored(uow.session, rnd.id or 0) == rollup.computed(uow.session, rnd.id or 0)


def test_overdue_and_late_sweeps_keep_the_rollup_exact(round_world: World) -> None:
    w = round_world
    late = at("2021-12-22T10:00")
    w.plan("G5")
    w.buy("G5", "G5-1", 50000, 10)
    for org in ("G4", "G5"):
        w.fire(org, "finish_purchasing", f"{org.lower()}-clerk", now=late)
        w.info(org)
        w.fire(org, "summarize", f"{org.lower()}-clerk", now=late)
        w.fire(org, "submit", f"{org.lower()}-clerk", now=late)
    w.fire("G5", "accept", "ind-reviewer", now=late)  # accepted late: its totals move with the flag
    _same(w)
    with w.uow(True) as uow:
        before = rollup.stored(uow.session, uow.records.get(w.rid("G1")).round_id)
    report = sweeps.run_sweep(w.db, now=at("2021-12-22T11:00"))
    assert report.overdue > 0 and report.late == 2
    _same(w)
    with w.uow(True) as uow:
        rnd_id = uow.records.get(w.rid("G1")).round_id
        after = rollup.stored(uow.session, rnd_id)
        gd = uow.directory.org_by_code("GD").id

    def total(rows: dict, **want: object) -> tuple[int, int]:  # type: ignore[type-arg]
        pos = {"state": 2, "is_overdue": 4, "is_late": 5}
        hit = [v for k, v in rows.items() if k[0] == gd and all(k[pos[f]] == x for f, x in want.items())]
        return sum(v[0] for v in hit), sum(v[2] for v in hit)

    # Submitted late: flagged at submission, the accepted one's amount counted under its key.
    assert total(before, is_late=True) == total(after, is_late=True) == (2, 50000)
    # The sweep flagged the records not submitted by their deadline; the province counts them.
    assert total(before, is_overdue=True)[0] == 0
    assert total(after, is_overdue=True)[0] == report.overdue
    assert sum(v[0] for k, v in after.items() if k[0] == gd) == sum(v[0] for k, v in before.items() if k[0] == gd)
    assert sweeps.run_sweep(w.db, now=at("2021-12-23T11:00")).late == 0
    _same(w)
