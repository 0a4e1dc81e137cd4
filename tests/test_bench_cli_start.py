"""``bench.cli_start`` smoke-run: one run of each command on SQLite, checked by shape (every
command measured, each run succeeded), never by time."""

from __future__ import annotations

from bench import cli_start


def test_cli_start_measures_every_command_once() -> None:
    result = cli_start.run(runs=1, kinds=("sqlite",), log=lambda line: None)
    assert set(result["baseline"]) == {"python -c pass", "import sqlalchemy"}
    assert set(result["sqlite"]) == set(cli_start.commands())
    for figures in [*result["baseline"].values(), *result["sqlite"].values()]:
        assert figures["runs"] == 1 and 0 < figures["min"] <= figures["median"]
