"""The work report (工作报告) as a Word document (DOCX, python-docx).

Chinese offices edit, print and seal Word files, so the report a federation sends up is also a
DOCX: A4 portrait, 宋体 body and 黑体 headings, the Annex 2 figures as a bordered table whose
columns fit the page, and the footer (填报人, 联系电话, 填表时间) with room for the seal. The
context is the one the HTML and Markdown templates get (see ``workflow.app.reporting.work_report``).
This module is pure: a mapping in, bytes out.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from datetime import date
from typing import Any

from docx import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml.ns import qn
from docx.shared import Cm, Pt

from workflow.domain.text import writable

__all__ = ["write_work_report"]

BODY_FONT = "宋体"
HEADING_FONT = "黑体"
NUMBERS = ("一", "二", "三", "四")


def _font(run: Any, name: str, size: float, *, bold: bool = False) -> None:
    run.font.name = name
    run.font.size = Pt(size)
    run.font.bold = bold
    run._element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), name)


def _para(doc: Any, text: str, *, size: float = 12, font: str = BODY_FONT, bold: bool = False,
          align: Any = None, space_after: float = 4) -> Any:
    p = doc.add_paragraph()
    _font(p.add_run(writable(text)), font, size, bold=bold)
    if align is not None:
        p.alignment = align
    p.paragraph_format.space_after = Pt(space_after)
    p.paragraph_format.line_spacing = 1.5
    return p


def _heading(doc: Any, text: str) -> None:
    _para(doc, text, size=14, font=HEADING_FONT, space_after=6)


def report_texts(doc: Any, text: str) -> None:
    for line in (text or "（未填写）").splitlines() or [""]:
        p = _para(doc, line)
        p.paragraph_format.first_line_indent = Pt(24)


def _cn_date(value: date | None) -> str:
    return f"{value.year}年{value.month:02d}月{value.day:02d}日" if value else ""


def write_work_report(ctx: Mapping[str, Any]) -> bytes:
    """Write the work report as DOCX bytes.

    Args:
        ctx: ``org_name``, ``round_label``, ``state_label``, ``status_note``, ``draft``,
            ``has_texts`` (reporting units and federations: 先进经验 and 工作亮点), ``single_union``
            (a grassroots union: people and yuan as they are, not 万), ``experience``,
            ``highlights``, ``rows`` (``label``, ``people``, ``amount`` in 万 / 万元), ``total_people``,
            ``total_amount``, ``official_text``, ``subordinates`` (``name``, ``state_label``,
            ``highlights``), ``reporter``, ``phone``, ``fill_date``; the letter's ``addressee``,
            ``intro`` and ``letter_date``.
    """
    doc = Document()
    section = doc.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Cm(21), Cm(29.7)
    section.left_margin = section.right_margin = Cm(2.6)
    section.top_margin, section.bottom_margin = Cm(3.0), Cm(2.5)
    normal = doc.styles["Normal"]
    normal.font.name = BODY_FONT
    normal.font.size = Pt(12)
    normal.element.get_or_add_rPr().get_or_add_rFonts().set(qn("w:eastAsia"), BODY_FONT)

    title = f"{ctx['org_name']}{ctx['round_label']}消费帮扶工作报告"
    _para(doc, title, size=18, font=HEADING_FONT, bold=True, align=WD_ALIGN_PARAGRAPH.CENTER, space_after=12)
    if ctx.get("draft"):
        _para(doc, "【草稿，未提交】", size=10.5, align=WD_ALIGN_PARAGRAPH.CENTER)
    if ctx.get("addressee"):
        _para(doc, f"{ctx['addressee']}：")
    if ctx.get("intro"):
        report_texts(doc, ctx["intro"])

    n = 0
    if ctx.get("has_texts"):
        _heading(doc, f"{NUMBERS[n]}、先进经验")
        report_texts(doc, ctx.get("experience") or "")
        n += 1
        _heading(doc, f"{NUMBERS[n]}、工作亮点")
        report_texts(doc, ctx.get("highlights") or "")
        n += 1

    _heading(doc, f"{NUMBERS[n]}、消费帮扶情况统计")
    n += 1
    rows = list(ctx["rows"])
    table = doc.add_table(rows=len(rows) + 2, cols=3)
    table.style = "Table Grid"
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    widths = (Cm(7.4), Cm(3.2), Cm(5.2))  # 15.8 cm: the A4 text width
    table.autofit = False
    for j, width in enumerate(widths):  # the grid (Word and LibreOffice read it) and each cell
        table.columns[j].width = width
    if ctx.get("single_union"):  # one grassroots union: people and yuan as they are
        _para(doc, "单个基层工会，按实数列示（附件2汇总表以万为单位）", size=10.5)
        cells = [("采购平台", "人次", "消费总金额或投入总额度(元)")]
    else:
        _para(doc, "附件2口径：人次以万为单位、金额以万元为单位，保留两位小数", size=10.5)
        cells = [("采购平台", "人次(万)", "消费总金额或投入总额度(万元)")]
    cells += [(r["label"], str(r["people"]), str(r["amount"])) for r in rows]
    cells.append(("合计", str(ctx["total_people"]), str(ctx["total_amount"])))
    for i, values in enumerate(cells):
        bold = i in (0, len(cells) - 1)
        for j, value in enumerate(values):
            cell = table.cell(i, j)
            cell.width = widths[j]
            p = cell.paragraphs[0]
            p.alignment = WD_ALIGN_PARAGRAPH.LEFT if j == 0 and 0 < i < len(cells) - 1 else WD_ALIGN_PARAGRAPH.CENTER
            _font(p.add_run(writable(value)), BODY_FONT, 11, bold=bold)
    _para(doc, f"{ctx['official_text']}。", size=10.5)

    if ctx.get("has_texts"):
        _heading(doc, f"{NUMBERS[n]}、下级单位工作亮点")
        subordinates = list(ctx.get("subordinates") or [])
        for s in subordinates:
            _para(doc, f"{s['name']}（{s['state_label']}）", bold=True)
            report_texts(doc, s["highlights"])
        if not subordinates:
            _para(doc, "（暂无下级单位填报工作亮点）")

    _para(doc, "", space_after=12)
    _para(doc, f"填报人：{ctx.get('reporter') or ''}　　联系电话：{ctx.get('phone') or ''}")
    _para(doc, "", space_after=18)
    # The signature block of a letter: the unit's name, the date, and room for the seal.
    _para(doc, f"单位（公章）：{ctx['org_name']}", align=WD_ALIGN_PARAGRAPH.RIGHT)
    _para(doc, _cn_date(ctx.get("letter_date") or ctx.get("fill_date")), align=WD_ALIGN_PARAGRAPH.RIGHT)
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()
