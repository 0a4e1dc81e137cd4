"""The ordinary holiday-gift limits with the extra quota exempted: verdicts with arithmetic."""

from __future__ import annotations

import pytest

from tests.conftest import World
from workflow.app import reporting
from workflow.domain import limits
from workflow.domain.errors import BadInput, RuleViolation
from workflow.domain.policy import builtin

LIMITS = builtin().limits


def check(**kw: object) -> limits.LimitCheck:
    args: dict[str, object] = dict(ordinary_fen=0, budget_fen=30_000_000, retained_fen=0, basis="budget",
                                   quota_fen=0, extra_fen=0, members=None, limits=LIMITS)
    args.update(kw)
    return limits.check_limits(**args)  # type: ignore[arg-type]


def test_budget_hard_limit_fails_with_its_arithmetic() -> None:
    result = check(ordinary_fen=12_345_600)
    (verdict,) = result.verdicts
    assert verdict.level == limits.FAIL and verdict.code == "limits.budget_hard"
    assert verdict.message == "普通节日慰问品 123,456.00 元 ÷ 年度预算支出 300,000.00 元 = 41.15%，超过最高 40%"
    assert result.level == limits.FAIL


def test_exactly_40_percent_warns_and_30_percent_passes() -> None:
    assert check(ordinary_fen=12_000_000).verdicts[0].level == limits.WARN
    assert check(ordinary_fen=12_000_001).verdicts[0].level == limits.FAIL
    assert check(ordinary_fen=9_000_000).verdicts[0].level == limits.OK
    warn = check(ordinary_fen=9_000_100).verdicts[0]
    assert warn.level == limits.WARN and "超过一般 30%" in warn.message and "30.00%" in warn.message


def test_extra_up_to_the_quota_is_exempt_and_the_rest_moves_to_the_ordinary_side() -> None:
    # Quota 60,000 yuan; 70,000 yuan spent on the extra side: 10,000 moves over.
    result = check(ordinary_fen=8_000_000, quota_fen=6_000_000, extra_fen=7_000_000)
    assert (result.exempt_fen, result.moved_fen, result.counted_fen) == (6_000_000, 1_000_000, 9_000_000)
    assert result.verdicts[0].level == limits.OK  # 90,000 / 300,000 = 30.00%: not above 30%
    assert "70,000.00 元 − 60,000.00 元 = 10,000.00 元" in result.lines()[1]
    assert "80,000.00 元 + 10,000.00 元 = 90,000.00 元" in result.lines()[1]
    # Within the quota nothing moves, whatever the amount.
    within = check(ordinary_fen=0, quota_fen=6_000_000, extra_fen=6_000_000)
    assert (within.moved_fen, within.counted_fen, within.level) == (0, 0, limits.OK)


def test_retained_basis_fails_above_50_percent_and_ignores_the_budget() -> None:
    result = check(ordinary_fen=5_100_000, budget_fen=0, retained_fen=10_000_000, basis="retained")
    (verdict,) = result.verdicts
    assert verdict.level == limits.FAIL
    assert verdict.message == "普通节日慰问品 51,000.00 元 ÷ 留成经费 100,000.00 元 = 51.00%，超过 50%"
    assert check(ordinary_fen=5_000_000, retained_fen=10_000_000, basis="retained").level == limits.OK


def test_per_member_warning() -> None:
    result = check(ordinary_fen=2_600_00 * 10, budget_fen=100_000_000, members=10)
    per = result.verdicts[1]
    assert per.level == limits.WARN
    assert per.message == "普通节日慰问品 26,000.00 元 ÷ 会员 10 人 = 每人 2,600.00 元，超过一般每人每年 2,500.00 元"
    assert check(ordinary_fen=2_500_00 * 10, budget_fen=100_000_000, members=10).level == limits.OK


def test_zero_base_with_spending_fails() -> None:
    assert check(ordinary_fen=100, budget_fen=0).level == limits.FAIL
    assert check(ordinary_fen=0, budget_fen=0).level == limits.OK


def test_service_reads_quota_and_extra_spending_from_the_record(any_world: World) -> None:
    w = any_world
    w.plan("G1", 60000, 100)  # quota 60,000 yuan
    w.buy("G1", "E1", 7_000_000, 100)  # 70,000 yuan on the extra side
    result = reporting.limits_for(w.uow(True), org_code="G1", user_id=w.uid("g1-clerk"), round_label="2021年度",
                                ordinary_fen=11_000_000, budget_fen=30_000_000, retained_fen=0, basis="budget")
    assert (result.exempt_fen, result.moved_fen, result.counted_fen) == (6_000_000, 1_000_000, 12_000_000)
    assert result.verdicts[0].level == limits.WARN  # exactly 40%
    assert result.verdicts[1].level == limits.OK  # 1,200 yuan per member
    with pytest.raises(RuleViolation):
        reporting.limits_for(w.uow(True), org_code="D1", user_id=w.uid("d1-clerk"), round_label="2021年度",
                           ordinary_fen=0, budget_fen=1, retained_fen=0, basis="budget")
    with pytest.raises(BadInput):
        reporting.limits_for(w.uow(True), org_code="G1", user_id=w.uid("g1-clerk"), round_label="2021年度",
                           ordinary_fen=0, budget_fen=1, retained_fen=0, basis="both")
