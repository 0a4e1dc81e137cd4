"""The ordinary holiday-gift limits of 粤工总〔2018〕5号 with the 17号 extra quota exempted (pure).

A grassroots union's extra quota (chosen amount × members) buys aid farm products as holiday
gifts outside the ordinary limits. Spending on the extra side up to the quota is exempt; any
spending above the quota is allowed but moves to the ordinary side. The ordinary side is then
checked without the exempt part:

- on the **budget** basis: above ``budget_share_hard_percent`` (40%) of the year's budgeted
  expenditure fails, above ``budget_share_soft_percent`` (30%) warns;
- on the **retained** basis: above ``retained_share_hard_percent`` (50%) of retained funds fails;
- either way, above ``per_member_soft_fen`` (2,500 yuan) per member warns.

Every verdict carries its arithmetic in Chinese. Limits are compared exactly (integer cross
multiplication); percentages are shown with two decimals, ROUND_HALF_UP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from workflow.domain.policy import OrdinaryLimits
from workflow.domain.rules import yuan

BASES = {"budget": "年度预算支出", "retained": "留成经费"}
OK, WARN, FAIL = "ok", "warn", "fail"
LEVEL_LABELS = {OK: "符合", WARN: "提示", FAIL: "不符合"}


@dataclass(frozen=True)
class Verdict:
    code: str
    level: str  # ok | warn | fail
    message: str

    def __str__(self) -> str:
        return f"【{LEVEL_LABELS[self.level]}】{self.message}"


@dataclass(frozen=True)
class LimitCheck:
    """The outcome: the exempt part, what moved to the ordinary side and each verdict."""

    quota_fen: int
    extra_fen: int
    exempt_fen: int
    moved_fen: int
    ordinary_fen: int
    counted_fen: int  # ordinary + moved: what the ordinary limits see
    basis: str
    verdicts: list[Verdict] = field(default_factory=list)
    explanation: list[str] = field(default_factory=list)

    @property
    def level(self) -> str:
        levels = {v.level for v in self.verdicts}
        return FAIL if FAIL in levels else WARN if WARN in levels else OK

    def lines(self) -> list[str]:
        return [*self.explanation, *(str(v) for v in self.verdicts)]


def percent(part: int, whole: int) -> Decimal:
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def check_limits(
    *,
    ordinary_fen: int,
    budget_fen: int,
    retained_fen: int,
    basis: str,
    quota_fen: int,
    extra_fen: int,
    members: int | None,
    limits: OrdinaryLimits,
) -> LimitCheck:
    """Check the year's ordinary holiday-gift spending against the limits.

    Args:
        ordinary_fen: the year's ordinary holiday-gift spending (outside the extra quota).
        budget_fen: the year's budgeted expenditure.
        retained_fen: the retained funds.
        basis: ``budget`` or ``retained`` (the union's choice).
        quota_fen: the extra quota (chosen amount × members).
        extra_fen: spending on aid products booked against the extra quota.
        members: the member count (for the per-member warning), or None.
        limits: the policy's ordinary limits.

    Returns:
        A :class:`LimitCheck` with the exempt and moved parts and one verdict per limit.

    Raises:
        ValueError: an unknown basis or a negative amount (callers check input first).
    """
    if basis not in BASES:
        raise ValueError(f"unknown basis {basis!r}")
    if min(ordinary_fen, budget_fen, retained_fen, quota_fen) < 0:
        raise ValueError("negative amount")
    extra = max(extra_fen, 0)
    exempt = min(extra, quota_fen)
    moved = extra - exempt
    counted = ordinary_fen + moved
    explain = [
        f"额外额度 {yuan(quota_fen)} 元，额外额度内采购消费帮扶慰问品 {yuan(exempt)} 元，不计入普通节日慰问品限额"
    ]
    if moved:
        explain.append(
            f"超出额外额度的 {yuan(extra)} 元 − {yuan(quota_fen)} 元 = {yuan(moved)} 元计入普通节日慰问品："
            f"{yuan(ordinary_fen)} 元 + {yuan(moved)} 元 = {yuan(counted)} 元"
        )
    verdicts: list[Verdict] = []
    base_label = BASES[basis]
    base = budget_fen if basis == "budget" else retained_fen
    head = f"普通节日慰问品 {yuan(counted)} 元 ÷ {base_label} {yuan(base)} 元"
    if base == 0:
        level = FAIL if counted > 0 else OK
        verdicts.append(Verdict(f"limits.{basis}_zero", level,
                                f"{base_label}为 0 元，普通节日慰问品 {yuan(counted)} 元"
                                + ("无法在限额内列支" if counted else "，未超限")))
    elif basis == "budget":
        hard, soft = limits.budget_share_hard_percent, limits.budget_share_soft_percent
        share = f"{head} = {percent(counted, base)}%"
        if counted * 100 > hard * base:
            verdicts.append(Verdict("limits.budget_hard", FAIL, f"{share}，超过最高 {hard}%"))
        elif counted * 100 > soft * base:
            verdicts.append(Verdict("limits.budget_soft", WARN, f"{share}，超过一般 {soft}%（未超过最高 {hard}%）"))
        else:
            verdicts.append(Verdict("limits.budget_ok", OK, f"{share}，未超过一般 {soft}%"))
    else:
        hard = limits.retained_share_hard_percent
        share = f"{head} = {percent(counted, base)}%"
        if counted * 100 > hard * base:
            verdicts.append(Verdict("limits.retained_hard", FAIL, f"{share}，超过 {hard}%"))
        else:
            verdicts.append(Verdict("limits.retained_ok", OK, f"{share}，未超过 {hard}%"))
    if members:
        per = limits.per_member_soft_fen
        per_member = (Decimal(counted) / members / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        text = f"普通节日慰问品 {yuan(counted)} 元 ÷ 会员 {members:,} 人 = 每人 {per_member:,} 元"
        if counted > per * members:
            verdicts.append(Verdict("limits.per_member", WARN, f"{text}，超过一般每人每年 {yuan(per)} 元"))
        else:
            verdicts.append(Verdict("limits.per_member_ok", OK, f"{text}，未超过每人每年 {yuan(per)} 元"))
    return LimitCheck(
        quota_fen=quota_fen, extra_fen=extra, exempt_fen=exempt, moved_fen=moved, ordinary_fen=ordinary_fen,
        counted_fen=counted, basis=basis, verdicts=verdicts, explanation=explain,
    )


__all__ = ["BASES", "FAIL", "LimitCheck", "OK", "Verdict", "WARN", "check_limits", "percent"]
