"""When a returned record comes back, the reviewer sees the difference against the submission it
returned: lines added and voided, the Annex 2 rows before → after, texts changed; on the review
page and in the record's history."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import NOW_2021, World
from workflow.app import purchases

EARLIER = NOW_2021 - timedelta(hours=3)


def _buy_at(w: World, order: str, amount_fen: int, people: int, channel: str = "ygh") -> None:
    purchases.add_purchase(w.uow(), record_id=w.rid("G1"), user_id=w.uid("g1-clerk"), now=EARLIER,
                         purchase=purchases.PurchaseInput(paid_at=EARLIER, channel=channel, amount_fen=amount_fen,
                                                        people=people, order_no=order))


def test_the_reviewer_sees_what_changed_since_the_return(web_world: World, token_client, login) -> None:  # type: ignore[no-untyped-def]
    w = web_world
    w.plan("G1", 60000, 100)
    _buy_at(w, "A1", 250000, 500)             # mistyped: 50 people
    _buy_at(w, "B1", 100000, 20, channel="p832")
    w.fire("G1", "finish_purchasing", "g1-clerk", now=EARLIER)
    w.info("G1", reporter="张三")
    w.fire("G1", "summarize", "g1-clerk", now=EARLIER)
    w.fire("G1", "submit", "g1-clerk", now=EARLIER)
    rid = w.rid("G1")
    api = token_client("d1-reviewer")
    assert api.get(f"/api/records/{rid}/changes-since-return").json() is None
    w.fire("G1", "return_for_revision", "d1-reviewer", reason="A1 人次与发放名单不符", now=NOW_2021 - timedelta(hours=1))
    clerk = token_client("g1-clerk")
    a1 = [p for p in clerk.get(f"/api/records/{rid}/purchases").json() if p["order_no"] == "A1"][0]["id"]
    clerk.post(f"/api/records/{rid}/purchases/{a1}/void", json={"reason": "人次误录为 500，应为 50"})
    w.buy("G1", "A1", 250000, 50)
    w.info("G1", reporter="李四")
    # Before resubmitting: the diff reads the live sums.
    live = api.get(f"/api/records/{rid}/changes-since-return").json()
    assert live["after"] == "live" and live["reason"] == "A1 人次与发放名单不符"
    w.fire("G1", "summarize", "g1-clerk")
    w.fire("G1", "submit", "g1-clerk")
    d = api.get(f"/api/records/{rid}/changes-since-return").json()
    assert d["after"] == "resubmitted" and d["changed"] is True
    assert [(p["order_no"], p["people"]) for p in d["added"]] == [("A1", 50)]
    assert [(p["order_no"], p["people"], p["void_reason"]) for p in d["voided"]] == [("A1", 500, "人次误录为 500，应为 50")]
    rows = {r["label"]: r for r in d["rows"]}
    assert (rows["粤工惠购平台"]["before_people"], rows["粤工惠购平台"]["after_people"]) == (500, 50)
    assert rows["832平台"]["changed"] is False
    assert (rows["合计"]["before_people"], rows["合计"]["after_people"]) == (520, 70)
    assert [r["label"] for r in d["rows_changed"]] == ["粤工惠购平台", "合计"]
    assert d["texts"] == [{"field": "reporter", "label": "填报人", "before": "张三", "after": "李四"}]

    reviewer = login("d1-reviewer")
    review = reviewer.get("/review").text
    assert "退回后重新提交：与退回的那次相比" in review
    assert "A1 人次与发放名单不符" in review
    assert "500 → <strong>50</strong>" in review and "520 → <strong>70</strong>" in review
    assert "<del>订单 A1#1：2,500.00 元，500 人次</del>，原因：人次误录为 500，应为 50" in review
    assert "填报人：张三 → <strong>李四</strong>" in review
    history = reviewer.get(f"/records/{rid}/history").text
    assert "退回后的修改" in history and "500 → <strong>50</strong>" in history
    # A submission never returned shows no diff on the review page.
    w.to_submitted("G2")
    review = reviewer.get("/review").text
    assert review.count("退回后重新提交：与退回的那次相比") == 1
