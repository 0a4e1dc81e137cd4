"""The notice's rules as pure functions: no database, no clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow.domain import clock, money, rules
from workflow.domain.errors import BadInput

CAP = 60000  # 600 yuan in fen
CN = timezone(timedelta(hours=8))


# --- plan -----------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [0, 1, 30000, 59999, 60000])
def test_plan_amount_within_0_to_600_yuan_is_valid(amount: int) -> None:
    assert rules.check_plan(amount, 100, cap_fen=CAP) is None


def test_nil_plan_is_valid_even_with_members() -> None:
    assert rules.check_plan(0, 250, cap_fen=CAP) is None
    assert rules.check_plan(0, 0, cap_fen=CAP) is None


@pytest.mark.parametrize(
    ("amount", "members", "code"),
    [
        (60001, 100, "plan.amount_out_of_range"),  # 600.01 yuan
        (-1, 100, "plan.amount_out_of_range"),
        (None, 100, "plan.amount_missing"),
        (30000, None, "plan.members_missing"),
        (30000, -1, "plan.members_out_of_range"),
        (30000, rules.MAX_MEMBERS + 1, "plan.members_out_of_range"),
        (30000, 0, "plan.members_zero"),
    ],
)
def test_bad_plans_are_refused_with_their_code(amount: int | None, members: int | None, code: str) -> None:
    refusal = rules.check_plan(amount, members, cap_fen=CAP)
    assert refusal is not None
    assert refusal.code == code
    assert refusal.message


def test_600_01_yuan_is_refused_and_the_message_names_the_cap() -> None:
    refusal = rules.check_plan(money.parse_yuan("600.01"), 10, cap_fen=CAP)
    assert refusal is not None and refusal.code == "plan.amount_out_of_range"
    assert "600.00" in refusal.message and "600.01" in refusal.message


def test_the_cap_comes_from_the_caller_not_a_constant() -> None:
    assert rules.check_plan(60000, 10, cap_fen=50000) is not None
    assert rules.check_plan(50000, 10, cap_fen=50000) is None


# --- quota ----------------------------------------------------------------------------------


def test_quota_is_amount_times_members_for_grassroots_only() -> None:
    assert rules.quota_fen(60000, 120, is_grassroots=True) == 7_200_000
    assert rules.quota_fen(60000, 120, is_grassroots=False) == 0
    assert rules.quota_fen(0, 120, is_grassroots=True) == 0


def test_quota_of_a_50000_member_union_at_the_cap() -> None:
    quota = rules.quota_fen(60000, 50_000, is_grassroots=True)
    assert quota == 3_000_000_000  # 30 million yuan: past 2**31, needs 64-bit columns
    assert quota > 2**31
    assert rules.yuan(quota) == "30,000,000.00"


@given(
    amount=st.integers(min_value=0, max_value=CAP),
    members=st.integers(min_value=0, max_value=rules.MAX_MEMBERS),
)
def test_quota_property(amount: int, members: int) -> None:
    quota = rules.quota_fen(amount, members, is_grassroots=True)
    assert quota == amount * members
    assert 0 <= quota <= CAP * rules.MAX_MEMBERS < 2**63
    assert rules.quota_fen(amount, members, is_grassroots=False) == 0
    if amount and members and rules.check_plan(amount, members, cap_fen=CAP) is None:
        assert quota // members == amount


def test_quota_use_spending_above_quota_is_counted_against_ordinary_limits() -> None:
    use = rules.quota_use(100_000, 130_000)
    assert use.exempt_fen == 100_000
    assert use.over_quota_fen == 30_000
    assert use.left_fen == 0
    under = rules.quota_use(100_000, 40_000)
    assert (under.exempt_fen, under.over_quota_fen, under.left_fen) == (40_000, 0, 60_000)


def test_quota_use_with_nil_quota_counts_every_fen_as_over() -> None:
    use = rules.quota_use(0, 5_000)
    assert (use.exempt_fen, use.over_quota_fen, use.left_fen) == (0, 5_000, 0)


def test_quota_use_net_refunds_below_zero_do_not_create_quota() -> None:
    use = rules.quota_use(10_000, -2_000)
    assert use.exempt_fen == 0
    assert use.over_quota_fen == 0
    assert use.left_fen == 10_000


@given(
    quota=st.integers(min_value=0, max_value=CAP * 50_000),
    spent=st.integers(min_value=0, max_value=10**13),
)
def test_quota_use_invariants(quota: int, spent: int) -> None:
    use = rules.quota_use(quota, spent)
    assert use.exempt_fen + use.over_quota_fen == spent
    assert 0 <= use.exempt_fen <= quota
    assert use.over_quota_fen >= 0
    assert use.left_fen == quota - use.exempt_fen
    assert use.over_quota_fen == 0 or use.left_fen == 0  # never both unused quota and overspend


@given(
    members=st.integers(min_value=1, max_value=50_000),
    amount=st.integers(min_value=0, max_value=CAP),
    lines=st.lists(st.integers(min_value=1, max_value=10**8), max_size=30),
)
def test_quota_use_for_unions_up_to_50000_members(members: int, amount: int, lines: list[int]) -> None:
    quota = rules.quota_fen(amount, members, is_grassroots=True)
    spent = sum(lines)
    use = rules.quota_use(quota, spent)
    assert use.exempt_fen == min(quota, spent)
    assert use.over_quota_fen == max(0, spent - quota)
    assert use.exempt_fen + use.over_quota_fen == spent


# --- money ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fen", "text"),
    [(0, "0.00"), (5, "0.05"), (100, "1.00"), (1234560, "12,345.60"), (-250, "-2.50"),
     (10**12, "10,000,000,000.00")],
)
def test_yuan_formats_fen(fen: int, text: str) -> None:
    assert rules.yuan(fen) == text


@pytest.mark.parametrize(
    ("text", "fen"),
    [("600", 60000), ("600.01", 60001), ("0", 0), ("12,345.6", 1234560), ("¥8.80", 880),
     ("3元", 300), ("-2.50", -250)],
)
def test_parse_money(text: str, fen: int) -> None:
    assert money.parse_yuan(text) == fen


@pytest.mark.parametrize("text", ["1.001", "abc", "", "NaN", "inf", "1e400"])
def test_parse_money_refuses_bad_or_too_precise_amounts(text: str) -> None:
    with pytest.raises(BadInput) as exc:
        money.parse_yuan(text)
    assert exc.value.code.startswith("input.money")


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_yuan_parse_money_round_trip(fen: int) -> None:
    assert money.parse_yuan(rules.yuan(fen)) == fen


# --- purchases: the year in China time ------------------------------------------------------


def test_a_purchase_at_2350_on_new_years_eve_china_time_counts_for_2021() -> None:
    paid = datetime(2021, 12, 31, 23, 50, tzinfo=CN)
    assert rules.check_purchase_year(paid, 2021) is None
    assert rules.check_purchase_year(paid.astimezone(UTC), 2021) is None  # same instant in UTC


def test_a_purchase_at_0010_on_new_years_day_china_time_does_not_count_for_2021() -> None:
    paid = datetime(2022, 1, 1, 0, 10, tzinfo=CN)
    assert paid.astimezone(UTC).year == 2021  # it is still 2021 in UTC
    refusal = rules.check_purchase_year(paid, 2021)
    assert refusal is not None and refusal.code == "purchase.outside_year"
    assert "2022-01-01 00:10" in refusal.message
    assert rules.check_purchase_year(paid, 2022) is None


def test_first_minute_of_the_year_in_china_counts_and_last_moment_before_does_not() -> None:
    start = datetime(2021, 1, 1, 0, 0, tzinfo=CN)
    assert rules.check_purchase_year(start, 2021) is None
    refusal = rules.check_purchase_year(start - timedelta(microseconds=1), 2021)
    assert refusal is not None and refusal.code == "purchase.outside_year"


def test_a_naive_payment_time_is_refused() -> None:
    refusal = rules.check_purchase_year(datetime(2021, 6, 1, 12, 0), 2021)
    assert refusal is not None and refusal.code == "purchase.naive_time"


FORBIDDEN = ("现金", "购物卡", "代金券")


@pytest.mark.parametrize("form", ["现金", "购物卡", "超市购物卡", "电子代金券"])
def test_forbidden_product_forms_are_refused(form: str) -> None:
    refusal = rules.check_product_form(form, FORBIDDEN)
    assert refusal is not None and refusal.code == "purchase.forbidden_form"
    assert form in refusal.message


@pytest.mark.parametrize("form", [None, "", "实物", "农产品礼盒"])
def test_goods_are_allowed(form: str | None) -> None:
    assert rules.check_product_form(form, FORBIDDEN) is None


def test_forbidden_forms_come_from_the_policy() -> None:
    assert rules.check_product_form("购物卡", ()) is None
    assert rules.check_product_form("积分", ("积分",)) is not None


def test_purchase_amount_and_people() -> None:
    assert rules.check_purchase_amounts(100, 1) is None
    assert rules.check_purchase_amounts(-100, 0) is None  # a refund line
    assert rules.check_purchase_amounts(0, 1).code == "purchase.zero_amount"  # type: ignore[union-attr]
    assert rules.check_purchase_amounts(100, -1).code == "purchase.people_negative"  # type: ignore[union-attr]


def test_entry_window_closes_at_the_cutoff() -> None:
    cutoff = clock.deadline_instant(date(2022, 1, 31))
    assert rules.check_entry_window(cutoff - timedelta(seconds=1), cutoff) is None
    refusal = rules.check_entry_window(cutoff, cutoff)
    assert refusal is not None and refusal.code == "purchase.after_cutoff"
    assert "2022年01月31日" in refusal.message


@pytest.mark.parametrize("state", ["submitted", "accepted"])
def test_purchases_are_locked_while_submitted_or_accepted(state: str) -> None:
    refusal = rules.check_record_open_for_purchases(state)
    assert refusal is not None and refusal.code == "purchase.record_locked"


@pytest.mark.parametrize("state", ["planned", "purchased", "summarized"])
def test_purchases_are_open_before_submit(state: str) -> None:
    assert rules.check_record_open_for_purchases(state) is None


# --- phone and contact ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    ["13812345678", "19912345678", "15000000000", "020-12345678", "02012345678", "0755-1234567",
     "0755-12345678-801", "020-87654321转123", " 138 1234 5678 "],
)
def test_valid_phones(phone: str) -> None:
    assert rules.check_phone(phone) is None


@pytest.mark.parametrize(
    "phone",
    ["12812345678",  # 1 then 2: not a mobile prefix
     "1381234567",  # 10 digits
     "138123456789",  # 12 digits
     "23812345678",
     "12345678",  # landline without area code
     "020-123456",  # too short
     "20-12345678",  # area code must start with 0
     "020-12345678-",  # dangling extension
     "020-12345678-1234567",  # extension too long
     "phone",
     "+86 13812345678"],
)
def test_invalid_phones(phone: str) -> None:
    refusal = rules.check_phone(phone)
    assert refusal is not None and refusal.code == "contact.phone_invalid"
    assert phone in refusal.message


@pytest.mark.parametrize("phone", [None, "", "   "])
def test_missing_phone(phone: str | None) -> None:
    refusal = rules.check_phone(phone)
    assert refusal is not None and refusal.code == "contact.phone_missing"


TODAY = date(2021, 12, 20)


def test_contact_complete() -> None:
    assert rules.check_contact("张三", "13812345678", TODAY, TODAY) is None
    assert rules.check_contact("张三", "020-12345678", TODAY - timedelta(days=3), TODAY) is None


@pytest.mark.parametrize(
    ("reporter", "phone", "fill", "code"),
    [
        (None, "13812345678", TODAY, "contact.reporter_missing"),
        ("  ", "13812345678", TODAY, "contact.reporter_missing"),
        ("张三", None, TODAY, "contact.phone_missing"),
        ("张三", "1234", TODAY, "contact.phone_invalid"),
        ("张三", "13812345678", None, "contact.fill_date_missing"),
        ("张三", "13812345678", TODAY + timedelta(days=1), "contact.fill_date_future"),
    ],
)
def test_contact_refusals(reporter: str | None, phone: str | None, fill: date | None, code: str) -> None:
    refusal = rules.check_contact(reporter, phone, fill, TODAY)
    assert refusal is not None and refusal.code == code


# --- summarize, submit, decisions -----------------------------------------------------------


def test_reporting_units_must_give_both_work_report_texts() -> None:
    assert rules.check_work_report(False, None, None) is None
    assert rules.check_work_report(True, "经验", "亮点") is None
    for exp, hi, missing in [(None, "亮点", "先进经验"), ("经验", " ", "工作亮点"), (None, None, "先进经验和工作亮点")]:
        refusal = rules.check_work_report(True, exp, hi)
        assert refusal is not None and refusal.code == "report.texts_missing"
        assert missing in refusal.message


def test_snapshot_must_exist_and_be_fresh() -> None:
    assert rules.check_snapshot_fresh(True, False) is None
    assert rules.check_snapshot_fresh(False, False).code == "snapshot.missing"  # type: ignore[union-attr]
    assert rules.check_snapshot_fresh(True, True).code == "snapshot.stale"  # type: ignore[union-attr]


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_return_and_revoke_need_a_reason(reason: str | None) -> None:
    refusal = rules.check_reason(reason)
    assert refusal is not None and refusal.code == "decision.reason_missing"
    assert rules.check_reason("金额有误") is None


@pytest.mark.parametrize(("parent", "locked"), [
    (None, False), ("planned", False), ("purchased", False), ("summarized", False),
    ("submitted", True), ("accepted", True),
])
def test_children_are_locked_while_parent_submitted_or_accepted(parent: str | None, locked: bool) -> None:
    refusal = rules.check_parent_unlocked(parent)
    assert (refusal is not None) == locked
    if refusal:
        assert refusal.code == "decision.parent_locked"


# --- deadlines ------------------------------------------------------------------------------

DEADLINE = clock.deadline_instant(date(2021, 12, 31))  # 2022-01-01 00:00 China = 2021-12-31 16:00 UTC


def test_deadline_is_next_day_midnight_china_time_in_utc() -> None:
    assert datetime(2021, 12, 31, 16, 0, tzinfo=UTC) == DEADLINE
    assert clock.deadline_last_day(DEADLINE) == date(2021, 12, 31)


@pytest.mark.parametrize(
    ("state", "now", "overdue"),
    [
        ("planned", DEADLINE - timedelta(seconds=1), False),
        ("planned", DEADLINE, True),
        ("purchased", DEADLINE + timedelta(days=3), True),
        ("summarized", DEADLINE + timedelta(days=3), True),
        ("submitted", DEADLINE + timedelta(days=3), False),
        ("accepted", DEADLINE + timedelta(days=3), False),
    ],
)
def test_is_overdue(state: str, now: datetime, overdue: bool) -> None:
    assert rules.is_overdue(state, DEADLINE, now) is overdue


def test_is_late() -> None:
    assert rules.is_late(None, DEADLINE) is False
    assert rules.is_late(DEADLINE - timedelta(minutes=1), DEADLINE) is False
    assert rules.is_late(DEADLINE, DEADLINE) is True
    assert rules.is_late(DEADLINE + timedelta(days=1), DEADLINE) is True


@pytest.mark.parametrize(
    ("now_china", "left"),
    [
        (datetime(2021, 12, 1, 9, 0, tzinfo=CN), 30),
        (datetime(2021, 12, 30, 23, 59, tzinfo=CN), 1),
        (datetime(2021, 12, 31, 0, 0, tzinfo=CN), 0),  # the last day
        (datetime(2021, 12, 31, 23, 59, tzinfo=CN), 0),
        (datetime(2022, 1, 1, 0, 0, tzinfo=CN), -1),
        (datetime(2022, 1, 5, 12, 0, tzinfo=CN), -5),
    ],
)
def test_days_left_counts_china_days(now_china: datetime, left: int) -> None:
    assert rules.days_left(DEADLINE, now_china) == left
    assert rules.days_left(DEADLINE, now_china.astimezone(UTC)) == left


def test_days_left_uses_china_date_not_utc_date() -> None:
    # 2021-12-31 01:00 China is still 2021-12-30 in UTC; in China it is the last day.
    now = datetime(2021, 12, 30, 17, 0, tzinfo=UTC)
    assert rules.days_left(DEADLINE, now) == 0


@pytest.mark.parametrize(("form", "product"), [
    ("实物", "大闸蟹提货券"), ("实物", "超市 购物卡"), ("购 物 卡", "超市卡"), (None, "电子代金券"),
])
def test_a_forbidden_form_in_the_product_name_is_refused_too(form: str | None, product: str) -> None:
    refusal = rules.check_product_form(form, ("现金", "购物卡", "代金券", "提货券"), product)
    assert refusal is not None and refusal.code == "purchase.forbidden_form"
    assert "工会经费不得发放" in refusal.message


def test_goods_named_plainly_are_allowed() -> None:
    assert rules.check_product_form("实物", ("现金", "购物卡"), "梅州金柚") is None


def test_refund_links() -> None:
    assert rules.check_refund_link(-100, "A1") is None
    assert rules.check_refund_link(100, None) is None
    assert rules.check_refund_link(-100, None).code == "purchase.refund_unlinked"  # type: ignore[union-attr]
    assert rules.check_refund_link(100, "A1").code == "purchase.refund_of_not_refund"  # type: ignore[union-attr]
    assert rules.refund_order_unknown("NOPE").code == "purchase.refund_unknown_order"


def test_order_ref_and_holiday() -> None:
    assert rules.check_order_ref(" ", 1).code == "purchase.order_missing"  # type: ignore[union-attr]
    assert rules.check_order_ref("A", 0).code == "purchase.line_invalid"  # type: ignore[union-attr]
    assert rules.check_order_ref("A", 1) is None
    assert rules.check_holiday(None, ("春节",)) is None
    assert rules.check_holiday("圣诞节", ("春节",)).code == "purchase.unknown_holiday"  # type: ignore[union-attr]
