"""Tests for workflow.formats.exports: the Annex 2 writers (pure; LibreOffice only for the PDF check)."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet

from workflow.domain.figures import Annex2Row, Annex2Table, wan_people, wan_yuan
from workflow.formats.exports import (
    ANNEX2_ROW_LABELS,
    ExportUsageError,
    render_html,
    write_csv,
    write_rows_xlsx,
    write_xlsx,
)

FOOTER = ("填报人：张三", "填表时间：2021年12月20日", "联系电话：020-83888888")


def make_table(
    unit: str = "广州市总工会",
    figures: tuple[tuple[int, int], ...] = ((40, 4_000), (40, 4_000), (0, 0), (0, 0), (0, 0)),
    status: str | None = "已审核",
) -> Annex2Table:
    return Annex2Table(
        unit_name=unit,
        round_label="2021 年度",
        rows=[
            Annex2Row(label, p, f) for label, (p, f) in zip(ANNEX2_ROW_LABELS, figures, strict=True)
        ],
        reporter="张三",
        fill_date=date(2021, 12, 20),
        phone="020-83888888",
        status_note=status,
    )


# Rows of 0.004 万 / 0.004 万元 show as 0.00, but 合计 (0.008) shows 0.01.
SKEWED = make_table()
BIG = make_table(
    unit="深圳市总工会",
    figures=((123_456, 1_234_567_891), (5_000, 5_000), (15_000, 15_000_000), (1, 1), (99, 995_000)),
)


def load(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data))


def sheet_text(ws: Worksheet) -> list[str]:
    return [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)]


def number_rows(ws: Worksheet) -> dict[str, tuple[float, float]]:
    """Label → (人次(万), 万元) from an Annex 2 sheet."""
    out: dict[str, tuple[float, float]] = {}
    for label, people, amount in ws.iter_rows(min_row=5, max_col=3, values_only=True):
        if isinstance(people, int | float) and isinstance(amount, int | float):
            out[str(label)] = (float(people), float(amount))
    return out


# ------------------------------------------------------------------ rounding


def test_rounding_half_up() -> None:
    assert wan_people(50) == Decimal("0.01")  # 0.005 → 0.01 (half up, not banker's)
    assert wan_people(49) == Decimal("0.00")
    assert wan_people(250) == Decimal("0.03")  # 0.025 → 0.03
    assert wan_yuan(5_000) == Decimal("0.01")
    assert wan_yuan(4_999) == Decimal("0.00")
    assert wan_yuan(1_234_567_891) == Decimal("1234.57")
    assert wan_yuan(10**12) == Decimal("1000000.00")
    assert wan_yuan(-5_000) == Decimal("-0.01")


def test_total_from_exact_values_not_rounded_rows() -> None:
    assert SKEWED.total_people == 80 and SKEWED.total_amount_fen == 8_000
    assert [wan_yuan(r.amount_fen) for r in SKEWED.rows[:2]] == [Decimal("0.00")] * 2
    assert wan_yuan(SKEWED.total_amount_fen) == Decimal("0.01")


# ------------------------------------------------------------------ XLSX


def test_xlsx_single_table_every_figure() -> None:
    wb = load(write_xlsx([SKEWED]))
    assert wb.sheetnames == ["广州市总工会"]
    ws = wb.active
    assert ws["A1"].value == "工会消费帮扶情况统计表"
    assert ws["A3"].value == "单位（公章）：广州市总工会"
    assert [ws.cell(4, c).value for c in (1, 2, 3)] == [
        "采购平台",
        "人次(万)",
        "消费总金额或投入总额度(万元)",
    ]
    rows = number_rows(ws)
    assert list(rows) == [*ANNEX2_ROW_LABELS, "合计"]
    assert all(rows[label] == (0.0, 0.0) for label in ANNEX2_ROW_LABELS)
    assert rows["合计"] == (0.01, 0.01)
    for row in ws.iter_rows(min_row=5, max_row=10, min_col=2, max_col=3):
        for cell in row:
            assert cell.number_format == "0.00"
    texts = sheet_text(ws)
    for footer in FOOTER:
        assert footer in texts


def test_xlsx_big_figures() -> None:
    rows = number_rows(load(write_xlsx([BIG])).active)
    assert rows["粤工惠购平台"] == (12.35, 1234.57)
    assert rows["乡村振兴全国消费帮扶广东馆"] == (0.5, 0.01)
    assert rows["广东东西部扶贫协作产品交易网"] == (1.5, 15.0)
    assert rows["832平台"] == (0.0, 0.0)
    assert rows["其他采购渠道(含线上和线下)"] == (0.01, 1.0)  # 99 people → 0.0099 → 0.01
    assert rows["合计"] == (
        float(wan_people(BIG.total_people)),
        float(wan_yuan(BIG.total_amount_fen)),
    )
    assert rows["合计"] == (14.36, 1250.57)


def test_xlsx_page_setup_and_no_formulas() -> None:
    wb = load(write_xlsx([SKEWED, BIG]))
    for ws in wb.worksheets:
        assert int(ws.page_setup.paperSize) == 9  # A4
        assert ws.page_setup.orientation == "portrait"
        assert ws.sheet_properties.pageSetUpPr.fitToPage
        assert ws.page_setup.fitToWidth == 1 and ws.page_setup.fitToHeight == 1
        assert ws.print_area
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", cell.coordinate
    annex = wb.worksheets[1]
    assert annex["A4"].border.left.style == "thin"
    assert annex.column_dimensions["A"].width >= 30


def test_xlsx_province_overview() -> None:
    pending = make_table(unit="韶关市总工会", figures=((0, 0),) * 5, status="未报送")
    wb = load(write_xlsx([SKEWED, BIG, pending], overview_title="2021 年度全省汇总"))
    assert wb.sheetnames == ["汇总", "广州市总工会", "深圳市总工会", "韶关市总工会"]
    ws = wb["汇总"]
    assert ws["A1"].value == "2021 年度全省汇总"
    lines = [r for r in ws.iter_rows(min_row=3, values_only=True)]
    assert lines[0] == (1, "广州市总工会", 0.01, 0.01, "已审核")
    assert lines[1][1] == "深圳市总工会" and lines[1][2:4] == (14.36, 1250.57)
    assert lines[2] == (3, "韶关市总工会", 0, 0, "未报送")
    total = lines[3]
    assert total[1] == "合计"
    exact_people = SKEWED.total_people + BIG.total_people
    exact_fen = SKEWED.total_amount_fen + BIG.total_amount_fen
    assert total[2:4] == (float(wan_people(exact_people)), float(wan_yuan(exact_fen)))


def test_sheet_names_safe_and_unique() -> None:
    long_name = "广东省某某某某某某某某某某某某某某某某某某某某某某产业工会委员会联合会"
    tables = [
        make_table(unit=u) for u in ("a/b:c*d?[e]\\f", long_name, long_name, "汇总", "history")
    ]
    names = load(write_xlsx(tables)).sheetnames
    assert len(names) == len({n.lower() for n in names}) == 6
    for name in names:
        assert len(name) <= 31
        assert not set(name) & set("[]:*?/\\")
    assert names[1] == "a_b_c_d__e__f"


def test_injection_text_stays_text() -> None:
    evil = make_table(unit="=1+1", status="@SUM(A1)")
    evil = Annex2Table(
        unit_name=evil.unit_name,
        round_label="+2021",
        rows=[Annex2Row("-cmd|' /C calc'!A0", 1, 1), *evil.rows[1:]],
        reporter='=HYPERLINK("http://x")',
        fill_date=None,
        phone="\t020",
        status_note=evil.status_note,
    )
    wb = load(write_xlsx([evil, SKEWED]))
    overview = wb["汇总"]
    cell = overview["B3"]
    assert cell.value in ("=1+1", "'=1+1") and cell.data_type == "s"
    assert cell.quotePrefix
    assert overview["E3"].value == "@SUM(A1)" and overview["E3"].data_type == "s"
    sheet = wb.worksheets[1]
    assert sheet["A2"].value == "+2021" and sheet["A2"].data_type == "s"
    assert sheet["A5"].value == "-cmd|' /C calc'!A0" and sheet["A5"].data_type == "s"
    for ws in wb.worksheets:
        assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)

    rows = load(
        write_rows_xlsx(
            "催报名单",
            ["单位", "联系人", "电话"],
            [["=1+1", "李四", "+8613800000000"], ["韶关", None, 123]],
        )
    )
    ws = rows.active
    assert ws["A3"].value == "=1+1" and ws["A3"].data_type == "s"
    assert ws["C3"].value == "+8613800000000" and ws["C3"].data_type == "s"
    assert ws["C4"].value == 123

    text = write_csv(evil).decode("utf-8-sig")
    parsed = list(csv.reader(io.StringIO(text)))
    assert ["'+2021"] in parsed
    assert parsed[4][0] == "'-cmd|' /C calc'!A0"


def test_write_rows_xlsx_plain_list() -> None:
    data = write_rows_xlsx(
        "2021 年度未报送单位（催报）",
        ["单位", "上级", "经办人", "手机", "截止日期"],
        [["乐昌市总工会", "韶关市总工会", "王五", "13800000000", date(2021, 12, 25)]],
    )
    ws = load(data).active
    assert ws["A1"].value == "2021 年度未报送单位（催报）"
    assert [c.value for c in ws[2]] == ["单位", "上级", "经办人", "手机", "截止日期"]
    assert ws["A3"].value == "乐昌市总工会" and ws["D3"].value == "13800000000"
    assert ws["E3"].value.date() == date(2021, 12, 25)
    assert int(ws.page_setup.paperSize) == 9


def test_empty_tables_is_a_usage_error() -> None:
    with pytest.raises(ExportUsageError):
        write_xlsx([])


# ------------------------------------------------------------------ CSV and HTML


def test_csv_bom_and_content() -> None:
    data = write_csv(SKEWED)
    assert data.startswith(b"\xef\xbb\xbf")
    parsed = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert parsed[0] == ["工会消费帮扶情况统计表"]
    assert parsed[2] == ["单位（公章）：广州市总工会"]
    assert parsed[3] == ["采购平台", "人次(万)", "消费总金额或投入总额度(万元)"]
    assert parsed[4:9] == [[label, "0.00", "0.00"] for label in ANNEX2_ROW_LABELS]
    assert parsed[9] == ["合计", "0.01", "0.01"]
    assert [r[0] for r in parsed[-3:]] == list(FOOTER)


def test_html_escapes_and_shows_figures() -> None:
    html = render_html(make_table(unit="<script>alert(1)</script>"))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "@page" in html and "A4" in html
    assert html.count("0.00") >= 10 and "<td>合计</td>" in html
    for footer in FOOTER:
        assert footer in html
    big = render_html(BIG)
    assert "1234.57" in big and "1250.57" in big and "14.36" in big


# ------------------------------------------------------------------ LibreOffice → PDF


def _soffice() -> str | None:
    return shutil.which("libreoffice") or shutil.which("soffice")


def _require_or_skip(what: str) -> None:
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required (REQUIRE_SERVICES=1) but not installed")
    pytest.skip(f"{what} not installed")


def test_xlsx_prints_one_a4_page_per_sheet(tmp_path: Path) -> None:
    soffice = _soffice()
    if soffice is None:
        _require_or_skip("LibreOffice")
    if not (shutil.which("pdfinfo") and shutil.which("pdftotext")):
        _require_or_skip("poppler-utils (pdfinfo, pdftotext)")
    assert soffice is not None
    source = tmp_path / "annex2.xlsx"
    source.write_bytes(write_xlsx([SKEWED, BIG]))
    profile = tmp_path / f"lo-{uuid.uuid4().hex}"
    subprocess.run(
        [
            soffice,
            "--headless",
            f"-env:UserInstallation={profile.as_uri()}",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    pdf = tmp_path / "annex2.pdf"
    assert pdf.exists()
    info = subprocess.run(
        ["pdfinfo", "-f", "1", "-l", "99", str(pdf)], check=True, capture_output=True, text=True
    ).stdout
    assert "Pages:           3" in info
    sizes = [line for line in info.splitlines() if line.startswith("Page ") and "size" in line]
    assert len(sizes) == 3 and all("(A4)" in line for line in sizes)
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    pages = text.split("\f")
    assert text.count("合计") >= 3
    assert "工会消费帮扶情况统计表" in pages[1] and "广州市总工会" in pages[1]
    for figure in ("0.01", "12.35", "1234.57", "0.50", "1.50", "15.00", "14.36", "1250.57"):
        assert figure in text, figure
    assert "填报人：张三" in pages[2]


def test_the_province_overview_has_the_channel_breakdown() -> None:
    """Issue 22, point 15: the summary sheet says how the province's total splits by channel."""
    pending = make_table(unit="韶关市总工会", figures=((0, 0),) * 5, status="未报送")
    ws = load(write_xlsx([SKEWED, BIG, pending]))["汇总"]
    lines = [r for r in ws.iter_rows(min_row=3, values_only=True) if any(v not in (None, "") for v in r)]
    start = next(i for i, r in enumerate(lines) if r[1] == "其中：按采购渠道")
    breakdown = {r[1]: r[2:4] for r in lines[start + 1:]}
    assert list(breakdown) == list(ANNEX2_ROW_LABELS)
    for label in ANNEX2_ROW_LABELS:
        rows = [r for t in (SKEWED, BIG) for r in t.rows if r.label == label]
        assert breakdown[label] == (float(wan_people(sum(r.people for r in rows))),
                                    float(wan_yuan(sum(r.amount_fen for r in rows))))


def test_the_official_order_of_the_reporting_units_is_policy_data() -> None:
    from workflow.domain.policy import builtin

    policy = builtin()
    names = ["潮州市总工会", "东莞市总工会", "佛山市总工会", "广州市总工会", "广东省教科文卫工会", "深圳市总工会"]
    assert sorted(names, key=policy.official_rank) == [
        "广州市总工会", "深圳市总工会", "佛山市总工会", "东莞市总工会", "潮州市总工会", "广东省教科文卫工会"]
