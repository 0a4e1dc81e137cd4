"""Issue 20 point 5: an XLSX is measured before openpyxl touches it (zip members, unzipped bytes,
compression ratio, shared strings, padded cells, rows; no DTD), and parsed in a child process with
a memory limit and a hard timeout."""

from __future__ import annotations

import io
import logging
import time
import zipfile

import pytest

from bench.xlsx_bomb import padded_bomb, shared_strings_bomb, zip_bomb
from workflow.formats import ledger, sandbox, xlsx_guard

GUARD = {"max_members": 1_000, "max_unzipped_bytes": 50 * 1024 * 1024, "max_ratio": 100, "max_rows": 50_000,
         "max_cells": 2_000_000, "max_strings": 1_000_000}


@pytest.fixture(scope="module")
def strings_bomb() -> bytes:
    """2.5 million tiny shared strings: 45 MB unzipped (under the 50 MB cap), about 110 KB zipped."""
    return shared_strings_bomb(2_500_000)


def _refusal(data: bytes, **bounds: float) -> tuple[str, str, float]:
    started = time.monotonic()
    result = ledger.parse_purchases(data, "bomb.xlsx", bounds=ledger.Bounds(**bounds))  # type: ignore[arg-type]
    elapsed = time.monotonic() - started
    assert result.rows == [] and len(result.errors) == 1 and result.errors[0].row_number == 0
    return result.errors[0].code, result.errors[0].reason, elapsed


def test_a_shared_strings_bomb_under_the_size_cap_is_refused_by_its_strings_in_seconds(strings_bomb: bytes) -> None:
    assert len(strings_bomb) < 300 * 1024
    code, reason, elapsed = _refusal(strings_bomb)
    assert code == "import.file_too_costly"
    assert reason.startswith("XLSX 文件的共享字符串超过 1,000,000 个上限")
    assert elapsed < 10


def test_the_issues_bomb_is_refused_by_its_unzipped_size_from_the_zip_directory() -> None:
    data = shared_strings_bomb(11_000_000)  # 188 MB unzipped, 469 KB zipped: the issue's file
    assert len(data) < 600 * 1024
    code, reason, elapsed = _refusal(data)
    assert (code, reason) == ("import.file_too_costly", "XLSX 文件解压后超过 50 MB 上限：请删除多余的工作表、或拆分为多个文件后分别导入")
    assert elapsed < 1


def test_a_zip_bomb_member_is_refused_by_its_ratio_unread() -> None:
    data = zip_bomb()  # a 40 MB member of zeros, about 1,000 to 1
    assert len(data) < 100 * 1024
    code, reason, elapsed = _refusal(data)
    assert code == "import.file_too_costly"
    assert "docProps/thumbnail.bin" in reason and "超过 100 倍上限" in reason
    assert elapsed < 2


def test_rows_padded_to_the_dimension_count_as_cells() -> None:
    """50,000 empty rows under ``A1:XFD50001`` would be 800 million cells in openpyxl."""
    code, reason, _ = _refusal(padded_bomb(50_000))
    assert code == "import.file_too_costly" and reason.startswith("XLSX 文件的单元格超过 2,000,000 个上限")
    cost = xlsx_guard.inspect_xlsx(padded_bomb(100), **GUARD)  # type: ignore[arg-type]
    assert cost is not None and (cost.cells, cost.rows) == (104 * 16_384, 104)  # header, 3 rows, 100 empty


def test_a_row_number_far_down_counts_the_rows_openpyxl_fills_in() -> None:
    data = shared_strings_bomb(0)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    parts["xl/worksheets/sheet1.xml"] = parts["xl/worksheets/sheet1.xml"].replace(
        b"</sheetData>", b'<row r="1048576"><c r="A1048576" t="inlineStr"><is><t>x</t></is></c></row></sheetData>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n, b in parts.items():
            z.writestr(n, b)
    code, reason, _ = _refusal(out.getvalue())
    assert (code, reason) == ("import.too_many_rows", "文件超过 50,000 行上限：请拆分为多个文件后分别导入")


def test_too_many_members_and_a_dtd_are_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for i in range(1_001):
            z.writestr(f"m{i}.xml", "<a/>")
    code, reason, _ = _refusal(out.getvalue())
    assert code == "import.file_too_costly" and reason.startswith("XLSX 文件包含 1,001 个部件，超过 1,000 个上限")
    laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
              "<sst>&lol2;</sst>")
    data = shared_strings_bomb(0, extra={"xl/extra.xml": laughs.encode()})
    code, reason, _ = _refusal(data)
    assert code == "import.file_too_costly" and "DTD" in reason


def test_a_normal_workbook_costs_what_it_holds() -> None:
    cost = xlsx_guard.inspect_xlsx(shared_strings_bomb(0), **GUARD)  # type: ignore[arg-type]
    assert cost is not None and (cost.strings, cost.rows) == (10, 4)
    assert xlsx_guard.inspect_xlsx(b"PK\x03\x04 not a zip", **GUARD) is None  # type: ignore[arg-type]
    result = ledger.parse_purchases(shared_strings_bomb(0), "ok.xlsx")
    assert result.ok and [r.order_no for r in result.rows] == ["BOMB-1", "BOMB-2", "BOMB-3"]


# --- the child process -------------------------------------------------------------------------


def _hog(megabytes: int) -> int:
    blocks = [bytearray(1024 * 1024) for _ in range(megabytes)]
    return len(blocks)


def _sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


def _fail() -> None:
    raise ValueError("a bug")


def test_the_child_returns_the_result_and_raises_what_it_raised() -> None:
    assert sandbox.run_bounded(_hog, 10, memory_bytes=256 * 1024**2, seconds=30, timeout_message="-") == 10
    with pytest.raises(ValueError, match="a bug"):
        sandbox.run_bounded(_fail, memory_bytes=256 * 1024**2, seconds=30, timeout_message="-")


def test_the_child_is_refused_past_its_memory_limit() -> None:
    with pytest.raises(sandbox.SandboxRefused) as exc:
        sandbox.run_bounded(_hog, 2_000, memory_bytes=128 * 1024**2, seconds=30, timeout_message="-")
    assert exc.value.code == "import.file_too_costly"
    assert exc.value.message.startswith("文件解析所需内存超过 128 MB 上限")


def test_the_child_is_killed_at_its_hard_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(sandbox.SandboxRefused) as exc:
        sandbox.run_bounded(_sleep, 60, memory_bytes=128 * 1024**2, seconds=1, timeout_message="超时了")
    assert exc.value.message == "超时了"
    assert time.monotonic() - started < 10


def test_the_bomb_measured_in_the_child_costs_the_child_little(strings_bomb: bytes, caplog: pytest.LogCaptureFixture) -> None:
    """The child's own peak RSS (it reports it) while it streams 45 MB of shared strings to the cap."""
    caplog.set_level(logging.INFO, logger="workflow.formats.sandbox")
    result = sandbox.run_bounded(ledger.parse_purchases, strings_bomb, "bomb.xlsx", memory_bytes=512 * 1024**2,
                                 seconds=60, timeout_message="-")
    assert result.errors[0].code == "import.file_too_costly"
    peaks = [getattr(r, "child_peak_kb", None) for r in caplog.records]
    assert peaks and peaks[-1] is not None and peaks[-1] < 120 * 1024, peaks


def test_children_at_once_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every slot taken, a parse waits its time bound for one, then is refused (busy)."""
    import threading

    monkeypatch.setattr(sandbox, "_slots", threading.BoundedSemaphore(1))
    sandbox._slots.acquire()
    try:
        with pytest.raises(sandbox.SandboxRefused) as exc:
            sandbox.run_bounded(_sleep, 0, memory_bytes=128 * 1024**2, seconds=0.2, timeout_message="-")
    finally:
        sandbox._slots.release()
    assert exc.value.code == "import.busy"
    assert sandbox.run_bounded(_sleep, 0, memory_bytes=128 * 1024**2, seconds=30, timeout_message="-") == "woke"
