"""Issue 19 point 3: one rule, one place. The same bad line gets the same refusal (code and Chinese
sentence) whether a clerk enters it by hand (:func:`workflow.app.lifecycle.add_purchase`, after the
one payment-time and amount parsers the CLI and the API use) or it arrives in a file
(:func:`workflow.app.purchase_import.import_purchases`); the same good line is stored the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from tests.app.test_purchase_import import csv
from tests.conftest import NOW_2021, World
from workflow.app import purchase_import, purchases
from workflow.domain import money
from workflow.domain.errors import BadInput, ImportRefused, RuleViolation, TimeInputError
from workflow.formats import ledger
from workflow.store.tables import Purchase

CN = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Line:
    """A purchase line as a clerk types it, or as a file's row holds it."""

    order: str = "P-1"
    paid: str = "2021-10-20 10:00"
    amount: str = "100.00"
    people: int = 2
    product: str = "梅州金柚"
    form: str = "实物"
    budget: str = "额外额度"
    channel: str = "粤工惠购"
    refund_of: str = ""

    def csv_row(self) -> str:
        return ",".join([self.order, "1", self.paid, self.amount, str(self.people), self.product, self.form,
                         self.budget, self.channel, self.refund_of])


def by_hand(w: World, line: Line, *, now: datetime = NOW_2021) -> tuple[str, str] | int:
    """(code, message) of the refusal, or the new purchase's id."""
    try:
        purchase = purchases.PurchaseInput(
            paid_at=money.parse_paid_at(line.paid), channel=line.channel, amount_fen=money.parse_yuan(line.amount),
            people=line.people, order_no=line.order, product=line.product, product_form=line.form,
            budget=line.budget, refund_of=line.refund_of or None)
        return purchases.add_purchase(w.uow(), record_id=w.rid("G1"), user_id=w.uid("g1-clerk"), purchase=purchase,
                                    now=now)
    except (RuleViolation, BadInput) as exc:
        return exc.code, exc.message


def by_import(w: World, line: Line, *, now: datetime = NOW_2021, org: str = "G2") -> tuple[str, str] | int:
    """(code, message without the row number) of the row's refusal, or the number of new rows."""
    try:
        result = purchase_import.import_purchases(w.uow(), record_id=w.rid(org), user_id=w.uid(f"{org.lower()}-clerk"),
                                                  data=csv([line.csv_row()]), filename="采购.csv", now=now)
        return result.new
    except ImportRefused as exc:
        assert len(exc.errors) == 1, exc.errors
        (message,), (code,) = exc.errors, exc.codes
        assert message.startswith("第 2 行：")
        return code, message.removeprefix("第 2 行：")


def stored(w: World, org: str) -> list[tuple[object, ...]]:
    t = Purchase.__table__
    with w.uow(True) as uow:
        rows = uow.session.execute(select(t).where(t.c.record_id == w.rid(org)).order_by(t.c.id)).all()
        return [(p.channel, p.budget, p.paid_at.astimezone(UTC), p.paid_on, p.amount_fen, p.product_form)
                for p in rows]


def assert_same_refusal(w: World, line: Line, code: str, *, now: datetime = NOW_2021) -> str:
    hand = by_hand(w, line, now=now)
    imported = by_import(w, line, now=now)
    assert hand == imported, (hand, imported)
    assert isinstance(hand, tuple) and hand[0] == code, hand
    assert stored(w, "G1") == stored(w, "G2") == []
    return hand[1]


@pytest.mark.parametrize(("line", "code", "words"), [
    (Line(paid="2020-12-31 10:00"), "purchase.outside_year", "不在 2021 年度内"),
    (Line(form="购物卡", product="超市购物卡"), "purchase.forbidden_form", "购物卡"),
    (Line(form="实物", product="大闸蟹提货券"), "purchase.forbidden_form", "提货券"),
    (Line(form="现金", product="慰问金"), "purchase.forbidden_form", "现金"),
    (Line(channel="淘宝"), "purchase.unknown_channel", "淘宝"),
    (Line(budget="小金库"), "purchase.unknown_budget", "小金库"),
    (Line(amount="0"), "purchase.zero_amount", "不能为 0"),
    (Line(amount="-15.00", people=0), "purchase.refund_unlinked", "原订单号"),
    (Line(refund_of="A001"), "purchase.refund_of_not_refund", "A001"),
    (Line(paid="2021-12-20 10:00"), "purchase.paid_in_future", "晚于录入时间"),
], ids=["year", "card-form", "voucher-in-name", "cash", "channel", "budget", "zero", "refund-unlinked",
        "refund-link-on-purchase", "future"])
def test_a_bad_line_gets_the_same_refusal_by_hand_and_by_import(world: World, line: Line, code: str,
                                                                 words: str) -> None:
    assert words in assert_same_refusal(world, line, code)


def test_the_refusal_texts_are_the_rules_own(world: World) -> None:
    """The import quotes the domain's sentences (not a parser's own wording)."""
    assert assert_same_refusal(world, Line(channel="淘宝"), "purchase.unknown_channel").startswith(
        "未知采购渠道“淘宝”，可选：粤工惠购、")
    assert assert_same_refusal(world, Line(budget="小金库"), "purchase.unknown_budget") == (
        "未知经费来源“小金库”，可选：额外额度、普通节日慰问品、集体福利、困难帮扶、会员活动")


@pytest.mark.parametrize(("paid", "ok"), [
    ("2021-12-31 23:50", True),
    ("2022-01-01 00:10", False),
    ("2021-12-31T15:50:00+00:00", True),  # 23:50 China time
    ("2021-12-31T16:10:00+00:00", False),  # 2022-01-01 00:10 China time
    ("2021-01-01 00:00", True),
    ("2020-12-31 23:59:59", False),
])
def test_year_boundary_in_china_time_is_decided_by_the_rule(world: World, paid: str, ok: bool) -> None:
    """Moved from tests/formats/test_ledger.py: the round's year is the rule's decision."""
    entered = datetime(2022, 1, 2, 9, 0, tzinfo=CN)
    if ok:
        assert isinstance(by_hand(world, Line(paid=paid), now=entered), int)
        assert by_import(world, Line(paid=paid), now=entered) == 1
        assert stored(world, "G1") == stored(world, "G2")
    else:
        assert "不在 2021 年度内" in assert_same_refusal(world, Line(paid=paid), "purchase.outside_year", now=entered)


@pytest.mark.parametrize(("channel", "code"), [("粤工惠购", "ygh"), ("ygh", "ygh"), ("832平台", "p832"),
                                               ("广东馆", "gdg"), ("粤工惠购 平台", "ygh"), ("ＹＧＨ", "ygh")])
def test_a_channel_named_in_chinese_is_the_same_channel_by_hand_and_by_import(
        world: World, channel: str, code: str) -> None:
    assert isinstance(by_hand(world, Line(channel=channel)), int)
    assert by_import(world, Line(channel=channel)) == 1
    assert stored(world, "G1") == stored(world, "G2")
    assert stored(world, "G1")[0][0] == code


@pytest.mark.parametrize(("budget", "code"), [("额外额度", "extra_quota"), ("集体福利", "collective_welfare"),
                                              ("hardship", "hardship"), ("节日慰问品", "ordinary_gift")])
def test_a_budget_named_in_chinese_is_the_same_budget_by_hand_and_by_import(
        world: World, budget: str, code: str) -> None:
    assert isinstance(by_hand(world, Line(budget=budget)), int)
    assert by_import(world, Line(budget=budget)) == 1
    assert stored(world, "G1") == stored(world, "G2")
    assert stored(world, "G1")[0][1] == code


@pytest.mark.parametrize("paid", [
    "2021-10-20", "2021/10/20", "2021年10月20日", "2021.10.20", "２０２１－１０－２０",
    "2021-10-20 10:05", "2021/10/20 10:05:09", "2021年10月20日 10:05", "2021.10.20 10:05",
    "2021-10-20T10:05", "2021-10-20T02:05:00Z", "2021-10-20T10:05:00+08:00", "44489", "44489.5",
])
def test_each_accepted_payment_time_is_the_same_instant_by_hand_and_by_import(world: World, paid: str) -> None:
    assert isinstance(by_hand(world, Line(paid=paid)), int)
    assert by_import(world, Line(paid=paid)) == 1
    assert stored(world, "G1") == stored(world, "G2")
    assert stored(world, "G1")[0][3].isoformat() == "2021-10-20"


@pytest.mark.parametrize(("paid", "code"), [("某天", "input.time"), ("2021-02-30", "input.time"),
                                            ("1999-12-31", "input.time_range")])
def test_a_payment_time_that_is_not_one_is_refused_alike(world: World, paid: str, code: str) -> None:
    with pytest.raises(TimeInputError) as exc:
        money.parse_paid_at(paid)
    assert exc.value.code == code
    assert by_import(world, Line(paid=paid)) == (code, exc.value.message)


def test_a_refund_of_an_unknown_order_is_refused_alike(world: World) -> None:
    hand = by_hand(world, Line(amount="-1.00", people=0, refund_of="NOPE"))
    imported = by_import(world, Line(amount="-1.00", people=0, refund_of="NOPE"))
    assert isinstance(hand, tuple) and isinstance(imported, tuple)
    assert hand[0] == imported[0] == "purchase.refund_unknown_order"
    assert imported[1].startswith(hand[1])  # the import adds the channel


def test_a_mapping_for_a_channel_the_round_lacks_is_a_usage_error(world: World) -> None:
    """Moved from tests/formats/test_ledger.py (the parser no longer knows the round's channels)."""
    mapping = replace(ledger.MAPPINGS["ygh"], name="nope", channel="nope")
    with pytest.raises(BadInput) as exc:
        purchase_import.import_purchases(world.uow(), record_id=world.rid("G1"), user_id=world.uid("g1-clerk"),
                                         data=csv([Line().csv_row()]), filename="a.csv", mapping=mapping, now=NOW_2021)
    assert exc.value.code == "import.usage"
