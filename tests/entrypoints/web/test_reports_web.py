"""Report downloads, purchase import, the work report and the gift-limit check on the web."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import openpyxl
from fastapi.testclient import TestClient

from tests.app.test_reporting import federation_up, grassroots
from tests.conftest import World
from tests.entrypoints.web.conftest import csrf_from

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
WECHAT_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 16_0 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.40(0x18002831) NetType/WIFI Language/zh_CN")
HEADER = "订单号,商品行号,支付时间,实付金额,领取人数,商品名称,商品形态,经费来源,渠道,原订单号"
GOOD = [
    "A001,1,2021-10-20 10:00,\"1,200.00\",20,梅州金柚,实物,额外额度,粤工惠购,",
    "A001,2,2021/10/20,￥300元,5,清远鸡,实物,额外额度,粤工惠购,",
]


def csv_file(rows: list[str]) -> bytes:
    return ("\r\n".join([HEADER, *rows]) + "\r\n").encode("utf-8")


def cells(data: bytes) -> list[list[Any]]:
    wb = openpyxl.load_workbook(io.BytesIO(data))
    return [[c for row in ws.iter_rows(values_only=True) for c in row if c is not None] for ws in wb.worksheets]


def filename_of(resp: Any) -> str:
    disposition = resp.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    match = re.search(r"filename\*=UTF-8''(\S+)", disposition)
    assert match, disposition
    return unquote(match.group(1))


def test_record_annex2_downloads_have_total_and_figures(web_world: World, login: Callable[[str], TestClient]) -> None:
    w = web_world
    grassroots(w, "G1", [("ygh", 1_234_567, 321)])
    client = login("d1-reviewer")
    rid = w.rid("G1")
    resp = client.get(f"/records/{rid}/annex2.xlsx")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == XLSX
    assert filename_of(resp).endswith("附件2.xlsx") and "2021年度" in filename_of(resp)
    sheet = cells(resp.content)[0]
    assert "合计" in sheet
    total = sheet.index("合计")
    assert sheet[total + 1:total + 3] == [321, 12345.67]  # a single union's own form: 人次, 元 (issue 22)
    assert "单位（公章）：天河一中工会" in sheet
    csv_resp = client.get(f"/records/{rid}/annex2.csv")
    assert csv_resp.headers["content-type"].startswith("text/csv")
    text = csv_resp.content.decode("utf-8-sig")
    assert "合计,321,12345.67" in text
    html = client.get(f"/records/{rid}/annex2.html")
    # The print view opens as a page (issue 22, point 14: a phone cannot print a downloaded .html).
    assert "合计" in html.text and html.headers["content-disposition"].startswith("inline;")
    # The record page links them; the JSON API gives the same numbers.
    page = client.get(f"/records/{rid}")
    assert f"/records/{rid}/annex2.xlsx" in page.text and f"/records/{rid}/work-report" in page.text
    data = client.get(f"/api/records/{rid}/annex2").json()
    assert data["total"]["amount_fen"] == 1_234_567 and data["total"]["people"] == 321


def test_org_annex2_and_chase_list_membership(web_world: World, login: Callable[[str], TestClient],
                                              token_client: Callable[[str], TestClient]) -> None:
    w = web_world
    grassroots(w, "G1", [("ygh", 100_000, 10)])
    d1 = login("d1-reviewer")
    review = d1.get("/review")
    assert "/orgs/D1/annex2.xlsx" in review.text and "/orgs/D1/chase.xlsx" in review.text
    resp = d1.get("/orgs/D1/chase.xlsx")
    assert resp.status_code == 200 and resp.headers["content-type"] == XLSX
    assert filename_of(resp).endswith("催报名单.xlsx")
    sheet = cells(resp.content)[0]
    assert "G2" in sheet and "G1" not in sheet  # G1 submitted; G2 not
    annex = d1.get("/orgs/D1/annex2.xlsx")
    assert annex.status_code == 200 and "合计" in cells(annex.content)[0]
    api = token_client("d1-reviewer")
    assert api.get("/api/orgs/D1/annex2").json()["org_code"] == "D1"
    chase = api.get("/api/orgs/D1/chase").json()
    assert [r["单位代码"] for r in chase] == ["G2"] and "填报员电话" in chase[0]
    # Outside the subtree: 404, like a record; in view but not permitted: 403.
    assert d1.get("/orgs/D2/annex2.xlsx").status_code == 404
    assert d1.get("/orgs/D2/chase.xlsx").status_code == 404
    assert api.get("/api/orgs/D2/annex2").status_code == 404
    assert api.get(f"/api/records/{w.rid('G3')}/annex2").status_code == 404
    g1 = token_client("g1-clerk")
    assert g1.get("/api/orgs/G1/chase").status_code == 403
    assert g1.get("/api/orgs/D1/annex2").status_code == 404
    assert login("g1-clerk").get("/orgs/G1/chase.xlsx").status_code == 403
    assert d1.get("/province-workbook.xlsx").status_code == 403


def test_province_workbook_download(web_world: World, login: Callable[[str], TestClient],
                                   token_client: Callable[[str], TestClient]) -> None:
    w = web_world
    grassroots(w, "G5", [("ygh", 1_234_567, 321)])
    w.fire("G5", "accept", "ind-reviewer")
    federation_up(w, "IND", reporting_unit=True)
    gd = login("gd-reviewer")
    overview = gd.get("/overview")
    assert "/province-workbook.xlsx" in overview.text
    resp = gd.get("/province-workbook.xlsx")
    assert resp.status_code == 200 and resp.headers["content-type"] == XLSX
    assert filename_of(resp) == "2021年度工会消费帮扶情况汇总表.xlsx"
    wb = openpyxl.load_workbook(io.BytesIO(resp.content))
    # overview + IND's form + one sheet for C1 and C2, which have not reported (issue 22)
    assert wb.sheetnames == ["汇总", "广东省教科文卫工会", "未报送单位"]
    sheets = cells(resp.content)
    assert any("合计" in s for s in sheets[1:])
    ind = next(s for s in sheets[1:] if "广东省教科文卫工会" in "".join(map(str, s)))
    assert "合计" in ind and any(str(c) == "1.23" for c in ind), ind
    api = token_client("gd-reviewer").get("/api/province-workbook.xlsx")
    assert api.status_code == 200 and api.content[:2] == b"PK"
    # The overview of a city has no province workbook link.
    assert "/province-workbook.xlsx" not in login("c1-reviewer").get("/overview").text


def test_wechat_shows_open_in_browser_beside_downloads(web_world: World, login: Callable[[str], TestClient]) -> None:
    w = web_world
    w.plan("G1")
    d1 = login("d1-reviewer")
    d1.headers["User-Agent"] = WECHAT_UA
    review = d1.get("/review").text
    section = review[review.index('id="downloads"'):]
    # One note beside each link: 3 Annex 2 formats (the print view opens as a page, issue 22) + the 催报 list.
    links = section.count(" download>") + section.count('class="print-link"')
    assert links == section.count("请在浏览器中打开") == 4
    record = d1.get(f"/records/{w.rid('G1')}").text
    reports_section = record[record.index('id="reports"'):record.index("</section>", record.index('id="reports"'))]
    assert reports_section.count("请在浏览器中打开") == 4
    plain = login("d1-reviewer").get("/review").text
    assert "请在浏览器中打开" not in plain


def _import(client: TestClient, rid: int, data: bytes, filename: str = "采购.csv") -> Any:
    page = client.get(f"/records/{rid}")
    return client.post(f"/records/{rid}/purchases/import", data={"csrf_token": csrf_from(page.text), "mapping": "generic"},
                       files={"file": (filename, data, "text/csv")}, follow_redirects=True)


def test_import_page_all_or_nothing_and_repeat(web_world: World, login: Callable[[str], TestClient],
                                               token_client: Callable[[str], TestClient]) -> None:
    w = web_world
    w.plan("G1")
    rid = w.rid("G1")
    clerk = login("g1-clerk")
    page = clerk.get(f"/records/{rid}").text
    assert "批量导入采购" in page and "粤工惠购导出" in page
    bad = _import(clerk, rid, csv_file([*GOOD, "A002,1,2021-10-21,abc,3,茶叶,实物,额外额度,粤工惠购,"]))
    assert bad.status_code == 422
    assert "第 4 行：金额“abc”不是有效的数字" in bad.text and "未导入任何数据" in bad.text
    assert token_client("g1-clerk").get(f"/api/records/{rid}/purchases").json() == []
    ok = _import(clerk, rid, csv_file(GOOD))
    assert ok.status_code == 200 and "新增 2 条，重复 0 条" in ok.text
    again = _import(clerk, rid, csv_file(GOOD))
    assert "新增 0 条，重复 2 条" in again.text
    assert len(token_client("g1-clerk").get(f"/api/records/{rid}/purchases").json()) == 2
    # Outside the view: 404.
    assert _import(login("d2-reviewer"), rid, csv_file(GOOD)).status_code == 404


def test_import_api(web_world: World, token_client: Callable[[str], TestClient]) -> None:
    w = web_world
    w.plan("G1")
    rid = w.rid("G1")
    api = token_client("g1-clerk")
    bad = api.post(f"/api/records/{rid}/purchases/import", data={"mapping": "generic"},
                   files={"file": ("a.csv", csv_file([*GOOD, "A002,1,2021-10-21,abc,3,茶叶,实物,额外额度,粤工惠购,"]), "text/csv")})
    assert bad.status_code == 422 and bad.json()["code"] == "import.refused"
    assert len(bad.json()["errors"]) == 1 and "第 4 行" in bad.json()["errors"][0]
    ok = api.post(f"/api/records/{rid}/purchases/import", files={"file": ("a.csv", csv_file(GOOD), "text/csv")})
    assert ok.status_code == 200 and (ok.json()["new"], ok.json()["repeated"]) == (2, 0)
    again = api.post(f"/api/records/{rid}/purchases/import", files={"file": ("a.csv", csv_file(GOOD), "text/csv")})
    assert (again.json()["new"], again.json()["repeated"]) == (0, 2)
    assert token_client("g3-clerk").post(f"/api/records/{rid}/purchases/import",
                                         files={"file": ("a.csv", csv_file(GOOD), "text/csv")}).status_code == 404


def test_work_report_page_and_markdown(web_world: World, login: Callable[[str], TestClient]) -> None:
    w = web_world
    grassroots(w, "G5", [("ygh", 1_234_567, 321)])
    w.fire("G5", "accept", "ind-reviewer")
    federation_up(w, "IND", reporting_unit=True)
    rid = w.rid("IND")
    client = login("ind-reviewer")
    page = client.get(f"/records/{rid}/work-report")
    assert page.status_code == 200
    assert "IND先进经验" in page.text and "IND工作亮点" in page.text and "合计" in page.text
    md = client.get(f"/records/{rid}/work-report.md")
    assert md.headers["content-type"].startswith("text/markdown")
    assert filename_of(md).endswith("工作报告.md") and "IND先进经验" in md.text
    assert login("c1-reviewer").get(f"/records/{rid}/work-report").status_code == 404


def test_limit_check_form_shows_verdicts_with_arithmetic(web_world: World, login: Callable[[str], TestClient]) -> None:
    w = web_world
    w.plan("G1", 60000, 100)
    rid = w.rid("G1")
    clerk = login("g1-clerk")
    page = clerk.get(f"/records/{rid}")
    assert "节日慰问品限额测算" in page.text
    resp = clerk.post(f"/records/{rid}/limits", data={
        "csrf_token": csrf_from(page.text), "ordinary": "50000", "budget": "100000", "retained": "0",
        "basis": "budget"})
    assert resp.status_code == 200
    result = resp.text[resp.text.index('id="limit-result"'):]
    assert "结论：不符合" in result and "40" in result and "%" in result
    bad = clerk.post(f"/records/{rid}/limits", data={
        "csrf_token": csrf_from(page.text), "ordinary": "abc", "budget": "100000", "basis": "budget"})
    assert bad.status_code == 422 and "普通节日慰问品支出" in bad.text


def test_limit_check_api_and_annex2_file_api(web_world: World, token_client: Callable[[str], TestClient]) -> None:
    w = web_world
    w.plan("G1", 60000, 100)
    rid = w.rid("G1")
    api = token_client("g1-clerk")
    resp = api.get(f"/api/records/{rid}/limits",
                   params={"ordinary": "50000", "budget": "100000", "basis": "budget"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["level"] == "fail" and body["level_label"] == "不符合"
    assert any("50.00%" in line and "40%" in line for line in body["lines"])
    assert api.get(f"/api/records/{w.rid('D1')}/limits",
                   params={"ordinary": "1", "budget": "1"}).status_code == 404
    assert token_client("d1-reviewer").get(f"/api/records/{w.rid('D1')}/limits",
                                           params={"ordinary": "1", "budget": "1"}).status_code == 409
    xlsx = api.get(f"/api/records/{rid}/annex2.xlsx")
    assert xlsx.status_code == 200 and xlsx.headers["content-type"] == XLSX and "合计" in cells(xlsx.content)[0]
    assert api.get(f"/api/records/{rid}/annex2.pdf").status_code == 404


# --- issue 9: import help, printable work report, plain Chinese (points 8, 10, 11, 14) -------


def test_import_templates_and_the_columns_are_on_the_page(web_world: World, login: Callable[[str], TestClient]) -> None:
    w = web_world
    w.plan("G1")
    client = login("g1-clerk")
    rid = w.rid("G1")
    page = client.get(f"/records/{rid}").text
    for words in ("需要的列", "受益人数", "领取人次", "支付时间", "成交时间", "必填",
                  f"/records/{rid}/import-template/generic.xlsx", f"/records/{rid}/import-template/ygh.csv"):
        assert words in page, words
    csv_resp = client.get(f"/records/{rid}/import-template/generic.csv")
    assert csv_resp.status_code == 200 and "导入模板" in filename_of(csv_resp)
    header = csv_resp.content.decode("utf-8-sig").strip().split(",")
    assert header[:6] == ["订单号", "商品行号", "支付时间", "实付金额", "领取人数", "商品名称"] and "渠道" in header
    xlsx = client.get(f"/records/{rid}/import-template/ygh.xlsx")
    wb = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    assert wb.sheetnames == ["采购明细", "填写说明"]
    assert [c.value for c in wb["采购明细"][1]][:3] == ["订单编号", "商品行号", "支付时间"]
    helps = {r[0]: r for r in wb["填写说明"].iter_rows(min_row=3, values_only=True)}
    assert helps["领取人数"][1] == "必填" and "受益人数" in helps["领取人数"][3]
    # A template filled in as it comes imports as it is.
    filled = ("订单号,商品行号,支付时间,实付金额,领取人数,商品名称,渠道\r\n"
              "T-1,1,2021-10-01 10:00,120.00,3,荔枝,粤工惠购\r\n").encode("utf-8-sig")
    resp = _import(client, rid, filled)
    assert resp.status_code in (200, 303)
    listed = client.get(f"/api/records/{rid}/purchases").json()
    assert [p["order_no"] for p in listed] == ["T-1"]
    assert client.get(f"/records/{rid}/import-template/nope.csv").status_code == 404


def test_a_file_without_the_people_column_is_refused_once(web_world: World, login: Callable[[str], TestClient]) -> None:
    w = web_world
    w.plan("G1")
    client = login("g1-clerk")
    rid = w.rid("G1")
    rows = "\r\n".join(f"N-{i},2021-10-0{i} 10:00,10.00,荔枝,粤工惠购" for i in range(1, 6))
    resp = _import(client, rid, ("订单号,支付时间,实付金额,商品名称,渠道\r\n" + rows + "\r\n").encode("utf-8"))
    assert resp.status_code == 422
    assert resp.text.count("领取人数") - resp.text.count("<td>领取人数</td>") >= 1
    assert "第 2 行" not in resp.text and "第 3 行" not in resp.text  # not once per row
    assert "缺少必需的列" in resp.text


def test_the_work_report_opens_as_an_a4_print_view_and_downloads_as_word(
    web_world: World, login: Callable[[str], TestClient]
) -> None:
    import docx

    w = web_world
    grassroots(w, "G5", [("ygh", 1_234_567, 321)])
    w.fire("G5", "accept", "ind-reviewer")
    federation_up(w, "IND", reporting_unit=True)
    rid = w.rid("IND")
    client = login("ind-reviewer")
    page = client.get(f"/records/{rid}/work-report").text
    assert f"/records/{rid}/work-report/print" in page and f"/records/{rid}/work-report.docx" in page
    printed = client.get(f"/records/{rid}/work-report/print")
    assert printed.status_code == 200 and printed.headers["content-type"].startswith("text/html")
    assert "content-disposition" not in printed.headers  # opens in the browser, not a download
    assert "@page" in printed.text and "A4" in printed.text and "IND先进经验" in printed.text
    word = client.get(f"/records/{rid}/work-report.docx")
    assert word.status_code == 200 and filename_of(word).endswith("工作报告.docx")
    document = docx.Document(io.BytesIO(word.content))
    text = "\n".join(p.text for p in document.paragraphs)
    assert "消费帮扶工作报告" in text and "IND先进经验" in text and "单位（公章）" in text
    cells_text = [c.text for row in document.tables[0].rows for c in row.cells]
    assert "合计" in cells_text and "消费总金额或投入总额度(万元)" in cells_text


def test_a_grassroots_work_report_has_no_federation_sections(web_world: World, login: Callable[[str], TestClient]) -> None:
    w = web_world
    grassroots(w, "G5", [("ygh", 1_234_567, 321)])
    page = login("g5-clerk").get(f"/records/{w.rid('G5')}/work-report").text
    assert "消费帮扶情况统计" in page and "先进经验" not in page and "（未填写）" not in page


def test_pages_name_channels_and_keep_rule_codes_out_of_sight(web_world: World, login: Callable[[str], TestClient]) -> None:
    w = web_world
    w.plan("G1")
    w.buy("G1", "C-1", 5000, channel="p832")
    client = login("g1-clerk")
    rid = w.rid("G1")
    page = client.get(f"/records/{rid}").text
    assert "脱贫地区农副产品网络销售平台(832平台)" in page and "· p832 ·" not in page
    assert 'title="渠道代码 p832"' in page
    csv_text = client.get(f"/records/{rid}/purchases.csv").content.decode("utf-8-sig")
    assert "832平台" in csv_text and ",p832," not in csv_text
    # A rule that stops an action is named in words; its code is only in a title (for support).
    w.plan("G2", 60000, 10)
    page = login("g2-clerk").get(f"/records/{w.rid('G2')}").text
    visible = re.sub(r'title="[^"]*"', "", page)
    assert not re.search(r"\b(contact|plan|purchase|transition|permission)\.[a-z_]+\b", visible)
    missing = client.get("/records/999999")
    assert missing.status_code == 404 and "错误代码" not in missing.text and "HTTP" not in missing.text
    assert "record.not_found" not in re.sub(r'title="[^"]*"', "", missing.text)


def test_reopen_flashes_its_own_label_and_a_submitted_record_says_it_waits(
    web_world: World, login: Callable[[str], TestClient]
) -> None:
    w = web_world
    w.plan("G1")
    w.buy("G1", "R-1", 5000)
    w.fire("G1", "finish_purchasing", "g1-clerk")
    w.info("G1")
    w.fire("G1", "summarize", "g1-clerk")
    client = login("g1-clerk")
    rid = w.rid("G1")
    page = client.get(f"/records/{rid}").text
    after = client.post(f"/records/{rid}/fire", data={"csrf_token": csrf_from(page),
                                                      "seen_version": str(w.version("G1")), "trigger": "reopen"}).text
    assert "已重新采购：已汇总 → 已采购" in after and "退回计划" not in after.split("现在可以做")[0]
    w.fire("G1", "summarize", "g1-clerk")
    w.fire("G1", "submit", "g1-clerk")
    assert "等待上级审核" in client.get(f"/records/{rid}").text
