"""Issue 20 point 5 through the use case and the API: a workbook that costs more than its caps is
refused in seconds with nothing written, the process that received it never loads it (its peak
memory stays put), and a normal 5,000-row workbook still imports (parsed in the child)."""

from __future__ import annotations

import dataclasses
import io
import threading
import time
from datetime import datetime
from typing import Any

import openpyxl
import pytest

from bench.xlsx_bomb import padded_bomb, shared_strings_bomb, zip_bomb
from tests.app.test_purchase_import import HEADER, ledger, run
from tests.conftest import World
from workflow.app import purchase_import
from workflow.domain.errors import ImportRefused
from workflow.formats import sandbox


def _rss_mb() -> float:
    """This process' resident memory now (VmRSS)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


class _Sampler(threading.Thread):
    """The largest VmRSS seen every 5 ms while it runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = _rss_mb()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.005):
            self.peak = max(self.peak, _rss_mb())


@pytest.fixture(scope="module")
def strings_bomb() -> bytes:
    return shared_strings_bomb(2_500_000)


@pytest.mark.parametrize("which", ["strings", "issue", "zip", "padded"])
def test_each_bomb_is_refused_in_seconds_with_nothing_written(world: World, strings_bomb: bytes, which: str) -> None:
    data = {"strings": lambda: strings_bomb, "issue": lambda: shared_strings_bomb(11_000_000), "zip": zip_bomb,
            "padded": padded_bomb}[which]()
    world.plan("G1")
    before = _rss_mb()
    sampler = _Sampler()
    sampler.start()
    started = time.monotonic()
    try:
        with pytest.raises(ImportRefused) as exc:
            run(world, data, filename="bomb.xlsx")
    finally:
        sampler.stop.set()
        sampler.join()
    assert time.monotonic() - started < 15
    assert exc.value.codes == ["import.file_too_costly"]
    assert ledger(world) == []
    # The workbook was measured and refused in the child: this process' memory did not grow
    # (the old code grew it by 1.5 GB for the file).
    assert sampler.peak - before < 60, (before, sampler.peak)


def test_a_normal_5000_row_workbook_still_imports(world: World) -> None:
    world.plan("G1")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEADER.split(","))
    for i in range(5_000):
        ws.append([f"N-{i:05d}", 1, datetime(2021, 10, 20, 10, 0), 1, 1, "梅州金柚", "实物", "额外额度", "粤工惠购", None])
    buf = io.BytesIO()
    wb.save(buf)
    result = run(world, buf.getvalue(), filename="采购.xlsx")
    assert (result.new, result.repeated) == (5_000, 0)
    assert len(ledger(world)) == 5_000


def test_a_workbook_past_the_child_memory_limit_is_refused(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The child's memory limit: with the other caps raised, a child allowed 64 MB more than it
    starts with cannot hold openpyxl's three million shared strings; it is
    refused by the limit (named), and nothing is written."""
    world.plan("G1")
    real = sandbox.run_bounded

    def small_child(func: Any, *args: Any, memory_bytes: int, **kw: Any) -> Any:
        kw["bounds"] = dataclasses.replace(kw["bounds"], max_strings=5_000_000, max_ratio=1_100,
                                           max_unzipped_bytes=200 * 1024 * 1024)
        return real(func, *args, memory_bytes=64 * 1024 * 1024, **kw)

    monkeypatch.setattr(purchase_import.sandbox, "run_bounded", small_child)
    with pytest.raises(ImportRefused) as exc:
        run(world, shared_strings_bomb(3_000_000), filename="bomb.xlsx")
    assert exc.value.codes == ["import.file_too_costly"]
    assert "文件解析所需内存超过 64 MB 上限" in exc.value.message
    assert ledger(world) == []
