"""Duplicate orders across unions (issue 20 point 3): flagged at entry and import as a warning,
the reviewers of both unions notified once, listed per level, explained by a reviewer covering
every holder (audited), and gone once explained or voided."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import NOW_2021, World
from workflow.app import purchase_import, purchases, record_views, reporting
from workflow.domain.errors import BadInput, NotFound, PermissionDenied
from workflow.store.tables import Notification

HEADER = "订单号,商品行号,支付时间,实付金额,领取人数,商品名称,商品形态,经费来源,渠道,原订单号"


def csv(*rows: str) -> bytes:
    return ("\r\n".join([HEADER, *rows]) + "\r\n").encode()


def dup_rows(w: World) -> list[Any]:
    n = Notification.__table__
    with w.uow(True) as uow:
        return list(uow.session.execute(
            select(n.c.user_id, n.c.channel, n.c.source, n.c.record_id, n.c.payload)
            .where(n.c.kind == "duplicate_order").order_by(n.c.id)).all())


def inbox_of(w: World, username: str) -> list[dict[str, Any]]:
    return [json.loads(r.payload) for r in dup_rows(w) if r.user_id == w.uid(username) and r.channel == "inbox"]


def enter(w: World, org: str, order: str, amount_fen: int = 10000, channel: str = "ygh") -> purchases.PurchaseEntry:
    return purchases.enter_purchase(
        w.uow(), record_id=w.rid(org), user_id=w.uid(f"{org.lower()}-clerk"), now=NOW_2021,
        purchase=purchases.PurchaseInput(paid_at=NOW_2021, channel=channel, amount_fen=amount_fen, people=2,
                                         order_no=order))


def dups(w: World, user: str, org: str) -> reporting.DuplicateOrders:
    return reporting.duplicate_orders(w.uow(True), user_id=w.uid(user), org_code=org, round_label=w.round_label)


def explain(w: World, user: str, order: str, reason: str = "一张订单两个单位分摊", channel: str = "ygh") -> Any:
    return reporting.explain_duplicate(w.uow(), user_id=w.uid(user), round_label=w.round_label, channel=channel,
                                       order_no=order, reason=reason, now=NOW_2021)


def test_entry_by_hand_flags_the_order_and_notifies_both_unions_reviewers_once(any_world: World) -> None:
    w = any_world
    first = enter(w, "G1", "YGH-1")
    assert first.duplicates == ()
    second = enter(w, "G3", "YGH-1", 5000)  # G3 is under D2; G1 under D1
    assert second.purchase_id  # stored: a warning, not a refusal
    (warning,) = second.duplicates
    assert warning.other_unions == ("天河一中工会",)
    assert "天河一中工会" in warning.message and "YGH-1" in warning.message
    # Each union's parent reviewers hear once, naming both unions and pointing at their own union.
    (d1,) = inbox_of(w, "d1-reviewer")
    (d2,) = inbox_of(w, "d2-reviewer")
    assert (d1["org_name"], d1["other_org_name"], d1["path"]) == ("天河一中工会", "越秀医院工会", f"/records/{w.rid('G1')}")
    assert (d2["org_name"], d2["other_org_name"], d2["path"]) == ("越秀医院工会", "天河一中工会", f"/records/{w.rid('G3')}")
    assert inbox_of(w, "c1-reviewer") == []
    # Entering the order again (another line of it) notifies nobody twice.
    before = len(dup_rows(w))
    purchases.add_purchase(w.uow(), record_id=w.rid("G3"), user_id=w.uid("g3-clerk"), now=NOW_2021,
                           purchase=purchases.PurchaseInput(paid_at=NOW_2021, channel="ygh", amount_fen=100,
                                                            people=1, order_no="YGH-1", line_no=2))
    assert len(dup_rows(w)) == before
    # Both clerks see the mark on their ledger line, with the other union's name.
    g1 = purchases.list_purchases(w.uow(True), record_id=w.rid("G1"), user_id=w.uid("g1-clerk"))
    assert [p["also_claimed_by"] for p in g1] == [["越秀医院工会"]]
    g3 = purchases.list_purchases(w.uow(True), record_id=w.rid("G3"), user_id=w.uid("g3-clerk"))
    assert [p["also_claimed_by"] for p in g3] == [["天河一中工会"], ["天河一中工会"]]


def test_same_order_on_another_channel_or_within_one_union_is_not_flagged(any_world: World) -> None:
    w = any_world
    enter(w, "G1", "X-9")
    assert enter(w, "G2", "X-9", channel="p832").duplicates == ()
    purchases.add_purchase(w.uow(), record_id=w.rid("G1"), user_id=w.uid("g1-clerk"), now=NOW_2021,
                           purchase=purchases.PurchaseInput(paid_at=NOW_2021, channel="ygh", amount_fen=100,
                                                            people=1, order_no="X-9", line_no=2))
    assert dup_rows(w) == []
    assert dups(w, "gd-reviewer", "GD").orders == []


def test_import_flags_the_file_orders_other_unions_hold(any_world: World) -> None:
    w = any_world
    enter(w, "G2", "IMP-1")
    enter(w, "G4", "IMP-2", channel="p832")
    result = purchase_import.import_purchases(
        w.uow(), record_id=w.rid("G1"), user_id=w.uid("g1-clerk"), filename="采购.csv", now=NOW_2021,
        data=csv("IMP-1,1,2021-10-20 10:00,100.00,2,梅州金柚,实物,额外额度,粤工惠购,",
                 "IMP-2,1,2021-10-20 10:00,50.00,1,清远鸡,实物,额外额度,832平台,",
                 "IMP-3,1,2021-10-20 10:00,60.00,1,韶关香菇,实物,额外额度,粤工惠购,"))
    assert result.new == 3
    assert sorted((d.order_no, d.other_unions) for d in result.duplicates) == [
        ("IMP-1", ("天河供电局工会",)), ("IMP-2", ("福田税务局工会",))]
    assert "其他单位也录入了" in result.summary() and "福田税务局工会" in result.summary()
    # G1 and G2 share D1: its reviewers hear once about the pair; G4's parent D3 hears about IMP-2.
    assert sorted(p["order_no"] for p in inbox_of(w, "d1-reviewer")) == ["IMP-1", "IMP-2"]
    assert [p["other_org_name"] for p in inbox_of(w, "d3-reviewer")] == ["天河一中工会"]
    # The same file again adds nothing and notifies nobody again.
    before = len(dup_rows(w))
    again = purchase_import.import_purchases(
        w.uow(), record_id=w.rid("G1"), user_id=w.uid("g1-clerk"), filename="采购.csv", now=NOW_2021,
        data=csv("IMP-1,1,2021-10-20 10:00,100.00,2,梅州金柚,实物,额外额度,粤工惠购,"))
    assert (again.new, again.duplicates) == (0, ())
    assert len(dup_rows(w)) == before


def test_suspects_per_level(any_world: World) -> None:
    w = any_world
    enter(w, "G1", "IN-D1", 10000)
    enter(w, "G2", "IN-D1", 20000)  # both under D1
    enter(w, "G1", "CROSS", 30000)
    enter(w, "G3", "CROSS", 40000)  # D1 and D2: under C1
    enter(w, "G4", "PROV", 100)
    enter(w, "G5", "PROV", 200)  # C2 and IND: only the province
    d1 = dups(w, "d1-reviewer", "D1")
    assert [o["order_no"] for o in d1.orders] == ["IN-D1"]
    (order,) = d1.orders
    assert [(u["org_name"], u["amount_fen"], u["people"]) for u in order["unions"]] == [
        ("天河一中工会", 10000, 2), ("天河供电局工会", 20000, 2)]
    assert (order["amount_fen"], order["explained"]) == (30000, False)
    assert dups(w, "d2-reviewer", "D2").orders == []
    assert [o["order_no"] for o in dups(w, "c1-reviewer", "C1").orders] == ["CROSS", "IN-D1"]
    assert [o["order_no"] for o in dups(w, "gd-reviewer", "GD").orders] == ["CROSS", "IN-D1", "PROV"]
    # Outside the user's view: no such organisation; a clerk has no oversight.
    with pytest.raises(NotFound):
        dups(w, "d1-reviewer", "C1")
    with pytest.raises(PermissionDenied):
        dups(w, "d1-clerk", "D1")


def test_explain_needs_a_reason_and_a_reviewer_covering_every_union(any_world: World) -> None:
    w = any_world
    enter(w, "G1", "CROSS")
    enter(w, "G3", "CROSS")
    with pytest.raises(BadInput) as no_reason:
        explain(w, "c1-reviewer", "CROSS", reason="  ")
    assert no_reason.value.code == "duplicate.reason_missing"
    assert "原因" in no_reason.value.message
    with pytest.raises(PermissionDenied) as narrow:
        explain(w, "d1-reviewer", "CROSS")  # covers G1, not G3
    assert narrow.value.code == "permission.duplicate_scope"
    with pytest.raises(NotFound):
        explain(w, "c2-reviewer", "CROSS")  # sees neither union
    with pytest.raises(NotFound):
        explain(w, "c1-reviewer", "NO-SUCH-ORDER")
    with pytest.raises(PermissionDenied):
        explain(w, "g1-clerk", "CROSS")
    assert dups(w, "c1-reviewer", "C1").orders[0]["explained"] is False


def test_explained_order_leaves_the_warnings_is_audited_and_listed_as_explained(any_world: World) -> None:
    w = any_world
    enter(w, "G1", "CROSS")
    enter(w, "G3", "CROSS")
    result = explain(w, "gd-reviewer", "CROSS", reason="省直单位统一下单，两家工会各自分摊", channel="粤工惠购")
    assert result.unions == ("天河一中工会", "越秀医院工会") and len(result.history_ids) == 2
    for org in ("G1", "G3"):
        rows = [h for h in record_views.history(w.uow(True), record_id=w.rid(org), user_id=w.uid("gd-reviewer"))
                if h["trigger"] == "explain_duplicate"]
        (h,) = rows
        assert (h["label"], h["reason"], h["actor"], h["role"]) == (
            "说明重复订单", "省直单位统一下单，两家工会各自分摊", "GD审核人", "reviewer")
        assert "天河一中工会、越秀医院工会" in h["summary"]
    (order,) = dups(w, "c1-reviewer", "C1").orders
    assert order["explained"] is True
    assert (order["explanation"]["by"], order["explanation"]["reason"]) == ("GD审核人", "省直单位统一下单，两家工会各自分摊")
    g1 = purchases.list_purchases(w.uow(True), record_id=w.rid("G1"), user_id=w.uid("g1-clerk"))
    assert g1[0]["also_claimed_by"] == []
    # A further line of an explained pair raises no warning and no notification.
    before = len(dup_rows(w))
    entry = purchases.enter_purchase(
        w.uow(), record_id=w.rid("G3"), user_id=w.uid("g3-clerk"), now=NOW_2021,
        purchase=purchases.PurchaseInput(paid_at=NOW_2021, channel="ygh", amount_fen=100, people=1,
                                         order_no="CROSS", line_no=2))
    assert entry.duplicates == () and len(dup_rows(w)) == before
    # A third union entering the order later is not covered: flagged again, listed as unexplained.
    third = enter(w, "G2", "CROSS")
    assert sorted(third.duplicates[0].other_unions) == ["天河一中工会", "越秀医院工会"]
    (order,) = dups(w, "c1-reviewer", "C1").orders
    assert order["explained"] is False and order["explanation"]["covers_all"] is False
    explain(w, "c1-reviewer", "CROSS", reason="三家分摊")
    assert dups(w, "c1-reviewer", "C1").orders[0]["explained"] is True


def test_a_voided_line_no_longer_counts(any_world: World) -> None:
    w = any_world
    enter(w, "G1", "V-1")
    second = enter(w, "G2", "V-1")
    assert second.duplicates
    purchases.void_purchase(w.uow(), record_id=w.rid("G2"), purchase_id=second.purchase_id,
                            user_id=w.uid("g2-clerk"), reason="订单号录错", now=NOW_2021)
    assert dups(w, "d1-reviewer", "D1").orders == []
    g1 = purchases.list_purchases(w.uow(True), record_id=w.rid("G1"), user_id=w.uid("g1-clerk"))
    assert g1[0]["also_claimed_by"] == []
    with pytest.raises(NotFound):
        explain(w, "d1-reviewer", "V-1")
