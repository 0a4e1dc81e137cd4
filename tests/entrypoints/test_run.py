"""`make run` (issue 22, point 17): the address is a setting, a taken port stops it with an error
before anything starts, and a second run says how to start over instead of repeating the first
run's to-do list."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from workflow.entrypoints import run
from workflow.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    for name in ("BANGFU_DATABASE_URL", "BANGFU_NOW", "BANGFU_HOST", "BANGFU_PORT", "BANGFU_NO_WEB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BANGFU_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("BANGFU_NO_WORKER", "1")
    get_settings.cache_clear()
    yield tmp_path / "var"
    get_settings.cache_clear()


def test_host_and_port_are_settings(fresh_settings: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANGFU_HOST", "0.0.0.0")
    monkeypatch.setenv("BANGFU_PORT", "8123")
    get_settings.cache_clear()
    assert run._services()[0][-4:] == ["--host", "0.0.0.0", "--port", "8123"]


def test_a_taken_port_stops_make_run_with_an_error_before_anything_starts(fresh_settings: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {"BANGFU_VAR_DIR": str(fresh_settings), "BANGFU_PORT": str(port), "BANGFU_NO_WORKER": "1",
               "PATH": "/usr/bin:/bin"}
        done = subprocess.run([sys.executable, "-m", "workflow.entrypoints.run"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert f"cannot serve on 127.0.0.1:{port}" in done.stderr and "BANGFU_PORT=" in done.stderr
    assert not (fresh_settings / "bangfu.db").exists()  # nothing was set up before the refusal
    assert "Running" not in done.stdout


def test_a_second_run_says_how_to_start_over_and_reset_builds_afresh(
        fresh_settings: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BANGFU_NO_WEB", "1")
    monkeypatch.setenv("BANGFU_NOW", "2026-06-10T10:00")
    assert run.main([]) == 0
    first = capsys.readouterr().out
    assert "demo: loaded" in first and "each with its part of the round to do now" in first
    assert run.main([]) == 0
    second = capsys.readouterr().out
    assert "demo: already loaded" in second
    assert "to do now" not in second and "gz-d1-g1-clerk" in second
    assert "make clean && make run" in second and "RUN_ARGS=--reset" in second
    assert run.main(["--reset"]) == 0
    third = capsys.readouterr().out
    assert "reset: removed" in third and "demo: loaded" in third
