"""Issue 20 point 5: what a hostile XLSX costs the web worker and the other clerks.

Usage::

    python -m bench.xlsx_bomb [--strings 11000000] [--saves 50] [--timeout 150]

Builds a shared-strings bomb (:func:`shared_strings_bomb`: a valid purchase sheet of three rows
whose ``xl/sharedStrings.xml`` also holds millions of tiny unused strings; 11 million strings are
188 MB unzipped, 469 KB zipped), plans two records on a fresh SQLite world, then
imports the bomb into G1 in a thread while the main thread saves ``--saves`` purchase lines by
hand into G2 (:func:`workflow.app.purchases.add_purchase`, what the JSON API calls), timing each.
The same saves are first timed with no import running (the floor). Prints one JSON object: the
import's outcome and seconds, this process' peak RSS (the web worker) and the parse child's (as
:mod:`workflow.formats.sandbox` logs it), and the saves' p50/p99/max with and without the bomb.
``--warm`` imports one small workbook first (untimed), so that the forkserver is running, as it
is after a web worker's first upload.

The generators are used by the tests too (``tests/formats/test_xlsx_guard.py``).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import resource
import statistics
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
HEADER = ["订单号", "商品行号", "支付时间", "实付金额", "领取人数", "商品名称", "商品形态", "经费来源", "渠道", "原订单号"]
ROWS = [
    ["BOMB-1", "1", "2021-10-20 10:00", "100.00", "2", "梅州金柚", "实物", "额外额度", "粤工惠购", ""],
    ["BOMB-2", "1", "2021-10-20 11:00", "50.00", "1", "清远鸡", "实物", "额外额度", "粤工惠购", ""],
    ["BOMB-3", "1", "2021-10-21 09:00", "20.00", "1", "韶关香菇", "实物", "额外额度", "粤工惠购", ""],
]
_PARTS = {
    "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
    "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    "xl/workbook.xml": f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{NS}" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
}


def _sheet() -> str:
    """The header as shared strings 0..9, the rows as inline strings."""
    head = "".join(f'<c r="{chr(65 + i)}1" t="s"><v>{i}</v></c>' for i in range(len(HEADER)))
    body = "".join(
        f'<row r="{n}">' + "".join(f'<c r="{chr(65 + i)}{n}" t="inlineStr"><is><t>{v}</t></is></c>'
                                   for i, v in enumerate(row) if v) + "</row>"
        for n, row in enumerate(ROWS, start=2))
    return (f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{NS}"><sheetData>'
            f'<row r="1">{head}</row>{body}</sheetData></worksheet>')


def _tiny_strings(count: int) -> Iterable[bytes]:
    """``count`` two-letter ``<si>`` elements (each a new string object once read), in chunks of
    about 1 MB. One repeated string zips best: 11 million are 188 MB unzipped, 469 KB zipped,
    the issue's 485 KB file."""
    one = b"<si><t>aa</t></si>"
    per_chunk = 60_000
    left = count
    while left > 0:
        n = min(left, per_chunk)
        yield one * n
        left -= n


def shared_strings_bomb(strings: int = 11_000_000, *, extra: dict[str, bytes] | None = None) -> bytes:
    """A valid three-row purchase workbook whose shared-string table also holds ``strings``
    tiny unused strings (18 bytes each unzipped, about 400 to 1 zipped)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, text in _PARTS.items():
            z.writestr(name, text)
        z.writestr("xl/worksheets/sheet1.xml", _sheet())
        total = strings + len(HEADER)
        with z.open("xl/sharedStrings.xml", "w", force_zip64=True) as f:
            f.write(f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{NS}" count="{total}" '
                    f'uniqueCount="{total}">'.encode())
            f.write("".join(f"<si><t>{h}</t></si>" for h in HEADER).encode())
            for chunk in _tiny_strings(strings):
                f.write(chunk)
            f.write(b"</sst>")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return out.getvalue()


def zip_bomb(member_bytes: int = 40 * 1024 * 1024) -> bytes:
    """The same valid workbook (no unused strings) carrying one more member of ``member_bytes``
    zero bytes (about 1,000 to 1 zipped) that no reader of the sheet ever opens."""
    return shared_strings_bomb(0, extra={"docProps/thumbnail.bin": bytes(member_bytes)})


def padded_bomb(rows: int = 50_000) -> bytes:
    """A header and ``rows`` empty rows under a ``<dimension ref="A1:XFD…"/>``: openpyxl pads every
    row to the dimension's 16,384 columns (800 million cells for 50,000 rows), from a file of a
    few KB that stays under the row cap."""
    out = io.BytesIO()
    sheet = _sheet().replace("<sheetData>", f'<dimension ref="A1:XFD{rows + 1}"/><sheetData>')
    sheet = sheet.replace("</sheetData>", "<row/>" * rows + "</sheetData>")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, text in _PARTS.items():
            z.writestr(name, text)
        z.writestr("xl/worksheets/sheet1.xml", sheet)
        z.writestr("xl/sharedStrings.xml", f'<sst xmlns="{NS}">' + "".join(f"<si><t>{h}</t></si>" for h in HEADER)
                   + "</sst>")
    return out.getvalue()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else ordered * 99
    return {"n": len(ordered), "p50_ms": round(q[49] * 1000, 1), "p99_ms": round(q[98] * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1)}


def run(strings: int, saves: int, timeout: float, warm: bool = False) -> dict[str, Any]:
    from tests.conftest import NOW_2021, build_world
    from workflow.app import purchase_import
    from workflow.store.tables import Database

    started = time.perf_counter()
    bomb = shared_strings_bomb(strings)
    made = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        database = Database(f"sqlite:///{Path(tmp) / 'bomb.db'}")
        database.upgrade()
        w = build_world(database)
        w.plan("G1")
        w.plan("G2")
        w.plan("G3")
        floor = []
        for i in range(saves):
            t0 = time.perf_counter()
            w.buy("G2", f"FLOOR-{i}", 1000)
            floor.append(time.perf_counter() - t0)
        if warm:  # the forkserver started and its modules loaded, as after a first upload
            purchase_import.import_purchases(w.uow(), record_id=w.rid("G3"), user_id=w.uid("g3-clerk"),
                                             data=shared_strings_bomb(0), filename="warm.xlsx", now=NOW_2021)
        children: list[logging.LogRecord] = []
        catcher = logging.Handler()
        catcher.emit = children.append  # type: ignore[method-assign]
        logging.getLogger("workflow.formats.sandbox").addHandler(catcher)
        logging.getLogger("workflow.formats.sandbox").setLevel(logging.INFO)
        children.clear()
        rss_before = _rss_mb()
        outcome: dict[str, Any] = {}

        def importer() -> None:
            t0 = time.perf_counter()
            try:
                result = purchase_import.import_purchases(
                    w.uow(), record_id=w.rid("G1"), user_id=w.uid("g1-clerk"), data=bomb,
                    filename="bomb.xlsx", now=NOW_2021)
                outcome["result"] = f"imported: {result.new} new rows"
            except Exception as exc:  # noqa: BLE001 - reported
                outcome["result"] = f"{type(exc).__name__}: {str(exc)[:200]}"
            outcome["seconds"] = round(time.perf_counter() - t0, 2)

        thread = threading.Thread(target=importer, daemon=True)
        t_start = time.perf_counter()
        thread.start()
        during = []
        overlapped = 0
        for i in range(saves):
            overlapped += thread.is_alive()
            t0 = time.perf_counter()
            w.buy("G2", f"DURING-{i}", 1000)
            during.append(time.perf_counter() - t0)
            time.sleep(0.02)  # a clerk's pace, not a tight loop
        thread.join(timeout=max(0.0, timeout - (time.perf_counter() - t_start)))
        if thread.is_alive():
            outcome.setdefault("result", f"still running after {timeout:g} s (stopped)")
            outcome.setdefault("seconds", timeout)
        with w.uow(True) as uow:
            written = uow.purchases.count(w.rid("G1"))
        child_peak = max((getattr(r, "child_peak_kb", 0) for r in children), default=0) / 1024
        database.dispose()
    return {
        "bomb": {"zipped_kb": round(len(bomb) / 1024, 1), "strings": strings, "made_s": round(made, 2)},
        "import": {**outcome, "rows_written": written},
        "peak_rss_mb": {"web_worker_before_upload": round(rss_before, 1), "web_worker": round(_rss_mb(), 1),
                        "parse_child": round(child_peak, 1) if children else None},
        "saves_without_import": _percentiles(floor),
        "saves_during_import": {**_percentiles(during), "started_while_importing": overlapped},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strings", type=int, default=11_000_000)
    parser.add_argument("--saves", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=150.0)
    parser.add_argument("--warm", action="store_true", help="one small workbook imported first (untimed)")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.strings, args.saves, args.timeout, args.warm), ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
