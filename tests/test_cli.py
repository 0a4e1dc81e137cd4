"""The ``bangfu`` command line, run in-process on a temporary SQLite database.

Exit codes: 0 done, 2 bad input, 3 refused by a rule or a permission, 4 version conflict, 1 a bug;
errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import states
from tests.conftest import WORLD_ORGS, world_users_csv
from workflow.entrypoints import cli
from workflow.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent


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
