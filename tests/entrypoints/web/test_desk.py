"""Issue 22, points 8-10: the reviewer's desk. A returned union reads 已退回 in the lists until it
resubmits; a decision taken from the list names the union; home says how many decisions wait and
the 通知 link carries the unread count; a federation enters its own aggregate lines on its page;
the overview says in words why its two totals differ."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.conftest import World
from tests.entrypoints.web.conftest import csrf_from


def _subordinate_row(page: str, name: str) -> str:
    table = page.split('id="subordinates"', 1)[1]
    return next(row for row in table.split("<tr>") if name in row)


def test_a_returned_union_reads_returned_until_it_resubmits(web_world: World, login: Callable[[str], TestClient]) -> None:
    w = web_world
    w.to_submitted("G1")
    w.fire("G1", "return_for_revision", "d1-reviewer", reason="请补充发放名单")
    reviewer = login("d1-reviewer")
    row = _subordinate_row(reviewer.get("/review").text, "天河一中工会")
    assert "已退回" in row and "已采购" in row
    w.fire("G1", "summarize", "g1-clerk")
    assert "已退回" in _subordinate_row(reviewer.get("/review").text, "天河一中工会")
    w.fire("G1", "submit", "g1-clerk")
    row = _subordinate_row(reviewer.get("/review").text, "天河一中工会")
    assert "已退回" not in row and "已提交" in row


def _missing_child(page: str, name: str) -> str:
    listed = page.split('class="list missing-children"', 1)[1].split("</ul>", 1)[0]
    return next(item for item in listed.split("<li>") if name in item)


def test_the_federation_pages_missing_children_read_returned_too(
        web_world: World, login: Callable[[str], TestClient], token_client: Callable[[str], TestClient]) -> None:
    """Point 8 remainder: the district's own page lists the children not yet accepted; a returned
    union reads 已退回 there as on /review (one rule), until it resubmits."""
    w = web_world
    w.to_submitted("G1")
    w.fire("G1", "return_for_revision", "d1-reviewer", reason="请补充发放名单")
    clerk = login("d1-clerk")
    item = _missing_child(clerk.get(f"/records/{w.rid('D1')}").text, "天河一中工会")
    assert "已退回" in item and "已采购" in item
    assert "已退回" not in _missing_child(clerk.get(f"/records/{w.rid('D1')}").text, "天河供电局工会")
    fed = token_client("d1-clerk").get(f"/api/records/{w.rid('D1')}/federation").json()
    assert {m["org_code"]: m["returned"] for m in fed["missing"]} == {"G1": True, "G2": False}
    w.fire("G1", "summarize", "g1-clerk")
    w.fire("G1", "submit", "g1-clerk")
    item = _missing_child(clerk.get(f"/records/{w.rid('D1')}").text, "天河一中工会")
    assert "已退回" not in item and "已提交" in item


def test_home_counts_the_waiting_decisions_and_the_nav_the_unread(web_world: World,
                                                                   login: Callable[[str], TestClient]) -> None:
    w = web_world
    reviewer = login("d1-reviewer")
    assert "没有等你审核的报送" in reviewer.get("/").text
    w.to_submitted("G1")
    w.to_submitted("G2")
    home = reviewer.get("/").text
    assert "2 份报送等你审核" in home
    assert re.search(r'href="/notifications">通知<span class="count"[^>]*>2</span>', home)  # two submissions
    page = reviewer.get("/review").text
    done = reviewer.post(f"/records/{w.rid('G1')}/fire", data={
        "seen_version": w.version("G1"), "trigger": "accept", "next": "/review",
        "csrf_token": csrf_from(page)})
    assert "已通过：已提交 → 已通过（天河一中工会）" in done.text  # the message names the union
    assert "1 份报送等你审核" in reviewer.get("/").text


def test_a_federation_enters_its_own_aggregate_line_on_its_page(web_world: World,
                                                                 login: Callable[[str], TestClient]) -> None:
    w = web_world
    rid = w.rid("D1")
    clerk = login("d1-clerk")
    page = clerk.get(f"/records/{rid}").text
    assert "录入本级汇总数据" in page
    bad = clerk.post(f"/records/{rid}/aggregates", data={
        "channel": "ygh", "people": "12", "amount": "300", "note": "", "csrf_token": csrf_from(page)})
    assert bad.status_code == 409 and 'id="answer-aggregates"' in bad.text and "来源" in bad.text
    ok = clerk.post(f"/records/{rid}/aggregates", data={
        "channel": "ygh", "people": "12", "amount": "300", "note": "街道台账汇总", "csrf_token": csrf_from(page)})
    assert "已录入汇总数据：12 人次，300 元（街道台账汇总）" in ok.text
    assert "本级录入的汇总数据" in ok.text
    with w.uow(True) as uow:
        assert uow.reports.snapshot_parts(rid)["aggregate"]
    # a grassroots union has no such form
    assert "录入本级汇总数据" not in login("g1-clerk").get(f"/records/{w.rid('G1')}").text


def test_the_overview_says_why_its_two_totals_differ(web_world: World, login: Callable[[str], TestClient]) -> None:
    page = login("gd-reviewer").get("/overview").text
    why = page.split('id="why-two-totals"', 1)[1].split("</p>", 1)[0]
    assert "已经正式报送" in why and "已被直接上级审核通过" in why and "差额" in why
