"""补报: a union that comes after its district was accepted reaches the province as a supplement,
without reopening any accepted report (SQLite and PostgreSQL)."""

from __future__ import annotations

import io

import openpyxl
import pytest

import states
from tests.conftest import World
from workflow.app import reporting, supplements, verify
from workflow.domain.errors import RuleViolation


def send_up(w: World, org: str, reviewer: str) -> None:
    """Summarize and submit a federation as its clerk, then accept it as ``reviewer``."""
    clerk = f"{org.lower()}-clerk"
    w.fire(org, "finish_purchasing", clerk)
    w.info(org, work_experience="经验", work_highlights="亮点")
    w.fire(org, "summarize", clerk)
    w.fire(org, "submit", clerk)
    w.fire(org, "accept", reviewer)


def province_accepted_c1(w: World) -> None:
    """G1 accepted by D1; D1 accepted by C1; C1 accepted by the province. G2 is not in yet."""
    w.to_submitted("G1")
    w.fire("G1", "accept", "d1-reviewer")
    send_up(w, "D1", "c1-reviewer")
    send_up(w, "C1", "gd-reviewer")


def sup_of(w: World, org: str) -> list[supplements.SupplementView]:
    with w.uow(True) as uow:
        return uow.supplements.for_record(w.rid(org))


def test_a_late_union_reaches_the_province_as_a_supplement(any_world: World) -> None:
    w = any_world
    province_accepted_c1(w)
    w.to_submitted("G2")  # 1,200 yuan for 20 people, after everything above it was accepted
    with pytest.raises(RuleViolation) as refused:
        w.fire("G2", "accept", "d1-reviewer")
    assert refused.value.code == "decision.parent_locked" and "补报通过" in str(refused.value)

    result = w.fire("G2", "accept_late", "d1-reviewer")
    assert result.to_state == states.ACCEPTED and "补报通过" in result.message
    # The accepted reports stay accepted, untouched.
    assert (w.state("D1"), w.state("C1")) == (states.ACCEPTED, states.ACCEPTED)
    (d1_sup,) = sup_of(w, "D1")
    assert (d1_sup.state, d1_sup.amount_total_fen, d1_sup.late_units) == ("submitted", 120000, [("G2", "天河供电局工会")])

    # The city's reviewer accepts the supplement; the city's report is accepted, so it goes on up.
    done = supplements.accept(w.uow(), supplement_id=d1_sup.id, user_id=w.uid("c1-reviewer"))
    assert done.forwarded is not None and "报上级审核" in done.message
    (c1_sup,) = sup_of(w, "C1")
    assert (c1_sup.state, c1_sup.amount_total_fen, c1_sup.late_units) == ("submitted", 120000, [("G2", "天河供电局工会")])
    # Another city's reviewer cannot decide it; the province's can.
    with pytest.raises(Exception) as wrong:
        supplements.accept(w.uow(), supplement_id=c1_sup.id, user_id=w.uid("c1-reviewer"))
    assert getattr(wrong.value, "code", "") == "permission.not_parent_reviewer"
    top = supplements.accept(w.uow(), supplement_id=c1_sup.id, user_id=w.uid("gd-reviewer"))
    assert top.forwarded is None
    with pytest.raises(RuleViolation) as twice:
        supplements.accept(w.uow(), supplement_id=c1_sup.id, user_id=w.uid("gd-reviewer"))
    assert twice.value.code == "supplement.not_pending"

    # The histories say 补报; nothing was reopened.
    with w.uow(True) as uow:
        d1_triggers = [h.trigger for h in uow.records.history(w.rid("D1"))]
        c1_triggers = [h.trigger for h in uow.records.history(w.rid("C1"))]
    assert d1_triggers[-2:] == ["supplement", "accept_supplement"]
    assert c1_triggers[-2:] == ["supplement", "accept_supplement"]
    assert "revoke_acceptance" not in d1_triggers + c1_triggers

    # bangfu verify: every snapshot with its supplements still equals its parts.
    (report,) = verify.verify(w.uow(), round_label="2021年度")
    assert report.ok, report.text()


def test_the_province_workbook_shows_original_plus_supplements_and_who_came_late(any_world: World) -> None:
    w = any_world
    province_accepted_c1(w)
    w.to_submitted("G2")
    w.fire("G2", "accept_late", "d1-reviewer")
    (d1_sup,) = sup_of(w, "D1")
    supplements.accept(w.uow(), supplement_id=d1_sup.id, user_id=w.uid("c1-reviewer"))

    def c1_row() -> tuple[str, str]:
        """广州市总工会's amount (万元) and status on the province workbook's overview sheet."""
        data = reporting.province_workbook(w.uow(True), user_id=w.uid("gd-reviewer"), round_label="2021年度")
        sheet = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
        row = next(r for r in sheet.iter_rows(values_only=True) if r[1] == "广州市总工会")
        return str(row[3]), str(row[4])

    amount, status = c1_row()
    assert amount == "0.12"  # G1 only: the supplement waits for the province
    assert "天河供电局工会（G2）" in status and "待上级审核" in status and "未计入" in status
    (c1_sup,) = sup_of(w, "C1")
    supplements.accept(w.uow(), supplement_id=c1_sup.id, user_id=w.uid("gd-reviewer"))
    amount, status = c1_row()
    assert amount == "0.24"  # original + supplement
    assert "原报：20 人次、1,200.00 元" in status and "补报1（迟交单位：天河供电局工会（G2）；已通过，已计入）" in status


def test_a_returned_report_folds_its_supplements_into_its_next_summary(any_world: World) -> None:
    w = any_world
    w.to_submitted("G1")
    w.fire("G1", "accept", "d1-reviewer")
    clerk = "d1-clerk"
    w.fire("D1", "finish_purchasing", clerk)
    w.info("D1")
    w.fire("D1", "summarize", clerk)
    w.fire("D1", "submit", clerk)  # submitted, not yet accepted
    w.to_submitted("G2")
    w.fire("G2", "accept_late", "d1-reviewer")
    assert [s.state for s in sup_of(w, "D1")] == ["submitted"]
    w.fire("D1", "return_for_revision", "c1-reviewer", reason="请补充")
    assert [s.state for s in sup_of(w, "D1")] == ["superseded"]
    w.fire("D1", "summarize", clerk)
    with w.uow(True) as uow:
        snap, _lines = uow.records.snapshot(uow.records.get(w.rid("D1")).snapshot_id or 0)
    assert snap.amount_total_fen == 240000  # both unions, in one ordinary report now
    (report,) = verify.verify(w.uow(), round_label="2021年度")
    assert report.ok, report.text()


def test_accept_late_is_only_for_a_parent_that_has_sent_its_report(any_world: World) -> None:
    w = any_world
    w.to_submitted("G1")
    with pytest.raises(RuleViolation) as refused:
        w.fire("G1", "accept_late", "d1-reviewer")
    assert refused.value.code == "decision.parent_not_sent"
