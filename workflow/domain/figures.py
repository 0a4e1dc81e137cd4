"""The Annex 2 arithmetic: channel lines to the form's rows, totals, the official share, the
rounding to 万 — pure functions and values, no database.

A unit's figures are ``Lines``: per channel, (people, amount in fen), exact. The form's rows come
from the policy (each channel names its Annex 2 row); 人次 in 万 and amounts in 万元 are rounded
to two decimals, ROUND_HALF_UP, each row from its exact value and 合计 from the exact totals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import states
from workflow.domain import rules
from workflow.domain.errors import Refusal
from workflow.domain.money import wan_people, wan_yuan  # noqa: F401 - Annex 2's rounding, re-exported
from workflow.domain.policy import Policy

_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Annex2Row:
    """One channel row of Annex 2.

    Attributes:
        label: the row label, e.g. ``粤工惠购平台``.
        people: 人次 (person-times who received goods), exact.
        amount_fen: 消费总金额或投入总额度 in fen, exact.
    """

    label: str
    people: int
    amount_fen: int


@dataclass(frozen=True)
class Annex2Table:
    """The Annex 2 table of one reporting unit for one round.

    Attributes:
        unit_name: 单位（公章）.
        round_label: e.g. ``2021 年度``.
        rows: the channel rows in order (normally :data:`ANNEX2_ROW_LABELS`).
        reporter: 填报人.
        fill_date: 填表时间 (the snapshot's as-of date).
        phone: 联系电话.
        status_note: e.g. ``已审核`` / ``未报送``; shown in the province overview and under
            the form.
        draft: not submitted (a live draft or a snapshot not yet sent up): the form says
            未提交（草稿） beside the round, so a printed draft is never taken for the report.
        supplement_note: for a report completed by 补报 (supplements: late units' figures sent
            after it), the original and each supplement with the units that came late; the
            rows count the original and the accepted supplements.
    """

    unit_name: str
    round_label: str
    rows: list[Annex2Row]
    reporter: str | None = None
    fill_date: date | None = None
    phone: str | None = None
    status_note: str | None = None
    draft: bool = False
    #: A single (grassroots) union's own form: 人次 and 元 as they are, never 万 (12 people would
    #: print as 0.00 万 on the paper the union stamps).
    exact: bool = False
    supplement_note: str | None = None
    #: False for a unit that has not sent its report up (the province workbook lists it on its
    #: 未报送单位 sheet instead of printing it a form of zeros).
    reported: bool = True

    @property
    def round_line(self) -> str:
        """The round as the form's second line; a draft says so."""
        return f"{self.round_label}（未提交，草稿）" if self.draft else self.round_label

    @property
    def total_people(self) -> int:
        """Exact 人次 total over the rows."""
        return sum(r.people for r in self.rows)

    @property
    def total_amount_fen(self) -> int:
        """Exact amount total over the rows, in fen."""
        return sum(r.amount_fen for r in self.rows)








def rounding_note(table: Annex2Table) -> str | None:
    """The note every format prints when the form's rows, each rounded to 万 from its exact value,
    do not add up to its 合计 (rounded once from the exact totals); None when they do, or when
    the form shows exact figures."""
    if table.exact:
        return None
    rows_people = sum(wan_people(r.people) for r in table.rows)
    rows_yuan = sum(wan_yuan(r.amount_fen) for r in table.rows)
    total_people, total_yuan = wan_people(table.total_people), wan_yuan(table.total_amount_fen)
    if rows_people == total_people and rows_yuan == total_yuan:
        return None
    return (f"注：各行与合计分别按精确数四舍五入到万，各行相加为 {rows_people} 万人次、{rows_yuan} 万元，"
            f"合计为 {total_people} 万人次、{total_yuan} 万元，两者不同是舍入所致；"
            f"精确合计 {table.total_people:,} 人次，{rules.yuan(table.total_amount_fen)} 元。")


FROZEN_STATES = (states.SUBMITTED, states.ACCEPTED)

STATUS_ACCEPTED = "已通过"

STATUS_PENDING = "已提交，待审核"

Lines = dict[str, tuple[int, int]]  # channel -> (people, amount_fen)



# --- figures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OfficialShare:
    """The share of the amount bought through official platforms (``official = "yes"``)."""

    official_fen: int
    total_fen: int

    @property
    def percent(self) -> Decimal | None:
        if self.total_fen == 0:
            return None
        return (Decimal(self.official_fen) * 100 / Decimal(self.total_fen)).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )

    def text(self) -> str:
        if self.percent is None:
            return "官方平台采购占比：无采购"
        return (f"官方平台采购 {rules.yuan(self.official_fen)} 元 ÷ 合计 {rules.yuan(self.total_fen)} 元"
                f" = {self.percent}%")



def add_lines(*many: Lines) -> Lines:
    out: Lines = {}
    for lines in many:
        for channel, (p, a) in lines.items():
            op, oa = out.get(channel, (0, 0))
            out[channel] = (op + p, oa + a)
    return out



def annex2_rows(lines: Lines, policy: Policy) -> list[Annex2Row]:
    """Per-channel lines mapped to the policy's Annex 2 rows, in the form's order (exact)."""
    by_row: dict[str, tuple[int, int]] = {s.code: (0, 0) for s in policy.stats_rows}
    fallback = policy.stats_rows[-1].code  # "其他采购渠道": a channel no longer in the policy
    for channel, (p, a) in lines.items():
        ch = policy.channel(channel)
        code = ch.stats_row if ch is not None else fallback
        op, oa = by_row[code]
        by_row[code] = (op + p, oa + a)
    return [Annex2Row(s.label, by_row[s.code][0], by_row[s.code][1]) for s in policy.stats_rows]



def official_share(lines: Lines, policy: Policy) -> OfficialShare:
    official = 0
    for channel, (_p, a) in lines.items():
        ch = policy.channel(channel)
        if ch is not None and ch.is_official:
            official += a
    return OfficialShare(official_fen=official, total_fen=sum(a for _p, a in lines.values()))



@dataclass
class UnitFigures:
    """One unit's numbers in a roll-up, with where they come from."""

    org_id: int
    org_code: str
    org_name: str
    org_kind: str
    path: str
    record_id: int
    state: str
    source: str  # snapshot | live
    lines: Lines
    reporter: str | None
    phone: str | None
    fill_date: date | None
    snapshot_stale: bool
    is_overdue: bool
    is_late: bool

    @property
    def state_label(self) -> str:
        return states.STATE_LABELS[self.state]

    @property
    def people(self) -> int:
        return sum(p for p, _a in self.lines.values())

    @property
    def amount_fen(self) -> int:
        return sum(a for _p, a in self.lines.values())

    @property
    def status_note(self) -> str:
        return status_note(self.state, self.source, self.snapshot_stale)



def status_note(state: str, source: str, stale: bool = False) -> str:
    if state == states.ACCEPTED:
        return STATUS_ACCEPTED
    if state == states.SUBMITTED:
        return STATUS_PENDING
    if source == "snapshot":
        return "已汇总，未提交" + ("（汇总后有新录入，须重新汇总）" if stale else "")
    return f"{states.STATE_LABELS[state]}，未提交（实时数据）"



# --- aggregate lines ------------------------------------------------------------------------


def check_aggregate_line(policy: Policy, *, channel: str, people: int, amount_fen: int, note: str) -> Refusal | None:
    if policy.channel(channel) is None:
        names = "、".join(c.name for c in policy.channels)
        return Refusal("aggregate.unknown_channel", f"未知采购渠道“{channel}”，可选：{names}")
    if refusal := rules.check_purchase_amounts(amount_fen, people):
        return refusal
    if not note.strip():
        return Refusal("aggregate.note_missing", "汇总数据须注明来源（如：某区采购台账汇总）")
    return None

