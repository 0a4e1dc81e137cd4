"""``bangfu verify``: recompute a round's figures from the ledger and report every difference
by organisation, in Chinese (the stored snapshots, the overview's rollup, the quotas and the
lapsed amounts). Read-only: it changes nothing; ``bangfu rollup-rebuild`` and a new summary
repair what it finds."""

from __future__ import annotations

from dataclasses import dataclass, field
from time import perf_counter

from workflow.domain import rules
from workflow.store.checks import Difference
from workflow.store.uow import UnitOfWork

#: What each check means, for the report.
CHECKS: dict[str, str] = {
    "snapshot_line": "汇总快照与明细不符",
    "snapshot_total": "汇总快照合计与其分渠道数字不符",
    "snapshot_missing": "已提交或已通过，但没有汇总快照",
    "snapshot_stale_sent": "已提交或已通过，但汇总快照已过期",
    "rollup": "概况汇总表与记录不符",
    "quota": "额外额度不等于每人额度×会员人数",
    "lapsed": "作废额度不等于额度减去已用额度",
}


@dataclass(frozen=True)
class Finding:
    org_code: str
    org_name: str
    check: str
    what: str  # Chinese: the check's meaning and its detail
    expected: tuple[int, ...]
    stored: tuple[int, ...]

    @property
    def line(self) -> str:
        figures = ""
        if self.expected or self.stored:
            figures = f"：应为 {_figures(self.check, self.expected)}，实存 {_figures(self.check, self.stored)}"
        return f"{self.org_name}（{self.org_code}）{self.what}{figures}"


@dataclass
class VerifyReport:
    round_label: str
    seconds: float = 0.0
    checked: dict[str, int] = field(default_factory=dict)  # check -> differences found
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def text(self) -> str:
        head = f"{self.round_label}核对（用时 {self.seconds:.1f} 秒）："
        if self.ok:
            return head + "所有汇总快照、概况汇总表、额外额度和作废额度都与明细一致\n"
        lines = [head + f"发现 {len(self.findings):,} 处不一致"]
        lines += [f"  {f.line}" for f in self.findings]
        return "\n".join(lines) + "\n"


def _figures(check: str, values: tuple[int, ...]) -> str:
    if check == "rollup":
        n, people, fen = values
        return f"{n:,} 条记录、{people:,} 人次、{rules.yuan(fen)} 元"
    if check in ("quota", "lapsed"):
        return f"{rules.yuan(values[0])} 元"
    people, fen = values
    return f"{people:,} 人次、{rules.yuan(fen)} 元"


def verify(uow: UnitOfWork, *, round_label: str | None = None) -> list[VerifyReport]:
    """Check one round, or every round; one report per round."""
    out = []
    with uow:
        rounds = [uow.directory.round_by_label(round_label)] if round_label else uow.directory.rounds()
        for rnd in rounds:
            started = perf_counter()
            report = VerifyReport(round_label=rnd.label)
            found: list[Difference] = []
            c = uow.checks
            for name, check in (("snapshot_line", c.snapshot_lines), ("snapshot_total", c.snapshot_totals),
                                ("snapshot_sent", c.snapshots_sent), ("rollup", c.rollup),
                                ("quota", c.quotas), ("lapsed", c.lapsed)):
                diffs = check(rnd.id or 0)
                report.checked[name] = len(diffs)
                found.extend(diffs)
            names = c.org_names({d.org_id for d in found})
            channels = {ch.code: ch.name for ch in uow.directory.policy(rnd.policy_code).channels}
            for d in found:
                code, name = names.get(d.org_id, ("?", "?"))
                detail = channels.get(d.detail, d.detail) if d.check == "snapshot_line" else d.detail
                if d.check == "snapshot_total":
                    detail = f"{detail} 的汇总"
                what = CHECKS[d.check] + (f"（{detail}）" if detail else "")
                report.findings.append(Finding(code, name, d.check, what, d.expected, d.stored))
            report.seconds = perf_counter() - started
            out.append(report)
    return out
