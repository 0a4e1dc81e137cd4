"""Duplicate orders over the JSON API and on the record page: the entry answers with a warning
(201, stored), the ledger marks the line, the import result names the other union, a reviewer
lists the suspects of their subtree and explains one covering both unions."""

from __future__ import annotations

from tests.conftest import World
from tests.entrypoints.web.test_reports_web import csv_file

BUY = {"paid_at": "2021-10-20T10:00", "channel": "ygh", "amount": "100", "people": 2, "order_no": "DUP-1"}


def test_duplicate_orders_over_the_api_and_the_page(web_world: World, token_client, login) -> None:  # type: ignore[no-untyped-def]
    w = web_world
    for org in ("G1", "G3", "G2"):
        w.plan(org, 60000, 100)
    g1 = token_client("g1-clerk").post(f"/api/records/{w.rid('G1')}/purchases", json=BUY)
    assert g1.status_code == 201 and g1.json()["duplicate_warnings"] == []
    g3 = token_client("g3-clerk").post(f"/api/records/{w.rid('G3')}/purchases", json=BUY)
    assert g3.status_code == 201, g3.text
    (warning,) = g3.json()["duplicate_warnings"]
    assert warning["other_unions"] == ["天河一中工会"] and "DUP-1" in warning["message"]
    lines = token_client("g1-clerk").get(f"/api/records/{w.rid('G1')}/purchases").json()
    assert lines[0]["also_claimed_by"] == ["越秀医院工会"]
    page = login("g1-clerk").get(f"/records/{w.rid('G1')}")
    assert "疑似重复：越秀医院工会也录入了这张订单" in page.text
    imported = token_client("g2-clerk").post(
        f"/api/records/{w.rid('G2')}/purchases/import", data={"mapping": "generic"},
        files={"file": ("采购.csv", csv_file(["DUP-1,1,2021-10-20 10:00,50.00,1,梅州金柚,实物,额外额度,粤工惠购,"]),
                        "text/csv")})
    assert imported.status_code == 200, imported.text
    (dup,) = imported.json()["duplicate_warnings"]
    assert sorted(dup["other_unions"]) == ["天河一中工会", "越秀医院工会"]
    # The lists per level: D2 sees none of its own pairs; C1 sees the three unions.
    assert token_client("d2-reviewer").get("/api/orgs/D2/duplicates").json()["orders"] == []
    c1 = token_client("c1-reviewer").get("/api/orgs/C1/duplicates").json()
    assert [u["org_code"] for u in c1["orders"][0]["unions"]] == ["G1", "G2", "G3"] and c1["unexplained"] == 1
    assert token_client("d1-reviewer").get("/api/orgs/C1/duplicates").status_code == 404
    # Explaining: a reason is required; D1's reviewer does not cover G3; C1's does.
    body = {"channel": "粤工惠购", "order_no": "DUP-1", "reason": " "}
    no_reason = token_client("c1-reviewer").post("/api/duplicates/explain", json=body)
    assert no_reason.status_code == 422 and no_reason.json()["code"] == "duplicate.reason_missing"
    narrow = token_client("d1-reviewer").post("/api/duplicates/explain", json={**body, "reason": "分摊"})
    assert narrow.status_code == 403 and narrow.json()["code"] == "permission.duplicate_scope"
    done = token_client("c1-reviewer").post("/api/duplicates/explain", json={**body, "reason": "三家分摊一张订单"})
    assert done.status_code == 200, done.text
    assert done.json()["unions"] == ["天河一中工会", "天河供电局工会", "越秀医院工会"]
    c1 = token_client("c1-reviewer").get("/api/orgs/C1/duplicates").json()
    assert c1["orders"][0]["explained"] is True and c1["orders"][0]["explanation"]["reason"] == "三家分摊一张订单"
    assert token_client("g1-clerk").get(f"/api/records/{w.rid('G1')}/purchases").json()[0]["also_claimed_by"] == []
    hist = token_client("g3-clerk").get(f"/api/records/{w.rid('G3')}/history").json()
    assert [h["label"] for h in hist if h["trigger"] == "explain_duplicate"] == ["说明重复订单"]
