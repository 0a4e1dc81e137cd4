"""``bangfu audit-verify`` and ``bangfu audit-export-head`` from the command line: a clean
history verifies (exit 0); a rewritten row is named in Chinese with exit 1."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.entrypoints.cli.test_cli import Cli, bangfu, ready  # noqa: F401  (fixtures)
from workflow.store.tables import history_guard_statements


def test_audit_verify_and_export_from_the_command_line(ready: Cli, tmp_path: Path,  # noqa: F811
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    run = ready
    assert run("plan", "G1", "--amount", "600", "--members", "100", "--as", "g1-clerk").code == 0
    assert run("fire", "G1", "finish_purchasing", "--as", "g1-clerk").code == 0
    clean = run("audit-verify")
    assert clean.code == 0, clean.err
    assert "历史记录链完整" in clean.out and "还没有导出过链头" in clean.out
    exported = run("audit-export-head", "--json")
    assert exported.code == 0, exported.err
    entry = exported.json()
    assert entry["records"] == 1 and entry["rows"] == 1  # type: ignore[index]
    assert (tmp_path / "var" / "audit" / "heads.log").exists()
    assert "与" in run("audit-verify").out  # compared with the export
    # The owner rewrites the row (the trigger dropped, then put back).
    db = sqlite3.connect(tmp_path / "var" / "bangfu.db")
    db.execute("DROP TRIGGER history_no_update")
    db.execute("UPDATE history SET actor_role = 'reviewer'")
    for stmt in history_guard_statements("sqlite"):
        db.execute(str(stmt))
    db.commit()
    db.close()
    capsys.readouterr()
    from workflow.entrypoints import cli
    with pytest.raises(SystemExit) as exc:
        cli.main(["audit-verify"])
    assert exc.value.code == 1
    out = capsys.readouterr().out
    assert "天河一中工会" in out and "内容与链哈希不符" in out and "完成采购" in out, out
    with pytest.raises(SystemExit):
        cli.main(["audit-verify", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["breaks"][0]["seq"] == 1
