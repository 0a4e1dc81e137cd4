"""A federation's own record page shows what it will submit: its snapshot (own lines, aggregate
lines, accepted children), the children still missing, and actions in its own words."""

from __future__ import annotations

from tests.conftest import World
from tests.entrypoints.web.test_overview_totals import _grassroots


def test_a_district_page_shows_its_snapshot_missing_children_and_its_words(web_world: World, login, token_client) -> None:  # type: ignore[no-untyped-def]
    w = web_world
    _grassroots(w, "G1", 4_541_910, 1085, "d1-reviewer")   # accepted
    w.plan("G2")                                            # still planned: missing
    rid = w.rid("D1")
    clerk = login("d1-clerk")
    page = clerk.get(f"/records/{rid}").text
    # Its own words, not the grassroots 完成采购.
    assert "完成本级录入" in page and "完成采购" not in page
    assert "采购合计 0.00 元" not in page
    assert "尚未汇总：下表为现在汇总将得到的数据" in page
    assert "下级单位（2 个，已通过 1 个，尚未通过 1 个）" in page
    assert "天河供电局工会" in page.split("尚未通过、不计入汇总的下级", 1)[1]
    w.fire("D1", "finish_purchasing", "d1-clerk")
    w.info("D1")
    resp = clerk.get(f"/records/{rid}").text
    assert "汇总（本级数据＋已通过的下级）" in resp
    w.fire("D1", "summarize", "d1-clerk")
    page = clerk.get(f"/records/{rid}").text
    assert "已汇总的数据（填表时间 2021年11月1日）：<strong>0.11</strong> 万人次，<strong>4.54</strong> 万元" in page
    assert "（1085 人次，45,419.10 元）" in page
    assert "汇总时尚未通过的下级 1 个，未计入" in page
    assert "撤销汇总（继续录入）" in page
    api = token_client("d1-clerk")
    fed = api.get(f"/api/records/{rid}/federation").json()
    assert fed["snapshot"]["amount_fen"] == 4_541_910 and fed["live"]["children"]["people"] == 1085
    assert [m["org_code"] for m in fed["missing"]] == ["G2"] and fed["missing_total"] == 1
    assert token_client("g1-clerk").get(f"/api/records/{w.rid('G1')}/federation").json() is None
    # The history and the flash use the federation's words too.
    hist = api.get(f"/api/records/{rid}/history").json()
    assert [h["label"] for h in hist] == ["完成本级录入", "汇总（本级数据＋已通过的下级）"]
