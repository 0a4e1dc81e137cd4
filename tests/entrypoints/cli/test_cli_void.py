"""``bangfu purchase-void``: a clerk voids a line with a reason; a blank reason is bad input
(exit 2, Chinese); a submitted record is refused (exit 3)."""

from __future__ import annotations

from tests.entrypoints.cli.test_cli import Cli, assert_one_line_error, bangfu, ready  # noqa: F401  (fixtures)


def test_purchase_void_from_the_command_line(ready: Cli) -> None:  # noqa: F811
    run = ready
    assert run("plan", "G1", "--amount", "600", "--members", "100", "--as", "g1-clerk").code == 0
    pid = run("purchase-add", "G1", "--paid-at", "2021-10-20T10:00", "--channel", "ygh", "--amount", "2500",
              "--people", "500", "--order", "A-1", "--as", "g1-clerk", "--json").json()["purchase_id"]  # type: ignore[index]
    assert_one_line_error(run("purchase-void", "G1", "--id", str(pid), "--reason", " ", "--as", "g1-clerk"),
                          2, "purchase.void_reason_missing")
    done = run("purchase-void", "G1", "--id", str(pid), "--reason", "人次误录为 500，应为 50", "--as", "g1-clerk", "--json")
    assert done.code == 0, done.err
    listed = run("purchase-list", "G1", "--as", "g1-clerk", "--json").json()
    assert [(p["voided"], p["void_reason"], p["voided_by"]) for p in listed] == [  # type: ignore[union-attr]
        (True, "人次误录为 500，应为 50", "G1填报员")]
    again = run("purchase-add", "G1", "--paid-at", "2021-10-20T10:00", "--channel", "ygh", "--amount", "2500",
                "--people", "50", "--order", "A-1", "--as", "g1-clerk")
    assert again.code == 0, again.err
    assert_one_line_error(run("purchase-void", "G1", "--id", str(pid), "--reason", "再来", "--as", "g1-clerk"),
                          3, "purchase.already_voided")
    assert "作废采购行" in run("history", "G1", "--as", "g1-clerk").out
