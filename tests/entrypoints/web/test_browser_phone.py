"""Issue 22, points 1-6 and 8, in a real browser: a clerk on a phone (375×667) and a reviewer at a
desk (1366×900). After every action the answer — a refusal or a success — is inside the viewport
without scrolling (``element.bounding_box()`` within the window); a refusal naming a missing
field links to it; 完成采购, 提交 and 通过 ask once, saying what will be sent and who is missing;
the record page speaks a clerk's words; wide tables are cards on the phone. Screenshots go under
the test's tmp dir (and ``test-artifacts/phone-*.png``)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from tests.conftest import World
from tests.entrypoints.web.test_browser import (  # noqa: F401  (fixtures)
    ARTIFACTS,
    MOBILE,
    _confirm,
    _login,
    _no_horizontal_scroll,
    browser,
    server,
)

pytestmark = pytest.mark.browser
DESKTOP = {"width": 1366, "height": 900}


class Shots:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, page: Any, name: str) -> None:
        path = self.folder / f"{name}.png"
        page.screenshot(path=str(path))  # the viewport: what the user sees without scrolling
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(path, ARTIFACTS / f"phone-{name}.png")


def in_view(page: Any, selector: str) -> str:
    """The text of ``selector``, asserting it is wholly inside the viewport now."""
    loc = page.locator(selector).first
    loc.wait_for(state="visible")
    box = loc.bounding_box()
    size = page.viewport_size
    assert box is not None, selector
    assert box["y"] >= 0 and box["y"] + min(box["height"], 120) <= size["height"], \
        f"{selector} is not in view at scroll {page.evaluate('window.scrollY')}: {box} in {size}"
    assert box["x"] >= 0 and box["x"] + box["width"] <= size["width"] + 1, f"{selector} cut at the side: {box}"
    return str(loc.inner_text())


def _purchase(page: Any, order: str, amount: str, people: str) -> None:
    form = "form[action$='/purchases']"
    page.fill(f"{form} input[name=paid_at]", "2021-10-20T10:00")
    page.fill(f"{form} input[name=amount]", amount)
    page.fill(f"{form} input[name=people]", people)
    page.fill(f"{form} input[name=order_no]", order)
    page.click(f"{form} button")
    page.wait_for_load_state()


def _upload(page: Any, name: str, text: str) -> None:
    page.set_input_files("form[action$='/purchases/import'] input[name=file]", files=[
        {"name": name, "mimeType": "text/csv", "buffer": text.encode("utf-8-sig")}])
    page.click("form[action$='/purchases/import'] button")
    page.wait_for_load_state()


def test_a_clerk_on_a_phone_sees_every_answer_and_is_asked_before_sending(
        browser: Any, server: str, world: World, tmp_path: Path) -> None:  # noqa: F811
    shot = Shots(tmp_path / "shots")
    clerk = _login(browser, server, "g1-clerk", MOBILE)
    rid = world.rid("G1")
    assert clerk.url.endswith(f"/records/{rid}")
    head = clerk.inner_text("section.head")
    assert "版本" not in head

    clerk.fill("#plan input[name=amount]", "600")
    clerk.fill("#plan input[name=members]", "10")
    clerk.click("#plan button")
    clerk.wait_for_load_state()
    assert "计划已保存" in in_view(clerk, "#answer-plan")
    shot(clerk, "01-plan-saved")

    # A refused purchase: the refusal is where the eyes are, the input kept.
    _purchase(clerk, "YGH-1", "十二块", "5")
    assert "金额" in in_view(clerk, "#answer-purchase")
    assert clerk.input_value("form[action$='/purchases'] input[name=order_no]") == "YGH-1"
    shot(clerk, "02-purchase-refused")
    _purchase(clerk, "YGH-1", "2500", "5")
    assert "已录入订单 YGH-1" in in_view(clerk, "#answer-purchase")
    shot(clerk, "03-purchase-saved")
    assert "订单号 YGH-1" in clerk.inner_text("#purchases") and "#1" not in clerk.inner_text("#purchases")

    # A bad import, then a good one: both answers in view.
    _upload(clerk, "bad.csv", "订单号,商品行号,支付时间,实付金额,领取人数,商品名称,渠道\r\n"
                              "T-1,1,2021-10-01 10:00,abc,3,荔枝,粤工惠购\r\n")
    assert "未导入" in in_view(clerk, "#answer-import") or "错误" in in_view(clerk, "#answer-import")
    shot(clerk, "04-import-refused")
    _upload(clerk, "good.csv", "订单号,商品行号,支付时间,实付金额,领取人数,商品名称,渠道\r\n"
                               "T-1,1,2021-10-01 10:00,120.00,3,荔枝,粤工惠购\r\n")
    assert "新增 1 条" in in_view(clerk, "#answer-import")
    shot(clerk, "05-import-done")

    # 完成采购 asks first, saying what was bought.
    said = _confirm(clerk, "#actions", "finish_purchasing")
    assert "现有采购 2 条，合计 8 人次，2,620.00 元" in said
    assert "已完成采购" in in_view(clerk, "#answer-fire")
    shot(clerk, "06-finished")
    clerk.click("#actions details.confirm > summary:text-is('汇总')") if clerk.locator(
        "#actions details.confirm > summary:text-is('汇总')").count() else clerk.click("#actions button:has-text('汇总')")
    clerk.wait_for_load_state()
    assert "已汇总" in in_view(clerk, "#answer-fire")

    # 提交 is refused for the missing 填报人: the refusal links to the field, screens away.
    refused = clerk.inner_text("#actions ul.refused")
    assert "提交：请填写填报人" in refused
    clerk.click("#actions ul.refused a.to-field")
    assert in_view(clerk, "#field-info-reporter") == ""
    shot(clerk, "07-missing-field-linked")
    clerk.fill("#field-info-reporter", "王小明")
    clerk.fill("#field-info-phone", "13812345678")
    clerk.click("#info button")
    clerk.wait_for_load_state()
    assert "报表信息已保存" in in_view(clerk, "#answer-info")
    shot(clerk, "08-info-saved")

    said = _confirm(clerk, "#actions", "submit")
    assert "将向上级报送 2021年度 的数据：8 人次，2,620.00 元" in said
    assert "已提交" in in_view(clerk, "#answer-fire")
    shot(clerk, "09-submitted")
    assert world.state("G1") == "submitted"

    # The import template: an example row, the date format, the allowed values.
    data = clerk.request.get(f"{server}/records/{rid}/import-template/generic.xlsx").body()
    helps = {r[0]: r for r in openpyxl.load_workbook(io.BytesIO(data))["填写说明"].iter_rows(values_only=True)
             if r and r[0]}
    assert "2021-10-20 10:30" in helps["支付时间"][2] and "粤工惠购" in helps["渠道"][2]
    assert "春节" in str(helps.get("节日", ("", "", ""))[2]) and "额外额度" in helps["经费来源"][2]
    assert any(r[0] and str(r[0]).startswith("示例") for r in helps.values())


def test_a_reviewer_at_a_desk_is_asked_and_told_which_union(
        browser: Any, server: str, world: World, tmp_path: Path) -> None:  # noqa: F811
    shot = Shots(tmp_path / "shots")
    world.to_submitted("G1")
    world.to_submitted("G2")
    reviewer = _login(browser, server, "d1-reviewer", DESKTOP)
    reviewer.goto(server + "/review")
    said = _confirm(reviewer, "#inbox", "accept")
    assert said.startswith("通过") and "人次" in said and "元" in said
    answer = in_view(reviewer, ".flash")
    assert "已通过" in answer and "工会）" in answer  # names the union
    shot(reviewer, "10-reviewer-accepted")
    # 批量通过所选 asks too; then the outcome list is the answer, at the top.
    reviewer.check("#inbox input[name=item] >> nth=0")
    said = _confirm(reviewer, "#inbox", "bulk_accept")
    assert "勾选" in said
    assert "批量通过结果：1 条通过" in in_view(reviewer, "#bulk-result h2")
    shot(reviewer, "11-bulk-accepted")

    # On the phone the reviewer's tables are cards: no sideways scroll, no header row.
    phone = _login(browser, server, "d1-reviewer", MOBILE)
    phone.goto(server + "/review")
    _no_horizontal_scroll(phone)
    assert not phone.locator("#subordinates thead").is_visible()
    card = phone.locator("#subordinates tbody tr").first
    labels = card.evaluate("tr => [...tr.cells].map(c => getComputedStyle(c, '::before').content)")
    assert labels[1:3] == ['"状态"', '"报送截止"'], labels  # each value says what it is
    assert card.evaluate("tr => getComputedStyle(tr).display") == "block"
    phone.screenshot(path=str(tmp_path / "shots" / "12-review-cards.png"), full_page=True)
