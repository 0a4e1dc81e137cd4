"""Issue 21 in a real browser (Debian's chromium through Playwright, uvicorn on a free port, a
temporary SQLite world): the system administrator follows the navigation to 单位和账号, opens
天河区总工会 and adds its second reviewer; the new reviewer logs in; the auditor follows the
navigation to 审计日志, filters by the administrator and reads what the administrator did (and
the administrator cannot open that page). Screenshots go to ``test-artifacts/``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import NOW_2021, World
from tests.entrypoints.web.conftest import PASSWORD
from tests.entrypoints.web.test_browser import _login, _shot, browser, server  # noqa: F401 - fixtures
from workflow.app import accounts, directory
from workflow.store.uow import UnitOfWork

pytestmark = pytest.mark.browser

ADMINS = ("username,display_name,org_code,role,email\n"
          "gd-sysadmin,省系统管理员,GD,system_admin,\n"
          "gd-auditor,省审计员,GD,auditor,\n")


@pytest.fixture()
def admins(world: World) -> World:
    directory.import_users(UnitOfWork(world.db), data=ADMINS.encode(), now=NOW_2021)
    for name in ("gd-sysadmin", "gd-auditor"):
        accounts.set_password(UnitOfWork(world.db), username=name, new_password=PASSWORD)
    return world


def test_admin_adds_a_second_reviewer_and_the_auditor_reads_it(admins: World, server: str, browser: Any) -> None:  # noqa: F811
    page = _login(browser, server, "gd-sysadmin")
    nav = page.inner_text("header nav")
    assert "单位和账号" in nav and "审计日志" not in nav
    page.click("header nav a:has-text('单位和账号')")
    page.wait_for_load_state()
    page.click("a:has-text('广州市总工会')")
    page.wait_for_load_state()
    page.click("a:has-text('天河区总工会')")
    page.wait_for_load_state()
    assert "天河区总工会" in page.inner_text("#org h2")
    page.click("#add-account summary")
    form = "form[action='/admin/orgs/D1/accounts']"
    page.fill(f"{form} input[name=username]", "d1-reviewer2")
    page.fill(f"{form} input[name=display_name]", "天河第二审核人")
    page.select_option(f"{form} select[name=role]", "reviewer")
    page.fill(f"{form} input[name=new_password]", "Second-Reviewer-9")
    page.click(f"{form} button")
    page.wait_for_load_state()
    assert "已新增账号 d1-reviewer2" in page.inner_text(".flash")
    assert "天河第二审核人" in page.inner_text("#accounts")
    _shot(page, "admin-second-reviewer")
    page.goto(server + "/audit-log")
    assert "只有审计员可以查看审计日志" in page.content()
    assert "新增账号" not in page.content()

    reviewer = browser.new_context(locale="zh-CN").new_page()
    reviewer.goto(server + "/login")
    reviewer.fill("input[name=username]", "d1-reviewer2")
    reviewer.fill("input[name=password]", "Second-Reviewer-9")
    reviewer.click("button:has-text('登录')")
    reviewer.wait_for_load_state()
    assert "审核" in reviewer.inner_text("header nav")

    auditor = _login(browser, server, "gd-auditor")
    assert "审计日志" in auditor.inner_text("header nav")
    auditor.click("header nav a:has-text('审计日志')")
    auditor.wait_for_load_state()
    auditor.fill("form.filters input[name=actor]", "gd-sysadmin")
    auditor.click("form.filters button")
    auditor.wait_for_load_state()
    rows = auditor.inner_text("table.audit-log tbody")
    assert "新增账号" in rows and "账号 d1-reviewer2" in rows and "省系统管理员" in rows and "成功" in rows
    # The administrator's login is a row too (issue 21: every login is audited).
    assert "登录" in rows
    assert "共 2 条" in auditor.content()
    _shot(auditor, "auditor-reads-admin")
    with auditor.expect_download() as got:
        auditor.click("a:has-text('导出 CSV')")
    assert "d1-reviewer2" in got.value.path().read_text(encoding="utf-8-sig")
    # The auditor changes nothing: no administration link, no record.
    assert "单位和账号" not in auditor.inner_text("header nav")
