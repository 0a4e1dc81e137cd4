"""A refusal of a form the record page no longer shows (a stale tab, a state that hides the
form) is shown at the top of the page, never dropped."""

from __future__ import annotations

import re

from tests.conftest import World
from tests.entrypoints.web.conftest import NOW_TEXT, csrf_from


def _alerts(html: str) -> list[str]:
    return re.findall(r'<div class="alert page-error" role="alert">([^<]*)</div>', html)


def test_a_plan_from_a_stale_tab_after_finish_purchasing_is_refused_at_the_top(login, web_world: World) -> None:  # type: ignore[no-untyped-def]
    web_world.plan("G1", 60000, 100)
    web_world.buy("G1", "A-1", 5000)
    client = login("g1-clerk")
    rid = web_world.rid("G1")
    tab_b = client.get(f"/records/{rid}").text  # tab B, opened before tab A's 完成采购
    seen = web_world.version("G1")
    web_world.fire("G1", "finish_purchasing", "g1-clerk")  # tab A
    version = web_world.version("G1")
    for members, status, message in (
        ("999", 409, "只有“计划中”的记录可以修改计划；请先退回计划"),
        ("99999999999999999999999", 422, "会员人数须在 0 至 2,147,483,647 之间"),
    ):
        page = client.post(f"/records/{rid}/plan", data={"seen_version": seen, "amount": "600",
                                                         "members": members, "csrf_token": csrf_from(tab_b)})
        assert page.status_code == status
        assert _alerts(page.text) == [message]
        assert 'id="plan"' not in page.text  # the form stays hidden; the message is not lost with it
        assert web_world.version("G1") == version
        with web_world.uow(True) as uow:
            assert uow.records.get(rid).members == 100


def test_a_purchase_posted_to_an_accepted_record_is_refused_at_the_top(login, web_world: World) -> None:  # type: ignore[no-untyped-def]
    web_world.to_submitted("G1")
    web_world.fire("G1", "accept", "d1-reviewer")
    client = login("g1-clerk")
    rid = web_world.rid("G1")
    page = client.get(f"/records/{rid}").text
    assert "录入一笔采购" not in page
    before = client.get(f"/api/records/{rid}/purchases").json()
    resp = client.post(f"/records/{rid}/purchases", data={
        "paid_at": NOW_TEXT, "channel": "ygh", "amount": "50", "people": "5", "order_no": "LATE-1",
        "csrf_token": csrf_from(page)})
    assert resp.status_code == 409
    [message] = _alerts(resp.text)
    assert message and "accepted" not in message and not re.search(r"[a-z]+\.[a-z_]+", message)
    assert client.get(f"/api/records/{rid}/purchases").json() == before


def test_report_info_posted_to_a_submitted_record_is_refused_at_the_top(login, web_world: World) -> None:  # type: ignore[no-untyped-def]
    web_world.to_submitted("G1")
    client = login("g1-clerk")
    rid = web_world.rid("G1")
    page = client.get(f"/records/{rid}").text
    assert 'id="info"' not in page
    version = web_world.version("G1")
    resp = client.post(f"/records/{rid}/report-info", data={
        "seen_version": version, "reporter": "李四", "phone": "13800000000", "csrf_token": csrf_from(page)})
    assert resp.status_code == 409
    assert len(_alerts(resp.text)) == 1
    assert web_world.version("G1") == version
    with web_world.uow(True) as uow:
        assert uow.records.get(rid).reporter == "张三"


def test_an_error_of_a_shown_form_stays_beside_it_not_at_the_top(login, web_world: World) -> None:  # type: ignore[no-untyped-def]
    client = login("g1-clerk")
    rid = web_world.rid("G1")
    page = client.post(f"/records/{rid}/plan", data={"seen_version": web_world.version("G1"), "amount": "650",
                                                     "members": "120",
                                                     "csrf_token": csrf_from(client.get(f"/records/{rid}").text)})
    assert page.status_code == 409
    assert _alerts(page.text) == []
    assert "每人增加额度须在 0 至 600.00 元之间" in page.text
