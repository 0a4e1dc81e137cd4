"""Parse purchase-ledger files (CSV or XLSX order exports) into plain rows.

This module is pure: bytes in, dataclasses out. It imports no database code, and it *parses*, it
does not *decide*: it says that a cell is empty, not a number or not a date, but whether a row is
allowed (the round's year, forbidden product forms, a channel or budget the round knows, refund
links) is decided by the import use case (:mod:`workflow.app.purchase_import`) with the same
domain rules as a line entered by hand (:func:`workflow.app.lifecycle.check_purchase`). Cells are
read by the domain's one parser of each kind: amounts and counts by :mod:`workflow.domain.money`,
payment times by :func:`workflow.domain.money.parse_paid_at`, channel names by
:mod:`workflow.domain.channels` and budget names by :mod:`workflow.domain.budgets`.

Contract for callers
--------------------
``parse_purchases`` never raises on bad *content*. Every problem is reported as a
:class:`RowError` (reason in Chinese, naming the spreadsheet row). A file-level problem (unreadable
file, no header row) is one error with ``row_number == 0``. **When ``ParseResult.errors`` is not
empty the caller must import nothing** (all or nothing): ``rows`` then only holds the rows that
parsed cleanly, so that the UI can show how far the file got, but they must not be stored.

Only programmer errors (a mapping without the required fields) raise :class:`ImportUsageError`.

What is accepted
----------------
* Files: ``.xlsx``/``.xlsm`` (detected by the ZIP signature whatever the name) and CSV/TSV text
  encoded as UTF-8 (with or without BOM), GBK or GB18030. Old ``.xls`` files are refused with a
  hint to re-save them. A workbook is first measured by :mod:`workflow.formats.xlsx_guard`
  (zip members, unzipped bytes, compression ratio, shared strings, padded cells, rows: the
  :class:`Bounds`) and refused unread past any of them; callers outside a test parse a workbook
  in a child process (:func:`workflow.formats.sandbox.run_bounded`), so that what openpyxl
  costs is bounded by a memory limit and a hard timeout too.
* The header row is searched within the first 10 rows; the row matching the most known header
  aliases wins (title rows above it are skipped). Headers are compared after NFKC normalisation,
  with spaces and ``*`` removed, so ``金额（元）`` matches ``金额(元)``.
* Dates: whatever :func:`workflow.domain.money.parse_paid_at` reads (``2021-12-31``,
  ``2021/12/31``, ``2021年12月31日``, ``2021.12.31``, optionally followed by ``HH:MM[:SS]``; ISO
  8601 with an offset; Excel date cells and serial numbers). Naive values are China time
  (Asia/Shanghai); ``paid_at`` is returned aware, in China time.
* Amounts: ``元``, ``￥``/``¥``, thousands commas, full-width digits and spaces are tolerated.
  More than two decimals is refused, never rounded (trailing zeros such as ``12.340`` are exact
  and accepted). A leading ``-`` or parentheses ``(15.00)`` make a refund (negative fen).
"""

from __future__ import annotations

import csv
import io
import logging
import re
import time as _time
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from workflow.domain import budgets, channels, money
from workflow.domain.errors import ImportUsageError
from workflow.formats import xlsx_guard

log = logging.getLogger(__name__)

__all__ = [
    "BUDGET_LABELS",
    "Bounds",
    "HeaderHelp",
    "REQUIRED_FIELDS",
    "TEMPLATE_FIELDS",
    "header_help",
    "template_csv",
    "CHINA_TZ",
    "FIELD_LABELS",
    "MAPPINGS",
    "ColumnMapping",
    "ImportUsageError",
    "ParseResult",
    "PurchaseRow",
    "RowError",
    "parse_purchases",
]

CHINA_TZ = ZoneInfo("Asia/Shanghai")
HEADER_SEARCH_ROWS = 10
_XLSX_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"





# --------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class PurchaseRow:
    """One parsed purchase line.

    ``amount_fen`` is negative for a refund; ``paid_at`` is aware (China time).
    """

    row_number: int
    paid_at: datetime
    channel: str
    order_no: str
    line_no: int
    amount_fen: int
    people: int
    holiday: str | None
    product: str
    product_form: str | None
    origin_region: str | None
    budget: str
    refund_of: str | None

    def content_key(self) -> tuple[object, ...]:
        """Everything but the row number: two rows with equal content keys are repeats."""
        return (
            self.paid_at,
            self.channel,
            self.order_no,
            self.line_no,
            self.amount_fen,
            self.people,
            self.holiday,
            self.product,
            self.product_form,
            self.origin_region,
            self.budget,
            self.refund_of,
        )


@dataclass(frozen=True)
class RowError:
    """A refused row (or, with ``row_number == 0``, a refused file).

    ``reason`` is a complete Chinese sentence that already names the row.
    """

    row_number: int
    field: str
    reason: str
    #: The code of the cell's refusal (``input.money``, ``input.time`` ...) when the domain's
    #: parser gave one; ``import.row`` for the file's own problems (empty cell, repeated key).
    code: str = "import.row"

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class ParseResult:
    """Outcome of :func:`parse_purchases`.

    Callers must import nothing when ``errors`` is non-empty.
    """

    rows: list[PurchaseRow]
    errors: list[RowError]
    header_row: int | None
    mapping_name: str
    repeats: int = 0

    @property
    def ok(self) -> bool:
        """True when the file may be imported (no errors)."""
        return not self.errors


@dataclass(frozen=True)
class ColumnMapping:
    """Which header aliases feed which :class:`PurchaseRow` field.

    Attributes:
        name: the mapping's name (the channel code for a platform export, or ``generic``).
        columns: field name → header aliases, most preferred first (``支付时间`` before
            ``下单时间``: purchases count by payment date).
        channel: the channel every row of this export belongs to, used when the file has no
            channel column (or the cell is empty).
    """

    name: str
    columns: Mapping[str, tuple[str, ...]]
    channel: str | None = None

    def __post_init__(self) -> None:
        missing = [f for f in _REQUIRED_COLUMNS if not self.columns.get(f)]
        if missing:
            raise ImportUsageError(f"mapping {self.name!r} lacks aliases for {missing}")
        unknown = set(self.columns) - set(FIELD_LABELS)
        if unknown:
            raise ImportUsageError(f"mapping {self.name!r} has unknown fields {sorted(unknown)}")


# Chinese names of our fields, for messages.
FIELD_LABELS: dict[str, str] = {
    "order_no": "订单号",
    "line_no": "商品行号",
    "paid_at": "支付时间",
    "amount": "实付金额",
    "people": "领取人数",
    "holiday": "节日",
    "product": "商品名称",
    "product_form": "商品形态",
    "origin_region": "产地",
    "budget": "经费来源",
    "channel": "渠道",
    "refund_of": "原订单号",
}

# Columns without which no row can be read (``people`` is required too: its absence refuses the
# file once, at the header, like these; ``ColumnMapping`` checks only these have aliases).
# The old per-row refusal for a missing people column said the same thing on every row.
# each row rather than the file, so the user sees which rows were affected).
_REQUIRED_COLUMNS = ("order_no", "paid_at", "amount", "product")

#: The budget sources: one table, in the domain (the name stays for the CLI's choices).
BUDGET_LABELS = budgets.BUDGETS

# Header names as platforms' order exports and clerks' own sheets really have them, most
# preferred first. Headers are compared after NFKC (full-width brackets become ASCII), without
# spaces or ``*``; a trailing unit in brackets (``（元）``, ``(人)``) may be left off either side.
_COMMON: dict[str, tuple[str, ...]] = {
    "order_no": ("订单号", "订单编号", "主订单号", "订单id", "订单ID", "交易单号", "交易订单号", "单号",
                 "采购单号", "外部订单号"),
    "line_no": ("商品行号", "行号", "子订单号", "子订单编号", "明细行号", "明细编号"),
    "paid_at": ("支付时间", "付款时间", "支付日期", "付款日期", "下单时间", "订单时间", "成交时间", "交易时间",
                "购买时间", "购买日期", "采购时间", "采购日期", "日期"),
    "amount": (
        "实付金额",
        "实付金额(元)",
        "实付款",
        "实付款(元)",
        "金额(元)",
        "金额",
        "订单金额",
        "订单金额(元)",
        "采购金额",
        "采购金额(元)",
        "支付金额",
        "付款金额",
        "实际支付金额",
        "成交金额",
        "交易金额",
        "消费金额",
    ),
    "people": ("领取人数", "领取人次", "人次", "人数", "受益人数", "受益人次", "受益职工人数", "受益职工人次",
               "发放人数", "发放人次", "慰问人数", "慰问人次", "慰问职工人数", "受惠人数", "受惠人次",
               "惠及人数", "惠及职工人数", "发放对象人数"),
    "holiday": ("节日", "慰问节日", "节日名称", "节日类型"),
    "product": ("商品名称", "商品", "品名", "产品名称", "产品", "商品标题", "货品名称", "商品信息", "采购商品"),
    "product_form": ("商品形态", "形式", "商品形式", "发放形式"),
    "origin_region": ("产地", "商品产地", "帮扶地区", "来源地", "产品产地"),
    "budget": ("经费来源", "预算科目", "经费科目", "资金来源"),
    "refund_of": ("原订单号", "退款原订单号", "关联订单号"),
}


def _platform(code: str, **overrides: tuple[str, ...]) -> ColumnMapping:
    return ColumnMapping(name=code, columns={**_COMMON, **overrides}, channel=code)


MAPPINGS: dict[str, ColumnMapping] = {
    # 粤工惠购 (WeChat mini-program) order export.
    "ygh": _platform(
        "ygh",
        order_no=("订单编号", "订单号"),
        paid_at=("支付时间", "付款时间", "下单时间"),
        amount=("实付金额(元)", "实付金额", "订单金额(元)", "订单金额"),
    ),
    # 832平台 purchase-order export.
    "p832": _platform(
        "p832",
        order_no=("订单号", "采购订单号", "订单编号"),
        line_no=("行号", "商品行号", "子订单号"),
        paid_at=("付款时间", "支付时间", "下单时间"),
        amount=("订单金额", "实付金额", "金额(元)"),
    ),
    # 乡村振兴全国消费帮扶广东馆.
    "gdg": _platform(
        "gdg",
        order_no=("订单编号", "订单号"),
        paid_at=("支付时间", "下单时间"),
        amount=("实付金额", "金额(元)", "订单金额"),
    ),
    # 广东东西部扶贫协作产品交易网.
    "dxb": _platform(
        "dxb",
        order_no=("订单号", "订单编号"),
        paid_at=("付款时间", "支付时间", "下单时间"),
        amount=("实付款", "实付金额", "订单金额"),
    ),
    # Our own template: any channel, named by a 渠道 column (code or Chinese name).
    "generic": ColumnMapping(
        name="generic",
        columns={**_COMMON, "channel": ("渠道", "采购平台", "采购渠道", "平台", "购买平台", "平台名称", "销售平台")},
    ),
}


def mapping_label(code: str, channel_names: Mapping[str, str]) -> str:
    """A mapping's name for users: 通用表格 or the platform's export, named after its channel."""
    if code == "generic":
        return "通用表格（按表头识别）"
    return f"{channel_names.get(code, code)}导出"


# The order of a template's columns; required ones first.
TEMPLATE_FIELDS = ("order_no", "line_no", "paid_at", "amount", "people", "product", "channel", "holiday",
                   "product_form", "origin_region", "budget", "refund_of")
REQUIRED_FIELDS = (*_REQUIRED_COLUMNS, "people")


@dataclass(frozen=True)
class HeaderHelp:
    """One column as the import page explains it."""

    field: str
    label: str  # our name for it (FIELD_LABELS)
    header: str  # the name a template uses
    required: bool
    aliases: tuple[str, ...]  # every header name accepted for it


def header_help(mapping: ColumnMapping) -> list[HeaderHelp]:
    """The columns of a mapping: the template's header, whether it is required, and the other
    names accepted for it (a platform export's own headers)."""
    out = []
    for f in TEMPLATE_FIELDS:
        aliases = mapping.columns.get(f)
        if not aliases:
            continue
        required = f in REQUIRED_FIELDS or (f == "channel" and mapping.channel is None)
        out.append(HeaderHelp(f, FIELD_LABELS[f], aliases[0], required, tuple(aliases)))
    return out


def template_csv(mapping: ColumnMapping) -> bytes:
    """An empty import template for a mapping: its header row, UTF-8 with BOM (Chinese Excel)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([h.header for h in header_help(mapping)])
    return buffer.getvalue().encode("utf-8-sig")


# --------------------------------------------------------------------------------------------
# Cell readers (the values themselves are read by the domain's parsers: money, channels, budgets)


def _nfkc(value: str) -> str:
    text = unicodedata.normalize("NFKC", value)
    # NFKC leaves these alone; they show up in copied spreadsheets.
    return text.replace("\u2212", "-").replace("\u3000", " ").replace("\xa0", " ").strip()


def _norm_header(value: object) -> str:
    if value is None:
        return ""
    text = _nfkc(str(value))
    return re.sub(r"[\s*＊]", "", text).lower()






def _paid_at(value: object) -> datetime:
    """A payment-time cell, read by the one parser (:func:`workflow.domain.money.parse_paid_at`),
    shown in China time."""
    return money.parse_paid_at(value).astimezone(CHINA_TZ)


def _parse_count(value: object, what: str, *, minimum: int) -> int:
    if isinstance(value, str):
        value = re.sub(r"(人次|人|个|行)$", "", money.ime_text(value).strip()).strip()
    return money.parse_count(value, what, minimum=minimum)


def _parse_text(value: object) -> str | None:
    """Cell → stripped text (None when empty). Undo common 'force text' tricks."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip().lstrip("'\t").strip()
    # ="0123" is how some platforms keep order numbers as text in CSV.
    match = re.fullmatch(r'="(.*)"', text)
    if match:
        text = match[1].strip()
    return text or None


# --------------------------------------------------------------------------------------------
# File reading


@dataclass(frozen=True)
class Bounds:
    """What one file may hold or cost before it is refused unread: data rows, seconds of parsing,
    and for an XLSX what :func:`workflow.formats.xlsx_guard.inspect_xlsx` measures before openpyxl
    touches it: uncompressed bytes (the zip entries' sizes; zipfile never inflates an entry past
    its declared size), zip members, each member's compression ratio, shared strings and cells
    (the empty cells openpyxl pads rows with included). The numbers come from the policy
    (:class:`workflow.domain.policy.Caps`)."""

    max_rows: int = 50_000
    max_unzipped_bytes: int = 50 * 1024 * 1024
    max_seconds: float = 60.0
    max_cells: int = 2_000_000
    max_strings: int = 1_000_000
    max_members: int = 1_000
    max_ratio: float = 100.0


class _TooBig(Exception):
    """Raised inside the readers when a bound is crossed; the message is for the user."""

    def __init__(self, message: str, code: str = "import.file_too_costly") -> None:
        super().__init__(message)
        self.code = code


def _limited(rows: Iterator[Sequence[object]], bounds: Bounds) -> list[list[object]]:
    """Materialise rows, stopping at the row bound (blank rows count: a sheet of 700,000 empty
    ``<row>`` elements is refused after max_rows) or the time bound."""
    limit = bounds.max_rows + HEADER_SEARCH_ROWS
    deadline = _time.monotonic() + bounds.max_seconds
    out: list[list[object]] = []
    for row in rows:
        out.append(list(row))
        if len(out) > limit:
            raise _TooBig(f"文件超过 {bounds.max_rows:,} 行上限：请拆分为多个文件后分别导入", "import.too_many_rows")
        if len(out) % 1000 == 0 and _time.monotonic() > deadline:
            raise _TooBig(seconds_refusal(bounds.max_seconds))
    return out


def seconds_refusal(seconds: float) -> str:
    """The clerk's sentence for a file whose parsing ran past the time bound."""
    return f"文件解析超过 {seconds:g} 秒上限：请拆分为多个较小的文件后分别导入"


#: A refused file: (the clerk's sentence, the refusal's code).
FileRefusal = tuple[str, str]


def _read_table(
    data: bytes, filename: str, mapping: ColumnMapping, bounds: Bounds
) -> tuple[list[list[object]], FileRefusal | None]:
    """Bytes → list of rows of cell values, or the file's refusal."""
    name = filename.lower()
    try:
        if is_xlsx(data, filename):
            return _read_xlsx(data, mapping, bounds)
        if data.startswith(_OLE_MAGIC) or name.endswith(".xls"):
            return [], ("不支持 Excel 97-2003（.xls）格式：请另存为 .xlsx 或 CSV 后再导入", "import.row")
        return _read_csv(data, mapping, bounds)
    except _TooBig as exc:
        return [], (str(exc), exc.code)


def is_xlsx(data: bytes, filename: str) -> bool:
    """Whether the file is read as a workbook (the ZIP signature, or the name)."""
    return data.startswith(_XLSX_MAGIC) or filename.lower().endswith((".xlsx", ".xlsm"))


def _check_zip(data: bytes, bounds: Bounds) -> FileRefusal | None:
    """The file's cost, measured before openpyxl touches it (:mod:`workflow.formats.xlsx_guard`)."""
    try:
        xlsx_guard.inspect_xlsx(
            data, max_members=bounds.max_members, max_unzipped_bytes=bounds.max_unzipped_bytes,
            max_ratio=bounds.max_ratio, max_rows=bounds.max_rows, max_cells=bounds.max_cells,
            max_strings=bounds.max_strings, header_rows=HEADER_SEARCH_ROWS)
    except xlsx_guard.TooCostly as exc:
        return exc.message, exc.code
    return None


#: The clerk's words for a file that is not a workbook (or is damaged): what to do, not the
#: library's exception (that goes to the log for the operator).
XLSX_UNREADABLE = "无法读取该 XLSX 文件：文件已损坏，或并不是 Excel 工作簿。请用 Excel 或 WPS 打开后另存为 .xlsx 再导入"
XLSX_CONTENT_UNREADABLE = "无法读取该 XLSX 文件的内容：文件可能已损坏。请用 Excel 或 WPS 打开后另存为 .xlsx 再导入"


def _read_xlsx(data: bytes, mapping: ColumnMapping, bounds: Bounds) -> tuple[list[list[object]], FileRefusal | None]:
    import openpyxl  # local: keeps importing this module cheap for CSV-only callers

    if (too_big := _check_zip(data, bounds)) is not None:
        return [], too_big
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except MemoryError:
        raise  # not the file's damage: the caller's memory limit (workflow.formats.sandbox)
    except Exception as exc:  # noqa: BLE001 - bad content must never raise
        log.info("xlsx upload unreadable: %s: %s", type(exc).__name__, exc)
        return [], (XLSX_UNREADABLE, "import.row")
    try:
        if not workbook.worksheets:
            return [], ("XLSX 文件中没有工作表", "import.row")
        # The first sheet whose header is recognisable (exports sometimes lead with a notes
        # sheet); the caller finds the header again in the chosen table.
        chosen = workbook.worksheets[0]
        for sheet in workbook.worksheets:
            top = [list(r) for r in sheet.iter_rows(max_row=HEADER_SEARCH_ROWS, values_only=True)]
            if _find_header(top, mapping)[0] is not None:
                chosen = sheet
                break
        return _limited(chosen.iter_rows(values_only=True), bounds), None
    except (_TooBig, MemoryError):
        raise
    except Exception as exc:  # noqa: BLE001 - bad content must never raise
        log.info("xlsx upload content unreadable: %s: %s", type(exc).__name__, exc)
        return [], (XLSX_CONTENT_UNREADABLE, "import.row")
    finally:
        workbook.close()


def _read_csv(data: bytes, mapping: ColumnMapping, bounds: Bounds) -> tuple[list[list[object]], FileRefusal | None]:
    text: str | None = None
    for encoding in ("utf-8-sig", "gb18030"):  # gb18030 is a superset of gbk
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if text is None or "\x00" in text:
        return (
            [],
            ("无法识别文件编码或文件不是文本表格（支持 UTF-8、GBK、GB18030 编码的 CSV 和 XLSX）", "import.row"),
        )
    # The delimiter whose reading of the first rows matches the most header aliases
    # (csv.Sniffer guesses wrong on Chinese title rows).
    head = "\n".join(text.splitlines()[:HEADER_SEARCH_ROWS])
    delimiter, best = ",", -1
    for candidate in (",", "\t", ";"):
        try:
            top = [list(r) for r in csv.reader(io.StringIO(head), delimiter=candidate)]
        except csv.Error:
            continue
        score = len(_find_header(top, mapping)[1])
        if score > best:
            delimiter, best = candidate, score
    try:
        rows = _limited(csv.reader(io.StringIO(text), delimiter=delimiter), bounds)
    except csv.Error as exc:
        return [], (f"CSV 格式错误：{exc}", "import.row")
    return rows, None


_UNIT_SUFFIX = re.compile(r"\((元|人|人次|个|份|次|件)\)$")


def _find_header(
    table: Sequence[Sequence[object]], mapping: ColumnMapping
) -> tuple[int | None, dict[str, int]]:
    """Return (0-based header row index, field → column index) for the best-matching row."""
    best: tuple[int | None, dict[str, int]] = (None, {})
    for index, row in enumerate(table[:HEADER_SEARCH_ROWS]):
        normalized = [_norm_header(cell) for cell in row]
        bare = [_UNIT_SUFFIX.sub("", h) for h in normalized]
        found: dict[str, int] = {}
        for field_name, aliases in mapping.columns.items():
            for alias in aliases:  # most preferred alias first
                key = _norm_header(alias)
                if key in normalized:
                    found[field_name] = normalized.index(key)
                    break
            else:  # the same names with a unit in brackets added or left off: 人数(人), 金额（元）
                for alias in aliases:
                    key = _UNIT_SUFFIX.sub("", _norm_header(alias))
                    if key and key in bare and bare.index(key) not in found.values():
                        found[field_name] = bare.index(key)
                        break
        if len(found) > len(best[1]):
            best = (index, found)
    if len(best[1]) < 2:
        return None, {}
    return best


# --------------------------------------------------------------------------------------------
# The parser


@dataclass
class _Context:
    channel_aliases: dict[str, str]
    fixed_channel: str | None
    errors: list[RowError] = field(default_factory=list)


def parse_purchases(
    data: bytes,
    filename: str,
    *,
    mapping: ColumnMapping | None = None,
    default_channel: str | None = None,
    channel_aliases: Mapping[str, str] | None = None,
    bounds: Bounds | None = None,
) -> ParseResult:
    """Parse a purchase file into candidate rows. Never raises on bad content (see the module
    docstring). Parses, never decides: the round's year, forbidden product forms, unknown channels
    or budgets and refund links are the rules of :func:`workflow.app.lifecycle.check_purchase`,
    applied by the import use case to every row, exactly as to a line entered by hand.

    Args:
        data: the uploaded file's bytes.
        filename: its name; the extension is a hint, the content (ZIP signature) decides.
        mapping: header aliases; ``MAPPINGS["generic"]`` (with a 渠道 column) when None.
        default_channel: the channel of rows whose channel is neither in a column nor fixed by
            the mapping.
        channel_aliases: channel name → code (:func:`workflow.domain.channels.alias_table` of the
            round's channels); every known name when None. A name it does not hold is kept as
            written, for the unknown-channel rule to quote.

    Returns:
        A :class:`ParseResult`. Import nothing unless ``result.errors`` is empty.
    """
    mapping = mapping or MAPPINGS["generic"]
    table_of_names = channels.alias_table() if channel_aliases is None else channel_aliases
    ctx = _Context(
        channel_aliases={channels.name_key(k): v for k, v in table_of_names.items()},
        fixed_channel=mapping.channel or default_channel,
    )

    def fail(message: str, code: str = "import.row") -> ParseResult:
        return ParseResult([], [RowError(0, "file", message, code)], None, mapping.name, 0)

    table, read_error = _read_table(data, filename, mapping, bounds or Bounds())
    if read_error:
        return fail(*read_error)
    header_index, columns = _find_header(table, mapping)
    if header_index is None:
        needed = "、".join("/".join(mapping.columns[f][:3]) for f in (*_REQUIRED_COLUMNS, "people"))
        return fail(f"未在前 {HEADER_SEARCH_ROWS} 行找到表头：需要 {needed} 等列")
    header_row = header_index + 1
    missing = [f for f in (*_REQUIRED_COLUMNS, "people") if f not in columns]
    if "channel" not in columns and ctx.fixed_channel is None:
        missing.append("channel")
    if missing:
        names = "；".join(
            f"{FIELD_LABELS[f]}（可用列名：{'/'.join((mapping.columns.get(f, ()) or ('渠道',))[:8])}）"
            for f in missing
        )
        return ParseResult(
            [],
            [RowError(header_row, "header", f"第 {header_row} 行（表头）缺少必需的列：{names}")],
            header_row,
            mapping.name,
            0,
        )

    rows: list[PurchaseRow] = []
    seen: dict[tuple[str, str, int], PurchaseRow] = {}
    repeats = 0
    for offset, cells in enumerate(table[header_index + 1 :], start=header_row + 1):
        values = {f: (cells[i] if i < len(cells) else None) for f, i in columns.items()}
        if all(_parse_text(v) is None for v in values.values()):
            continue  # blank line
        if (_parse_text(values.get("order_no")) or "") in {"合计", "总计", "小计"}:
            continue  # a platform's total line
        row = _parse_row(offset, values, ctx, people_mapped="people" in columns, mapping=mapping)
        if row is None:
            continue
        key = (row.channel, row.order_no, row.line_no)
        earlier = seen.get(key)
        if earlier is None:
            seen[key] = row
            rows.append(row)
        elif earlier.content_key() == row.content_key():
            repeats += 1
        else:
            ctx.errors.append(
                RowError(
                    offset,
                    "order_no",
                    f"第 {offset} 行：订单“{row.order_no}”（行号 {row.line_no}）与第 "
                    f"{earlier.row_number} 行重复但内容不同（金额 {_yuan(earlier.amount_fen)} 元 / "
                    f"{_yuan(row.amount_fen)} 元）",
                )
            )
    return ParseResult(rows, ctx.errors, header_row, mapping.name, repeats)


def _yuan(fen: int) -> str:
    return money.yuan_plain(fen)


def _parse_row(
    row_number: int,
    values: Mapping[str, Any],
    ctx: _Context,
    *,
    people_mapped: bool,
    mapping: ColumnMapping,
) -> PurchaseRow | None:
    """Parse one data row; append its errors to ``ctx.errors`` and return None if any."""
    errors: list[RowError] = []

    def refuse(field_name: str, reason: str, code: str = "import.row") -> None:
        errors.append(RowError(row_number, field_name, f"第 {row_number} 行：{reason}", code))

    def attempt(field_name: str, func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValueError as exc:  # MoneyInputError and TimeInputError are ValueErrors too
            refuse(field_name, str(getattr(exc, "message", exc)), getattr(exc, "code", "import.row"))
            return None

    order_no = _parse_text(values.get("order_no"))
    if order_no is None:
        refuse("order_no", "订单号为空")
    elif isinstance(values.get("order_no"), float) and abs(values["order_no"]) >= 1e15:
        refuse(
            "order_no", f"订单号“{order_no}”是数字且超过 15 位，Excel 已丢失精度：请把该列设为文本"
        )

    line_no = 1
    if _parse_text(values.get("line_no")) is not None:
        line_no = attempt("line_no", _parse_count, values["line_no"], "商品行号", minimum=1) or 1

    paid_at = None
    if _parse_text(values.get("paid_at")) is None:
        refuse("paid_at", "支付时间为空")
    else:
        paid_at = attempt("paid_at", _paid_at, values["paid_at"])

    amount_fen = None
    if _parse_text(values.get("amount")) is None:
        refuse("amount", "金额为空")
    else:
        amount_fen = attempt("amount", money.parse_yuan, values["amount"], "金额")

    people = None
    if not people_mapped:
        refuse("people", f"缺少领取人数（表头中没有 {'/'.join(mapping.columns['people'])} 列）")
    elif _parse_text(values.get("people")) is None:
        refuse("people", "领取人数为空")
    else:
        people = attempt("people", _parse_count, values["people"], "领取人数", minimum=0)

    product = _parse_text(values.get("product"))
    if product is None:
        refuse("product", "商品名称为空")
    product_form = _parse_text(values.get("product_form"))
    channel = _channel(values.get("channel"), ctx, refuse)
    budget_text = _parse_text(values.get("budget"))
    budget = budgets.DEFAULT_BUDGET if budget_text is None else budgets.resolve_budget(budget_text)
    refund_of = _parse_text(values.get("refund_of"))

    if errors:
        ctx.errors.extend(errors)
        return None
    assert paid_at is not None and amount_fen is not None and people is not None
    assert order_no is not None and product is not None and channel is not None
    return PurchaseRow(
        row_number=row_number,
        paid_at=paid_at,
        channel=channel,
        order_no=order_no,
        line_no=line_no,
        amount_fen=amount_fen,
        people=people,
        holiday=_parse_text(values.get("holiday")),
        product=product,
        product_form=product_form,
        origin_region=_parse_text(values.get("origin_region")),
        budget=budget,
        refund_of=refund_of,
    )


def _channel(value: object, ctx: _Context, refuse: Any) -> str | None:
    """The row's channel: the cell (a code or a name, resolved by the domain's one resolver), or
    the mapping's (or the caller's) channel when the cell is empty."""
    text = _parse_text(value)
    if text is None:
        if ctx.fixed_channel is None:
            refuse("channel", "渠道为空")
        return ctx.fixed_channel
    return channels.resolve(text, ctx.channel_aliases)
