"""The ``bangfu`` command line, run in-process on a temporary SQLite database.

Exit codes: 0 done, 2 bad input, 3 refused by a rule or a permission, 4 version conflict, 1 a bug;
errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import states
from tests.conftest import WORLD_ORGS, world_users_csv
from workflow.entrypoints import cli
from workflow.settings import get_settings
from workflow.store.engine import Database

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


Cli = Callable[..., Run]


@pytest.fixture()
def bangfu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Cli]:
    var = tmp_path / "var"
    monkeypatch.setenv("BANGFU_VAR_DIR", str(var))
    monkeypatch.setenv("BANGFU_DATABASE_URL", f"sqlite:///{var / 'bangfu.db'}")
    monkeypatch.setenv("BANGFU_NOW", "2021-11-01T10:00")  # China time, inside the 2021 round
    monkeypatch.delenv("BANGFU_USER", raising=False)
    monkeypatch.delenv("BANGFU_DEBUG", raising=False)
    get_settings.cache_clear()

    def run(*args: str) -> Run:
        capsys.readouterr()
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        return Run(code, out, err)

    yield run
    get_settings.cache_clear()


@pytest.fixture()
def ready(bangfu: Cli, tmp_path: Path) -> Cli:
    """``init`` plus the small world's organisations and users."""
    (tmp_path / "orgs.csv").write_text(WORLD_ORGS, encoding="utf-8")
    (tmp_path / "users.csv").write_text(world_users_csv(), encoding="utf-8")
    for args in (("init",), ("org-import", str(tmp_path / "orgs.csv")),
                 ("user-import", str(tmp_path / "users.csv"))):
        r = bangfu(*args)
        assert r.code == 0, r.err
    return bangfu


def assert_one_line_error(r: Run, code: int, error_code: str) -> None:
    assert r.code == code, (r.code, r.err)
    assert "Traceback" not in r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert f"[{error_code}]" in lines[0]
    assert r.out == ""


def test_init_creates_the_database_under_the_var_dir(bangfu: Cli, tmp_path: Path) -> None:
    r = bangfu("init", "--json")
    assert r.code == 0, r.err
    data = r.json()
    assert isinstance(data, dict)
    assert data["policy"]["rounds"] == ["2021年度", "2022年度"]
    assert (tmp_path / "var" / "bangfu.db").exists()


def test_a_record_through_its_lifecycle_from_the_command_line(ready: Cli) -> None:
    run = ready
    assert run("plan", "G1", "--amount", "600", "--members", "100", "--as", "g1-clerk").code == 0
    # Paid late in the evening, China time, before the moment of entry (BANGFU_NOW 2021-11-01).
    r = run("purchase-add", "G1", "--paid-at", "2021-10-31T23:50", "--channel", "ygh",
            "--amount", "1,200.50", "--people", "20", "--order", "A-1", "--as", "g1-clerk", "--json")
    assert r.code == 0, r.err
    assert set(r.json()) == {"purchase_id", "record_id"}  # type: ignore[arg-type]
    listed = run("purchase-list", "G1", "--as", "g1-clerk", "--json").json()
    assert [(p["order_no"], p["amount_fen"], p["paid_on"]) for p in listed] == [  # type: ignore[union-attr]
        ("A-1", 120050, "2021-10-31")]
    human = run("show", "G1", "--as", "g1-clerk")
    assert human.code == 0
    assert "额度 60,000.00 元" in human.out and "✓ finish_purchasing" in human.out
    for args in (
        ("fire", "G1", "finish_purchasing", "--as", "g1-clerk"),
        ("report-info", "G1", "--reporter", "张三", "--phone", "020-83871234", "--fill-date", "2021-11-01",
         "--as", "g1-clerk"),
        ("fire", "G1", "summarize", "--as", "g1-clerk"),
        ("fire", "G1", "submit", "--as", "g1-clerk"),
        ("fire", "G1", "return_for_revision", "--reason", "人次有误", "--as", "d1-reviewer"),
        ("fire", "G1", "summarize", "--as", "g1-clerk"),
        ("fire", "G1", "submit", "--as", "g1-clerk"),
    ):
        r = run(*args)
        assert r.code == 0, (args, r.err)
    r = run("fire", "G1", "accept", "--as", "d1-reviewer", "--json")
    assert r.code == 0
    fired = r.json()
    assert fired["from_state"] == "submitted" and fired["to_state"] == "accepted"  # type: ignore[index]
    view = run("show", "G1", "--as", "g1-clerk", "--json").json()
    assert view["state"] == "accepted" and view["quota_fen"] == 6_000_000  # type: ignore[index]
    assert view["extra_spent_fen"] == 120050  # type: ignore[index]
    assert {a["trigger"] for a in view["actions"]} == set(states.TRIGGERS)  # type: ignore[index]
    history = run("history", "G1", "--as", "d1-reviewer", "--json").json()
    assert [h["trigger"] for h in history] == [  # type: ignore[union-attr]
        "finish_purchasing", "summarize", "submit", "return_for_revision", "summarize", "submit", "accept"]
    assert history[3]["reason"] == "人次有误"  # type: ignore[index]
    text = run("history", "G1", "--as", "d1-reviewer")
    assert text.code == 0 and "原因：人次有误" in text.out


@pytest.mark.parametrize(
    ("args", "exit_code", "error_code"),
    [
        (("plan", "G1", "--amount", "abc", "--members", "1", "--as", "g1-clerk"), 2, "input.money"),
        (("plan", "G1", "--amount", "600", "--members", "many", "--as", "g1-clerk"), 2, "input.int"),
        (("plan", "G1", "--amount", "600", "--members", "1"), 2, "cli.no_user"),
        (("show", "G1", "--as", "nobody"), 2, "user.not_found"),
        (("show", "NOPE", "--as", "g1-clerk"), 2, "org.not_found"),
        (("show", "G4", "--as", "g1-clerk"), 2, "record.not_found"),  # outside the user's subtree
        (("show", "G1", "--as", "g1-clerk", "--round", "1999"), 2, "round.not_found"),
        (("report-info", "G1", "--fill-date", "2021-13-01", "--as", "g1-clerk"), 2, "input.date"),
        (("purchase-add", "G1", "--paid-at", "yesterday", "--channel", "ygh", "--amount", "1",
          "--people", "1", "--order", "X", "--as", "g1-clerk"), 2, "input.time"),
        (("org-import", "/nonexistent/orgs.csv"), 2, "input.file"),
        (("plan", "G1", "--amount", "600.01", "--members", "1", "--as", "g1-clerk"), 3,
         "plan.amount_out_of_range"),
        (("purchase-add", "G1", "--paid-at", "2022-01-01T00:10", "--channel", "ygh", "--amount", "1",
          "--people", "1", "--order", "X", "--as", "g1-clerk"), 3, "purchase.outside_year"),
        (("purchase-add", "G1", "--paid-at", "2021-06-01T10:00", "--channel", "ygh", "--amount", "1",
          "--people", "1", "--order", "X", "--form", "购物卡", "--as", "g1-clerk"), 3,
         "purchase.forbidden_form"),
        (("report-info", "G1", "--phone", "12345", "--as", "g1-clerk"), 3, "contact.phone_invalid"),
        (("fire", "G1", "accept", "--as", "g1-clerk"), 3, "transition.not_allowed"),
        (("fire", "G1", "finish_purchasing", "--as", "c1-reviewer"), 3, "permission.not_clerk"),
        (("fire", "G1", "finish_purchasing", "--as", "g1-clerk"), 3, "plan.amount_missing"),
        (("fire", "G1", "reopen", "--as", "g1-clerk", "--version", "99"), 3, "transition.not_allowed"),
        (("fire", "D1", "finish_purchasing", "--as", "d1-clerk", "--version", "99"), 4, "version.conflict"),
    ],
    ids=lambda v: v if isinstance(v, int | str) else "-".join(v[:2]),
)
def test_errors_exit_with_their_code_and_one_line(
    ready: Cli, args: tuple[str, ...], exit_code: int, error_code: str
) -> None:
    r = ready(*args)
    assert_one_line_error(r, exit_code, error_code)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in r.err)  # the message is Chinese


def test_policy_check_refuses_a_malformed_file(ready: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[policy]\ncode = "x"\n', encoding="utf-8")
    r = ready("policy-check", str(bad))
    assert_one_line_error(r, 2, "policy.invalid")
    assert "quota" in r.err
    ok = ready("policy-check", "guangzhou-2023", "--json")
    assert ok.code == 0 and ok.json()["rounds"] == [  # type: ignore[index]
        "2023年度（广州）", "2024年度（广州）", "2025年度（广州）"]


def test_an_unknown_trigger_is_a_usage_error(ready: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["fire", "G1", "approve_all", "--as", "g1-clerk"])
    assert exc.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_lifecycle_prints_the_mermaid_diagram(bangfu: Cli) -> None:
    r = bangfu("lifecycle")
    assert r.code == 0 and r.err == ""
    assert r.out == states.mermaid()
    assert bangfu("lifecycle", "--json").json() == states.mermaid()


def test_a_bug_exits_1_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    """Run as a real process: logging goes to the real stderr there."""
    env = {**os.environ, "BANGFU_DATABASE_URL": "nosuchdb://x", "BANGFU_VAR_DIR": str(tmp_path)}
    env.pop("BANGFU_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "workflow.entrypoints.cli", "show", "G1", "--as", "g1-clerk"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "内部错误" in proc.stderr
    assert proc.stdout == ""


def test_the_real_process_reports_exit_codes(tmp_path: Path) -> None:
    env = {**os.environ, "BANGFU_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}",
           "BANGFU_VAR_DIR": str(tmp_path), "BANGFU_NOW": "2021-11-01T10:00"}
    env.pop("BANGFU_USER", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "workflow.entrypoints.cli", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    assert run("init").returncode == 0
    r = run("show", "G1")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_the_console_scripts_quick_exit_keeps_every_write_and_every_byte(tmp_path: Path) -> None:
    """``bangfu`` ends its process without the interpreter's teardown (issue 12, point 5): what a
    command wrote is committed, its whole output reaches a pipe, its exit code is kept, and a
    reader that stops early (``| head``) gets no traceback."""
    env = {**os.environ, "BANGFU_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}", "BANGFU_VAR_DIR": str(tmp_path)}
    env.pop("BANGFU_USER", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "workflow.entrypoints.cli", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    assert run("demo").returncode == 0
    paid = (datetime.now(UTC) + timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M")  # an hour ago, China time
    added = run("purchase-add", "GZ-D1-G1", "--as", "gz-d1-g1-clerk", "--channel", "ygh", "--amount", "12.50",
                "--people", "1", "--order", "QUICK-EXIT-1", "--paid-at", paid)
    assert added.returncode == 0, added.stderr
    after = run("purchase-list", "GZ-D1-G1", "--as", "gz-d1-g1-clerk", "--json")
    assert after.returncode == 0 and "QUICK-EXIT-1" in after.stdout
    json.loads(after.stdout)  # the whole document arrived
    refused = run("purchase-add", "GZ-D1-G1", "--as", "gz-d1-g1-clerk", "--channel", "ygh", "--amount", "1e999999",
                  "--people", "1", "--order", "QUICK-EXIT-2", "--paid-at", paid)
    assert refused.returncode == 2 and refused.stdout == "" and len(refused.stderr.strip().splitlines()) == 1
    assert "QUICK-EXIT-2" not in run("purchase-list", "GZ-D1-G1", "--as", "gz-d1-g1-clerk").stdout
    head = subprocess.run(f"{sys.executable} -m workflow.entrypoints.cli purchase-list GZ-D1-G1 --as gz-d1-g1-clerk"
                          " --json | head -c 10", shell=True, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert head.returncode == 0 and "Traceback" not in head.stderr and len(head.stdout) == 10


# --- the CLI for scripts and operators (issue 9, points 8, 14, 15; issue 12, point 5) --------


def test_under_json_a_refusal_is_json_too(ready: Cli) -> None:
    r = ready("plan", "G1", "--amount", "600.01", "--members", "1", "--as", "g1-clerk", "--json")
    assert r.code == 3
    assert r.json() == {"code": "plan.amount_out_of_range", "message": r.json()["message"], "exit": 3}  # type: ignore[index]
    assert "600" in r.json()["message"]  # type: ignore[index]
    r = ready("show", "NOPE", "--as", "g1-clerk", "--json")
    assert r.code == 2 and r.json()["code"] == "org.not_found" and r.json()["exit"] == 2  # type: ignore[index]


def test_under_json_a_usage_error_is_json_and_chinese(ready: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        cli.main(["fire", "G1", "approve_all", "--as", "g1-clerk", "--json"])
    assert exc.value.code == 2
    out = json.loads(capsys.readouterr().out)
    assert out["code"] == "cli.usage" and out["exit"] == 2
    assert "无效的选项" in out["message"] and "approve_all" in out["message"]


def _help(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "workflow.entrypoints.cli", *args, "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("command", ["", "purchase-add", "fire", "stats", "inbox", "serve", "work-report"])
def test_the_help_is_chinese_for_every_command(command: str) -> None:
    text = _help(*([command] if command else []))
    assert text.startswith("用法：") and "显示本帮助并退出" in text
    for english in ("usage:", "show this help", "positional arguments", "machine-readable", "act as"):
        assert english not in text
    # No English sentence is left in the help: every help line with letters has Chinese too.
    for line in text.splitlines():
        words = [w for w in line.replace(",", " ").split() if w.isascii() and w.isalpha() and len(w) > 3]
        if len(words) >= 3:
            assert any("\u4e00" <= ch <= "\u9fff" for ch in line), line


def test_the_help_and_a_command_without_a_database_import_no_heavy_library() -> None:
    """Start-up: ``bangfu --help`` and ``lifecycle`` import neither SQLAlchemy nor openpyxl,
    FastAPI, Celery or Alembic (the CPU time is measured in the README, not here)."""
    code = ("import sys, contextlib, io\n"
            "from workflow.entrypoints import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    cli.main(['lifecycle'])\n"
            "    try:\n"
            "        cli.main(['--help'])\n"
            "    except SystemExit:\n"
            "        pass\n"
            "heavy = sorted(m for m in ('sqlalchemy', 'sqlmodel', 'openpyxl', 'fastapi', 'celery', 'alembic',"
            " 'uvicorn', 'docx', 'jinja2') if m in sys.modules)\n"
            "print(','.join(heavy))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_the_clerks_everyday_commands_load_no_library_they_do_not_use(ready: Cli) -> None:
    """Start-up: ``show``, ``purchase-list``, ``purchase-add`` and ``fire`` may load SQLAlchemy,
    SQLModel and the ORM (a clerk's command may cost up to 0.7 s of CPU, issue 19), but neither
    Jinja2, nor Alembic, openpyxl, python-docx, FastAPI or Celery (the CPU time is measured by
    ``python -m bench.cli_start``)."""
    assert ready("plan", "G1", "--amount", "600", "--members", "100", "--as", "g1-clerk").code == 0
    code = ("import contextlib, io, json, sys\n"
            "from workflow.entrypoints import cli\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    code = cli.main(json.loads(sys.argv[1]))\n"
            "heavy = sorted(m for m in ('jinja2', 'alembic', 'openpyxl', 'docx', 'fastapi', 'celery', 'uvicorn')"
            " if m in sys.modules)\n"
            "print(json.dumps([code, heavy]))\n")
    for args in (
        ["show", "G1", "--as", "g1-clerk"],
        ["purchase-list", "G1", "--as", "g1-clerk"],
        ["purchase-add", "G1", "--paid-at", "2021-10-31T10:00", "--channel", "ygh", "--amount", "12.50",
         "--people", "1", "--order", "CORE-1", "--as", "g1-clerk"],
        ["fire", "G1", "finish_purchasing", "--as", "g1-clerk"],
        ["fire", "G1", "reopen", "--as", "g1-clerk"],
    ):
        proc = subprocess.run([sys.executable, "-c", code, json.dumps(args)], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout) == [0, []], (args, proc.stdout)
    listed = ready("purchase-list", "G1", "--as", "g1-clerk", "--json").json()
    assert [p["order_no"] for p in listed] == ["CORE-1"]  # type: ignore[index]
    assert ready("show", "G1", "--as", "g1-clerk", "--json").json()["version"] == 4  # type: ignore[index]


def test_a_purchase_channel_may_be_named_in_chinese(ready: Cli) -> None:
    run = ready
    assert run("plan", "G1", "--amount", "600", "--members", "100", "--as", "g1-clerk").code == 0
    r = run("purchase-add", "G1", "--paid-at", "2021-10-10T10:00", "--channel", "粤工惠购", "--amount", "100",
            "--people", "2", "--order", "ZH-1", "--as", "g1-clerk")
    assert r.code == 0, r.err
    r = run("purchase-add", "G1", "--paid-at", "2021-10-10T10:00", "--channel", "832平台", "--amount", "100",
            "--people", "2", "--order", "ZH-2", "--as", "g1-clerk")
    assert r.code == 0, r.err
    listed = run("purchase-list", "G1", "--as", "g1-clerk", "--json").json()
    assert [p["channel"] for p in listed] == ["ygh", "p832"]  # type: ignore[index,union-attr]
    r = run("purchase-add", "G1", "--paid-at", "2021-10-10T10:00", "--channel", "淘宝", "--amount", "100",
            "--people", "2", "--order", "ZH-3", "--as", "g1-clerk")
    assert_one_line_error(r, 3, "purchase.unknown_channel")
    assert "粤工惠购" in r.err and "ygh" not in r.err and "local_hall" not in r.err


@pytest.mark.parametrize(
    ("paid_at", "people", "error_code", "words"),
    [
        ("2021-12-25T10:00", "10", "purchase.paid_in_future", "晚于录入时间"),  # entered 2021-11-01
        ("2022-01-05T10:00", "10", "purchase.outside_year", "额度须于 12 月 31 日前使用"),
        ("2021-10-10T10:00", "0", "purchase.people_zero", "人次"),
    ],
)
def test_a_purchase_that_cannot_be_right_is_refused(
    ready: Cli, paid_at: str, people: str, error_code: str, words: str
) -> None:
    assert ready("plan", "G1", "--amount", "600", "--members", "100", "--as", "g1-clerk").code == 0
    r = ready("purchase-add", "G1", "--paid-at", paid_at, "--channel", "ygh", "--amount", "88",
              "--people", people, "--order", "BAD-1", "--as", "g1-clerk")
    assert_one_line_error(r, 3, error_code)
    assert words in r.err
    assert ready("purchase-list", "G1", "--as", "g1-clerk", "--json").json() == []


def test_rounds_prints_a_table_without_json(ready: Cli) -> None:
    r = ready("rounds")
    assert r.code == 0 and not r.out.lstrip().startswith(("[", "{"))
    assert "2021年度" in r.out and "额度截止 2021年12月31日" in r.out
    assert ready("rounds", "--json").json()[0]["label"] == "2021年度"  # type: ignore[index]


def test_show_says_days_past_like_the_web(ready: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANGFU_NOW", "2022-01-15T10:00")
    get_settings.cache_clear()
    r = ready("show", "G1", "--as", "g1-clerk", "--round", "2021")
    assert r.code == 0, r.err
    assert "已过 15 天" in r.out and "剩 -" not in r.out


def test_history_times_in_json_carry_their_offset(ready: Cli) -> None:
    assert ready("sweep", "--as-of", "2022-01-02T09:00").code == 0  # G1 missed its deadline: overdue
    history = ready("history", "G1", "--as", "d1-reviewer", "--json").json()
    overdue = [h for h in history if h["trigger"] == "overdue"]  # type: ignore[union-attr,index]
    assert overdue, history
    for h in overdue:
        assert h["at"].endswith("+00:00")  # type: ignore[index]
        for value in (h["detail"] or {}).values():  # type: ignore[index]
            if isinstance(value, str) and value[:2] == "20":
                assert value.endswith("+00:00"), value


def test_an_export_without_a_fill_date_leaves_it_blank(ready: Cli, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    target = tmp_path / "gd.xlsx"
    r = ready("stats", "GD", "--as", "gd-reviewer", "--xlsx", str(target))
    assert r.code == 0, r.err
    cells = [c.value for row in load_workbook(target).active.iter_rows() for c in row if c.value]
    assert "填表时间：" in cells  # blank for the hand to fill, not today's date


def test_the_clis_light_choices_mirror_the_services() -> None:
    """The parser names choices without importing the services (start-up); they must agree."""
    from notifications.templates import KINDS
    from workflow.app.purchases import BUDGETS
    from workflow.entrypoints.cli import notify, reports
    from workflow.formats import ledger
    from workflow.formats.ledger import BUDGET_LABELS
    from workflow.store.reports import SCOPES

    assert BUDGET_LABELS == BUDGETS
    assert set(reports.MAPPING_CHOICES) == set(ledger.MAPPINGS)
    assert tuple(reports.SCOPE_CHOICES) == tuple(SCOPES)
    assert notify.KINDS == KINDS


def test_rollup_rebuild_repairs_the_overview_table_after_writes_outside_bangfu(ready: Cli) -> None:
    """``bangfu rollup-rebuild`` recomputes the rollup from the records: rows damaged by a write
    made behind bangfu's back are equal to the recomputation again; a bad round is exit 2."""
    from sqlalchemy import text

    from workflow.store import rollup
    from workflow.store.tables import Database

    run = ready
    db = Database(get_settings().database_url)
    try:
        with db.begin() as s:
            s.execute(text("UPDATE rollup SET n = n + 5"))
            rounds = [int(r) for (r,) in s.execute(text("SELECT id FROM round"))]
        with db.begin() as s:
            assert any(rollup.stored(s, r) != rollup.computed(s, r) for r in rounds)
        r = run("rollup-rebuild")
        assert r.code == 0, r.err
        assert "已重建汇总表" in r.out and "2021年度" in r.out
        with db.begin() as s:
            assert all(rollup.stored(s, r) == rollup.computed(s, r) for r in rounds)
    finally:
        db.dispose()
    assert_one_line_error(run("rollup-rebuild", "--round", "1999"), 2, "round.not_found")


# --- a database that is not set up, and arguments nobody defined ---------------------------


@pytest.mark.parametrize("command", [("show", "G1", "--as", "g1-clerk"), ("rollup-rebuild",),
                                     ("purchase-list", "G1", "--as", "g1-clerk")])
def test_a_database_not_set_up_gets_the_step_to_take_in_chinese(bangfu: Cli, tmp_path: Path,
                                                                  command: tuple[str, ...]) -> None:
    """A clerk whose BANGFU_DATABASE_URL points at an empty file (a typo in the path, a new
    machine) was shown the driver's English and the SQL of the failed statement."""
    (tmp_path / "var").mkdir()
    r = bangfu(*command)
    assert_one_line_error(r, 3, "db.schema")
    assert "bangfu db-upgrade" in r.err and "数据库尚未建立" in r.err
    assert "sqlite" not in r.err.lower() and "SELECT" not in r.err and "no such table" not in r.err
    j = bangfu(*command, "--json")
    assert j.code == 3 and j.json() == {"code": "db.schema", "message": j.json()["message"], "exit": 3}  # type: ignore[index]


def test_a_schema_older_than_the_release_is_named_and_a_current_one_is_not(ready: Cli, tmp_path: Path) -> None:
    import sqlite3

    db = sqlite3.connect(tmp_path / "var" / "bangfu.db")
    with db:
        (head,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
        db.execute("UPDATE alembic_version SET version_num = '0001'")
        db.execute("ALTER TABLE record RENAME TO record_old")  # what an older schema lacks
    r = ready("show", "G1", "--as", "g1-clerk")
    assert_one_line_error(r, 3, "db.schema")
    assert "不是本版本所需的最新版本" in r.err and "bangfu db-upgrade" in r.err
    with db:
        db.execute("ALTER TABLE record_old RENAME TO record")
        db.execute("UPDATE alembic_version SET version_num = ?", (head,))
    db.close()
    assert ready("show", "G1", "--as", "g1-clerk").code == 0


def test_an_unknown_argument_is_refused_in_chinese(ready: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        cli.main(["show", "G1", "--as", "g1-clerk", "--colour"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "无法识别的参数：--colour" in err and "unrecognized" not in err


def test_a_clerks_writing_commands_answer_in_a_chinese_sentence_without_json(ready: Cli, tmp_path: Path) -> None:
    """Without ``--json`` a clerk reads what happened, not a JSON object with English keys."""
    run = ready

    def human(*args: str) -> str:
        r = run(*args, "--as", "g1-clerk")
        assert r.code == 0, (args, r.err)
        assert not r.out.lstrip().startswith(("{", "[")), (args, r.out)
        return r.out

    assert "额度 60,000.00 元" in human("plan", "G1", "--amount", "600", "--members", "100")
    added = human("purchase-add", "G1", "--paid-at", "2021-10-31T10:00", "--channel", "ygh",
                  "--amount", "100", "--people", "5", "--order", "A-1")
    pid = re.search(r"已录入采购行 #(\d+)", added)
    assert pid, added
    # The list shows the 编号 that purchase-void takes, and the voided line stays, marked.
    assert f"编号 {pid.group(1)} " in human("purchase-list", "G1")
    assert "已作废采购行" in human("purchase-void", "G1", "--id", pid.group(1), "--reason", "金额录错")
    listed = human("purchase-list", "G1")
    assert "【已作废：金额录错】" in listed and "其中已作废 1 条" in listed
    assert "已完成采购：计划中 → 已采购" in human("fire", "G1", "finish_purchasing")
    assert "状态：已采购" in human("report-info", "G1", "--reporter", "张三", "--phone", "020-83871234")
    (tmp_path / "members.csv").write_text("org_code,members\nG1,120\n", encoding="utf-8")
    r = run("members-import", str(tmp_path / "members.csv"), "--round", "2021年度")
    assert r.code == 0 and r.out.startswith("导入完成："), (r.out, r.err)


def test_setting_up_answers_in_chinese_and_never_prints_a_password(bangfu: Cli, tmp_path: Path) -> None:
    r = bangfu("init")
    assert r.code == 0, r.err
    assert r.out.splitlines() == [f"数据库结构已是最新版本：sqlite:///{tmp_path / 'var' / 'bangfu.db'}",
                                  "已加载政策 粤工总〔2021〕17号：2021年度、2022年度"]
    assert bangfu("policy-check", "yuegongzong-2021-17").out.startswith("政策文件无误：粤工总〔2021〕17号")
    # A production URL carries a password: what the command prints (and JSON) masks it.
    shown = Database("postgresql://bangfu:s3cret@db.example/bangfu").shown_url
    assert "s3cret" not in shown and "bangfu:***@db.example" in shown
