"""The notice's rules as pure functions over plain values.

Each check returns ``None`` when the rule is satisfied, or a :class:`Refusal` naming the rule in
Chinese with a stable code. Nothing here reads a clock, a database or a file: callers pass ``now``
and the policy's numbers, so every rule is testable in microseconds.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime

from states import ACCEPTED, SUBMITTED
from workflow.domain.budgets import BUDGETS
from workflow.domain.channels import name_key
from workflow.domain.clock import CHINA, deadline_last_day
from workflow.domain.errors import Refusal
from workflow.domain.money import yuan
from workflow.domain.policy import Channel

FEN_PER_YUAN = 100
MAX_MEMBERS = 10_000_000

MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
# Area code 0 + 2-3 digits, a 7-8 digit number, an optional extension: 020-12345678, 0755-1234567-801
LANDLINE_RE = re.compile(r"^0\d{2,3}-?\d{7,8}(?:(?:-|转|ext\.?)\d{1,6})?$")


# --- planning -------------------------------------------------------------------------------


def check_plan(amount_per_member_fen: int | None, members: int | None, *, cap_fen: int) -> Refusal | None:
    """The chosen extra amount per member is 0..cap and a member count is given."""
    if amount_per_member_fen is None:
        return Refusal("plan.amount_missing", "尚未填写每人增加额度（0 元也须明确填写）")
    if not 0 <= amount_per_member_fen <= cap_fen:
        return Refusal(
            "plan.amount_out_of_range",
            f"每人增加额度须在 0 至 {yuan(cap_fen)} 元之间，填写的是 {yuan(amount_per_member_fen)} 元",
        )
    if members is None:
        return Refusal("plan.members_missing", "尚未填写会员人数")
    if not 0 <= members <= MAX_MEMBERS:
        return Refusal("plan.members_out_of_range", f"会员人数须在 0 至 {MAX_MEMBERS:,} 之间")
    if amount_per_member_fen > 0 and members == 0:
        return Refusal("plan.members_zero", "选择了增加额度，会员人数不能为 0")
    return None


def quota_fen(amount_per_member_fen: int, members: int, *, is_grassroots: bool) -> int:
    """The extra quota: chosen amount × members, for grassroots records only (0 otherwise)."""
    if not is_grassroots:
        return 0
    return amount_per_member_fen * members


@dataclass(frozen=True)
class QuotaUse:
    """How a grassroots union's extra-budget spending sits against its quota.

    Attributes:
        quota_fen: the extra quota.
        extra_spent_fen: spending booked against the extra budget.
        exempt_fen: the part that is exempt from the ordinary gift limits (≤ quota).
        over_quota_fen: spending above the quota, counted against the ordinary limits.
        left_fen: quota still unused (lapses after the deadline).
    """

    quota_fen: int
    extra_spent_fen: int
    exempt_fen: int
    over_quota_fen: int
    left_fen: int


def quota_use(quota: int, extra_spent: int) -> QuotaUse:
    """Split extra-budget spending into the exempt part and the part above the quota."""
    exempt = max(0, min(quota, extra_spent))
    return QuotaUse(
        quota_fen=quota,
        extra_spent_fen=extra_spent,
        exempt_fen=exempt,
        over_quota_fen=max(0, extra_spent - quota),
        left_fen=max(0, quota - max(0, extra_spent)),
    )


# --- purchases ------------------------------------------------------------------------------


def check_purchase_year(paid_at: datetime, year: int, quota_last_day: date | None = None) -> Refusal | None:
    """A purchase counts for a round only if paid within that year in China time. The refusal
    names the deadline the clerk missed (the quota's last day, 12 月 31 日 by default)."""
    if paid_at.tzinfo is None:
        return Refusal("purchase.naive_time", "支付时间缺少时区")
    local = paid_at.astimezone(CHINA)
    if local.year != year:
        last = quota_last_day or date(year, 12, 31)
        why = (f"额度须于 {last.month} 月 {last.day} 日前使用（{last:%Y年%m月%d日}）" if local.year > year
               else f"本年度额度自 {year} 年 1 月 1 日起使用")
        return Refusal(
            "purchase.outside_year",
            f"支付时间 {local:%Y-%m-%d %H:%M}（北京时间）不在 {year} 年度内：{why}，不能计入本年度",
        )
    return None


def check_paid_not_after_entry(paid_at: datetime, now: datetime) -> Refusal | None:
    """A purchase cannot be paid later than the moment it is entered (a typo in the date)."""
    if paid_at > now:
        return Refusal(
            "purchase.paid_in_future",
            f"支付时间 {paid_at.astimezone(CHINA):%Y-%m-%d %H:%M}（北京时间）晚于录入时间 "
            f"{now.astimezone(CHINA):%Y-%m-%d %H:%M}：请核对支付日期",
        )
    return None


def check_product_form(form: str | None, forbidden: Collection[str], product: str | None = None) -> Refusal | None:
    """No cash, shopping cards or vouchers (the forms are policy data): neither the line's product
    form nor its product name may contain one of them (``超市购物卡``, ``大闸蟹提货券``). Compared
    after NFKC, without spaces, ignoring case (a spreadsheet's ``购物 卡`` is still a card)."""
    words = [(f, name_key(f)) for f in forbidden if f.strip()]
    for label, text in (("商品形式", form), ("商品名称", product)):
        if not text:
            continue
        key = name_key(text)
        hit = next((f for f, k in words if k in key), None)
        if hit is not None:
            what = f"{label}“{text}”不允许" if label == "商品形式" else f"商品名称“{text}”含有“{hit}”，不允许"
            return Refusal("purchase.forbidden_form", f"{what}：工会经费不得发放{'、'.join(forbidden)}")
    return None


def check_channel(channel: str, channels: Collection[Channel]) -> Refusal | None:
    """A line's channel is one of the round's (after :func:`workflow.domain.channels.resolve_channel`)."""
    if not any(c.code == channel for c in channels):
        names = "、".join(c.name for c in channels)
        return Refusal("purchase.unknown_channel", f"未知采购渠道“{channel}”，可选：{names}")
    return None


def check_budget(budget: str) -> Refusal | None:
    """A line's budget source is one of :data:`workflow.domain.budgets.BUDGETS` (after
    :func:`workflow.domain.budgets.resolve_budget`)."""
    if budget not in BUDGETS:
        return Refusal("purchase.unknown_budget", f"未知经费来源“{budget}”，可选：{'、'.join(BUDGETS.values())}")
    return None


def check_refund_link(amount_fen: int, refund_of: str | None) -> Refusal | None:
    """A refund (negative amount) names the order it refunds; only a refund may name one."""
    if amount_fen < 0 and not refund_of:
        return Refusal("purchase.refund_unlinked", "退款（负数金额）须注明原订单号")
    if amount_fen >= 0 and refund_of:
        return Refusal("purchase.refund_of_not_refund", f"原订单号“{refund_of}”只能用于退款（负金额）行")
    return None


def refund_order_unknown(refund_of: str) -> Refusal:
    """A refund line names an order that is neither in the ledger nor in the same file."""
    return Refusal("purchase.refund_unknown_order", f"找不到退款对应的原订单 {refund_of}")


def check_order_ref(order_no: str, line_no: int) -> Refusal | None:
    """A line names its order (the platform's order number) and a line number from 1."""
    if not order_no.strip():
        return Refusal("purchase.order_missing", "请填写订单号")
    if line_no < 1:
        return Refusal("purchase.line_invalid", "订单行号须为正整数")
    return None


def check_holiday(holiday: str | None, holidays: Collection[str]) -> Refusal | None:
    """A line's holiday, when given, is one the policy lists."""
    if holiday and holiday not in holidays:
        return Refusal("purchase.unknown_holiday", f"节日“{holiday}”不在政策列出的节日中：{'、'.join(holidays)}")
    return None


def check_purchase_amounts(amount_fen: int, people: int) -> Refusal | None:
    if amount_fen == 0:
        return Refusal("purchase.zero_amount", "金额不能为 0")
    if people < 0:
        return Refusal("purchase.people_negative", "领取人数不能为负数")
    return None


def check_purchase_people(amount_fen: int, people: int) -> Refusal | None:
    """Annex 2 counts the 人次 who received goods: a purchase (positive amount) for nobody is
    meaningless there. Refund lines (negative amounts) may carry 0."""
    if amount_fen > 0 and people == 0:
        return Refusal("purchase.people_zero",
                       "领取人次为 0：附件2按领取慰问品的人次统计，请填写这笔采购发放给多少人次")
    return None


def check_line_caps(
    amount_fen: int, people: int, line_no: int, *, max_amount_fen: int, max_people: int, max_line_no: int
) -> Refusal | None:
    """A purchase line stays inside the policy's caps (:class:`workflow.domain.policy.Caps`), so
    that no sum over a province can overflow a 64-bit column."""
    if abs(amount_fen) > max_amount_fen:
        return Refusal("purchase.amount_over_cap",
                       f"金额 {yuan(amount_fen)} 元超过单笔上限 {yuan(max_amount_fen)} 元：请核对金额，或分行录入")
    if people > max_people:
        return Refusal("purchase.people_over_cap", f"领取人数 {people:,} 超过单笔上限 {max_people:,} 人次")
    if not 1 <= line_no <= max_line_no:
        return Refusal("purchase.line_over_cap", f"订单行号须在 1 至 {max_line_no:,} 之间")
    return None


def check_refunds_within_order(
    order_no: str, order_fen: int, order_people: int, refunds_fen: int, refunds_people: int
) -> Refusal | None:
    """The refunds of an order (negative amounts, linked to it) never add up to more than the
    order, in amount or in people; so no Annex 2 figure can go negative."""
    if -refunds_fen > order_fen:
        return Refusal("purchase.refund_exceeds_order",
                       f"订单 {order_no} 的退款合计 {yuan(-refunds_fen)} 元超过订单金额 {yuan(order_fen)} 元")
    if refunds_people > order_people:
        return Refusal("purchase.refund_people_exceed_order",
                       f"订单 {order_no} 的退款人次合计 {refunds_people:,} 超过订单人次 {order_people:,}")
    return None


def check_entry_window(now: datetime, entry_cutoff: datetime) -> Refusal | None:
    """Purchases of a round may be entered until its entry cutoff."""
    if now >= entry_cutoff:
        # The cutoff is stored as the next day's 00:00; the message names the last day.
        last = deadline_last_day(entry_cutoff)
        return Refusal("purchase.after_cutoff", f"本年度采购补录已于 {last:%Y年%m月%d日} 截止")
    return None


def check_record_open_for_purchases(state: str) -> Refusal | None:
    """A submitted or accepted record's numbers are under review: withdraw or be returned first."""
    if state in (SUBMITTED, ACCEPTED):
        return Refusal(
            "purchase.record_locked",
            "记录已提交或已通过，不能再修改采购明细；如需修改请先撤回或由上级退回",
        )
    return None


# --- summarize / submit ---------------------------------------------------------------------


def check_work_report(is_reporting_unit: bool, experience: str | None, highlights: str | None) -> Refusal | None:
    """Reporting units must give 先进经验 and 工作亮点."""
    if not is_reporting_unit:
        return None
    missing = [n for n, v in (("先进经验", experience), ("工作亮点", highlights)) if not (v or "").strip()]
    if missing:
        return Refusal("report.texts_missing", f"报送单位须填写工作报告的{'和'.join(missing)}")
    return None


def check_snapshot_fresh(has_snapshot: bool, stale: bool) -> Refusal | None:
    if not has_snapshot:
        return Refusal("snapshot.missing", "尚未汇总，不能提交")
    if stale:
        return Refusal("snapshot.stale", "汇总后数据有变动（新增采购或下级审核变化），请重新汇总后再提交")
    return None


def check_phone(phone: str | None) -> Refusal | None:
    """A mobile (1[3-9] and 11 digits) or a landline with area code and optional extension."""
    value = (phone or "").strip().replace(" ", "")
    if not value:
        return Refusal("contact.phone_missing", "请填写联系电话")
    if MOBILE_RE.match(value) or LANDLINE_RE.match(value):
        return None
    return Refusal(
        "contact.phone_invalid",
        f"联系电话“{phone}”格式不正确：手机号为 1 开头的 11 位数字，座机须带区号（如 020-12345678）",
    )


#: An e-mail address: a plain local part (letters, digits, ``.!#$%&'*+/=?^_`{|}~-``), ``@``, a
#: domain of dot-separated labels. Nothing that markup or a header could read as its own.
EMAIL_RE = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")
EMAIL_MAX = 254


def check_email(email: str | None) -> Refusal | None:
    """An optional e-mail address (empty is allowed): ``name@domain.tld``, nothing else."""
    value = (email or "").strip()
    if not value or (len(value) <= EMAIL_MAX and EMAIL_RE.fullmatch(value)):
        return None
    return Refusal("contact.email_invalid", "电子邮箱格式不正确，应为 名字@域名 的形式（如 zhangsan@example.cn）")


def check_contact(reporter: str | None, phone: str | None, fill_date: date | None, today: date) -> Refusal | None:
    """Submit needs 填报人, 联系电话 and a 填表时间 not in the future."""
    if not (reporter or "").strip():
        return Refusal("contact.reporter_missing", "请填写填报人")
    if refusal := check_phone(phone):
        return refusal
    if fill_date is None:
        return Refusal("contact.fill_date_missing", "请填写填表时间")
    if fill_date > today:
        return Refusal("contact.fill_date_future", f"填表时间 {fill_date:%Y年%m月%d日} 不能晚于今天")
    return None


# --- decisions ------------------------------------------------------------------------------


def check_reason(reason: str | None) -> Refusal | None:
    if not (reason or "").strip():
        return Refusal("decision.reason_missing", "退回或撤销须写明原因")
    return None


def check_parent_unlocked(parent_state: str | None) -> Refusal | None:
    """While the parent is submitted or accepted, its children's acceptances are locked: accepting
    or revoking a child would change numbers the parent has already sent up. The lifecycle reads
    ``parent_state`` under the parent record's lock (:attr:`states.Transition.locks_parent`), so
    the rule holds against a parent submitting at the same moment."""
    if parent_state in (SUBMITTED, ACCEPTED):
        return Refusal(
            "decision.parent_locked",
            "上级单位的报表已提交或已通过，下级审核结果已锁定：现在通过或撤销通过，会改变上级已报送的数字。"
            "迟交的下级请用“补报通过”（数字作为补报逐级上报，已报送的报表不重开）；"
            "要撤销通过，请上级单位先撤回报表，或由更上一级退回后再审核",
        )
    return None


def check_parent_sent(parent_state: str | None) -> Refusal | None:
    """补报 (accept a late child as a supplement) is for a parent whose report is already sent
    up (submitted or accepted); before that, the child is accepted the ordinary way and the
    parent's next summary holds it."""
    if parent_state not in (SUBMITTED, ACCEPTED):
        return Refusal(
            "decision.parent_not_sent",
            "上级单位的报表还没有报送，不需要补报：请直接“通过”，上级汇总时会计入",
        )
    return None


# --- deadlines ------------------------------------------------------------------------------


def check_four_eyes(enabled: bool, actor_is_filler: bool, decided_by: str | None = None) -> Refusal | None:
    """Four eyes (a policy switch, on by default): whoever entered data on the record's behalf
    (代填报) or submitted it since its last return may not also accept it. ``decided_by``: the
    organisation whose reviewers decide instead when the parent has no other reviewer."""
    if enabled and actor_is_filler:
        who = (f"本单位没有其他审核人，已改由“{decided_by}”的审核人审核（已通知他们）" if decided_by
               else "请由上级单位的其他审核人审核")
        return Refusal(
            "review.four_eyes",
            f"代填报的人不能自己审核：您自上次退回以来代填报或提交了本记录，不能再由您本人审核通过，{who}",
        )
    return None


def is_overdue(state: str, deadline: datetime, now: datetime) -> bool:
    """Past the report deadline and not yet submitted (nor accepted)."""
    return now >= deadline and state not in (SUBMITTED, ACCEPTED)


def is_late(submitted_at: datetime | None, deadline: datetime) -> bool:
    """Submitted, but after the deadline."""
    return submitted_at is not None and submitted_at >= deadline


def days_left(deadline: datetime, now: datetime) -> int:
    """Whole China days left before the deadline's last day ends (0 = today is the last day;
    negative once past)."""
    last_day = (deadline.astimezone(CHINA)).date().toordinal() - 1
    return last_day - now.astimezone(CHINA).date().toordinal()


def returned_not_resubmitted(state: str, last_reason: str | None) -> bool:
    """A record its parent returned (or whose acceptance it revoked), not yet submitted again: the
    lists show it as 已退回 until it resubmits (its state alone, 已采购, would hide the return)."""
    return last_reason is not None and state not in (SUBMITTED, ACCEPTED)
