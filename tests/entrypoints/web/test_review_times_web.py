"""Review times over the API and on the page: the figures, the SVG chart (no script), the XLSX
download, the overview's link; a district sees its own only, a clerk is refused."""

from __future__ import annotations

import io
import re

from openpyxl import load_workbook

from tests.app.test_review_times import build_waits
from tests.conftest import World


def test_review_times_api_page_and_workbook(web_world: World, token_client, login) -> None:  # type: ignore[no-untyped-def]
    build_waits(web_world)
    c1 = token_client("c1-reviewer").get("/api/reports/review-times")
    assert c1.status_code == 200, c1.text
    body = c1.json()
    assert body["org_name"] == "广州市总工会"
    assert (body["total"]["median_days"], body["total"]["p90_days"], body["total"]["longest_days"]) == (4.0, 8.8, 10.0)
    assert [s["unit_name"] for s in body["slowest"]][:2] == ["越秀医院工会", "天河供电局工会"]
    d1 = token_client("d1-reviewer").get("/api/reports/review-times").json()
    assert [g["label"] for g in d1["by_federation"]] == ["天河区总工会"] and d1["total"]["decisions"] == 3
    assert token_client("d1-reviewer").get("/api/reports/review-times?org=D2").status_code == 404
    assert token_client("g1-clerk").get("/api/reports/review-times?org=G1").status_code == 403
    xlsx = token_client("c1-reviewer").get("/api/reports/review-times.xlsx")
    assert xlsx.status_code == 200
    assert load_workbook(io.BytesIO(xlsx.content)).sheetnames == ["按层级", "按审核单位", "按审核人", "最慢的单位"]

    browser = login("c1-reviewer")
    overview = browser.get("/overview")
    assert "/reports/review-times?round=" in overview.text
    page = browser.get("/reports/review-times")
    assert page.status_code == 200
    assert "审核用时：中位数 <strong>4.0</strong> 天、90% <strong>8.8</strong> 天、最长 <strong>10.0</strong> 天" in page.text
    assert "<svg class=\"bars\"" in page.text and "<script" not in page.text
    assert "越秀区总工会</text>" in page.text and "10 天</text>" in page.text
    href = re.search(r'href="(/reports/review-times\.xlsx\?[^"]+)"', page.text)
    assert href is not None
    download = browser.get(href.group(1).replace("&amp;", "&"))
    assert download.status_code == 200
    assert load_workbook(io.BytesIO(download.content))["按审核单位"]["A4"].value == "天河区总工会"
    assert "审核用时" not in login("g1-clerk").get("/overview").text
