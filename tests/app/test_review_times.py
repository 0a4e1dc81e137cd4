"""Time in state (issue 23 point 5): days from submit to the parent's decision, per level,
federation and reviewer, on SQLite and PostgreSQL, with submits and decisions at known times."""

from __future__ import annotations

from datetime import timedelta

import pytest
from openpyxl import load_workbook

from tests.conftest import NOW_2021, World
from workflow.app import review_times
from workflow.domain.errors import NotFound, PermissionDenied

DAY = timedelta(days=1)


def build_waits(w: World) -> None:
    """G1 waits 2 days and is returned, resubmitted, accepted a day later; G2 waits 6 days;
    G3 (under 越秀) 10 days; G4 is still waiting (not counted)."""
    for org in ("G1", "G2", "G3", "G4"):
        w.to_submitted(org)  # submitted at NOW_2021
    w.fire("G1", "return_for_revision", "d1-reviewer", reason="发票不清晰", now=NOW_2021 + 2 * DAY)
    w.fire("G1", "summarize", "g1-clerk", now=NOW_2021 + 3 * DAY)
    w.fire("G1", "submit", "g1-clerk", now=NOW_2021 + 3 * DAY)
    w.fire("G1", "accept", "d1-reviewer", now=NOW_2021 + 4 * DAY)
    w.fire("G2", "accept", "d1-reviewer", now=NOW_2021 + 6 * DAY)
    w.fire("G3", "accept", "d2-reviewer", now=NOW_2021 + 10 * DAY)


def report(w: World, user: str, org: str | None = None) -> review_times.ReviewTimesReport:
    return review_times.review_times(w.uow(True), user_id=w.uid(user), org_code=org, round_label=w.round_label)


def test_city_sees_medians_p90_longest_and_returns(any_world: World) -> None:
    build_waits(any_world)
    r = report(any_world, "c1-reviewer")
    assert r.org_name == "广州市总工会"
    # Waits 1, 2, 6 (天河) and 10 (越秀): median 4, p90 6 + 0.7 × 4 = 8.8.
    assert r.total is not None
    assert (r.total.decisions, r.total.median_days, r.total.p90_days, r.total.longest_days) == (4, 4.0, 8.8, 10.0)
    assert (r.total.returns, r.total.records, r.total.returns_per_record) == (1, 3, 0.33)
    assert [g.label for g in r.by_level] == ["区县总工会"]
    tianhe, = (g for g in r.by_federation if g.label == "天河区总工会")
    assert (tianhe.decisions, tianhe.median_days, tianhe.p90_days, tianhe.longest_days) == (3, 2.0, 5.2, 6.0)
    assert (tianhe.returns, tianhe.records, tianhe.returns_per_record) == (1, 2, 0.5)
    assert [g.label for g in r.by_federation] == ["越秀区总工会", "天河区总工会"]  # slowest median first
    assert [g.label for g in r.by_reviewer] == ["D2审核人（越秀区总工会）", "D1审核人（天河区总工会）"]
    assert [(s.unit_name, s.days, s.decision) for s in r.slowest] == [
        ("越秀医院工会", 10.0, "accept"), ("天河供电局工会", 6.0, "accept"),
        ("天河一中工会", 2.0, "return_for_revision"), ("天河一中工会", 1.0, "accept")]


def test_a_district_sees_its_own_only(any_world: World) -> None:
    build_waits(any_world)
    r = report(any_world, "d1-reviewer")
    assert r.org_name == "天河区总工会"
    assert r.total is not None and r.total.decisions == 3
    assert [g.label for g in r.by_federation] == ["天河区总工会"]
    assert {s.unit_name for s in r.slowest} == {"天河一中工会", "天河供电局工会"}
    with pytest.raises(NotFound):
        report(any_world, "d1-reviewer", "D2")
    with pytest.raises(PermissionDenied):
        report(any_world, "g1-clerk", "G1")
    # Another city's province-wide view has none of C1's waits under C2.
    c2 = report(any_world, "c2-reviewer")
    assert c2.total is None and c2.by_federation == [] and c2.slowest == []


def test_observer_sees_it_and_the_workbook_has_every_grouping(any_world: World) -> None:
    build_waits(any_world)
    r = report(any_world, "observer")
    assert r.total is not None and r.total.decisions == 4
    book = load_workbook(__import__("io").BytesIO(r.xlsx()))
    assert book.sheetnames == ["按层级", "按审核单位", "按审核人", "最慢的单位"]
    fed = book["按审核单位"]
    assert [c.value for c in fed[2]] == ["审核单位", "审核次数", "中位数（天）", "90%（天）", "最长（天）",
                                         "退回次数", "涉及记录", "每条记录退回次数"]
    assert [c.value for c in fed[4]] == ["天河区总工会", 3, 2.0, 5.2, 6.0, 1, 2, 0.5]
    slow = book["最慢的单位"]
    assert [c.value for c in slow[3]][:4] == ["越秀医院工会", "越秀区总工会", "D2审核人", "通过"]
    assert slow[3][4].value == "2021-11-01 10:00"  # China time
