"""Time in state (issue 23 point 5): how long submitted records wait for their parent's decision,
per level, per federation and per reviewer — median, 90th percentile and longest, in days — with
the returns per record and the slowest units.

The waits come set-based from :meth:`workflow.store.review_times.ReviewTimes.waits` (one
statement over ``history``, streamed); the percentiles are computed here, over each group's
durations, as PostgreSQL's ``percentile_cont`` would (linear interpolation between the two
nearest ranks): SQLite has none. Who may see it: a reviewer, admin or observer of the
organisation's subtree (as completeness, :func:`workflow.domain.access.can_view_completeness`).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import states
from workflow.app.administration import KIND_LABELS
from workflow.app.reporting import _round, oversight_org
from workflow.domain import clock
from workflow.domain.errors import NotFound, PermissionDenied
from workflow.formats.exports import write_sheets_xlsx
from workflow.store.review_times import Wait
from workflow.store.uow import UnitOfWork

#: The slowest waits listed.
SLOWEST_SHOWN = 10
#: Days are shown with one decimal (2.5 天 is two and a half days).
DAY_SECONDS = 86_400

LEVEL_LABELS = {"province": "省总工会", **KIND_LABELS}
HEADERS = ("", "审核次数", "中位数（天）", "90%（天）", "最长（天）", "退回次数", "涉及记录", "每条记录退回次数")
SLOWEST_HEADERS = ("单位", "审核单位", "审核人", "结果", "提交时间", "审核时间", "用时（天）")


def percentile(values: list[float], share: float) -> float:
    """The ``share`` percentile of sorted ``values`` by linear interpolation (``percentile_cont``)."""
    pos = share * (len(values) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def china_minute(instant: datetime) -> str:
    """An instant as a clerk reads it: China time to the minute."""
    aware = instant if instant.tzinfo else instant.replace(tzinfo=UTC)
    return aware.astimezone(clock.CHINA).strftime("%Y-%m-%d %H:%M")


def _days(value: float) -> float:
    return round(value, 1)


@dataclass
class _Acc:
    durations: list[float] = field(default_factory=list)
    records: set[int] = field(default_factory=set)
    returns: int = 0

    def add(self, wait: Wait, days: float) -> None:
        self.durations.append(days)
        self.records.add(wait.record_id)
        self.returns += wait.decision == "return_for_revision"


@dataclass(frozen=True)
class Group:
    """One row of the report: a level, a federation or a reviewer (or all of them)."""

    label: str
    decisions: int
    median_days: float
    p90_days: float
    longest_days: float
    returns: int
    records: int

    @property
    def returns_per_record(self) -> float:
        return round(self.returns / self.records, 2) if self.records else 0.0

    @classmethod
    def of(cls, label: str, acc: _Acc) -> Group:
        xs = sorted(acc.durations)
        return cls(label, len(xs), _days(percentile(xs, 0.5)), _days(percentile(xs, 0.9)), _days(xs[-1]),
                   acc.returns, len(acc.records))

    def row(self) -> tuple[Any, ...]:
        return (self.label, self.decisions, self.median_days, self.p90_days, self.longest_days, self.returns,
                self.records, self.returns_per_record)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "decisions": self.decisions, "median_days": self.median_days,
                "p90_days": self.p90_days, "longest_days": self.longest_days, "returns": self.returns,
                "records": self.records, "returns_per_record": self.returns_per_record}


@dataclass(frozen=True)
class Slow:
    unit_name: str
    federation_name: str
    reviewer_name: str
    decision: str
    submitted_at: datetime
    decided_at: datetime
    days: float

    def row(self) -> tuple[Any, ...]:
        return (self.unit_name, self.federation_name, self.reviewer_name,
                states.TRIGGER_LABELS.get(self.decision, self.decision), china_minute(self.submitted_at),
                china_minute(self.decided_at), self.days)

    def to_dict(self) -> dict[str, Any]:
        return {"unit_name": self.unit_name, "federation_name": self.federation_name,
                "reviewer_name": self.reviewer_name, "decision": self.decision,
                "decision_label": states.TRIGGER_LABELS.get(self.decision, self.decision),
                "submitted_at": self.submitted_at, "decided_at": self.decided_at, "days": self.days}


@dataclass(frozen=True)
class ReviewTimesReport:
    org_code: str
    org_name: str
    round_label: str
    total: Group | None
    by_level: list[Group]
    by_federation: list[Group]
    by_reviewer: list[Group]
    slowest: list[Slow]

    @property
    def title(self) -> str:
        return f"{self.org_name}{self.round_label}审核用时"

    def to_dict(self) -> dict[str, Any]:
        return {"org_code": self.org_code, "org_name": self.org_name, "round_label": self.round_label,
                "total": self.total.to_dict() if self.total else None,
                "by_level": [g.to_dict() for g in self.by_level],
                "by_federation": [g.to_dict() for g in self.by_federation],
                "by_reviewer": [g.to_dict() for g in self.by_reviewer],
                "slowest": [s.to_dict() for s in self.slowest]}

    def xlsx(self) -> bytes:
        """The report as a workbook: one sheet per grouping and the slowest units."""
        def rows(first: str, groups: list[Group]) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
            return (first, *HEADERS[1:]), [g.row() for g in groups]

        sheets = [(f"按{name}", f"{self.title}（按{name}）", *rows(name, groups)) for name, groups in
                  (("层级", self.by_level), ("审核单位", self.by_federation), ("审核人", self.by_reviewer))]
        sheets.append(("最慢的单位", f"{self.title}（最慢的单位）", SLOWEST_HEADERS, [s.row() for s in self.slowest]))
        return write_sheets_xlsx(sheets)


def summarise(waits: Iterable[Wait]) -> tuple[Group | None, list[Group], list[Group], list[Group], list[Slow]]:
    """The groups (slowest median first, then name) and the slowest waits, in one pass."""
    total = _Acc()
    levels: dict[str, _Acc] = {}
    feds: dict[str, _Acc] = {}
    reviewers: dict[str, _Acc] = {}
    slow: list[tuple[float, int, Wait]] = []
    for n, w in enumerate(waits):
        days = (w.decided_at - w.submitted_at).total_seconds() / DAY_SECONDS
        total.add(w, days)
        levels.setdefault(LEVEL_LABELS.get(w.federation_kind or "", "其他"), _Acc()).add(w, days)
        feds.setdefault(w.federation_name or "（未知单位）", _Acc()).add(w, days)
        reviewers.setdefault(f"{w.reviewer_name or '系统'}（{w.federation_name or ''}）", _Acc()).add(w, days)
        item = (days, -n, w)
        if len(slow) < SLOWEST_SHOWN:
            heapq.heappush(slow, item)
        elif item > slow[0]:
            heapq.heapreplace(slow, item)

    def groups(accs: dict[str, _Acc]) -> list[Group]:
        return sorted((Group.of(k, a) for k, a in accs.items()), key=lambda g: (-g.median_days, g.label))

    slowest = [Slow(w.unit_name, w.federation_name or "", w.reviewer_name or "", w.decision,
                    w.submitted_at, w.decided_at, _days(d)) for d, _n, w in sorted(slow, reverse=True)]
    return (Group.of("合计", total) if total.durations else None, groups(levels), groups(feds),
            groups(reviewers), slowest)


def review_times(
    uow: UnitOfWork, *, user_id: int, org_code: str | None = None, round_label: str | None = None,
) -> ReviewTimesReport:
    """The review-times report of ``org_code``'s subtree (default: the user's highest reviewer,
    admin or observer seat) in a round. Each wait is a ``submit`` and the parent's next decision
    (通过, 补报通过, 退回修改) on the same record; a wait still open is not counted."""
    with uow:
        rnd = _round(uow, round_label)
        org = oversight_org(uow, user_id, org_code)
        parts = summarise(uow.review_times.waits(rnd.id or 0, org.id or 0, org.path))
    return ReviewTimesReport(org.code, org.name, rnd.label, *parts)


def may_see(uow: UnitOfWork, *, user_id: int, org_code: str) -> bool:
    """Whether :func:`review_times` would show the user this organisation's report (the same rule,
    asked, not copied): the overview links it only for those it would not refuse."""
    with uow:
        try:
            oversight_org(uow, user_id, org_code)
        except (PermissionDenied, NotFound):
            return False
    return True
