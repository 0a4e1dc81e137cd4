"""The framework's own refusals (no such page, a wrong method, a body it cannot read) answer in
Chinese like the project's errors: the error page for pages, ``{"code", "message"}`` under /api."""

from __future__ import annotations

import re

from tests.conftest import World
from tests.entrypoints.web.conftest import NOW_TEXT, csrf_from

ENGLISH = ("Not Found", "Method Not Allowed", "detail", "Field exceeded", "error parsing")


def _chinese_page(html: str) -> str:
    [message] = re.findall(r'<p class="error" role="alert">([^<]*)</p>', html)
    assert not any(word in html for word in ENGLISH)
    return message


def test_an_unknown_page_is_a_chinese_404_page(anon, login) -> None:  # type: ignore[no-untyped-def]
    for client in (anon, login("g1-clerk")):
        resp = client.get("/nonexistent")
        assert resp.status_code == 404 and resp.headers["content-type"].startswith("text/html")
        assert "页面不存在" in _chinese_page(resp.text)


def test_an_unknown_api_path_is_a_chinese_json_404(token_client) -> None:  # type: ignore[no-untyped-def]
    resp = token_client("g1-clerk").get("/api/nonexistent")
    assert resp.status_code == 404
    body = resp.json()
    assert set(body) == {"code", "message"} and "不存在" in body["message"]


def test_a_wrong_method_is_a_chinese_405_keeping_allow(anon, token_client) -> None:  # type: ignore[no-untyped-def]
    resp = anon.delete("/login")
    assert resp.status_code == 405
    assert "不支持此操作" in _chinese_page(resp.text)
    assert "GET" in resp.headers["allow"]  # the framework's Allow header is kept
    api = token_client("g1-clerk").delete("/api/records")
    assert api.status_code == 405 and "allow" in api.headers
    assert set(api.json()) == {"code", "message"} and "不支持此操作" in api.json()["message"]


def test_a_form_field_over_1_mb_is_refused_in_chinese_and_changes_nothing(login, web_world: World) -> None:  # type: ignore[no-untyped-def]
    web_world.to_submitted("G1")
    web_world.fire("G1", "accept", "d1-reviewer")
    rid = web_world.rid("G1")
    reviewer = login("d1-reviewer")
    csrf = csrf_from(reviewer.get(f"/records/{rid}").text)
    version = web_world.version("G1")
    resp = reviewer.post(f"/records/{rid}/fire", data={"seen_version": version, "trigger": "revoke",
                                                        "reason": "理" * 1_000_000, "csrf_token": csrf})
    assert resp.status_code == 400
    assert _chinese_page(resp.text) == "提交的内容过大（单项不得超过 1 MB），未保存任何内容"
    assert web_world.state("G1") == "accepted" and web_world.version("G1") == version


def test_a_product_of_2_mb_is_refused_in_chinese_and_stores_nothing(login, web_world: World) -> None:  # type: ignore[no-untyped-def]
    web_world.plan("G1")
    client = login("g1-clerk")
    rid = web_world.rid("G1")
    csrf = csrf_from(client.get(f"/records/{rid}").text)
    resp = client.post(f"/records/{rid}/purchases", data={
        "paid_at": NOW_TEXT, "channel": "ygh", "amount": "50", "people": "5", "order_no": "BIG-1",
        "product": "x" * 2_000_000, "csrf_token": csrf})
    assert resp.status_code == 400
    assert "提交的内容过大" in _chinese_page(resp.text)
    assert client.get(f"/api/records/{rid}/purchases").json() == []


def test_an_api_body_it_cannot_parse_is_a_chinese_json_400(token_client, web_world: World) -> None:  # type: ignore[no-untyped-def]
    web_world.plan("G1")
    rid = web_world.rid("G1")
    client = token_client("g1-clerk")
    body = ('{"paid_at": "2021-10-20T10:00:00+08:00", "channel": "ygh", "amount": "5", "people": '
            + "9" * 5000 + ', "order_no": "HUGE-1"}')
    resp = client.post(f"/api/records/{rid}/purchases", content=body,
                       headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    out = resp.json()
    assert set(out) == {"code", "message"} and out["message"].startswith("提交的内容无法解析")
    assert client.get(f"/api/records/{rid}/purchases").json() == []
