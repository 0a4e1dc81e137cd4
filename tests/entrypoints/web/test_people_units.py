"""People and yuan as they are for a single union; 万 with two decimals where the notice's table
is meant (federations, the province, the Annex 2 form), and the page says which."""

from __future__ import annotations

from tests.conftest import World
from tests.entrypoints.web.test_overview_totals import _grassroots
from tests.entrypoints.web.test_review_levels import federation_to_submitted


def test_a_grassroots_work_report_shows_30_people_not_0_00(web_world: World, login) -> None:  # type: ignore[no-untyped-def]
    w = web_world
    _grassroots(w, "G1", 123_450, 30, "d1-reviewer")
    rid = w.rid("G1")
    page = login("g1-clerk").get(f"/records/{rid}/work-report").text
    assert "单个基层工会，按实数列示" in page and "<th>人次</th>" in page
    assert "粤工惠购平台</td><td>30</td><td>1,234.50</td>" in page
    assert "合计</td><td>30</td><td>1,234.50</td>" in page
    md = login("g1-clerk").get(f"/records/{rid}/work-report.md").text
    assert "| 合计 | 30 | 1,234.50 |" in md
    # The union's own Annex 2 form shows its exact figures too (issue 22, point 12: 30 人次 printed
    # as 0.00 万 on the paper it stamps), and says so.
    annex = login("g1-clerk").get(f"/records/{rid}/annex2.html").text
    assert "人次、金额按实数填列" in annex and '<td class="num">30</td><td class="num">1,234.50</td>' in annex


def test_a_federation_shows_the_notices_units_and_says_so(web_world: World, login) -> None:  # type: ignore[no-untyped-def]
    w = web_world
    _grassroots(w, "G1", 4_541_910, 1085, "d1-reviewer")
    federation_to_submitted(w, "D1")
    reviewer = login("c1-reviewer")
    inbox = reviewer.get("/review").text
    assert "上报汇总 0.11 万人次，4.54 万元（附件2口径）" in inbox and "（1085 人次，45,419.10 元）" in inbox
    report = reviewer.get(f"/records/{w.rid('D1')}/work-report").text
    assert "附件2口径：人次以万为单位、金额以万元为单位，保留两位小数" in report
    assert "<td>0.11</td><td>4.54</td>" in report
