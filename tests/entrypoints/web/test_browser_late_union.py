"""补报 and the lone reviewer in a real browser (Debian chromium through Playwright) over uvicorn: the district was
accepted by the city and the city by the province; then a union comes late. The district's
reviewer accepts it as a supplement, the city's reviewer passes the supplement up, the province's
reviewer accepts it and sees the city's Annex 2 as original + supplement, naming the late union.
Pages are shot to ``test-artifacts/late-union-*.png``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import World
from tests.entrypoints.web.test_browser import (  # noqa: F401  (fixtures)
    ARTIFACTS,
    _confirm,
    _login,
    browser,
    server,
)
from tests.entrypoints.web.test_browser_review_path import _passwords
from tests.entrypoints.web.test_lone_reviewer import filled_in_by_the_district
from tests.entrypoints.web.test_supplements_web import accepted_up_to_the_province

pytestmark = pytest.mark.browser


def _annex2(page: Any, base: str) -> str:
    """The city's printable Annex 2 (a download), fetched with the page's session and shown."""
    response = page.request.get(f"{base}/orgs/C1/annex2.html")
    assert response.ok
    page.set_content(response.text())
    return str(page.inner_text("body"))


def test_a_late_union_reaches_the_province_in_the_browser(browser: Any, server: str, world: World) -> None:  # noqa: F811
    w = world
    _passwords(w, "c1-reviewer")
    accepted_up_to_the_province(w)  # G2 submits after D1 and C1 were accepted

    district = _login(browser, server, "d1-reviewer")
    district.goto(f"{server}/records/{w.rid('G2')}")
    actions = district.inner_text("#actions")
    assert "补报通过" in actions
    # The ordinary 通过 is not a dead end any more: its refusal names the way forward.
    assert "迟交的下级请用“补报通过”" in actions
    district.screenshot(path=str(ARTIFACTS / "late-union-district.png"), full_page=True)
    district.click("#actions button[data-trigger=accept_late]")
    district.wait_for_load_state()
    assert "已补报通过：已提交 → 已通过" in district.inner_text(".flash")
    district.context.close()

    city = _login(browser, server, "c1-reviewer")
    city.goto(f"{server}/records/{w.rid('D1')}")
    table = city.inner_text("#supplements")
    assert "补报1" in table and "天河供电局工会（G2）" in table and "待上级审核" in table
    city.screenshot(path=str(ARTIFACTS / "late-union-city.png"), full_page=True)
    city.click("#supplements button[data-supplement='1']")
    city.wait_for_load_state()
    assert "已通过补报1" in city.inner_text(".flash") and "报上级审核" in city.inner_text(".flash")
    city.context.close()

    province = _login(browser, server, "gd-reviewer")
    before = _annex2(province, server)
    assert "补报1（迟交单位：天河供电局工会（G2）；待上级审核，未计入）" in before
    province.goto(f"{server}/records/{w.rid('C1')}")
    province.click("#supplements button[data-supplement='1']")
    province.wait_for_load_state()
    assert "已通过补报1" in province.inner_text(".flash")
    after = _annex2(province, server)
    assert "合计实数：40 人次，2,400.00 元" in after
    assert "原报：20 人次、1,200.00 元" in after and "已通过，已计入" in after
    province.screenshot(path=str(ARTIFACTS / "late-union-province-annex2.png"), full_page=True)
    province.goto(f"{server}/records/{w.rid('C1')}/history")
    assert "补报" in province.inner_text("main") and "天河供电局工会" in province.inner_text("main")
    province.context.close()


def test_the_lone_district_reviewer_is_no_dead_end_in_the_browser(browser: Any, server: str, world: World) -> None:  # noqa: F811
    w = world
    _passwords(w, "c1-reviewer")
    rid = w.rid("G1")
    district = _login(browser, server, "d1-reviewer")
    district.goto(f"{server}/records/{rid}")
    # Before anything is entered, the page says who will decide.
    note = district.inner_text("#lone-reviewer")
    assert "本单位只有您一位审核人" in note and "“广州市总工会”的审核人决定" in note
    district.screenshot(path=str(ARTIFACTS / "lone-reviewer-before.png"), full_page=True)
    filled_in_by_the_district(w)
    district.goto(f"{server}/records/{rid}")
    actions = district.inner_text("#actions")
    assert "改由“广州市总工会”的审核人审核" in actions and "退回修改" in actions
    assert district.locator("#actions button[data-trigger=withdraw]").count() == 0
    district.context.close()

    city = _login(browser, server, "c1-reviewer")
    city.goto(f"{server}/records/{rid}")
    assert "由“广州市总工会”的审核人审核" in city.inner_text("#four-eyes-to")
    city.screenshot(path=str(ARTIFACTS / "lone-reviewer-city.png"), full_page=True)
    said = _confirm(city, "#actions", "accept")  # 通过 asks once, saying what is accepted
    assert "通过" in said
    assert "已通过：已提交 → 已通过" in city.inner_text(".flash")
    city.context.close()
    assert w.state("G1") == "accepted"
