"""Writers for the Annex 2 statistics table (附件 2《工会消费帮扶情况统计表》) of 粤工总〔2021〕17号.

This module is pure: plain dataclasses in, bytes or text out. The DB side fills
:class:`Annex2Table` from summarized snapshots; nothing here talks SQL.

Rounding rule
-------------
人次 are shown in 万 (people ÷ 10,000) and amounts in 万元 (fen ÷ 1,000,000), with two decimals,
rounded half up (``decimal.ROUND_HALF_UP``: 0.005 → 0.01). Each row is rounded from its exact
value. 合计 is computed from the exact totals (people and fen) and rounded once, so it can differ
from the sum of the rounded rows: two rows of 4,000 fen show 0.00 万元 each, and 合计 shows 0.01.
The same rule applies to the province overview (汇总) and its total line.

Spreadsheet safety
------------------
Text that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is never written as
a formula: in XLSX the cell is stored as a string with Excel's quote prefix (the equivalent of
typing a leading apostrophe), so the text is kept exactly; in CSV a leading ``'`` is added.
Numbers are written as values, never as formulas.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from workflow.domain.errors import ExportUsageError
from workflow.domain.figures import Annex2Table, rounding_note, wan_people, wan_yuan
from workflow.domain.text import writable

__all__ = [
    "ANNEX2_ROW_LABELS",
    "ANNEX2_TITLE",
    "UNSUBMITTED_HEADERS",
    "ExportUsageError",
    "render_html",
    "write_csv",
    "write_rows_xlsx",
    "write_xlsx",
]

ANNEX2_TITLE = "工会消费帮扶情况统计表"
ANNEX2_ROW_LABELS: tuple[str, ...] = (
    "粤工惠购平台",
    "乡村振兴全国消费帮扶广东馆",
    "广东东西部扶贫协作产品交易网",
    "832平台",
    "其他采购渠道(含线上和线下)",
)
ANNEX2_HEADERS = ("采购平台", "人次(万)", "消费总金额或投入总额度(万元)")
#: A single union's own form: exact 人次 and 元.
EXACT_HEADERS = ("采购平台", "人次", "消费总金额或投入总额度(元)")
ANNEX2_LABEL = "附件2"  # the notice's label above the form (top left), printed in the page header
TOTAL_LABEL = "合计"
OVERVIEW_SHEET = "汇总"

_CENT = Decimal("0.01")
_DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_TEMPLATES = Path(__file__).parent / "templates"





@dataclass(frozen=True)
class _Line:
    label: str
    people: Decimal
    amount: Decimal


def _headers(table: Annex2Table) -> tuple[str, str, str]:
    return EXACT_HEADERS if table.exact else ANNEX2_HEADERS


def _lines(table: Annex2Table) -> list[_Line]:
    """The rows then 合计, each rounded from exact values (a single union's: exact)."""
    if table.exact:
        lines = [_Line(r.label, Decimal(r.people), Decimal(r.amount_fen) / 100) for r in table.rows]
        lines.append(_Line(TOTAL_LABEL, Decimal(table.total_people), Decimal(table.total_amount_fen) / 100))
        return lines
    lines = [_Line(r.label, wan_people(r.people), wan_yuan(r.amount_fen)) for r in table.rows]
    lines.append(
        _Line(TOTAL_LABEL, wan_people(table.total_people), wan_yuan(table.total_amount_fen))
    )
    return lines


def _footer(table: Annex2Table) -> list[str]:
    filled = table.fill_date.strftime("%Y年%m月%d日") if table.fill_date else ""
    return [
        f"填报人：{table.reporter or ''}",
        f"填表时间：{filled}",
        f"联系电话：{table.phone or ''}",
    ]


def _is_dangerous(text: str) -> bool:
    return text.startswith(_DANGEROUS_PREFIXES)


# ------------------------------------------------------------------------------ XLSX

_THIN = Side(style="thin", color="000000")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_CENTER = Alignment(horizontal="center", vertical="center", wrap_text=True)
_LEFT = Alignment(horizontal="left", vertical="center", wrap_text=True)
_FONT = "宋体"


def _put(ws: Worksheet, row: int, column: int, value: Any) -> Cell:
    """Write a value; text is always stored as text, never as a formula."""
    cell = ws.cell(row=row, column=column)
    if isinstance(value, str):
        value = writable(value)  # a stored string with a control character must not break the file
        cell.value = value
        cell.data_type = "s"  # openpyxl infers 'f' for a leading '='
        if _is_dangerous(value):
            cell.quotePrefix = True  # Excel's leading apostrophe: stays text when edited
    elif isinstance(value, Decimal):
        cell.value = value
        cell.number_format = "0.00"
    else:
        cell.value = value
        if isinstance(value, datetime):
            cell.number_format = "yyyy-mm-dd hh:mm"
        elif isinstance(value, date):
            cell.number_format = "yyyy-mm-dd"
    cell.font = Font(name=_FONT, size=11)
    return cell


def _page_setup(ws: Worksheet, last_row: int, last_col: int, *, tall: bool = True) -> None:
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.orientation = ws.ORIENTATION_PORTRAIT
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 1 if tall else 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.6
    ws.page_margins.top = ws.page_margins.bottom = 0.8
    ws.print_area = f"A1:{get_column_letter(last_col)}{last_row}"


_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def _sheet_title(name: str, used: set[str]) -> str:
    """A unique (case-insensitively) Excel-safe sheet name of at most 31 characters."""
    base = _BAD_SHEET_CHARS.sub("_", writable(name)).strip().strip("'").strip() or "Sheet"
    if base.lower() == "history":  # reserved by Excel
        base = f"{base}_"
    base = base[:31]
    title, n = base, 2
    while title.lower() in used:
        suffix = f"({n})"
        title = base[: 31 - len(suffix)] + suffix
        n += 1
    used.add(title.lower())
    return title


def _write_annex2_sheet(ws: Worksheet, table: Annex2Table) -> None:
    ws.merge_cells("A1:C1")
    title = _put(ws, 1, 1, ANNEX2_TITLE)
    title.font = Font(name=_FONT, size=18, bold=True)
    title.alignment = _CENTER
    ws.row_dimensions[1].height = 36
    ws.merge_cells("A2:C2")
    _put(ws, 2, 1, table.round_line).alignment = _CENTER
    ws.merge_cells("A3:C3")
    _put(ws, 3, 1, f"单位（公章）：{table.unit_name}").alignment = _LEFT
    ws.row_dimensions[3].height = 24

    for col, header in enumerate(_headers(table), start=1):
        cell = _put(ws, 4, col, header)
        cell.font = Font(name=_FONT, size=11, bold=True)
        cell.alignment = _CENTER
        cell.border = _BORDER
    ws.row_dimensions[4].height = 32

    row = 5
    for line in _lines(table):
        bold = line.label == TOTAL_LABEL
        people: Any = int(line.people) if table.exact else line.people
        for col, value in enumerate((line.label, people, line.amount), start=1):
            cell = _put(ws, row, col, value)
            if table.exact and col == 3:
                cell.number_format = "#,##0.00"
            cell.border = _BORDER
            cell.alignment = _CENTER if col > 1 or bold else _LEFT
            if bold:
                cell.font = Font(name=_FONT, size=11, bold=True)
        ws.row_dimensions[row].height = 26
        row += 1

    row += 1
    reporter, filled, phone = _footer(table)
    _put(ws, row, 1, reporter).alignment = _LEFT
    ws.merge_cells(start_row=row, start_column=2, end_row=row, end_column=3)
    _put(ws, row, 2, filled).alignment = _LEFT
    row += 1
    _put(ws, row, 1, phone).alignment = _LEFT
    if table.status_note:
        row += 1
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=3)
        _put(ws, row, 1, f"状态：{table.status_note}").alignment = _LEFT
        ws.row_dimensions[row].height = 32
    if note := rounding_note(table):
        row += 1
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=3)
        _put(ws, row, 1, note).alignment = _LEFT
    if table.supplement_note:
        row += 1
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=3)
        _put(ws, row, 1, table.supplement_note).alignment = _LEFT
        ws.row_dimensions[row].height = 48
    ws.column_dimensions["A"].width = 34
    ws.column_dimensions["B"].width = 14
    ws.column_dimensions["C"].width = 32
    _page_setup(ws, row, 3)
    # The notice's form carries "附件2" at its top left: printed in the page header.
    ws.oddHeader.left.text = ANNEX2_LABEL
    ws.oddHeader.left.size = 12
    ws.oddHeader.left.font = _FONT


def _write_overview(ws: Worksheet, tables: Sequence[Annex2Table], title: str) -> None:
    headers = ("序号", "单位", "人次(万)", "消费总金额或投入总额度(万元)", "状态")
    last_col = len(headers)
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=last_col)
    cell = _put(ws, 1, 1, title)
    cell.font = Font(name=_FONT, size=16, bold=True)
    cell.alignment = _CENTER
    ws.row_dimensions[1].height = 32
    for col, header in enumerate(headers, start=1):
        cell = _put(ws, 2, col, header)
        cell.font = Font(name=_FONT, size=11, bold=True)
        cell.alignment = _CENTER
        cell.border = _BORDER
    # Spreadsheet programs do not grow a row for wrapped text written by a library: the header
    # row gets the height of its two lines, or the wrapped 万元 header covers the first data row.
    ws.row_dimensions[2].height = 34
    row = 3
    for index, table in enumerate(tables, start=1):
        values = (
            index,
            table.unit_name,
            wan_people(table.total_people),
            wan_yuan(table.total_amount_fen),
            "；".join(x for x in (table.status_note, table.supplement_note) if x),
        )
        for col, value in enumerate(values, start=1):
            cell = _put(ws, row, col, value)
            cell.border = _BORDER
            cell.alignment = _LEFT if col in (2, 5) else _CENTER
        row += 1
    people = sum(t.total_people for t in tables)
    fen = sum(t.total_amount_fen for t in tables)
    for col, value in enumerate(("", TOTAL_LABEL, wan_people(people), wan_yuan(fen), ""), start=1):
        cell = _put(ws, row, col, value)
        cell.border = _BORDER
        cell.alignment = _CENTER
        cell.font = Font(name=_FONT, size=11, bold=True)
    # The channel breakdown of the province's total: the Annex 2 rows summed over the units.
    row += 2
    _put(ws, row, 2, "其中：按采购渠道").font = Font(name=_FONT, size=11, bold=True)
    labels = [r.label for r in tables[0].rows]
    for label in labels:
        row += 1
        p = sum(r.people for t in tables for r in t.rows if r.label == label)
        f = sum(r.amount_fen for t in tables for r in t.rows if r.label == label)
        for col, value in enumerate(("", label, wan_people(p), wan_yuan(f), ""), start=1):
            cell = _put(ws, row, col, value)
            cell.border = _BORDER
            cell.alignment = _LEFT if col == 2 else _CENTER
    for letter, width in zip("ABCDE", (6, 34, 12, 20, 22), strict=True):
        ws.column_dimensions[letter].width = width
    ws.print_title_rows = "2:2"
    _page_setup(ws, row, last_col, tall=len(tables) <= 45)


def _save(workbook: Workbook) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def write_xlsx(tables: Sequence[Annex2Table], *, overview_title: str | None = None,
               unsubmitted: Sequence[Sequence[object]] | None = None) -> bytes:
    """Write one Annex 2 sheet per table; with several tables, an overview sheet first.

    Args:
        tables: the units' tables (at least one). With more than one (the province workbook),
            the first sheet, 汇总, lists each unit's totals, status note and a province total.
        overview_title: the overview's title; defaults to ``{round_label}工会消费帮扶情况汇总表``.
        unsubmitted: the province workbook's units that have not reported, as rows of
            :data:`UNSUBMITTED_HEADERS` without the 序号: they share one sheet, 未报送单位
            (``无`` when empty), instead of an Annex 2 form of zeros each; the tables not
            ``reported`` then get no sheet of their own (they stay on the overview with their
            state).

    Returns:
        The XLSX file's bytes (values only, no formulas; A4 portrait, one page per sheet).

    Raises:
        ExportUsageError: when ``tables`` is empty.
    """
    if not tables:
        raise ExportUsageError("write_xlsx needs at least one table")
    workbook = Workbook()
    used: set[str] = set()
    first: Worksheet = workbook.active  # type: ignore[assignment]
    if len(tables) > 1:
        first.title = _sheet_title(OVERVIEW_SHEET, used)
        rounds = {t.round_label for t in tables}
        default = (
            f"{rounds.pop()}工会消费帮扶情况汇总表"
            if len(rounds) == 1
            else "工会消费帮扶情况汇总表"
        )
        _write_overview(first, tables, overview_title or default)
        sheets = [workbook.create_sheet() for _ in tables]
    else:
        sheets = [first]
    for ws, table in zip(sheets, tables, strict=True):
        if unsubmitted is not None and not table.reported and len(tables) > 1:
            workbook.remove(ws)
            continue
        ws.title = _sheet_title(table.unit_name, used)
        _write_annex2_sheet(ws, table)
    if unsubmitted is not None:
        ws = workbook.create_sheet()
        rounds = {t.round_label for t in tables}
        title = f"{rounds.pop() if len(rounds) == 1 else ''}{UNSUBMITTED_SHEET}"
        rows = [(index, *row) for index, row in enumerate(unsubmitted, start=1)]
        _write_rows_sheet(ws, title, UNSUBMITTED_HEADERS, rows, landscape=False,
                          sheet_name=_sheet_title(UNSUBMITTED_SHEET, used))
    return _save(workbook)


#: The province workbook's sheet of the units that have not reported, and its columns (no
#: phones: the 催报 list, for the chain of federations, carries them).
UNSUBMITTED_SHEET = "未报送单位"
UNSUBMITTED_HEADERS = ("序号", "单位", "状态", "报送截止", "填报人", "填报员人数")


def _display_width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def write_rows_xlsx(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[object]], *, landscape: bool = True
) -> bytes:
    """Write a plain list sheet (e.g. the 催报 list of units not yet submitted).

    Printed on A4 landscape, fitted to the page width (as many pages down as needed) with the
    header row repeated on every page; long cells wrap in columns of at most 30 characters, so
    the print stays readable (about 10 pt) instead of shrinking a wide sheet onto one page.

    Args:
        title: the sheet's title line (also the sheet name, made Excel-safe).
        headers: column headers.
        rows: the data rows; ``str``, ``int``, ``Decimal``, ``date``/``datetime`` or ``None``.

    Returns:
        The XLSX file's bytes; text that looks like a formula is stored as text.
    """
    workbook = Workbook()
    ws: Worksheet = workbook.active  # type: ignore[assignment]
    _write_rows_sheet(ws, title, headers, rows, landscape=landscape)
    return _save(workbook)


def write_sheets_xlsx(sheets: Sequence[tuple[str, str, Sequence[str], Sequence[Sequence[object]]]]) -> bytes:
    """Write several plain list sheets into one workbook, each as :func:`write_rows_xlsx` writes
    its one: ``(sheet name, title, headers, rows)`` per sheet, in order."""
    workbook = Workbook()
    used: set[str] = set()
    for n, (name, title, headers, rows) in enumerate(sheets):
        ws: Worksheet = workbook.active if n == 0 else workbook.create_sheet()  # type: ignore[assignment]
        _write_rows_sheet(ws, title, headers, rows, sheet_name=_sheet_title(name, used))
    return _save(workbook)


def _write_rows_sheet(ws: Worksheet, title: str, headers: Sequence[str], rows: Sequence[Sequence[object]], *,
                      landscape: bool = True, sheet_name: str | None = None) -> None:
    ws.title = sheet_name or _sheet_title(title, set())
    last_col = max(1, len(headers))
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=last_col)
    cell = _put(ws, 1, 1, title)
    cell.font = Font(name=_FONT, size=14, bold=True)
    cell.alignment = _CENTER
    widths = [_display_width(str(h)) for h in headers]
    for col, header in enumerate(headers, start=1):
        cell = _put(ws, 2, col, header)
        cell.font = Font(name=_FONT, size=11, bold=True)
        cell.alignment = _CENTER
        cell.border = _BORDER
    for r, values in enumerate(rows, start=3):
        for col, value in enumerate(values, start=1):
            cell = _put(ws, r, col, value)
            cell.border = _BORDER
            cell.alignment = _LEFT
            if col <= len(widths):
                widths[col - 1] = max(widths[col - 1], _display_width(str(value or "")))
    columns = [min(max(width + 2, 8), _MAX_LIST_WIDTH) for width in widths]
    for col, width in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(col)].width = width
    for r, values in enumerate(rows, start=3):
        # Wrapped cells need their height set (spreadsheet programs do not grow rows written by a
        # library); a CJK character (display width 2) takes about 1.6 width units in 宋体 11 pt.
        lines = max((math.ceil(_display_width(str(v or "")) / (1.2 * w))
                     for v, w in zip(values, columns, strict=False)), default=1)
        if lines > 1:
            ws.row_dimensions[r].height = 15 * lines
    ws.row_dimensions[1].height = 24
    ws.row_dimensions[2].height = 20
    if not rows:  # an empty list prints 无, never a header over nothing
        ws.merge_cells(start_row=3, start_column=1, end_row=3, end_column=last_col)
        _put(ws, 3, 1, "无").alignment = _CENTER
    ws.print_title_rows = "2:2"
    _page_setup(ws, max(3, len(rows) + 2), last_col, tall=False)
    if landscape:
        ws.page_setup.orientation = ws.ORIENTATION_LANDSCAPE
    ws.oddFooter.center.text = "第 &P 页，共 &N 页"


_MAX_LIST_WIDTH = 30


# ------------------------------------------------------------------------------ CSV


def csv_cell(value: object) -> object:
    """The one neutraliser for every CSV writer: text starting with ``= + - @``, a tab or a
    carriage return gets a leading ``'`` so no spreadsheet reads it as a formula. Numbers
    (``int``, ``Decimal``) are written as they are, so a refund's ``-15.00`` stays a number."""
    if isinstance(value, str):
        value = writable(value)
        return f"'{value}" if _is_dangerous(value) else value
    return value


def csv_bytes(rows: Sequence[Sequence[object]]) -> bytes:
    """Rows -> CSV bytes: every cell through :func:`csv_cell`, UTF-8 with BOM (Chinese Excel
    needs it), CRLF lines."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return buffer.getvalue().encode("utf-8-sig")


def write_csv(table: Annex2Table) -> bytes:
    """Write the Annex 2 table as CSV: UTF-8 with BOM (Chinese Excel needs it), CRLF lines.

    Args:
        table: the unit's table.

    Returns:
        The CSV bytes: title, round, unit, header, the rows, 合计, blank line, footer.
    """
    rows: list[Sequence[object]] = [[ANNEX2_TITLE], [table.round_line], [f"单位（公章）：{table.unit_name}"],
                                     _headers(table)]
    rows += [[line.label, int(line.people) if table.exact else line.people,
              line.amount.quantize(_CENT) if table.exact else line.amount] for line in _lines(table)]
    if note := rounding_note(table):  # short lines: a printed CSV keeps to one page's width
        rows += [[part] for part in re.split(r"(?<=[，；])", note) if part]
    rows.append([])
    rows += [[text] for text in _footer(table)]
    if table.draft and table.status_note:  # a draft says so (the footer stays last otherwise)
        rows.append([f"状态：{table.status_note}"])
    if table.supplement_note:  # 补报: what came after the report was sent, and from whom
        rows.append([table.supplement_note])
    return csv_bytes(rows)


# ------------------------------------------------------------------------------ HTML


def finalize(value: Any) -> Any:
    """Jinja2's ``finalize`` for every environment that renders stored text (the Annex 2 page,
    the work report, the web pages): a string passes :func:`writable` (a control character or a
    bidi override stored long ago never reaches a page); markup stays markup."""
    if isinstance(value, Markup):
        return Markup(writable(str(value)))
    return writable(value) if isinstance(value, str) else value


def sanitising(env: jinja2.Environment) -> jinja2.Environment:
    """``env`` with :func:`finalize` (set before any template compiles)."""
    env.finalize = finalize
    return env


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,
        finalize=finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(table: Annex2Table) -> str:
    """Render the printable Annex 2 page (A4 ``@page`` CSS), autoescaped.

    Args:
        table: the unit's table.

    Returns:
        A complete HTML document (Chinese), from ``workflow/templates/annex2.html``.
    """
    template = _environment().get_template("annex2.html")
    lines = _lines(table)
    return template.render(
        title=ANNEX2_TITLE,
        label=ANNEX2_LABEL,
        headers=_headers(table),
        table=table,
        rows=[(ln.label, *_html_figures(table, ln)) for ln in lines[:-1]],
        total=(lines[-1].label, *_html_figures(table, lines[-1])),
        rounding_note=rounding_note(table),
        footer=_footer(table),
        exact_people=f"{table.total_people:,}", exact_yuan=_yuan_text(table.total_amount_fen),
    )


def _html_figures(table: Annex2Table, line: _Line) -> tuple[str, str]:
    if table.exact:
        return f"{int(line.people):,}", _yuan_text(int(line.amount * 100))
    return f"{line.people:.2f}", f"{line.amount:.2f}"


def _yuan_text(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


# ------------------------------------------------------------------------------ import templates


def write_import_template(headers: Sequence[str], help_rows: Sequence[Sequence[str]], *, title: str,
                          example: Sequence[str] = ()) -> bytes:
    """An empty purchase-import template: a sheet 采购明细 with the header row (every column
    formatted as text, so long order numbers keep their digits) and a sheet 填写说明 listing
    each column, whether it is required, how to fill it in (format, allowed values), the other
    header names accepted and an example; below, an example row laid out as the data sheet.
    The data sheet stays empty: an example there would be imported.

    Args:
        headers: the template's header row.
        help_rows: ``(列名, 是否必填, 怎么填, 也可以叫, 示例)`` per column.
        title: the first line of the help sheet (which export this template is for).
        example: one example value per header, shown under the column table.
    """
    workbook = Workbook()
    ws: Worksheet = workbook.active  # type: ignore[assignment]
    ws.title = "采购明细"
    for col, header in enumerate(headers, start=1):
        cell = _put(ws, 1, col, header)
        cell.font = Font(name=_FONT, size=11, bold=True)
        cell.border = _BORDER
        letter = get_column_letter(col)
        ws.column_dimensions[letter].width = max(12, _display_width(header) + 4)
        for r in range(2, 202):  # text cells for the rows a clerk types or pastes
            ws.cell(row=r, column=col).number_format = "@"
    ws.freeze_panes = "A2"
    info: Worksheet = workbook.create_sheet("填写说明")
    _put(info, 1, 1, title).font = Font(name=_FONT, size=12, bold=True)
    for col, header in enumerate(("列名", "是否必填", "怎么填", "也可以叫", "示例"), start=1):
        _put(info, 2, col, header).font = Font(name=_FONT, size=11, bold=True)
    wrap = Alignment(horizontal="left", vertical="top", wrap_text=True)
    for r, values in enumerate(help_rows, start=3):
        for col, value in enumerate(values, start=1):
            _put(info, r, col, value).alignment = wrap
    for letter, width in zip("ABCDE", (16, 10, 60, 40, 22), strict=True):
        info.column_dimensions[letter].width = width
    if example:
        top = len(help_rows) + 5
        _put(info, top, 1, "示例：在“采购明细”表中照此格式逐行填写（第一行是表头，不要改动）").font = Font(
            name=_FONT, size=11, bold=True)
        for col, (header, value) in enumerate(zip(headers, example, strict=True), start=1):
            _put(info, top + 1, col, header).font = Font(name=_FONT, size=11, bold=True)
            _put(info, top + 2, col, value).alignment = _LEFT
    return _save(workbook)
