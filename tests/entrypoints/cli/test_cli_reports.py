"""The report commands end to end through ``workflow.entrypoints.cli.main`` on a SQLite world."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import World
from workflow.entrypoints import cli
from workflow.settings import get_settings


@pytest.fixture()
def run(world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator:  # type: ignore[type-arg]
    monkeypatch.setenv("BANGFU_DATABASE_URL", world.db.url)
    monkeypatch.setenv("BANGFU_NOW", "2021-11-01T10:00")
    get_settings.cache_clear()

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = cli.main([*argv, "--round", "2021年度"])
        out = capsys.readouterr()
        return code, out.out, out.err

    yield invoke
    get_settings.cache_clear()


def test_import_stats_and_exports(run, world: World, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "订单.csv"
    src.write_bytes("订单号,支付时间,实付金额,领取人数,商品名称,渠道\r\nA1,2021-10-01,\"12,345.67\",321,荔枝,粤工惠购\r\n"
                    "A2,2021-10-02,100.00,1,茶叶,其他\r\n".encode("gb18030"))
    code, out, err = run("import-purchases", "G1", str(src), "--as", "g1-clerk")
    assert code == 0, err
    assert "新增 2 条，重复 0 条" in out
    # The mapping is named in the clerk's words, never by its internal code.
    assert "按“通用表格（按表头识别）”识别列" in out and "generic" not in out
    code, out, _ = run("import-purchases", "G1", str(src), "--as", "g1-clerk")
    assert "新增 0 条，重复 2 条" in out

    xlsx, csv, html = tmp_path / "g1.xlsx", tmp_path / "g1.csv", tmp_path / "g1.html"
    code, out, err = run("stats", "G1", "--as", "g1-clerk", "--xlsx", str(xlsx), "--csv", str(csv), "--html", str(html))
    assert code == 0, err
    assert "合计" in out and "1.24" in out  # 12,445.67 yuan = 1.24 万元
    ws = openpyxl.load_workbook(io.BytesIO(xlsx.read_bytes())).active
    values = {r[0]: r[1:] for r in ws.iter_rows(values_only=True) if r and r[0]}
    # a single union's own form: exact yuan (issue 22, point 12), not 1.23 / 1.24 万元
    assert float(values["粤工惠购平台"][1]) == 12345.67 and float(values["合计"][1]) == 12445.67
    assert csv.read_bytes().startswith(b"\xef\xbb\xbf")
    assert "合计" in html.read_text(encoding="utf-8")

    code, out, _ = run("stats", "G1", "--as", "g1-clerk", "--json")
    data = json.loads(out)
    assert data["total"]["amount_fen"] == 1_244_567 and data["source"] == "live"

    # A neighbour is outside a clerk's view: it does not exist for them, as on the web (404):
    # exit code 2 and one line on stderr.
    code, out, err = run("stats", "G2", "--as", "g1-clerk")
    assert code == 2 and "找不到单位代码“G2”" in err


def test_bad_file_imports_nothing_exit_2(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "bad.csv"
    src.write_text("订单号,支付时间,实付金额,领取人数,商品名称,渠道\nA1,2021-10-01,1.001,3,荔枝,粤工惠购\n"
                   "A2,2021-10-01,1.00,3,荔枝,粤工惠购\n", encoding="utf-8")
    code, _out, err = run("import-purchases", "G1", str(src), "--as", "g1-clerk")
    assert code == 2 and "第 2 行" in err and "未导入任何数据" in err
    code, out, _ = run("stats", "G1", "--as", "g1-clerk", "--json")
    assert json.loads(out)["total"]["amount_fen"] == 0


def test_limits_completeness_chase_aggregate_and_work_report(run, world: World, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    world.plan("G1", 60000, 10)
    code, out, err = run("limits", "G1", "--as", "g1-clerk", "--ordinary", "123456", "--budget", "300000",
                         "--basis", "budget")
    assert code == 0, err
    assert "普通节日慰问品 123,456.00 元 ÷ 年度预算支出 300,000.00 元 = 41.15%，超过最高 40%" in out
    assert "结论：不符合" in out

    code, out, err = run("aggregate-add", "D1", "--as", "d1-clerk", "--channel", "ygh", "--people", "12",
                         "--amount", "3456.78", "--note", "街道汇总")
    assert code == 0, err
    code, out, _ = run("stats", "D1", "--as", "d1-reviewer", "--json")
    assert json.loads(out)["total"]["amount_fen"] == 345_678

    code, out, err = run("completeness", "--as", "gd-reviewer")
    assert code == 0, err
    assert "全省合计" in out
    code, out, _ = run("completeness", "--as", "g1-clerk")
    assert code == 3

    target = tmp_path / "催报.xlsx"
    code, out, err = run("chase-list", "D1", str(target), "--as", "d1-reviewer")
    assert code == 0, err
    assert "共 2 个单位未报送" in out and target.exists()

    world.info("C1", work_experience="经验一", work_highlights="亮点一")
    md = tmp_path / "report.md"
    code, out, err = run("work-report", "C1", "--as", "c1-clerk", "--md", str(md))
    assert code == 0, err
    assert "经验一" in md.read_text(encoding="utf-8")

    wb_path = tmp_path / "province.xlsx"
    code, out, err = run("province-workbook", str(wb_path), "--as", "gd-reviewer")
    assert code == 0, err
    assert openpyxl.load_workbook(wb_path).sheetnames[0] == "汇总"


def test_stats_shows_accepted_beside_submitted_not_yet_accepted(run, world: World) -> None:  # type: ignore[no-untyped-def]
    world.to_submitted("G1")  # 1,200 yuan, 20 people, submitted to D1
    code, out, err = run("stats", "D1", "--as", "d1-reviewer")
    assert code == 0, err
    assert "已提交，待审核（未计入合计）：人次 0.00 万，金额 0.12 万元" in out
    assert "G1" in out and "已提交，待审核" in out
    world.fire("G1", "accept", "d1-reviewer")
    code, out, err = run("stats", "D1", "--as", "d1-reviewer", "--json")
    data = json.loads(out)
    assert data["total"]["amount_fen"] == 120_000
    assert [u["status"] for u in data["units"]] == ["已通过", "计划中，未提交（实时数据）"]
