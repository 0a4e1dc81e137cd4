"""Issue 20 points 4, 6, 8, 9 on the web: hostile free text is refused with one Chinese sentence
at every entry path and nothing is half-written; a hostile string already stored never breaks a
download; observers never see contact data; ids are bounded and opening a notification is a POST;
/readyz names no path; pages carry a Content-Security-Policy."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import docx
import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import NOW_2021, World
from tests.entrypoints.web.conftest import csrf_from
from workflow.app import directory, reporting
from workflow.domain.errors import BadInput
from workflow.entrypoints.web.app import create_app
from workflow.settings import Settings, get_settings
from workflow.store.uow import UnitOfWork

HOSTILE = ["填\u0001报", "x\u0085y", "\u202e张三", "\u2066李四\u2069", "\x1b[31m王五"]
REFUSAL_CODES = {"input.control_char", "input.bidi"}
PHONE = "13812345678"


def _refused(resp: Any, status: int = 422) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert body["code"] in REFUSAL_CODES, body
    assert "删掉后再提交" in body["message"] and "\\u" not in body["message"]
    return body  # type: ignore[no-any-return]


def test_report_info_refuses_hostile_text_through_the_api_and_the_page(
        web_world: World, token_client: Callable[[str], TestClient], login: Callable[[str], TestClient]) -> None:
    w = web_world
    rid = w.rid("G1")
    api = token_client("g1-clerk")
    version = w.version("G1")
    for value in HOSTILE:
        for field in ("reporter", "phone", "work_experience", "work_highlights"):
            _refused(api.put(f"/api/records/{rid}/report-info", json={"seen_version": version, field: value}))
    # A lone surrogate can only come through JSON's \u escapes.
    lone = b'{"seen_version": %d, "reporter": "\\ud800"}' % version
    resp = api.put(f"/api/records/{rid}/report-info", content=lone, headers={"content-type": "application/json"})
    assert resp.status_code == 422 and "填报人" in resp.json()["message"], resp.text
    assert w.version("G1") == version  # nothing half-written
    view = api.get(f"/api/records/{rid}").json()
    assert (view["reporter"], view["phone"], view["work_experience"]) == (None, None, None)
    # The page gives the same refusal, in the form, in Chinese.
    clerk = login("g1-clerk")
    page = clerk.get(f"/records/{rid}").text
    resp = clerk.post(f"/records/{rid}/report-info", data={
        "seen_version": str(version), "reporter": "\u202e张三", "phone": PHONE, "csrf_token": csrf_from(page)})
    assert resp.status_code == 422 and "文字方向控制符" in resp.text and "input.bidi" not in resp.text
    assert w.version("G1") == version
    # NFC: the same word typed two ways is stored one way; long texts keep their lines.
    ok = api.put(f"/api/records/{rid}/report-info", json={
        "seen_version": version, "reporter": "Jose\u0301", "work_experience": "一、\r\n二、"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["reporter"] == "Jos\u00e9" and ok.json()["work_experience"] == "一、\n二、"


def test_purchases_reasons_and_imports_refuse_hostile_text(
        web_world: World, token_client: Callable[[str], TestClient]) -> None:
    w = web_world
    w.plan("G1")
    rid = w.rid("G1")
    api = token_client("g1-clerk")
    base = {"paid_at": "2021-10-20T10:00", "channel": "ygh", "amount": "100", "people": 2, "order_no": "A-1"}
    for field in ("product", "order_no", "origin_region"):
        for value in HOSTILE:
            _refused(api.post(f"/api/records/{rid}/purchases", json={**base, field: value}), 409)
    assert api.get(f"/api/records/{rid}/purchases").json() == []
    # The same rule, the same code, row by row, in an imported file.
    rows = "订单号,商品行号,支付时间,实付金额,领取人数,商品名称,渠道\r\nB-1,1,2021-10-20,100,2,梅州\u0001金柚,粤工惠购\r\n"
    resp = api.post(f"/api/records/{rid}/purchases/import", files={"file": ("a.csv", rows.encode(), "text/csv")})
    assert resp.status_code == 422 and resp.json()["code"] == "import.refused", resp.text
    assert "第 2 行" in resp.json()["errors"][0] and "控制字符" in resp.json()["errors"][0]
    assert api.get(f"/api/records/{rid}/purchases").json() == []
    # Reasons: void and return for revision.
    pid = w.buy("G1", "C-1", 10000, 2)
    _refused(api.post(f"/api/records/{rid}/purchases/{pid}/void", json={"reason": "误录\x1b[2J"}))
    w.to_submitted("G2")
    reviewer = token_client("d1-reviewer")
    g2 = w.rid("G2")
    _refused(reviewer.post(f"/api/records/{g2}/fire", json={
        "trigger": "return_for_revision", "seen_version": w.version("G2"), "reason": "请核对\u202e金额"}))
    assert w.state("G2") == "submitted"


def test_directory_imports_refuse_hostile_names(web_world: World) -> None:
    w = web_world
    data = "code,name,kind,parent_code\nG9,新\u202e工会,grassroots,D1\n".encode()
    with pytest.raises(BadInput) as caught:
        directory.import_organisations(UnitOfWork(w.db), data=data, now=NOW_2021)
    assert caught.value.code == "input.bidi" and "第 2 行" in caught.value.message
    users = "username,display_name,org_code,role\nnew-clerk,王\u0001五,G1,clerk\n".encode()
    with pytest.raises(BadInput) as caught:
        directory.import_users(UnitOfWork(w.db), data=users, now=NOW_2021)
    assert caught.value.code == "input.control_char"
    with w.uow(True) as uow:
        assert "G9" not in uow.directory.org_ids_by_code()


def test_the_handover_checks_text_phone_and_email(
        web_world: World, token_client: Callable[[str], TestClient], login: Callable[[str], TestClient]) -> None:
    api = token_client("d1-reviewer")
    body = {"display_name": "新填报员", "new_password": "handover-pass-1"}
    _refused(api.post("/api/accounts/g1-clerk/handover", json={**body, "phone": "\u0001" + PHONE}))
    _refused(api.post("/api/accounts/g1-clerk/handover", json={**body, "display_name": "\u202e新人"}))
    for email in ("<script>alert(1)</script>@x.cn", "a@b", "a b@x.cn", "x@x.cn\r\nBcc: y@y.cn"):
        resp = api.post("/api/accounts/g1-clerk/handover", json={**body, "email": email})
        assert resp.status_code == 422, (email, resp.text)
        assert resp.json()["code"] in {"contact.email_invalid", "input.control_char"}
    resp = api.post("/api/accounts/g1-clerk/handover", json={**body, "phone": "12345"})
    assert resp.status_code == 422 and resp.json()["code"] == "contact.phone_invalid"
    clerk = next(c for c in api.get("/api/accounts").json() if c["username"] == "g1-clerk")
    assert clerk["display_name"] == "G1填报员" and clerk["phone"] is None  # nothing half-written
    page = login("d1-reviewer")
    resp = page.post("/accounts/g1-clerk/handover", data={
        **body, "email": "<script>x</script>@x.cn", "csrf_token": csrf_from(page.get("/accounts").text)})
    assert resp.status_code == 422 and "电子邮箱格式不正确" in resp.text and "<script>x" not in resp.text
    ok = api.post("/api/accounts/g1-clerk/handover", json={**body, "email": "new.clerk@example.cn", "phone": PHONE})
    assert ok.status_code == 204, ok.text


# --- hostile strings already stored: every export at every level still downloads -------------


def _plant(w: World) -> None:
    """Hostile strings written straight into the database, as an old version or a hand edit may
    have left them."""
    hostile = "\u0001坏\u0085字\u202e符\u2066\x1b[31m\x0b\x0c\ufffe"
    with w.db.engine.begin() as conn:
        conn.execute(text("UPDATE record SET reporter = :a, phone = :b, work_experience = :c, work_highlights = :d"),
                     dict.fromkeys("abcd", hostile))
        conn.execute(text("UPDATE organisation SET name = name || :a"), {"a": hostile})
        conn.execute(text("UPDATE purchase SET product = :a, order_no = order_no || :b"), dict.fromkeys("ab", hostile))


def _valid(resp: Any, what: str) -> None:
    assert resp.status_code == 200, (what, resp.status_code, resp.text[:300])
    if what.endswith(".xlsx"):
        openpyxl.load_workbook(io.BytesIO(resp.content))
    elif what.endswith(".docx"):
        docx.Document(io.BytesIO(resp.content))
    elif what.endswith(".csv"):
        list(csv.reader(io.StringIO(resp.content.decode("utf-8-sig"))))
    if resp.content[:2] != b"PK":  # a text: nothing that steers a terminal or the reading order
        shown = resp.content.decode("utf-8-sig")
        assert "\x1b" not in shown and "\u202e" not in shown and "\u0001" not in shown, what


def test_every_export_survives_hostile_stored_strings(
        web_world: World, login: Callable[[str], TestClient]) -> None:
    w = web_world
    w.to_submitted("G1")
    w.fire("G1", "accept", "d1-reviewer")
    w.to_submitted("G2")
    w.plan("G5")
    _plant(w)
    levels = {"g1-clerk": ["G1"], "d1-reviewer": ["G1", "D1"], "c1-reviewer": ["D1", "C1"],
              "gd-reviewer": ["C1", "IND"]}
    for user, orgs in levels.items():
        client = login(user)
        for org in orgs:
            rid = w.rid(org)
            for fmt in ("xlsx", "csv", "html"):
                _valid(client.get(f"/records/{rid}/annex2.{fmt}"), f"annex2.{fmt}")
                _valid(client.get(f"/orgs/{org}/annex2.{fmt}"), f"annex2.{fmt}")
            _valid(client.get(f"/records/{rid}/work-report.docx"), "work-report.docx")
            _valid(client.get(f"/records/{rid}/work-report"), "work-report")
            _valid(client.get(f"/records/{rid}/work-report/print"), "print")
            _valid(client.get(f"/records/{rid}/purchases.csv"), "purchases.csv")
            _valid(client.get(f"/records/{rid}"), "record page")
    _valid(login("d1-reviewer").get("/orgs/D1/chase.xlsx"), "chase.xlsx")
    _valid(login("c1-reviewer").get("/orgs/C1/chase.xlsx"), "chase.xlsx")
    gd = login("gd-reviewer")
    _valid(gd.get("/orgs/GD/annex2.xlsx"), "province annex2.xlsx")
    _valid(gd.get("/province-workbook.xlsx"), "province-workbook.xlsx")


# --- observers never see contact data ---------------------------------------------------------


def _texts_of(resp: Any) -> str:
    assert resp.status_code == 200, resp.text[:300]
    return _file_text(resp.content)


def _file_text(data: bytes) -> str:
    if data[:2] == b"PK":
        try:
            wb = openpyxl.load_workbook(io.BytesIO(data))
            return " ".join(str(c) for ws in wb.worksheets for row in ws.iter_rows(values_only=True)
                            for c in row if c is not None)
        except Exception:  # noqa: BLE001 - not a workbook: a Word document
            d = docx.Document(io.BytesIO(data))
            return " ".join([p.text for p in d.paragraphs]
                            + [c.text for t in d.tables for r in t.rows for c in r.cells])
    return data.decode("utf-8-sig")


def test_observers_see_figures_never_contact_data(
        web_world: World, token_client: Callable[[str], TestClient], login: Callable[[str], TestClient]) -> None:
    w = web_world
    w.to_submitted("G1")  # 填报人 张三, 联系电话 13812345678
    w.info("D1", reporter="李四", phone="020-83828111", work_experience="经验", work_highlights="亮点")
    w.info("C1", reporter="王五", phone="020-83828222", work_experience="经验", work_highlights="亮点")
    directory.import_users(UnitOfWork(w.db), now=NOW_2021,
                           data="username,display_name,org_code,role\nxczx-observer,省乡村振兴局观察员,GD,observer\n".encode())
    observer, reviewer = token_client("observer"), token_client("c1-reviewer")
    secrets = ("13812345678", "张三", "020-83828111", "李四", "020-83828222", "王五")
    for org in ("G1", "D1", "C1"):
        rid = w.rid(org)
        urls = [f"/api/records/{rid}", f"/api/records/{rid}/history", f"/api/records/{rid}/annex2.xlsx",
                f"/api/records/{rid}/annex2.csv", f"/api/records/{rid}/annex2.html", f"/api/orgs/{org}/annex2.csv",
                f"/api/records/{rid}/work-report"]
        for url in urls:
            seen = _texts_of(observer.get(url))
            assert not [s for s in secrets if s in seen], (url, seen[:400])
        assert any(s in _texts_of(reviewer.get(f"/api/records/{rid}/annex2.csv")) for s in secrets)
        page = login("observer")
        for url in (f"/records/{rid}/work-report.docx", f"/records/{rid}/annex2.xlsx", f"/records/{rid}/annex2.html"):
            seen = _texts_of(page.get(url))
            assert not [s for s in secrets if s in seen], (url, seen[:400])
    assert observer.get(f"/api/records/{w.rid('G1')}").json()["reporter"] is None
    assert reviewer.get(f"/api/records/{w.rid('G1')}").json()["reporter"] == "张三"
    xczx = token_client("xczx-observer")
    with w.uow(True) as uow:
        round_id = uow.directory.round_by_label(w.round_label).id
    seen = _texts_of(xczx.get(f"/api/province-workbook.xlsx?round={round_id}"))
    assert not [s for s in secrets if s in seen], seen[:400]
    with w.uow(True) as uow:
        gd = uow.directory.user_by_name("gd-reviewer").id or 0
    shown = reporting.province_workbook(UnitOfWork(w.db), user_id=gd, round_label=w.round_label)
    assert "王五" in _file_text(shown)  # the chain of federations sees who to call


# --- ids, the inbox, readiness and the CSP ---------------------------------------------------


def test_ids_beyond_32_bits_never_reach_the_database(
        web_world: World, login: Callable[[str], TestClient]) -> None:
    clerk = login("g1-clerk")
    csrf = csrf_from(clerk.get("/notifications").text)
    for path in (f"/notifications/{2**31}/read", f"/notifications/{2**31}/open", f"/notifications/{2**63}/open"):
        resp = clerk.post(path, data={"csrf_token": csrf})
        assert resp.status_code == 422 and "请返回上一页" in resp.text, (path, resp.status_code)
    for path in (f"/records/{2**31}/work-report.docx", f"/records/{2**31}/work-report/print",
                 f"/records/{2**31}/import-template/generic.csv"):
        assert clerk.get(path).status_code == 422, path


def test_a_link_typed_into_a_reason_is_not_made_clickable(web_world: World) -> None:
    from workflow.entrypoints.web.inbox import linked

    own = get_settings().base_url.rstrip("/") + "/records/7"
    shown = str(linked(f"退回原因：见 https://evil.example/phish 。查看：{own}", own))
    assert shown.count("<a ") == 1 and 'href="/records/7"' in shown
    assert "https://evil.example/phish" in shown and 'href="https://evil.example' not in shown


def test_readyz_says_what_is_wrong_not_where(web_world: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(env="test", secret_key="test-secret-" + "x" * 32, var_dir=tmp_path / "var-missing",
                        broker_url="filesystem://")
    with TestClient(create_app(web_world.db, settings)) as client:
        ready = client.get("/readyz")
    if ready.status_code == 503:
        assert ready.json()["broker"] == "broker: folder missing"
    assert str(tmp_path) not in ready.text and "/" not in "".join(ready.json()[k] for k in ("database", "broker"))


def test_pages_carry_a_content_security_policy(anon: TestClient) -> None:
    policy = anon.get("/login").headers["content-security-policy"]
    for part in ("default-src 'self'", "script-src 'none'", "object-src 'none'", "frame-ancestors 'none'",
                 "form-action 'self'", "base-uri 'none'"):
        assert part in policy
