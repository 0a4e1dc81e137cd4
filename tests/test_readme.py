"""The README as a newcomer meets it (issue 22, points 16–18): short, and every shell command in
it runs as written, in order, on a fresh setup.

The ```sh blocks are extracted and run one after the other in one bash session (so an ``export``
carries on), against a fresh ``BANGFU_VAR_DIR`` and a working directory holding only what a clone
holds (``examples/`` and ``workflow/policies/``). ``make run`` and ``make test`` themselves are
long-running and are skipped; every other line runs. A command that prints a result prints
Chinese lines, never raw JSON, unless it was asked for ``--json``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARK = "@@readme-command@@"


def sh_commands(text: str) -> list[str]:
    """Every command line of the README's ```sh blocks, in order (comments and blank lines left
    out; a line ending in a backslash continues on the next)."""
    commands: list[str] = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M):
        pending = ""
        for line in block.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            pending += line
            if pending.endswith("\\"):
                pending = pending[:-1] + " "
                continue
            commands.append(pending.strip())
            pending = ""
    return commands


def test_the_readme_is_short_and_starts_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    commands = sh_commands(text)
    assert [c.split("#")[0].strip() for c in commands[:2]] == ["make run", "make test"]
    for doc in ("operations", "security", "api", "reports", "benchmarks"):
        assert f"docs/{doc}.md" in text, doc
        assert (ROOT / "docs" / f"{doc}.md").exists(), doc


def test_every_readme_command_runs_as_written_in_order(tmp_path: Path) -> None:
    commands = [c for c in sh_commands(README.read_text(encoding="utf-8"))
                if not re.match(r"make (run|test)\b", c)]
    assert len(commands) >= 15, commands
    work = tmp_path / "clone"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    (work / "workflow").mkdir()
    (work / "workflow" / "policies").symlink_to(ROOT / "workflow" / "policies")
    script = ["set -euo pipefail"]
    for i, command in enumerate(commands):
        script += [f"echo '{MARK}{i}'", command]
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("BANGFU_") or k in ("BANGFU_SECRET_KEY",)}
    env.update(BANGFU_VAR_DIR=str(tmp_path / "var"), PATH=f"{Path(sys.executable).parent}:{env['PATH']}",
               BANGFU_SMTP_PORT="1")  # nothing listens: delivery keeps the mails for later
    done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=work, env=env, capture_output=True,
                          text=True, timeout=600)
    parts = done.stdout.split(MARK)[1:]
    outputs = {int(p.split("\n", 1)[0]): p.split("\n", 1)[1] if "\n" in p else "" for p in parts}
    last = max(outputs) if outputs else -1
    assert done.returncode == 0, (f"README command failed: {commands[last]}\n"
                                  f"{outputs.get(last, '')}\n{done.stderr[-2000:]}")
    assert last == len(commands) - 1
    for i, command in enumerate(commands):
        out = outputs[i].strip()
        if "--json" in command or not out:
            continue
        assert not out.startswith(("{", "[")), f"{command} printed raw JSON:\n{out[:300]}"
        assert re.search(r"[\u4e00-\u9fff]", out), f"{command} printed no Chinese line:\n{out[:300]}"
