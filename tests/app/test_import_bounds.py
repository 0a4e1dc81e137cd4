"""Issue 10 points 1 and 2: a hostile purchase file is refused by its bounds (rows, uncompressed
size, time) before any write transaction, other clerks' saves go on meanwhile, and a refused
import lists the first 200 bad rows and counts the rest (service, API, page, CLI)."""

from __future__ import annotations

import io
import threading
import zipfile

import pytest

from tests.app.test_purchase_import import csv, run
from tests.conftest import World
from workflow.domain.errors import BadInput, ImportRefused
from workflow.formats import ledger

_HEAD = ["订单号", "商品行号", "支付时间", "实付金额", "领取人数", "商品名称", "商品形态", "经费来源", "渠道", "原订单号"]


def xlsx_bomb(rows: int) -> bytes:
    """A tiny XLSX whose one sheet holds a header and ``rows`` empty ``<row>`` elements."""
    cells = "".join(f'<c r="{chr(65 + i)}1" t="inlineStr"><is><t>{h}</t></is></c>' for i, h in enumerate(_HEAD))
    body = "<row/>" * rows
    sheet = ('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
             f'spreadsheetml/2006/main"><sheetData><row r="1">{cells}</row>{body}</sheetData></worksheet>')
    files = {
        "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
        "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": sheet,
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return out.getvalue()


def test_a_sheet_of_700000_empty_rows_is_refused_by_the_row_bound(world: World) -> None:
    data = xlsx_bomb(700_000)
    assert len(data) < 200 * 1024
    world.plan("G1")
    with pytest.raises(ImportRefused) as exc:
        run(world, data, filename="bomb.xlsx")
    assert "文件超过 50,000 行上限" in exc.value.message


def test_the_uncompressed_size_bound_reads_the_zip_entries() -> None:
    data = xlsx_bomb(40_000)  # about 0.24 MB uncompressed
    result = ledger.parse_purchases(data, "a.xlsx", bounds=ledger.Bounds(max_unzipped_bytes=128 * 1024))
    assert [e.reason for e in result.errors] == [
        "XLSX 文件解压后超过 0.12 MB 上限：请删除多余的工作表、或拆分为多个文件后分别导入"]
    result = ledger.parse_purchases(data, "a.xlsx", bounds=ledger.Bounds(max_seconds=0.0))
    assert "秒上限" in result.errors[0].reason


def test_other_clerks_save_while_a_big_import_is_parsed(world: World) -> None:
    """The import parses with no transaction open: on SQLite (one writer at a time) the other
    clerk's saves all go through while a 700,000-row file is being read and refused."""
    w = world
    w.plan("G1")
    w.plan("G2")
    data = xlsx_bomb(700_000)
    outcome: list[BaseException] = []

    def importer() -> None:
        try:
            run(w, data, filename="bomb.xlsx")
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    thread = threading.Thread(target=importer)
    thread.start()
    saved = 0
    while thread.is_alive() and saved < 200:
        w.buy("G2", f"S-{saved}", 1000)
        saved += 1
    thread.join()
    assert saved > 0
    assert isinstance(outcome[0], ImportRefused)


def _bad_rows(n: int) -> bytes:
    return csv([f"X{i},1,2021-10-20 10:00,abc,1,梅州金柚,实物,额外额度,粤工惠购," for i in range(n)])


def test_a_refused_import_lists_the_first_200_bad_rows_and_counts_the_rest(world: World) -> None:
    world.plan("G1")
    with pytest.raises(ImportRefused) as exc:
        run(world, _bad_rows(3_000))
    e = exc.value
    assert (len(e.errors), e.total, e.more) == (200, 3_000, 2_800)
    assert e.message.count("\n") == 201  # head, 200 rows, the count of the rest
    assert "有 3,000 处错误" in e.message and "另有 2,800 处错误未列出" in e.message


def test_a_file_over_the_byte_cap_is_refused_before_parsing(world: World) -> None:
    world.plan("G1")
    with pytest.raises(BadInput) as exc:
        run(world, b"x" * (20 * 1024 * 1024 + 1))
    assert exc.value.code == "import.too_large"
