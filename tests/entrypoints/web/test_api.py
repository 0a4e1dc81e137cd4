"""The JSON API and the pages over the small world: login, CSRF, the authorization matrix,
reviewer tools, hostile input."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import NOW_2021, World
from tests.entrypoints.web.conftest import PASSWORD, csrf_from
from workflow.app import accounts
from workflow.domain.errors import BadInput
from workflow.entrypoints import cli
from workflow.entrypoints.web.app import create_app
from workflow.entrypoints.web.auth import COOKIE
from workflow.settings import Settings, get_settings
from workflow.store.uow import UnitOfWork

_orders = itertools.count(1)


def purchase(**kw: Any) -> dict[str, Any]:
    body = {"paid_at": "2021-10-20T10:00", "channel": "ygh", "amount": "100.00", "people": 2,
            "order_no": f"T-{next(_orders)}"}
    body.update(kw)
    return body


# --- login, sessions, CSRF ------------------------------------------------------------------


def test_login_sets_a_hardened_cookie_and_lands_the_clerk_on_their_record(login, web_world: World) -> None:
    client = login("g1-clerk")
    cookie = next(c for c in client.cookies.jar if c.name == COOKIE)
    assert cookie.has_nonstandard_attr("HttpOnly")
    page = client.get("/")
    assert page.url.path == f"/records/{web_world.rid('G1')}"
    assert "天河一中工会" in page.text and "计划中" in page.text


def test_set_cookie_header_says_httponly_lax_and_secure_when_configured(web_world: World) -> None:
    app = create_app(web_world.db, Settings(env="test", secure_cookies=True))
    with TestClient(app) as client:
        header = client.get("/login").headers["set-cookie"]
    assert "HttpOnly" in header and "SameSite=lax" in header.replace("Lax", "lax") and "Secure" in header


def test_wrong_password_is_refused_in_chinese_and_the_username_is_kept(login, anon: TestClient) -> None:
    login("g1-clerk")
    page = anon.get("/login")
    resp = anon.post("/login", data={"username": "g1-clerk", "password": "nope-nope",
                                     "csrf_token": csrf_from(page.text)})
    assert resp.status_code == 401
    assert "用户名或密码不正确" in resp.text
    assert 'value="g1-clerk"' in resp.text


def test_failed_logins_are_throttled_per_username_and_address(login, anon: TestClient) -> None:
    login("g1-clerk")
    csrf = csrf_from(anon.get("/login").text)
    for _ in range(accounts.MAX_FAILURES):
        assert anon.post("/login", data={"username": "g1-clerk", "password": "wrong-pass",
                                         "csrf_token": csrf}).status_code == 401
    # Even the right password is refused now.
    resp = anon.post("/login", data={"username": "g1-clerk", "password": PASSWORD, "csrf_token": csrf})
    assert resp.status_code == 429
    assert "登录失败次数过多" in resp.text
    # Another user from the same address is not affected.
    login("g2-clerk")


def test_login_form_without_csrf_token_is_refused(login, anon: TestClient) -> None:
    login("g1-clerk")
    anon.get("/login")
    resp = anon.post("/login", data={"username": "g1-clerk", "password": PASSWORD})
    assert resp.status_code == 403
    assert "CSRF" in resp.text


def test_cookie_json_writes_need_the_csrf_header(login, web_world: World) -> None:
    web_world.plan("G1")
    client = login("g1-clerk")
    rid = web_world.rid("G1")
    resp = client.post(f"/api/records/{rid}/purchases", json=purchase())
    assert resp.status_code == 403
    assert resp.json()["code"] == "csrf.failed"
    csrf = csrf_from(client.get(f"/records/{rid}").text)
    resp = client.post(f"/api/records/{rid}/purchases", json=purchase(), headers={"X-CSRF-Token": csrf})
    assert resp.status_code == 201, resp.text
    # Reads need no token.
    assert client.get(f"/api/records/{rid}/purchases").status_code == 200


def test_api_session_login_returns_the_csrf_token(app, login, web_world: World) -> None:
    login("g1-clerk")  # sets the password
    with TestClient(app) as client:
        resp = client.post("/api/session", json={"username": "g1-clerk", "password": PASSWORD})
        assert resp.status_code == 200
        token = resp.json()["csrf_token"]
        rid = web_world.rid("G1")
        v = web_world.version("G1")
        ok = client.put(f"/api/records/{rid}/plan", json={"seen_version": v, "amount": "600", "members": 10},
                        headers={"X-CSRF-Token": token})
        assert ok.status_code == 200, ok.text
        assert ok.json()["quota_fen"] == 600_000


def test_no_credentials_is_401_and_a_bad_token_is_401(anon: TestClient, web_world: World) -> None:
    rid = web_world.rid("G1")
    assert anon.get(f"/api/records/{rid}").status_code == 401
    assert anon.get(f"/api/records/{rid}").json()["code"] == "auth.required"
    assert anon.get("/api/me", headers={"Authorization": "Bearer bf_not-a-token"}).status_code == 401
    # Pages send the browser to the login form instead.
    page = anon.get(f"/records/{rid}", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


@pytest.mark.parametrize(("username", "seat"), [
    ("g1-clerk", "G1"), ("d1-reviewer", "D1"), ("c1-reviewer", "C1"), ("gd-reviewer", "GD")])
def test_a_token_carries_its_users_seats_and_dies_with_a_deactivation_or_a_revocation(
        token_client, web_world: World, username: str, seat: str) -> None:  # type: ignore[no-untyped-def]
    client = token_client(username)
    me = client.get("/api/me")
    assert me.status_code == 200 and me.json()["username"] == username
    assert [m["org_code"] for m in me.json()["memberships"]] == [seat]
    uid = web_world.uid(username)
    with web_world.db.begin() as s:
        s.execute(text("UPDATE app_user SET is_active = FALSE WHERE id = :u"), {"u": uid})
    gone = client.get("/api/me")
    assert gone.status_code == 401 and gone.json()["code"] == "auth.required"
    with web_world.db.begin() as s:
        s.execute(text("UPDATE app_user SET is_active = TRUE WHERE id = :u"), {"u": uid})
    assert client.get("/api/me").status_code == 200
    with UnitOfWork(web_world.db) as uow:
        accounts.revoke_tokens(uow, uid, NOW_2021)
        uow.commit()
    assert client.get("/api/me").status_code == 401


def test_a_tokens_seats_are_read_on_each_request_and_a_reset_password_kills_it_on_the_next(
        token_client, web_world: World) -> None:  # type: ignore[no-untyped-def]
    """The one-statement token lookup: a seat given or taken shows on the very next request,
    a user without seats is still themselves, a password reset ends the token at once."""
    client = token_client("g1-clerk")
    uid = web_world.uid("g1-clerk")
    with web_world.db.engine.connect() as conn:
        org = {code: i for code, i in conn.execute(text("SELECT code, id FROM organisation"))}
    with web_world.db.begin() as s:
        s.execute(text("INSERT INTO membership (user_id, org_id, role) VALUES (:u, :o, 'clerk')"),
                  {"u": uid, "o": org["D1"]})
    seats = client.get("/api/me").json()["memberships"]
    assert [m["org_code"] for m in seats] == ["D1", "G1"]  # the shallower organisation first
    with web_world.db.begin() as s:
        s.execute(text("DELETE FROM membership WHERE user_id = :u"), {"u": uid})
    me = client.get("/api/me")
    assert me.status_code == 200 and me.json()["username"] == "g1-clerk" and me.json()["memberships"] == []
    with web_world.db.begin() as s:
        s.execute(text("INSERT INTO membership (user_id, org_id, role) VALUES (:u, :o, 'clerk')"),
                  {"u": uid, "o": org["G1"]})
    assert client.get("/api/me").status_code == 200
    accounts.reset_password(UnitOfWork(web_world.db), actor_id=web_world.uid("d1-reviewer"), username="g1-clerk",
                            new_password="a-new-password-1")
    gone = client.get("/api/me")
    assert gone.status_code == 401 and gone.json()["code"] == "auth.required"


def test_token_create_cli_makes_a_working_bearer_token(app, web_world: World, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BANGFU_DATABASE_URL", web_world.db.url)
    get_settings.cache_clear()
    try:
        assert cli.main(["token-create", "d1-reviewer", "--json"]) == 0
    finally:
        get_settings.cache_clear()
    import json

    token = json.loads(capsys.readouterr().out)["token"]
    with TestClient(app) as client:
        me = client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["username"] == "d1-reviewer"


def test_production_refuses_the_default_secret(web_world: World) -> None:
    with pytest.raises(BadInput, match="BANGFU_SECRET_KEY"):
        create_app(web_world.db, Settings(env="production"))


# --- the authorization matrix ---------------------------------------------------------------

ACTORS = ("g1-clerk", "d1-clerk", "d1-reviewer", "c1-reviewer", "observer", "gd-reviewer")
TARGETS = ("G1", "D1", "C1", "G2", "D2", "G3", "G4", "D3")
# Relative to D1's people: own D1, parent C1, child G1 (and G2), sibling D2 (and its child G3),
# another city D3 (and its child G4). "observer" holds an observer seat at C1.
VISIBLE = {
    "g1-clerk": {"G1"},
    "d1-clerk": {"D1", "G1", "G2"},
    "d1-reviewer": {"D1", "G1", "G2"},
    "c1-reviewer": {"C1", "D1", "D2", "G1", "G2", "G3"},
    "observer": {"C1", "D1", "D2", "G1", "G2", "G3"},
    "gd-reviewer": set(TARGETS),
}
# Who may enter data or fire own-scope triggers: the record's clerk, or its parent's reviewer
# on its behalf (代填报).
ENTER = {
    "g1-clerk": {"G1"},
    "d1-clerk": {"D1"},
    "d1-reviewer": {"G1", "G2"},
    "c1-reviewer": {"D1", "D2"},
    "observer": set(),
    "gd-reviewer": {"C1"},
}
# Who may accept a grassroots submission: its parent's reviewer only.
DECIDE = {"d1-reviewer": {"G1", "G2"}}


def _expected(actor: str, target: str, allowed: set[str], ok: int) -> int:
    if target not in VISIBLE[actor]:
        return 404
    return ok if target in allowed else 403


def test_show_matrix(token_client, web_world: World) -> None:
    got, want = {}, {}
    for actor in ACTORS:
        client = token_client(actor)
        for target in TARGETS:
            got[actor, target] = client.get(f"/api/records/{web_world.rid(target)}").status_code
            want[actor, target] = _expected(actor, target, VISIBLE[actor], 200)
    assert got == want


def test_add_purchase_matrix(token_client, web_world: World) -> None:
    got, want = {}, {}
    for actor in ACTORS:
        client = token_client(actor)
        for target in TARGETS:
            resp = client.post(f"/api/records/{web_world.rid(target)}/purchases", json=purchase())
            got[actor, target] = resp.status_code
            want[actor, target] = _expected(actor, target, ENTER[actor], 201)
            if resp.status_code in (403, 404):
                assert resp.json()["code"] in ("permission.not_clerk", "record.not_found"), resp.json()
    assert got == want
    # The parent's reviewer's lines are marked as entered on the child's behalf.
    rows = token_client("g1-clerk").get(f"/api/records/{web_world.rid('G1')}/purchases").json()
    assert sorted(r["on_behalf"] for r in rows) == [False, True]


def test_fire_own_trigger_matrix(token_client, web_world: World) -> None:
    for g in ("G1", "G2", "G3", "G4"):
        web_world.plan(g)
    got, want = {}, {}
    for actor in ACTORS:
        client = token_client(actor)
        for target in TARGETS:
            rid = web_world.rid(target)
            resp = client.post(f"/api/records/{rid}/fire",
                               json={"trigger": "finish_purchasing", "seen_version": web_world.version(target)})
            got[actor, target] = resp.status_code
            want[actor, target] = _expected(actor, target, ENTER[actor], 200)
            if resp.status_code == 200:
                assert resp.json()["on_behalf"] is (not actor.startswith(target.lower()))
                back = client.post(f"/api/records/{rid}/fire",
                                   json={"trigger": "reopen", "seen_version": resp.json()["version"]})
                assert back.status_code == 200, back.text
    assert got == want


def test_fire_accept_matrix(token_client, web_world: World) -> None:
    grassroots = ("G1", "G2", "G3", "G4")
    for g in grassroots:
        web_world.to_submitted(g)
    got, want = {}, {}
    # Refusals first, then the successes (an accepted record cannot be accepted again).
    cells = sorted(itertools.product(ACTORS, grassroots),
                   key=lambda c: c[1] in DECIDE.get(c[0], set()))
    for actor, target in cells:
        resp = token_client(actor).post(
            f"/api/records/{web_world.rid(target)}/fire",
            json={"trigger": "accept", "seen_version": web_world.version(target)})
        got[actor, target] = resp.status_code
        want[actor, target] = _expected(actor, target, DECIDE.get(actor, set()), 200)
    assert got == want
    assert [web_world.state(g) for g in grassroots] == ["accepted", "accepted", "submitted", "submitted"]


def test_a_refused_rule_is_409_with_the_rules_chinese_message(token_client, web_world: World) -> None:
    resp = token_client("g1-clerk").post(
        f"/api/records/{web_world.rid('G1')}/fire",
        json={"trigger": "finish_purchasing", "seen_version": web_world.version("G1")})
    assert resp.status_code == 409
    assert resp.json() == {"code": "plan.amount_missing", "message": "尚未填写每人增加额度（0 元也须明确填写）"}


def test_a_stale_version_is_409_version_conflict(token_client, web_world: World) -> None:
    web_world.plan("G1")
    resp = token_client("g1-clerk").post(
        f"/api/records/{web_world.rid('G1')}/fire",
        json={"trigger": "finish_purchasing", "seen_version": web_world.version("G1") - 1})
    assert resp.status_code == 409 and resp.json()["code"] == "version.conflict"


# --- the reviewer's tools -------------------------------------------------------------------


def test_inbox_lists_pending_child_submissions_with_their_numbers(token_client, web_world: World) -> None:
    web_world.to_submitted("G1")
    web_world.to_submitted("G3")  # D2's child: not d1-reviewer's business
    inbox = token_client("d1-reviewer").get("/api/review/inbox?round=1").json()
    assert [(i["org_code"], i["people_total"], i["amount_total_fen"]) for i in inbox["items"]] == [("G1", 20, 120000)]
    subs = token_client("d1-reviewer").get("/api/review/subordinates?round=1&state=planned").json()
    assert [i["org_code"] for i in subs["items"]] == ["G2"]


@pytest.mark.parametrize("query", ["sort=password_hash", "state=deleted", "overdue=maybe", "sort=org_code;drop"])
def test_filter_and_sort_keys_outside_the_list_are_422_in_chinese(token_client, query: str) -> None:
    resp = token_client("d1-reviewer").get(f"/api/review/subordinates?{query}")
    assert resp.status_code == 422
    assert resp.json()["code"] == "query.bad_key"
    assert "可选" in resp.json()["message"]


def test_bad_filter_key_on_the_page_is_422_with_the_message(login) -> None:
    page = login("d1-reviewer").get("/review?state=deleted")
    assert page.status_code == 422
    assert "不支持的状态筛选“deleted”" in page.text


def test_bulk_accept_reports_record_by_record(token_client, web_world: World) -> None:
    for g in ("G1", "G2", "G3"):
        web_world.to_submitted(g)
    items = [{"record_id": web_world.rid(g), "seen_version": web_world.version(g)} for g in ("G1", "G2", "G3")]
    items[1]["seen_version"] -= 1  # G2: somebody changed it since
    out = token_client("d1-reviewer").post("/api/review/bulk-accept", json={"items": items}).json()
    assert (out["accepted"], out["refused"]) == (1, 2)
    assert [(r["ok"], r["code"]) for r in out["results"]] == [
        (True, "ok"), (False, "version.conflict"), (False, "record.not_found")]
    assert out["results"][2]["org_name"] == ""  # nothing leaks about a record outside the view
    assert [web_world.state(g) for g in ("G1", "G2", "G3")] == ["accepted", "submitted", "submitted"]


def test_bulk_accept_page_shows_each_outcome(login, web_world: World) -> None:
    web_world.to_submitted("G1")
    web_world.to_submitted("G2")
    client = login("d1-reviewer")
    page = client.get("/review")
    items = [f"{web_world.rid(g)}:{web_world.version(g)}" for g in ("G1", "G2")]
    web_world.fire("G2", "withdraw", "g2-clerk")
    resp = client.post("/review/bulk-accept", data={"item": items, "csrf_token": csrf_from(page.text)})
    assert resp.status_code == 200
    assert "1 条通过，1 条未通过" in resp.text
    assert "天河一中工会：已通过" in resp.text
    # G2 was withdrawn in between: the rule that now stops it is named.
    assert "天河供电局工会：当前状态“已汇总”不能执行“通过”" in resp.text


def test_parent_reviewer_changes_a_childs_deadline_with_history(token_client, web_world: World) -> None:
    rid = web_world.rid("G1")
    resp = token_client("d1-reviewer").put(
        f"/api/records/{rid}/deadline",
        json={"seen_version": web_world.version("G1"), "last_day": "2021-12-25", "reason": "节假日顺延"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["report_deadline"].startswith("2021-12-25T16:00")
    hist = token_client("g1-clerk").get(f"/api/records/{rid}/history").json()
    assert hist[-1]["trigger"] == "change_deadline"
    assert hist[-1]["detail"] == {"from": "2021-12-20", "to": "2021-12-25"}
    assert hist[-1]["reason"] == "节假日顺延"
    body = {"seen_version": web_world.version("G1"), "last_day": "2021-12-26"}
    assert token_client("g1-clerk").put(f"/api/records/{rid}/deadline", json=body).status_code == 403
    assert token_client("d3-reviewer").put(f"/api/records/{rid}/deadline", json=body).status_code == 404
    late = token_client("d1-reviewer").put(f"/api/records/{rid}/deadline",
                                           json={**body, "last_day": "2022-01-15"})
    assert late.status_code == 409 and late.json()["code"] == "deadline.after_round"
    past = token_client("d1-reviewer").put(f"/api/records/{rid}/deadline",
                                           json={**body, "last_day": "2021-10-01"})
    assert past.status_code == 409 and past.json()["code"] == "deadline.past"


def test_reviewer_resets_a_subordinate_clerks_password_and_old_sessions_end(login, app, web_world: World) -> None:
    clerk = login("g1-clerk")
    assert clerk.get("/api/me").status_code == 200
    reviewer = login("d1-reviewer")
    csrf = csrf_from(reviewer.get("/accounts").text)
    resp = reviewer.post("/accounts/g1-clerk/reset", data={"new_password": "new-pass-2021", "csrf_token": csrf},
                         follow_redirects=True)
    assert resp.status_code == 200 and "已重置 g1-clerk 的密码" in resp.text
    assert clerk.get("/api/me").status_code == 401
    with TestClient(app) as fresh:
        assert fresh.post("/api/session", json={"username": "g1-clerk", "password": "new-pass-2021"}).status_code == 200
    # Too short: refused with the rule, nothing changed.
    short = reviewer.post("/accounts/g2-clerk/reset", data={"new_password": "123", "csrf_token": csrf})
    assert short.status_code == 422 and "新密码至少 8 个字符" in short.text


def test_account_management_is_for_the_direct_parents_reviewer(token_client) -> None:
    body = {"new_password": "another-pass-1"}
    assert token_client("d1-reviewer").post("/api/accounts/g1-clerk/password", json=body).status_code == 204
    assert token_client("c1-reviewer").post("/api/accounts/g1-clerk/password", json=body).status_code == 403
    assert token_client("d3-reviewer").post("/api/accounts/g1-clerk/password", json=body).status_code == 404
    assert token_client("g2-clerk").post("/api/accounts/g1-clerk/password", json=body).status_code == 404
    assert token_client("gd-reviewer").post("/api/accounts/c1-reviewer/password", json=body).status_code == 403


def test_handover_gives_the_account_to_a_new_clerk_and_revokes_tokens(token_client, web_world: World) -> None:
    old = token_client("g1-clerk")
    assert old.get("/api/me").status_code == 200
    resp = token_client("d1-reviewer").post(
        "/api/accounts/g1-clerk/handover",
        json={"display_name": "李四", "new_password": "handover-2021", "phone": "13900001111"})
    assert resp.status_code == 204
    assert old.get("/api/me").status_code == 401
    with UnitOfWork(web_world.db, readonly=True) as uow:
        user = uow.directory.user_by_name("g1-clerk")
        assert (user.display_name, user.phone) == ("李四", "13900001111")
    clerks = token_client("d1-reviewer").get("/api/accounts").json()
    assert [c["username"] for c in clerks] == ["g1-clerk", "g2-clerk"]


# --- hostile input, forms -------------------------------------------------------------------

XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_names_and_reasons_with_html_are_shown_as_text(login, web_world: World) -> None:
    from workflow.app import directory

    directory.import_organisations(UnitOfWork(web_world.db),
                                   data=f"code,name,kind,parent_code\nG1,{XSS.replace(',', ' ')},grassroots,D1\n".encode())
    web_world.to_submitted("G1")
    web_world.fire("G1", "return_for_revision", "d1-reviewer", reason=XSS)
    for path in (f"/records/{web_world.rid('G1')}", f"/records/{web_world.rid('G1')}/history"):
        page = login("g1-clerk").get(path)
        assert page.status_code == 200
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page.text
    inbox = login("g1-clerk").get("/notifications").text
    assert "<script>alert" not in inbox and "&lt;script&gt;" in inbox


def test_purchase_form_refuses_what_the_cli_refuses_and_keeps_the_input(
    login, web_world: World, monkeypatch, capsys  # type: ignore[no-untyped-def]
) -> None:
    web_world.plan("G1")
    client = login("g1-clerk")
    rid = web_world.rid("G1")
    csrf = csrf_from(client.get(f"/records/{rid}").text)
    form = {"paid_at": "2021-10-20T10:00", "channel": "ygh", "amount": "88.50", "people": "3",
            "order_no": "CARD-1", "product": "超市购物卡", "product_form": "购物卡", "csrf_token": csrf}
    page = client.post(f"/records/{rid}/purchases", data=form)
    assert page.status_code == 409
    monkeypatch.setenv("BANGFU_DATABASE_URL", web_world.db.url)
    get_settings.cache_clear()
    try:
        code = cli.main(["purchase-add", "G1", "--round", "2021年度", "--as", "g1-clerk", "--paid-at",
                         "2021-10-20T10:00", "--channel", "ygh", "--amount", "88.50", "--people", "3",
                         "--order", "CARD-1", "--form", "购物卡"])
    finally:
        get_settings.cache_clear()
    assert code == 3
    cli_message = capsys.readouterr().err.split("：", 1)[1].strip()
    assert "购物卡" in cli_message
    assert cli_message in page.text
    for kept in ('value="88.50"', 'value="CARD-1"', 'value="超市购物卡"', 'value="购物卡"'):
        assert kept in page.text
    assert client.get(f"/api/records/{rid}/purchases").json() == []


def test_plan_form_refuses_an_amount_over_the_cap_and_keeps_it(login, web_world: World) -> None:
    client = login("g1-clerk")
    rid = web_world.rid("G1")
    csrf = csrf_from(client.get(f"/records/{rid}").text)
    page = client.post(f"/records/{rid}/plan", data={"seen_version": web_world.version("G1"), "amount": "650",
                                                     "members": "120", "csrf_token": csrf})
    assert page.status_code == 409
    assert "每人增加额度须在 0 至 600.00 元之间，填写的是 650.00 元" in page.text
    assert 'value="650"' in page.text and 'value="120"' in page.text


def test_wechat_browser_is_told_to_open_downloads_in_a_browser(login, web_world: World) -> None:
    web_world.plan("G1")
    web_world.buy("G1", "W-1", 5000)
    client = login("g1-clerk")
    url = f"/records/{web_world.rid('G1')}"
    wechat = client.get(url, headers={"User-Agent": "Mozilla/5.0 (iPhone) MicroMessenger/8.0.40"}).text
    plain = client.get(url, headers={"User-Agent": "Mozilla/5.0 (X11; Linux) Chrome/120"}).text
    assert "请在浏览器中打开" in wechat and "下载采购明细" in wechat
    assert "请在浏览器中打开" not in plain and "下载采购明细" in plain
    csv = client.get(url + "/purchases.csv")
    assert csv.status_code == 200 and "W-1" in csv.content.decode("utf-8-sig")


def test_history_page_draws_the_lifecycle_with_the_current_state_marked(login, web_world: World) -> None:
    web_world.to_submitted("G1")
    page = login("g1-clerk").get(f"/records/{web_world.rid('G1')}/history").text
    assert "<svg" in page and "已提交（当前）" in page
    for label in ("计划中", "已采购", "已汇总", "已通过", "退回修改", "撤销通过"):
        assert label in page
    assert page.index("提交") < page.index("完成采购", page.index('class="timeline"'))  # newest first


def test_overview_counts_states_and_sums_accepted_numbers(token_client, web_world: World) -> None:
    web_world.to_submitted("G1")
    web_world.fire("G1", "accept", "d1-reviewer")
    web_world.to_submitted("G4")
    data = token_client("gd-reviewer").get("/api/overview?round=1").json()
    units = {u["org_code"]: u for u in data["units"]}
    assert list(units) == ["C1", "C2", "IND"]
    assert units["C1"]["counts"]["accepted"] == 1 and units["C1"]["amount_fen"] == 120000
    assert units["C1"]["people"] == 20 and units["C1"]["grassroots"] == 3
    assert units["C2"]["counts"]["submitted"] == 1 and units["C2"]["amount_fen"] == 0
    assert data["totals"]["grassroots_accepted"] == 1 and data["totals"]["amount_fen"] == 120000
    assert token_client("observer").get("/api/overview?round=1").json()["org_code"] == "C1"
    assert token_client("g1-clerk").get("/api/overview?round=1").status_code == 403


def test_docs_page_lists_the_api_without_a_cdn(anon: TestClient) -> None:
    page = anon.get("/docs")
    assert page.status_code == 200
    assert "/api/records/{record_id}/fire" in page.text and "fire a lifecycle trigger" in page.text
    assert "cdn" not in page.text.lower()
    assert anon.get("/openapi.json").json()["paths"]["/api/review/inbox"]["get"]


def test_make_run_starts_the_web_server(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from workflow.entrypoints import run

    monkeypatch.setenv("BANGFU_NO_WORKER", "1")
    monkeypatch.delenv("BANGFU_NO_WEB", raising=False)
    assert run._services() == [[__import__("sys").executable, "-m", "uvicorn", "--factory",
                                "workflow.entrypoints.web.app:create_app", "--host", "127.0.0.1", "--port", "8000"]]


def test_notification_inbox_shows_the_return_and_marks_it_read(login, web_world: World) -> None:
    web_world.to_submitted("G1")
    web_world.fire("G1", "return_for_revision", "d1-reviewer", reason="请补充发放名单")
    client = login("g1-clerk")
    page = client.get("/notifications").text
    assert "未读 1 条" in page and "天河一中工会" in page and "退回修改" in page and "原因：请补充发放名单" in page
    client.post("/notifications/read", data={"csrf_token": csrf_from(page)})
    assert "未读 0 条" in client.get("/notifications").text
    api = client.get("/api/notifications").json()
    assert [(n["kind"], n["read"]) for n in api["items"]] == [("record_event", True)]


def test_the_inbox_shows_the_mails_text_with_a_link_and_marks_one_read(login, web_world: World) -> None:
    """Issue 9, point 9: the page shows what the e-mail says (amounts, dates, names), links to
    the record, says read/unread, and opening an item (or 标为已读) marks only that one read."""
    import re as _re
    from datetime import UTC, datetime

    from workflow.scheduler.sweeps import run_sweep

    web_world.plan("G1", 60000, 100)  # 600 yuan x 100 members = 60,000.00 yuan quota
    web_world.buy("G1", "Q-1", 1_234_560, 30)
    web_world.to_submitted("G2")
    run_sweep(web_world.db, now=datetime(2021, 12, 1, 1, 0, tzinfo=UTC))  # 09:00 China time
    clerk = login("g1-clerk")
    page = clerk.get("/notifications").text
    assert "额度提醒" in page and "60,000.00 元" in page and "12,345.60 元" in page and "2021年12月31日" in page
    rid = web_world.rid("G1")
    assert f'href="/records/{rid}"' in page  # the mail's link, clickable and relative
    assert "未读" in page
    first = next(n["id"] for n in clerk.get("/api/notifications").json()["items"] if n["kind"] == "quota_reminder")
    assert clerk.get(f"/notifications/{first}/open").status_code == 405  # a GET changes nothing
    assert not {n["id"]: n for n in clerk.get("/api/notifications").json()["items"]}[first]["read"]
    assert clerk.post(f"/notifications/{first}/open", data={}, follow_redirects=False).status_code == 403
    opened = clerk.post(f"/notifications/{first}/open", data={"csrf_token": csrf_from(page)}, follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == f"/records/{rid}"
    items = {n["id"]: n for n in clerk.get("/api/notifications").json()["items"]}
    assert items[first]["read"] is True and "60,000.00" in items[first]["text"]
    reviewer = login("d1-reviewer")
    page = reviewer.get("/notifications").text
    assert "审核提醒" in page and "天河供电局工会" in page and "待审核（1 项）" in page
    unread = int(_re.search(r"未读 (\d+) 条", page).group(1))  # type: ignore[union-attr]
    one = int(_re.findall(r'id="note-(\d+)"', page)[0])
    reviewer.post(f"/notifications/{one}/read", data={"csrf_token": csrf_from(page)})
    assert f"未读 {unread - 1} 条" in reviewer.get("/notifications").text
    clerk_csrf = csrf_from(clerk.get("/notifications").text)
    assert clerk.post(f"/notifications/{one}/open", data={"csrf_token": clerk_csrf}).status_code == 404  # another user's
    assert clerk.post(f"/notifications/{2**31}/open", data={"csrf_token": clerk_csrf}).status_code in (404, 422)
