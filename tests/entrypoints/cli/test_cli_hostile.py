"""Issue 10 point 5 on the command line: numbers that are not numbers exit 2 with one Chinese
line (they used to exit 1 with an internal error), and nothing is stored."""

from __future__ import annotations

import pytest

from tests.entrypoints.cli.test_cli import Cli, assert_one_line_error, bangfu, ready  # noqa: F401 - fixtures

BIG = str(2**63)
BUY = ("purchase-add", "G1", "--paid-at", "2021-10-01T10:00", "--channel", "ygh", "--order", "X-1",
       "--as", "g1-clerk")


@pytest.mark.parametrize(("extra", "error_code"), [
    (("--amount", "10", "--people", BIG), "input.int_range"),
    (("--amount", "10", "--people", "2", "--line", BIG), "input.int_range"),
    (("--amount", "10", "--people", "١٢"), "input.int"),
    (("--amount", "1e999999999", "--people", "2"), "input.money"),
    (("--amount", "92233720368547758.07", "--people", "2"), "input.money_range"),
    (("--amount", "1_000", "--people", "2"), "input.money"),
    (("--amount", "1,,2", "--people", "2"), "input.money"),
])
def test_hostile_purchase_numbers_exit_2(ready: Cli, extra: tuple[str, ...], error_code: str) -> None:  # noqa: F811
    assert_one_line_error(ready(*BUY, *extra), 2, error_code)
    listed = ready("purchase-list", "G1", "--as", "g1-clerk", "--json").json()
    assert listed == []


def test_hostile_times_and_versions_exit_2(ready: Cli) -> None:  # noqa: F811
    r = ready("purchase-add", "G1", "--paid-at", "0001-01-01T00:00", "--channel", "ygh", "--order", "X-2",
              "--amount", "10", "--people", "1", "--as", "g1-clerk")
    assert_one_line_error(r, 2, "input.time_range")
    assert_one_line_error(ready("report-info", "G1", "--fill-date", "0001-01-01", "--as", "g1-clerk"),
                          2, "input.date_range")
    assert_one_line_error(ready("fire", "G1", "finish_purchasing", "--version", BIG, "--as", "g1-clerk"),
                          2, "input.int_range")
    assert_one_line_error(ready("plan", "G1", "--amount", "600", "--members", BIG, "--as", "g1-clerk"),
                          2, "input.int_range")
