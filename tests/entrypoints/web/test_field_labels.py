"""Validation messages name a field by the label its form shows, never by its internal name;
an over-long purchase or report-info value is refused beside its form with the input kept."""

from __future__ import annotations

import html as html_lib
import re
import typing

from fastapi.routing import APIRoute
from pydantic import BaseModel

from tests.conftest import World
from tests.entrypoints.web.conftest import NOW_TEXT, csrf_from
from workflow.entrypoints.web import (
    admin_pages,
    api,
    app,
    fields,
    health,
    outbox_page,
    pages,
    reports_pages,
)

ENGLISH_NAME = re.compile(r"[a-z][a-z_]{2,}")  # an internal name (JSON, MB are words)


def _page_message(text: str) -> str:
    [message] = re.findall(r'<p class="error" role="alert">([^<]*)</p>', text)
    return html_lib.unescape(message)


def _route_fields() -> set[str]:
    names: set[str] = set()

    def model(m: type[BaseModel]) -> None:
        for name, f in m.model_fields.items():
            names.add(name)
            for arg in typing.get_args(f.annotation) or (f.annotation,):
                for inner in typing.get_args(arg) or (arg,):
                    if isinstance(inner, type) and issubclass(inner, BaseModel):
                        model(inner)

    def walk(dep: typing.Any) -> None:
        for p in dep.path_params + dep.query_params + dep.body_params + dep.header_params + dep.cookie_params:
            names.add(p.name)
            if isinstance(p.field_info.annotation, type) and issubclass(p.field_info.annotation, BaseModel):
                model(p.field_info.annotation)
        for d in dep.dependencies:
            walk(d)

    routers = (api.router, pages.router, reports_pages.api, reports_pages.pages, outbox_page.router, health.router,
               admin_pages.pages, admin_pages.api)
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute):
                walk(route.dependant)
    return names


def test_every_request_field_of_every_route_has_a_chinese_label() -> None:
    names = _route_fields()
    assert {"product", "people", "line_no", "reporter", "record_id", "page", "round"} <= names
    missing = sorted(n for n in names if n not in fields.FIELD_LABELS)
    assert missing == []
    assert not any(ENGLISH_NAME.search(label) for label in fields.FIELD_LABELS.values())


def test_an_unknown_field_gets_a_generic_chinese_label() -> None:
    assert app._describe({"loc": ("body", "zzz_field"), "type": "int_parsing"}) == "某一项须为整数"
    assert app._describe({"loc": ("body", "zzz_field"), "type": "string_too_long",
                          "ctx": {"max_length": 5}}) == "某一项太长（最多 5 个字符）"
    assert app._describe({"loc": ("body", 11), "type": "json_invalid"}) == "提交的 JSON 格式不正确（第 12 个字符附近）"


def _purchase(csrf: str, **over: str) -> dict[str, str]:
    form = {"paid_at": NOW_TEXT, "channel": "ygh", "amount": "50", "people": "5", "order_no": "LONG-1",
            "line_no": "1", "product": "大米", "csrf_token": csrf}
    form.update(over)
    return form


def test_an_over_long_purchase_value_is_refused_beside_the_form_with_the_input_kept(login, web_world: World) -> None:  # type: ignore[no-untyped-def]
    web_world.plan("G1")
    client = login("g1-clerk")
    rid = web_world.rid("G1")
    csrf = csrf_from(client.get(f"/records/{rid}").text)
    for over, message in (
        ({"product": "米" * 301}, "商品太长（最多 300 个字符）"),
        ({"people": "1" * 21}, "领取人次的数字位数过多（最多 20 位）"),
        ({"line_no": "1" * 11}, "行号的数字位数过多（最多 10 位）"),
    ):
        page = client.post(f"/records/{rid}/purchases", data=_purchase(csrf, **over))
        assert page.status_code == 422
        purchases_card = page.text.split('id="purchases"', 1)[1].split("</section>", 1)[0]
        assert f'<p class="error" role="alert">{message}</p>' in purchases_card  # beside the form
        [(name, value)] = over.items()
        assert f'name="{name}" value="{value}"' in page.text  # what was typed is kept
        assert 'value="LONG-1"' in page.text
        assert not ENGLISH_NAME.search(message)
    assert client.get(f"/api/records/{rid}/purchases").json() == []


def test_an_over_long_reporter_is_refused_beside_the_report_info_form(login, web_world: World) -> None:  # type: ignore[no-untyped-def]
    client = login("g1-clerk")
    rid = web_world.rid("G1")
    csrf = csrf_from(client.get(f"/records/{rid}").text)
    version = web_world.version("G1")
    page = client.post(f"/records/{rid}/report-info", data={"seen_version": version, "reporter": "张" * 101,
                                                            "phone": "13800000000", "csrf_token": csrf})
    assert page.status_code == 422
    info_card = page.text.split('id="info"', 1)[1].split("</section>", 1)[0]
    assert '<p class="error" role="alert">填报人太长（最多 100 个字符）</p>' in info_card
    assert f'value="{"张" * 101}"' in info_card and 'value="13800000000"' in info_card
    assert web_world.version("G1") == version


def test_the_record_page_inputs_carry_the_servers_length_limits(login, web_world: World) -> None:  # type: ignore[no-untyped-def]
    web_world.plan("G1")
    page = login("g1-clerk").get(f"/records/{web_world.rid('G1')}").text
    for form, name in (("purchase", "product"), ("purchase", "people"), ("purchase", "order_no"),
                       ("purchase", "line_no"), ("info", "reporter"), ("info", "phone")):
        tag = re.search(rf'<input name="{name}" [^>]*>', page.split(f'action="/records/{web_world.rid("G1")}/'
                                                                   f'{"purchases" if form == "purchase" else "report-info"}"')[1])
        assert tag and f'maxlength="{pages.FIELD_LIMITS[form][name]}"' in tag.group(0), (name, tag)


def test_path_and_query_errors_name_the_field_in_chinese(login) -> None:  # type: ignore[no-untyped-def]
    client = login("c1-reviewer")
    for url, message in (
        ("/records/abc", "记录编号须为整数"),
        ("/review?page=0", "页码不能小于 1"),
        ("/overview?round=abc", "年度须为整数"),
    ):
        resp = client.get(url)
        assert resp.status_code == 422
        shown = _page_message(resp.text)
        assert message in shown and not ENGLISH_NAME.search(shown), shown


def test_api_messages_name_the_field_in_chinese(token_client, web_world: World) -> None:  # type: ignore[no-untyped-def]
    client = token_client("g1-clerk")
    rid = web_world.rid("G1")
    bad_json = client.post(f"/api/records/{rid}/purchases", content='{"people": 1,, }',
                           headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 422
    assert "提交的 JSON 格式不正确（第 14 个字符附近）" in bad_json.json()["message"]
    plan = client.put(f"/api/records/{rid}/plan", json={"seen_version": 1, "amount": "6" * 65, "members": 10})
    assert plan.status_code == 422
    assert "每人增加额度太长（最多 64 个字符）" in plan.json()["message"]
    for resp in (bad_json, plan):
        assert not ENGLISH_NAME.search(resp.json()["message"])
    assert client.get(f"/api/records/{rid}/purchases").json() == []
