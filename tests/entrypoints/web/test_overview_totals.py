"""The province's overview and its workbook agree: the overview's "已报送的汇总" is the
workbook's 合计 (the reporting units' snapshots, submitted or accepted), in the same 万 with two
decimals; the grassroots unions accepted at the first level are shown apart, saying so."""

from __future__ import annotations

import io
from decimal import Decimal

import openpyxl

from tests.conftest import World
from tests.entrypoints.web.test_review_levels import federation_to_submitted


def _grassroots(w: World, org: str, amount_fen: int, people: int, reviewer: str) -> None:
    w.plan(org, 60000, 100)
    w.buy(org, f"{org}-1", amount_fen, people)
    w.fire(org, "finish_purchasing", f"{org.lower()}-clerk")
    w.info(org)
    w.fire(org, "summarize", f"{org.lower()}-clerk")
    w.fire(org, "submit", f"{org.lower()}-clerk")
    w.fire(org, "accept", reviewer)


def test_the_province_total_is_the_workbooks_total(web_world: World, token_client, login) -> None:  # type: ignore[no-untyped-def]
    w = web_world
    _grassroots(w, "G1", 4_541_910, 1085, "d1-reviewer")
    _grassroots(w, "G3", 2_000_000, 300, "d2-reviewer")   # accepted by D2, which never reports
    _grassroots(w, "G5", 1_234_567, 321, "ind-reviewer")
    federation_to_submitted(w, "D1")
    w.fire("D1", "accept", "c1-reviewer")
    federation_to_submitted(w, "C1")                      # submitted, not yet accepted
    federation_to_submitted(w, "IND")
    w.fire("IND", "accept", "gd-reviewer")                 # accepted by the province
    api = token_client("gd-reviewer")
    totals = api.get("/api/overview?round=1").json()["totals"]
    reported = totals["reported"]
    assert (reported["units"], reported["people"], reported["amount_fen"]) == (2, 1085 + 321, 4_541_910 + 1_234_567)
    assert (totals["reported_accepted"]["units"], totals["reported_pending"]["units"]) == (1, 1)
    # First level: every accepted grassroots union, G3 included although D2 never reported.
    assert (totals["people"], totals["amount_fen"]) == (1085 + 300 + 321, 4_541_910 + 2_000_000 + 1_234_567)

    book = openpyxl.load_workbook(io.BytesIO(api.get("/api/province-workbook.xlsx?round=1").content))
    sheet = book.worksheets[0]
    total_row = [r for r in sheet.iter_rows(values_only=True) if r[1] == "合计"][0]
    assert (Decimal(str(total_row[2])), Decimal(str(total_row[3]))) == (
        Decimal(reported["wan_people"]), Decimal(reported["wan_yuan"]))
    assert (reported["wan_people"], reported["wan_yuan"]) == ("0.14", "5.78")

    page = login("gd-reviewer").get("/overview?round=1").text
    assert "与全省汇总表“合计”同一口径" in page
    assert "已报送 2 个：<strong>0.14</strong> 万人次，<strong>5.78</strong> 万元" in page
    assert "其中本级已审核通过 1 个" in page and "已报送待审核 1 个" in page
    assert "基层工会首级审核情况（由直接上级审核通过，不论其上级是否已报送）" in page
    assert "未报送" in page  # C2's row
