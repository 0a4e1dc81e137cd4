"""A stand-in's week (代理) in a real browser (Debian chromium through Playwright) over uvicorn: the
district's reviewer, away Monday to Friday, names the city's reviewer on the 审核 page; the
stand-in sees the district's inbox and accepts a union (the history says 代理); a second stand-in
who filled a union in cannot accept it (four eyes); the range ends (``BANGFU_NOW`` moves the
app's clock), both are told, and the stand-in decides nothing any more. Pages are shot to
``test-artifacts/standin-*.png``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests.conftest import NOW_2021, World
from tests.entrypoints.web.test_browser import (  # noqa: F401  (fixtures)
    ARTIFACTS,
    _confirm,
    _login,
    browser,
    server,
)
from tests.entrypoints.web.test_browser_review_path import _passwords
from workflow.app import directory
from workflow.domain import clock
from workflow.scheduler import sweeps
from workflow.store.uow import UnitOfWork

pytestmark = pytest.mark.browser

# The world's today, 2021-11-01, is a Monday.
MONDAY, FRIDAY = "2021-11-01", "2021-11-05"
G1_NAME, G2_NAME = "天河一中工会", "天河供电局工会"


def _name(page: Any, base: str, standin: str) -> str:
    page.goto(f"{base}/review")
    page.fill("#delegate input[name=standin]", standin)
    page.fill("#delegate input[name=starts_on]", MONDAY)
    page.fill("#delegate input[name=ends_on]", FRIDAY)
    page.click("#delegate button[type=submit]")
    page.wait_for_load_state()
    return str(page.inner_text(".flash"))


def test_a_stand_ins_week_in_the_browser(browser: Any, server: str, world: World,  # noqa: F811
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    w = world
    # A district colleague who also keeps a union's books (clerk of D1 and of G2).
    directory.import_users(UnitOfWork(w.db), data=(
        "username,display_name,org_code,role\n"
        "d1-deputy,D1副主席,D1,clerk\nd1-deputy,D1副主席,G2,clerk\n").encode(), now=NOW_2021)
    _passwords(w, "c1-reviewer", "d1-deputy")
    w.to_submitted("G1")
    deputy_fills = "d1-deputy"
    w.plan("G2", 60000, 100, user=deputy_fills)
    w.buy("G2", "G2-1", 120000, 20, user=deputy_fills)
    w.fire("G2", "finish_purchasing", deputy_fills)
    w.info("G2", user=deputy_fills)
    w.fire("G2", "summarize", deputy_fills)
    w.fire("G2", "submit", deputy_fills)

    # Monday: the district's reviewer names two stand-ins for the week.
    away = _login(browser, server, "d1-reviewer")
    assert "C1审核人代D1审核人审核" in _name(away, server, "c1-reviewer")
    assert "D1副主席代D1审核人审核" in _name(away, server, "d1-deputy")
    listed = away.inner_text("#standins")
    assert "C1审核人" in listed and "D1副主席" in listed and "代理中" in listed
    away.screenshot(path=str(ARTIFACTS / "standin-named.png"), full_page=True)
    away.context.close()

    # The stand-in sees the district's inbox and accepts G1; the history says 代理.
    city = _login(browser, server, "c1-reviewer")
    city.goto(f"{server}/review")
    inbox = city.inner_text("#inbox")
    assert G1_NAME in inbox and G2_NAME in inbox, inbox
    city.goto(f"{server}/records/{w.rid('G1')}")
    _confirm(city, "#actions", "accept")
    assert "代理" in city.inner_text(".flash")
    city.goto(f"{server}/records/{w.rid('G1')}/history")
    assert "代理D1审核人审核" in city.inner_text("main")
    city.screenshot(path=str(ARTIFACTS / "standin-history.png"), full_page=True)
    assert w.state("G1") == "accepted"

    # Four eyes: the deputy filled G2 in and cannot accept it, even standing in.
    deputy = _login(browser, server, "d1-deputy")
    deputy.goto(f"{server}/records/{w.rid('G2')}")
    assert deputy.locator("#actions [data-opens=accept]").count() == 0
    assert "代填报的人不能自己审核" in deputy.inner_text("#actions"), deputy.inner_text("#actions")
    deputy.screenshot(path=str(ARTIFACTS / "standin-four-eyes.png"), full_page=True)
    deputy.context.close()

    # Friday: the daily sweep tells both the range ends.
    sweeps.run_sweep(w.db, now=datetime(2021, 11, 5, 9, tzinfo=clock.CHINA))
    city.goto(f"{server}/notifications")
    assert "代理结束" in city.inner_text("main")

    # The next Monday the stand-in decides nothing for the district any more.
    monkeypatch.setenv("BANGFU_NOW", "2021-11-08T10:00")
    city.goto(f"{server}/records/{w.rid('G2')}")
    assert city.locator("#actions [data-opens=accept]").count() == 0
    city.goto(f"{server}/review")
    assert "代理中" not in city.inner_text("main")
    city.screenshot(path=str(ARTIFACTS / "standin-ended.png"), full_page=True)
    city.context.close()
