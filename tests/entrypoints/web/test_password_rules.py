"""Issue 21 point 3: password and session rules, on SQLite and PostgreSQL, through the pages,
the API and the command line: a forced change after a reset and at the first login (every route
refused until it is done), the last passwords refused, expiry, lockout and its lifting, the idle
timeout and the optional second factor."""

from __future__ import annotations

from collections.abc import Callable

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import NOW_2021, World
from tests.entrypoints.web.conftest import PASSWORD, csrf_from
from workflow.app import accounts, directory
from workflow.domain import security
from workflow.domain.security import SecurityRules
from workflow.entrypoints import cli
from workflow.entrypoints.web.app import create_app
from workflow.settings import Settings, get_settings
from workflow.store.oplog import Filters, Row
from workflow.store.tables import User
from workflow.store.uow import UnitOfWork

RESET_PASSWORD = "Reset-pass-1"
OWN_PASSWORD = "Mine-own-2021"


def _login_form(client: TestClient, username: str, password: str, totp: str = ""):  # type: ignore[no-untyped-def]
    page = client.get("/login")
    return client.post("/login", data={"username": username, "password": password, "totp": totp,
                                       "csrf_token": csrf_from(page.text), "next": "/"}, follow_redirects=False)


def _rows(world: World, username: str) -> list[Row]:
    """The operation log's rows about ``username``'s account, oldest first."""
    with world.uow(True) as uow:
        rows = reversed(uow.oplog.search(Filters(), limit=None))
        return [r for r in rows if r.object == f"user:{username}" or r.actor_name == username]


def _events(world: World, username: str) -> list[str]:
    return [r.action for r in _rows(world, username)]


def _reset_by_reviewer(world: World, username: str = "g1-clerk", password: str = RESET_PASSWORD) -> None:
    accounts.reset_password(UnitOfWork(world.db), actor_id=world.uid("d1-reviewer"), username=username,
                            new_password=password)


# --- the rules themselves --------------------------------------------------------------------


def test_the_password_rule_wants_eight_characters_of_three_classes() -> None:
    assert security.password_refusal("Ab1!") is not None  # too short
    assert security.password_refusal("abcdefgh12").code == "password.too_simple"  # type: ignore[union-attr]
    assert security.password_refusal("abcdefgh12!") is None
    assert security.password_refusal("Abcdefgh12") is None
    assert security.password_refusal("demo1234", SecurityRules(min_classes=1)) is None


# --- the forced change -----------------------------------------------------------------------


def test_after_a_reset_every_page_and_call_waits_for_the_new_password(
    web_world: World, app, login: Callable[[str], TestClient], token_client  # type: ignore[no-untyped-def]
) -> None:
    login("g1-clerk")  # the clerk had a password of their own
    _reset_by_reviewer(web_world)
    client = TestClient(app)
    resp = _login_form(client, "g1-clerk", RESET_PASSWORD)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/password")
    # Every page sends the clerk to the password change; every API call is refused.
    rid = web_world.rid("G1")
    for path in ("/", f"/records/{rid}", f"/records/{rid}/history", "/notifications"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/password"), path
    api = client.get(f"/api/records/{rid}")
    assert api.status_code == 403 and api.json()["code"] == "password.change_required"
    assert client.get("/api/me").json()["must_change_password"] is True
    # Tokens made for the clerk are held back the same way.
    tok = token_client("g1-clerk")
    assert tok.get(f"/api/records/{rid}").json()["code"] == "password.change_required"
    # The page explains, refuses a weak or an old password, then accepts a good one.
    page = client.get("/password")
    assert "请先改成只有您自己知道的新密码" in page.text
    csrf = csrf_from(page.text)
    weak = client.post("/password", data={"current_password": RESET_PASSWORD, "new_password": "abcdefgh",
                                          "repeat_password": "abcdefgh", "csrf_token": csrf})
    assert weak.status_code == 422 and "至少 3 种" in weak.text
    same = client.post("/password", data={"current_password": RESET_PASSWORD, "new_password": RESET_PASSWORD,
                                          "repeat_password": RESET_PASSWORD, "csrf_token": csrf})
    assert same.status_code == 422 and "最近 3 次" in same.text
    done = client.post("/password", data={"current_password": RESET_PASSWORD, "new_password": OWN_PASSWORD,
                                          "repeat_password": OWN_PASSWORD, "csrf_token": csrf},
                       follow_redirects=False)
    assert done.status_code == 303
    assert client.get("/").status_code == 200
    assert client.get(f"/api/records/{rid}").status_code == 200
    assert tok.get(f"/api/records/{rid}").status_code == 200  # the token's holder changed it too
    events = _events(web_world, "g1-clerk")
    reset = events.index("user.reset_password")
    assert events.index("auth.password_change", events.index("auth.login", reset)) > reset


def test_the_api_alone_can_complete_the_forced_change(web_world: World, app) -> None:  # type: ignore[no-untyped-def]
    accounts.set_password(UnitOfWork(web_world.db), username="g1-clerk", new_password=PASSWORD)
    _reset_by_reviewer(web_world)
    client = TestClient(app)
    login = client.post("/api/session", json={"username": "g1-clerk", "password": RESET_PASSWORD})
    assert login.status_code == 200 and login.json()["user"]["must_change_password"] is True
    csrf = login.json()["csrf_token"]
    rid = web_world.rid("G1")
    refused = client.put(f"/api/records/{rid}/plan", json={"amount_per_member": "600", "members": 10,
                                                            "seen_version": 1}, headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 403 and refused.json()["code"] == "password.change_required"
    wrong = client.post("/api/password", json={"current_password": "not-it", "new_password": OWN_PASSWORD},
                        headers={"X-CSRF-Token": csrf})
    assert wrong.status_code == 403 and wrong.json()["code"] == "password.wrong_current"
    weak = client.post("/api/password", json={"current_password": RESET_PASSWORD, "new_password": "short"},
                       headers={"X-CSRF-Token": csrf})
    assert weak.status_code == 422 and weak.json()["code"] == "password.too_short"
    changed = client.post("/api/password", json={"current_password": RESET_PASSWORD, "new_password": OWN_PASSWORD},
                          headers={"X-CSRF-Token": csrf})
    assert changed.status_code == 200, changed.text
    assert changed.json()["user"]["must_change_password"] is False
    assert client.get(f"/api/records/{rid}").status_code == 200


def test_a_user_imported_with_a_password_changes_it_at_the_first_login(web_world: World, app) -> None:  # type: ignore[no-untyped-def]
    csv = "username,display_name,org_code,role,password\nnew-clerk,新填报员,G1,clerk,Given-pass-9\n"
    directory.import_users(UnitOfWork(web_world.db), data=csv.encode(), hash_password=accounts.hash_password)
    client = TestClient(app)
    resp = _login_form(client, "new-clerk", "Given-pass-9")
    assert resp.headers["location"].startswith("/password")
    assert client.get("/", follow_redirects=False).headers["location"].startswith("/password")


def test_the_last_three_passwords_are_refused(web_world: World) -> None:
    accounts.set_password(UnitOfWork(web_world.db), username="g1-clerk", new_password=PASSWORD)
    uid = web_world.uid("g1-clerk")
    history = [PASSWORD, "First-pass-1", "Second-pass-2", "Third-pass-3"]
    for old, new in zip(history, history[1:], strict=False):
        accounts.change_password(UnitOfWork(web_world.db), user_id=uid, current_password=old, new_password=new)
    for recent in history[1:]:  # the current one and the two before it
        with pytest.raises(Exception, match="最近 3 次"):
            accounts.change_password(UnitOfWork(web_world.db), user_id=uid, current_password="Third-pass-3",
                                     new_password=recent)
    # The fourth from last may come back.
    accounts.change_password(UnitOfWork(web_world.db), user_id=uid, current_password="Third-pass-3",
                             new_password=PASSWORD + "X")


def test_an_expired_password_must_be_changed(web_world: World, app, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    accounts.set_password(UnitOfWork(web_world.db), username="g1-clerk", new_password=PASSWORD)
    accounts.change_password(UnitOfWork(web_world.db), user_id=web_world.uid("g1-clerk"),
                             current_password=PASSWORD, new_password=OWN_PASSWORD)
    client = TestClient(app)
    assert _login_form(client, "g1-clerk", OWN_PASSWORD).headers["location"] == "/"
    monkeypatch.setenv("BANGFU_NOW", "2022-01-31T10:00")  # 91 days later
    later = TestClient(app)
    assert _login_form(later, "g1-clerk", OWN_PASSWORD).headers["location"].startswith("/password")
    # With expiry off (0), the same password goes on.
    never = create_app(web_world.db, Settings(env="test", secret_key="test-secret-" + "x" * 32,
                                               password_max_age_days=0))
    assert _login_form(TestClient(never), "g1-clerk", OWN_PASSWORD).headers["location"] == "/"


# --- lockout ---------------------------------------------------------------------------------


def test_five_failures_lock_the_account_until_unlocked(
    web_world: World, app, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]  # type: ignore[no-untyped-def]
) -> None:
    accounts.set_password(UnitOfWork(web_world.db), username="g1-clerk", new_password=PASSWORD)
    client = TestClient(app)
    for i in range(5):
        assert _login_form(client, "g1-clerk", f"wrong-{i}").status_code == 401
    # The right password, even from another address, does not get in now.
    other = TestClient(app, client=("10.9.9.9", 50000))
    locked = other.post("/api/session", json={"username": "g1-clerk", "password": PASSWORD})
    assert locked.status_code == 429 and locked.json()["code"] == "login.locked"
    assert "账号已锁定" in _login_form(TestClient(app, client=("10.9.9.8", 1)), "g1-clerk", PASSWORD).text
    # The security administrator lifts it on the command line.
    monkeypatch.setenv("BANGFU_DATABASE_URL", web_world.db.engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    try:
        assert cli.main(["unlock", "g1-clerk"]) == 0
    finally:
        get_settings.cache_clear()
    capsys.readouterr()
    assert other.post("/api/session", json={"username": "g1-clerk", "password": PASSWORD}).status_code == 200
    rows = [r for r in _rows(web_world, "g1-clerk") if r.action != "user.set_password"]
    assert [(r.action, r.outcome, r.detail.get("code")) for r in rows] == [
        *[("auth.login_failed", "refused", "login.failed")] * 5,
        ("auth.lockout", "ok", None),
        ("auth.login_failed", "refused", "login.locked"),
        ("auth.login_failed", "refused", "login.locked"),
        ("user.unlock", "ok", None),
        ("auth.login", "ok", None),
    ]
    assert rows[5].address == "testclient" and rows[5].actor_name == "g1-clerk"  # who and from where
    assert rows[-1].address == "10.9.9.9"


def test_a_lockout_ends_by_itself_after_the_window(web_world: World, app, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    accounts.set_password(UnitOfWork(web_world.db), username="g1-clerk", new_password=PASSWORD)
    for i in range(5):
        TestClient(app, client=(f"10.0.0.{i}", 1)).post("/api/session", json={"username": "g1-clerk",
                                                                                "password": "nope"})
    assert TestClient(app).post("/api/session", json={"username": "g1-clerk", "password": PASSWORD}).status_code == 429
    monkeypatch.setenv("BANGFU_NOW", "2021-11-01T10:31")
    assert TestClient(app).post("/api/session", json={"username": "g1-clerk", "password": PASSWORD}).status_code == 200
    # With the window at 0, only the administrator unlocks.
    strict = create_app(web_world.db, Settings(env="test", secret_key="test-secret-" + "x" * 32, lockout_minutes=0))
    for i in range(5):
        TestClient(strict, client=(f"10.0.1.{i}", 1)).post("/api/session", json={"username": "g1-clerk",
                                                                                   "password": "nope"})
    monkeypatch.setenv("BANGFU_NOW", "2021-11-30T10:00")
    assert TestClient(strict).post("/api/session", json={"username": "g1-clerk",
                                                         "password": PASSWORD}).status_code == 429


# --- idle timeout ----------------------------------------------------------------------------


def test_an_idle_session_ends_after_thirty_minutes(web_world: World, login: Callable[[str], TestClient],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    client = login("g1-clerk")
    monkeypatch.setenv("BANGFU_NOW", "2021-11-01T10:29")
    assert client.get("/notifications", follow_redirects=False).status_code == 200  # used: it goes on
    monkeypatch.setenv("BANGFU_NOW", "2021-11-01T10:58")
    assert client.get("/notifications", follow_redirects=False).status_code == 200
    monkeypatch.setenv("BANGFU_NOW", "2021-11-01T11:29")
    resp = client.get("/notifications", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/login")
    assert client.get("/api/me").status_code == 401


# --- the second factor -----------------------------------------------------------------------


def test_an_administrator_with_a_second_factor_needs_the_code(web_world: World, app) -> None:  # type: ignore[no-untyped-def]
    accounts.set_password(UnitOfWork(web_world.db), username="gd-reviewer", new_password=PASSWORD)
    uri = accounts.enroll_totp(UnitOfWork(web_world.db), username="gd-reviewer")
    totp = pyotp.parse_uri(uri)
    client = TestClient(app)
    missing = _login_form(client, "gd-reviewer", PASSWORD)
    assert missing.status_code == 401 and "动态口令" in missing.text
    wrong = client.post("/api/session", json={"username": "gd-reviewer", "password": PASSWORD, "totp": "000000"})
    assert wrong.json()["code"] in ("login.totp_wrong",)
    code = totp.at(NOW_2021)  # the app's clock (BANGFU_NOW)
    ok = _login_form(client, "gd-reviewer", PASSWORD, totp=code)
    assert ok.status_code == 303 and ok.headers["location"] == "/"
    with web_world.uow(True) as uow:
        stored = uow.session.execute(select(User.totp_secret).where(User.username == "gd-reviewer")).scalar_one()
    assert stored and stored in uri


def test_the_security_administrator_unlocks_on_a_page(
    web_world: World, app, login: Callable[[str], TestClient]  # type: ignore[no-untyped-def]
) -> None:
    csv = "username,display_name,org_code,role\nsec-admin,安全管理员,GD,security_admin\n"
    directory.import_users(UnitOfWork(web_world.db), data=csv.encode())
    accounts.set_password(UnitOfWork(web_world.db), username="g1-clerk", new_password=PASSWORD)
    for i in range(5):
        TestClient(app, client=(f"10.0.2.{i}", 1)).post("/api/session", json={"username": "g1-clerk",
                                                                                "password": "nope"})
    # Not the system's other users: a reviewer may not see or lift lockouts.
    assert login("d1-reviewer").get("/security/locked").status_code == 403
    admin = login("sec-admin")
    page = admin.get("/security/locked")
    assert "g1-clerk" in page.text and "账号锁定" in page.text
    done = admin.post("/security/locked/g1-clerk/unlock", data={"csrf_token": csrf_from(page.text)},
                      follow_redirects=False)
    assert done.status_code == 303
    assert "现在没有被锁定的账号" in admin.get("/security/locked").text
    assert TestClient(app).post("/api/session", json={"username": "g1-clerk", "password": PASSWORD}).status_code == 200
    unlocks = [r for r in _rows(web_world, "g1-clerk") if r.action == "user.unlock"]
    assert [(r.actor_name, r.outcome) for r in unlocks] == [("sec-admin", "ok")]
