"""What an XLSX file would cost to read, measured before any workbook library touches it.

A workbook is a zip of XML parts, and its cost is not its size: 485 KB can unzip to 190 MB of
eleven million shared strings (issue 20 point 5), a sheet of 50,000 rows can ask, through its
``<dimension ref="A1:XFD50000"/>``, for 800 million padded cells, and one member of zeros zips a
thousand to one. :func:`inspect_xlsx` reads only the zip's directory and then streams every XML
part through expat with no tree built and no DTD allowed, counting what openpyxl would later
materialise, and stops at the first cap crossed:

1. members in the archive (``max_members``);
2. the entries' declared uncompressed sizes (``max_unzipped_bytes``; zipfile never inflates an
   entry past its declared size, so this bounds the streaming below too);
3. compression ratio of each non-XML member of at least ``RATIO_FLOOR`` bytes (``max_ratio``);
4. streaming every XML part: shared strings (``<si>``, ``max_strings``), cells (``<c>``, and the
   cells openpyxl pads rows with: each row as wide as the sheet's dimension or its last cell,
   ``max_cells``) and rows per sheet (the last ``<row r>``, gaps included: ``max_rows``);
5. the compression ratio of the XML parts (after 4, so that a sheet of 700,000 empty rows is
   refused for its rows, the clerk's words, rather than its ratio).

Pure: bytes in, a :class:`Cost` out or :class:`TooCostly` raised (its message is Chinese, for the
clerk). A damaged zip is not this module's business: it returns ``None`` and the reader names the
damage.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from xml.parsers import expat

__all__ = ["RATIO_FLOOR", "Cost", "TooCostly", "inspect_xlsx"]

#: Members smaller than this (uncompressed) are not held to the ratio cap: a small part of
#: repeated markup zips very well and costs nothing.
RATIO_FLOOR = 1024 * 1024
_CHUNK = 64 * 1024
_MAX_COLUMN = 16_384  # XFD, Excel's last column
_MAX_ROW = 1_048_576


class TooCostly(Exception):
    """A cap crossed; ``message`` is the Chinese sentence for the clerk, ``code`` the refusal's
    code (:mod:`workflow.domain.codes`)."""

    def __init__(self, message: str, code: str = "import.file_too_costly") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Cost:
    """What the file would cost: members, uncompressed bytes, shared strings, cells (padded as
    openpyxl pads them) and the longest sheet's rows."""

    members: int
    unzipped_bytes: int
    strings: int
    cells: int
    rows: int


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.2f}".rstrip("0").rstrip(".")


def _split_ref(ref: str) -> tuple[int, int]:
    """``XFD12`` → (column 16384, row 12); (0, 0) for what is not a cell reference."""
    col = 0
    i = 0
    for ch in ref:
        if "A" <= ch <= "Z":
            col = col * 26 + ord(ch) - 64
            i += 1
        elif "a" <= ch <= "z":
            col = col * 26 + ord(ch) - 96
            i += 1
        else:
            break
        if col > _MAX_COLUMN:
            return _MAX_COLUMN, 0
    digits = ref[i:].lstrip("$")
    row = int(digits) if digits.isdigit() and len(digits) <= 8 else 0
    return col, row


class _Counter:
    """Counts one XML part's elements through expat callbacks, raising at the first cap."""

    def __init__(self, caps: _Caps, totals: list[int]) -> None:
        self.caps = caps
        self.totals = totals  # [strings, cells] over the whole file
        self.width = 0  # the sheet's dimension (columns openpyxl pads every row to), 0 if none
        self.row = 0  # the current row's number
        self.row_width = 0  # the current row's last column
        self.row_cells = 0  # the current row's <c> elements (already counted)
        self.rows = 0

    def start(self, name: str, attrs: dict[str, str]) -> None:
        local = name.rpartition("}")[2]
        if local == "c":
            self.totals[1] += 1
            self.row_cells += 1
            ref = attrs.get("r")
            # openpyxl places a cell without a reference after the previous one.
            self.row_width = max(self.row_width, _split_ref(ref)[0]) if ref else self.row_width + 1
            if self.totals[1] > self.caps.max_cells:
                self._too_many_cells()
        elif local == "row":
            self._end_row()
            ref = attrs.get("r", "")
            number = int(ref) if ref.isdigit() and len(ref) <= 8 else self.row + 1
            gap = max(0, number - self.row - 1)  # rows openpyxl fills in as empty
            self.row = max(number, self.row + 1)
            self.rows = self.row
            self.totals[1] += gap * self.width
            if self.rows > self.caps.max_rows:
                raise TooCostly(f"文件超过 {self.caps.data_rows:,} 行上限：请拆分为多个文件后分别导入",
                                "import.too_many_rows")
            if self.totals[1] > self.caps.max_cells:
                self._too_many_cells()
        elif local == "si":
            self.totals[0] += 1
            if self.totals[0] > self.caps.max_strings:
                raise TooCostly(f"XLSX 文件的共享字符串超过 {self.caps.max_strings:,} 个上限：文件中有大量"
                                "无用的文字，请用 Excel 或 WPS 打开后复制数据到新工作簿，另存为 .xlsx 再导入")
        elif local == "dimension":
            ref = attrs.get("ref", "")
            self.width = _split_ref(ref.rpartition(":")[2])[0]

    def _end_row(self) -> None:
        """The finished row costs its width (the dimension's, or its last cell's if wider): the
        empty cells openpyxl pads it with are added to the cells already counted."""
        if self.row:
            self.totals[1] += max(0, max(self.width, self.row_width) - self.row_cells)
        self.row_width = self.row_cells = 0

    def close(self) -> None:
        self._end_row()
        self.row = 0
        if self.totals[1] > self.caps.max_cells:
            self._too_many_cells()

    def _too_many_cells(self) -> None:
        raise TooCostly(f"XLSX 文件的单元格超过 {self.caps.max_cells:,} 个上限（含表格范围内的空单元格）："
                        "请删除多余的行列或工作表，或拆分为多个文件后分别导入")


@dataclass(frozen=True)
class _Caps:
    max_members: int
    max_unzipped_bytes: int
    max_ratio: float
    max_rows: int  # rows of a sheet, header search rows included
    data_rows: int  # the same, as the clerk knows it
    max_cells: int
    max_strings: int


def _forbid_dtd(*_args: object) -> None:
    raise TooCostly("XLSX 文件含有不允许的 XML 声明（DTD 或实体定义），不是 Excel 或 WPS 保存的工作簿："
                    "请用 Excel 或 WPS 打开后另存为 .xlsx 再导入")


def _is_xml(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> bool:
    """An XML part (what openpyxl may parse): its first bytes are markup, whatever its name."""
    if entry.is_dir() or entry.file_size == 0:
        return False
    with archive.open(entry) as member:
        head = member.read(64)
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<")


def _ratio_check(entries: list[zipfile.ZipInfo], caps: _Caps) -> None:
    for e in entries:
        if e.file_size >= RATIO_FLOOR and e.file_size > caps.max_ratio * max(e.compress_size, 1):
            ratio = e.file_size / max(e.compress_size, 1)
            raise TooCostly(f"XLSX 文件中的“{e.filename[:80]}”压缩比为 {ratio:,.0f} 倍，超过 {caps.max_ratio:g} 倍上限"
                            "（可能是“压缩炸弹”）：请用 Excel 或 WPS 打开后另存为 .xlsx 再导入")


def _scan(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, caps: _Caps, totals: list[int]) -> int:
    """Stream one XML part through expat; returns its rows."""
    counter = _Counter(caps, totals)
    parser = expat.ParserCreate(namespace_separator="}")
    parser.StartDoctypeDeclHandler = _forbid_dtd
    parser.EntityDeclHandler = _forbid_dtd
    parser.StartElementHandler = counter.start
    parser.buffer_text = False
    try:
        with archive.open(entry) as member:
            while chunk := member.read(_CHUNK):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except expat.ExpatError:
        pass  # malformed XML: openpyxl names the damage; what was read so far is counted
    counter.close()
    return counter.rows


def inspect_xlsx(
    data: bytes,
    *,
    max_members: int,
    max_unzipped_bytes: int,
    max_ratio: float,
    max_rows: int,
    max_cells: int,
    max_strings: int,
    header_rows: int = 10,
) -> Cost | None:
    """Measure an XLSX file's cost; raise :class:`TooCostly` at the first cap crossed.

    ``max_rows`` counts data rows (the clerk's number); a sheet may hold ``header_rows`` more
    (title rows above the header). Returns None when the bytes are not a readable zip (the reader
    names the damage).
    """
    caps = _Caps(max_members, max_unzipped_bytes, max_ratio, max_rows + header_rows, max_rows,
                 max_cells, max_strings)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        return None
    with archive:
        entries = archive.infolist()
        if len(entries) > caps.max_members:
            raise TooCostly(f"XLSX 文件包含 {len(entries):,} 个部件，超过 {caps.max_members:,} 个上限："
                            "请用 Excel 或 WPS 打开后另存为 .xlsx 再导入")
        total = sum(max(0, e.file_size) for e in entries)
        if total > caps.max_unzipped_bytes:
            raise TooCostly(f"XLSX 文件解压后超过 {_mb(caps.max_unzipped_bytes)} MB 上限：请删除多余的工作表、"
                            "或拆分为多个文件后分别导入")
        try:
            xml = [e for e in entries if _is_xml(archive, e)]
            _ratio_check([e for e in entries if e not in xml], caps)
            totals = [0, 0]
            rows = max((_scan(archive, e, caps, totals) for e in xml), default=0)
        except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, RuntimeError):
            return None  # a damaged or encrypted member: the reader names it
        _ratio_check(xml, caps)
    return Cost(members=len(entries), unzipped_bytes=total, strings=totals[0], cells=totals[1], rows=rows)
