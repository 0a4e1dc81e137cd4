"""What the command line does for its start-up time (issue 12, point 5), checked for what a clerk
or an operator sees: the parser of the named command alone parses and helps as the whole parser,
short commands pause the garbage collector and give it back, and the real process on PostgreSQL
keeps every write, every byte of output and its exit codes."""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from workflow.entrypoints import cli
from workflow.entrypoints.cli.argparse_zh import ChineseParser
from workflow.store.engine import Database

ROOT = Path(__file__).resolve().parents[3]


def _names() -> list[str]:
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    return list(sub.choices)


@pytest.fixture(autouse=True)
def _plain_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Usage errors in text (an earlier ``main(["…", "--json"])`` leaves them in JSON)."""
    monkeypatch.setattr(ChineseParser, "json_errors", False)


def _outcome(parser: argparse.ArgumentParser, argv: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    """(namespace, or the exit code), stdout, stderr of parsing ``argv``."""
    capsys.readouterr()
    try:
        got: Any = vars(parser.parse_args(argv))
    except SystemExit as exc:
        got = ("exit", exc.code)
    out, err = capsys.readouterr()
    return got, out, err


COMMAND_LINES = [
    ["show", "G1", "--as", "g1-clerk"],
    ["show", "G1", "--as", "g1-clerk", "--json", "--round", "2021"],
    ["purchase-add", "G1", "--paid-at", "2021-10-31T10:00", "--channel", "ygh", "--amount", "12.50",
     "--people", "1", "--order", "A-1", "--budget", "extra_quota", "--as", "g1-clerk"],
    ["purchase-list", "G1"],
    ["fire", "G1", "return_for_revision", "--reason", "缺发票", "--version", "3"],
    ["stats", "G1", "--live", "--xlsx", "a.xlsx"],
    ["outbox", "list", "--failed"],
    ["serve", "--port", "8001"],
    ["lifecycle"],
    # Usage errors: the same Chinese message and exit code.
    ["purchase-add", "G1"],
    ["fire", "G1", "approve_all"],
    ["show"],
    ["show", "G1", "--nope"],
    ["outbox"],
]


@pytest.mark.parametrize("argv", COMMAND_LINES, ids=[" ".join(a) for a in COMMAND_LINES])
def test_the_named_commands_parser_parses_as_the_whole_parser(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    whole = _outcome(cli.build_parser(), argv, capsys)
    alone = _outcome(cli.build_parser(argv[0]), argv, capsys)
    assert alone == whole
    if isinstance(whole[0], tuple):  # a usage error: Chinese, one usage line plus the error
        assert whole[0] == ("exit", 2) and "错误" in whole[2]


def test_every_commands_help_is_the_same_from_its_own_parser(capsys: pytest.CaptureFixture[str]) -> None:
    names = _names()
    assert {"show", "purchase-add", "purchase-list", "fire", "outbox", "serve", "stats"} <= set(names)
    for name in names:
        whole = _outcome(cli.build_parser(), [name, "--help"], capsys)
        alone = _outcome(cli.build_parser(name), [name, "--help"], capsys)
        assert alone == whole, name
        assert whole[0] == ("exit", 0) and whole[1].startswith(f"用法：bangfu {name}"), name


def test_a_wrong_command_still_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    got, _out, err = _outcome(cli.build_parser("shw"), ["shw"], capsys)
    assert got == ("exit", 2)
    assert "无效的选项 'shw'" in err
    for name in _names():
        assert f"'{name}'" in err


def test_a_short_command_runs_with_the_collector_paused_and_gives_it_back(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    seen: dict[str, bool] = {}

    def spy(name: str) -> Any:
        def handler(args: argparse.Namespace, ctx: cli.Context) -> Any:
            seen[name] = gc.isenabled()
            return "ok"
        return handler

    assert {"show", "purchase-add", "purchase-list", "fire"} <= cli.SHORT_COMMANDS
    assert not {"serve", "demo", "org-import", "import-purchases", "sweep", "deliver"} & cli.SHORT_COMMANDS
    monkeypatch.setitem(cli.COMMANDS, "lifecycle", spy("lifecycle"))
    monkeypatch.setitem(cli.COMMANDS, "db-upgrade", spy("db-upgrade"))
    assert gc.isenabled()
    assert cli.main(["lifecycle"]) == 0
    assert gc.isenabled()
    assert cli.main(["db-upgrade"]) == 0
    assert seen == {"lifecycle": False, "db-upgrade": True}

    def failing(args: argparse.Namespace, ctx: cli.Context) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setitem(cli.COMMANDS, "lifecycle", failing)
    assert cli.main(["lifecycle"]) == 1  # a bug: one line, and the collector is back on
    assert gc.isenabled()
    assert "内部错误" in capsys.readouterr().err


def test_the_console_script_leaves_the_collector_paused_after_a_short_command_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Its process ends right after ``main``: resuming would scan every object the command made."""
    try:
        assert cli.main(["lifecycle"], process_ends=True) == 0
        assert not gc.isenabled()
    finally:
        gc.enable()
    monkeypatch.setitem(cli.COMMANDS, "db-upgrade", lambda args, ctx: None)
    assert cli.main(["db-upgrade"], process_ends=True) == 0  # a long command: the collector stays on
    assert gc.isenabled()


def test_a_postgresql_engine_skips_the_hstore_lookup(pg_url: str) -> None:
    database = Database(pg_url)
    try:
        assert database.engine.dialect.use_native_hstore is False  # type: ignore[attr-defined]
        with database.engine.connect() as conn:  # the first connect initialises the dialect
            assert conn.exec_driver_sql("SELECT 1").scalar_one() == 1
        assert database.engine.dialect.server_version_info is not None
    finally:
        database.dispose()


def test_the_clerks_commands_in_real_processes_on_postgresql(pg_db: Database) -> None:
    """The console script's path (GC paused, the one-command parser, the quick exit) against
    PostgreSQL: the purchase is committed, the output complete, the exit codes and the Chinese
    refusals as on SQLite."""
    env = {**os.environ, "BANGFU_DATABASE_URL": pg_db.url}
    for name in ("BANGFU_USER", "BANGFU_DEBUG", "BANGFU_NOW"):
        env.pop(name, None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "workflow.entrypoints.cli", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=180)

    assert run("demo").returncode == 0
    me = ("--as", "gz-d1-g1-clerk")
    paid = (datetime.now(UTC) + timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M")  # an hour ago, China time
    added = run("purchase-add", "GZ-D1-G1", *me, "--channel", "ygh", "--amount", "12.50", "--people", "1",
                "--order", "PG-START-1", "--paid-at", paid, "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["purchase_id"] > 0
    listed = run("purchase-list", "GZ-D1-G1", *me, "--json")
    assert listed.returncode == 0, listed.stderr
    assert "PG-START-1" in [p["order_no"] for p in json.loads(listed.stdout)]
    before = json.loads(run("show", "GZ-D1-G1", *me, "--json").stdout)
    fired = run("fire", "GZ-D1-G1", "finish_purchasing", *me)
    assert fired.returncode == 0, fired.stderr
    after = json.loads(run("show", "GZ-D1-G1", *me, "--json").stdout)
    assert after["version"] == before["version"] + 1 and after["state"] != before["state"]
    again = run("fire", "GZ-D1-G1", "finish_purchasing", *me)
    assert again.returncode == 3 and again.stdout == "" and len(again.stderr.strip().splitlines()) == 1
    assert "错误" in again.stderr
    missing = run("show", "NOPE", *me)
    assert missing.returncode == 2 and "找不到单位代码“NOPE”" in missing.stderr


def test_a_core_commands_parser_imports_no_command_group_and_a_groups_command_still_parses() -> None:
    """In a fresh process: ``show`` is parsed without importing the reports, notify and web
    command groups nor the ledger module (``purchase-add``'s budgets); ``stats`` (a report
    command) is found and parsed from its own parser."""
    code = ("import json, sys\n"
            "from workflow.entrypoints import cli\n"
            "show = vars(cli.build_parser('show').parse_args(['show', 'G1', '--as', 'u']))\n"
            "named = ('workflow.entrypoints.cli.reports', 'workflow.entrypoints.cli.notify',"
            " 'workflow.entrypoints.cli.web', 'workflow.formats.ledger')\n"
            "groups = sorted(m for m in sys.modules if m in named)\n"
            "stats = vars(cli.build_parser('stats').parse_args(['stats', 'G1', '--live']))\n"
            "print(json.dumps([show, groups, stats]))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    show, groups, stats = json.loads(proc.stdout)
    assert show["command"] == "show" and show["org"] == "G1" and show["as_user"] == "u"
    assert groups == []
    assert stats["command"] == "stats" and stats["live"] is True


def test_the_help_lists_every_command_from_the_registry_and_a_command_loads_its_module_only() -> None:
    """``bangfu --help`` lists the registry's commands, each with its help line, importing no
    command module; ``bangfu purchase-list --help`` imports that command's module alone."""
    code = ("import contextlib, io, json, sys\n"
            "from workflow.entrypoints import cli\n"
            "def loaded():\n"
            "    return sorted(m.rsplit('.', 1)[-1] for m in sys.modules\n"
            "                  if m.startswith('workflow.entrypoints.cli.commands.'))\n"
            "out = []\n"
            "for argv in (['--help'], ['purchase-list', '--help']):\n"
            "    text = io.StringIO()\n"
            "    with contextlib.redirect_stdout(text), contextlib.suppress(SystemExit):\n"
            "        cli.main(argv)\n"
            "    out.append([text.getvalue(), loaded()])\n"
            "print(json.dumps(out))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (help_text, after_help), (_command_help, after_command) = json.loads(proc.stdout)
    assert after_help == []
    assert after_command == ["purchases"]
    listed = "".join(help_text.split())  # argparse wraps the long help lines
    for name, entry in cli.registry.COMMANDS.items():
        assert name in listed and "".join(entry.help.split()) in listed, name


def test_a_command_whose_module_fails_to_load_is_a_bug_in_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The module loads while the command line is parsed: a failure there is exit 1, one line."""
    monkeypatch.delenv("BANGFU_DEBUG", raising=False)
    monkeypatch.setitem(cli.registry.COMMANDS, "lifecycle", cli.registry.Entry("no_such_module", "以 Mermaid 图输出流程"))
    capsys.readouterr()
    assert cli.main(["lifecycle"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err and len(err.strip().splitlines()) == 1 and "内部错误" in err
