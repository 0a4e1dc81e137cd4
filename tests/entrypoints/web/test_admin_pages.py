"""Issue 21 points 1 and 2 through the pages and the API: the system administrator's
organisations and accounts, a district reviewer adding accounts for its own units, the auditor
reading the log of everybody (the administrators included), and nobody else reading it."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.conftest import NOW_2021, World
from tests.entrypoints.web.conftest import csrf_from
from workflow.app import directory
from workflow.store.uow import UnitOfWork

ADMINS = ("username,display_name,org_code,role,email\n"
          "gd-sysadmin,系统管理员,GD,system_admin,\n"
          "gd-secadmin,安全管理员,GD,security_admin,\n"
          "gd-auditor,审计员,GD,auditor,\n")


def _admins(w: World) -> None:
    directory.import_users(UnitOfWork(w.db), data=ADMINS.encode(), now=NOW_2021)


def _csrf(client: TestClient, path: str = "/admin/orgs") -> str:
    return csrf_from(client.get(path).text)


def _log_rows(client: TestClient, **params: str) -> list[dict[str, str]]:
    r = client.get("/audit-log.csv", params=params)
    assert r.status_code == 200, r.text
    return list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))


def test_system_admin_adds_a_second_reviewer_and_the_auditor_reads_it(
        web_world: World, login: Callable[[str], TestClient]) -> None:
    _admins(web_world)
    admin = login("gd-sysadmin")
    home = admin.get("/")
    assert 'href="/admin/orgs"' in home.text and 'href="/audit-log"' not in home.text
    assert 'href="/admin/outbox"' in home.text
    page = admin.get("/admin/orgs", params={"code": "D1"})
    assert "天河区总工会" in page.text and "d1-reviewer" in page.text
    r = admin.post("/admin/orgs/D1/accounts", data={
        "username": "d1-reviewer2", "display_name": "天河第二审核人", "role": "reviewer",
        "new_password": "Second-Reviewer-9", "phone": "13800000002", "csrf_token": _csrf(admin)},
        follow_redirects=False)
    assert r.status_code == 303, r.text
    assert "d1-reviewer2" in admin.get("/admin/orgs", params={"code": "D1"}).text
    # The new reviewer logs in and reviews D1's units.
    second = TestClient(admin.app)
    r = second.post("/login", data={"username": "d1-reviewer2", "password": "Second-Reviewer-9",
                                     "csrf_token": csrf_from(second.get("/login").text), "next": "/"},
                    follow_redirects=False)
    assert r.status_code == 303
    assert 'href="/review"' in second.get("/").text
    # The system administrator sees no record and cannot read the log.
    assert admin.get(f"/records/{web_world.rid('G1')}").status_code == 404
    assert admin.get("/audit-log").status_code == 403
    assert admin.get("/audit-log.csv").status_code == 403
    # The auditor reads what the administrator did, and changes nothing.
    auditor = login("gd-auditor")
    assert 'href="/audit-log"' in auditor.get("/").text
    page = auditor.get("/audit-log", params={"actor": "gd-sysadmin"})
    assert page.status_code == 200 and "新增账号" in page.text and "账号 d1-reviewer2" in page.text
    rows = _log_rows(auditor, actor="gd-sysadmin", action="user.add")
    assert [(r["操作人账号"], r["角色"], r["所属单位"], r["操作"], r["对象"], r["结果"], r["来源"]) for r in rows] == [
        ("gd-sysadmin", "系统管理员", "广东省总工会", "新增账号", "账号 d1-reviewer2", "成功", "网页")]
    assert rows[0]["地址"] == "testclient"
    assert "13800000002" not in rows[0]["详情"]  # a phone never goes into the log
    assert auditor.post("/admin/orgs/D1/accounts", data={
        "username": "x", "display_name": "x", "role": "clerk", "new_password": "Whatever-123",
        "csrf_token": _csrf(auditor, "/audit-log")}).status_code in (403, 404)
    assert auditor.get(f"/records/{web_world.rid('G1')}").status_code == 404
    # The export is a row of its own.
    assert _log_rows(auditor, action="oplog.export")[0]["操作人账号"] == "gd-auditor"


def test_a_district_reviewer_adds_accounts_for_its_own_units_only(
        web_world: World, login: Callable[[str], TestClient]) -> None:
    reviewer = login("d1-reviewer")
    assert 'href="/admin/orgs"' in reviewer.get("/").text
    csrf = _csrf(reviewer)
    ok = reviewer.post("/admin/orgs/G1/accounts", data={
        "username": "g1-clerk2", "display_name": "一中第二填报员", "role": "clerk",
        "new_password": "Clerk-Two-2021", "csrf_token": csrf}, follow_redirects=False)
    assert ok.status_code == 303, ok.text
    second = reviewer.post("/admin/orgs/D1/accounts", data={
        "username": "d1-reviewer3", "display_name": "天河第三审核人", "role": "reviewer",
        "new_password": "Reviewer-Three-3", "csrf_token": csrf}, follow_redirects=False)
    assert second.status_code == 303, second.text
    other = reviewer.post("/admin/orgs/G3/accounts", data={
        "username": "g3-clerk2", "display_name": "越秀", "role": "clerk",
        "new_password": "Clerk-Three-2021", "csrf_token": csrf}, follow_redirects=False)
    assert other.status_code == 404  # another district's union does not exist for D1
    # Organisations are the system administrator's: a reviewer cannot rename one.
    assert reviewer.post("/admin/orgs/G1/rename", data={"name": "改名", "csrf_token": csrf}).status_code == 403
    with UnitOfWork(web_world.db, readonly=True) as uow:
        assert uow.accounts.user_named("g1-clerk2") is not None
        assert uow.accounts.user_named("g3-clerk2") is None


def test_system_admin_adds_renames_and_moves_an_organisation(
        web_world: World, login: Callable[[str], TestClient]) -> None:
    _admins(web_world)
    admin = login("gd-sysadmin")
    csrf = _csrf(admin)
    assert admin.post("/admin/orgs/D1/children", data={
        "new_code": "G9", "name": "天河新工会", "kind": "grassroots", "csrf_token": csrf},
        follow_redirects=False).status_code == 303
    assert admin.post("/admin/orgs/G9/rename", data={"name": "天河新建工会", "csrf_token": csrf},
                      follow_redirects=False).status_code == 303
    assert admin.post("/admin/orgs/G1/move", data={"parent_code": "D2", "csrf_token": csrf},
                      follow_redirects=False).status_code == 303
    with UnitOfWork(web_world.db, readonly=True) as uow:
        g9 = uow.directory.org_by_code("G9")
        g1, d2 = uow.directory.org_by_code("G1"), uow.directory.org_by_code("D2")
        assert g9.name == "天河新建工会"
        assert g1.parent_id == d2.id and g1.path.startswith(d2.path)
        rec = uow.records.get(web_world.rid("G1"))
        assert rec.parent_id == web_world.rid("D2")  # the record follows its new parent
    auditor_rows = [(a.action, a.outcome) for a in _rows(web_world, "gd-sysadmin")]
    assert auditor_rows == [("org.add", "ok"), ("org.rename", "ok"), ("org.move", "ok")]


def _rows(w: World, actor: str) -> list:  # type: ignore[type-arg]
    """The actor's rows, oldest first: its changes (its logins and logouts, ``auth.*``, are rows
    too, read by the login tests: not what these tests are about)."""
    from workflow.store.oplog import Filters

    with UnitOfWork(w.db, readonly=True) as uow:
        return [r for r in reversed(uow.oplog.search(Filters(actor=actor), limit=None))
                if not r.action.startswith("auth.")]


def test_the_api_reads_the_log_for_auditors_and_adds_accounts(
        web_world: World, token_client: Callable[[str], TestClient]) -> None:
    _admins(web_world)
    admin = token_client("gd-sysadmin")
    r = admin.post("/api/orgs/D2/accounts", json={"username": "d2-reviewer2", "display_name": "越秀第二审核人",
                                                  "role": "reviewer", "new_password": "Api-Reviewer-22"})
    assert r.status_code == 201, r.text
    assert admin.get("/api/audit-log").status_code == 403
    auditor = token_client("gd-auditor")
    body = auditor.get("/api/audit-log", params={"actor": "gd-sysadmin"}).json()
    assert [(x["action"], x["object"], x["channel"]) for x in body["rows"]] == [
        ("user.add", "账号 d2-reviewer2", "接口")]
    assert token_client("gd-secadmin").get("/api/audit-log").status_code == 403
    assert token_client("d1-reviewer").get("/api/audit-log").status_code == 403


def test_a_deactivated_account_cannot_log_in(web_world: World, login: Callable[[str], TestClient]) -> None:
    _admins(web_world)
    clerk = login("g1-clerk")
    admin = login("gd-sysadmin")
    r = admin.post("/admin/accounts/g1-clerk/deactivate", data={"code": "G1", "csrf_token": _csrf(admin)},
                   follow_redirects=False)
    assert r.status_code == 303, r.text
    assert "已停用" in admin.get("/admin/orgs", params={"code": "G1"}).text
    assert clerk.get("/", follow_redirects=False).status_code == 303  # the open session ended
    again = TestClient(admin.app)
    r = again.post("/login", data={"username": "g1-clerk", "password": "demo1234",
                                   "csrf_token": csrf_from(again.get("/login").text), "next": "/"},
                   follow_redirects=False)
    assert r.status_code != 303
    (row,) = _rows(web_world, "gd-sysadmin")
    assert (row.action, row.object, row.outcome) == ("user.deactivate", "user:g1-clerk", "ok")
    # The administrator cannot deactivate another administrator.
    r = admin.post("/admin/accounts/gd-auditor/deactivate", data={"csrf_token": _csrf(admin)})
    assert r.status_code in (403, 404)


def test_retention_below_six_months_is_refused() -> None:
    import pytest

    from workflow.domain.errors import BadInput
    from workflow.settings import Settings

    assert Settings(env="test").oplog_retention_days == 180
    with pytest.raises(BadInput, match="180"):
        Settings(env="test", oplog_retention_days=90).check()
