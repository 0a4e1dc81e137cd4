"""Issue 20 point 4 on the command line: hostile free text is refused with one Chinese line, and
a hostile string already stored is printed escaped, never raw to the terminal."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.entrypoints.cli.test_cli import Cli, assert_one_line_error, bangfu, ready  # noqa: F401 - fixtures


def test_hostile_text_is_refused_and_stored_escapes_are_printed_escaped(ready: Cli, tmp_path: Path) -> None:  # noqa: F811
    assert_one_line_error(ready("report-info", "G1", "--reporter", "\x1b[31m张三", "--as", "g1-clerk"),
                          2, "input.control_char")
    assert_one_line_error(ready("report-info", "G1", "--phone", "\u202e13812345678", "--as", "g1-clerk"),
                          2, "input.bidi")
    assert ready("plan", "G1", "--amount", "600", "--members", "100", "--as", "g1-clerk").code == 0
    buy = ("purchase-add", "G1", "--paid-at", "2021-10-01T10:00", "--channel", "ygh", "--amount", "10",
           "--people", "1", "--as", "g1-clerk")
    refused = ready(*buy, "--order", "X-1", "--product", "茶\u0085叶")
    assert refused.code != 0 and "[input.control_char]" in refused.err and "\x85" not in refused.err
    assert ready(*buy, "--order", "X-2", "--product", "茶叶").code == 0
    with sqlite3.connect(tmp_path / "var" / "bangfu.db") as conn:
        conn.execute("UPDATE purchase SET product = ?", ("\x1b[31m红\u202e字\x1b[0m",))
    listed = ready("purchase-list", "G1", "--as", "g1-clerk")
    assert listed.code == 0
    assert "\x1b" not in listed.out and "\u202e" not in listed.out
    assert "\\x1b[31m红\\u202e字" in listed.out
