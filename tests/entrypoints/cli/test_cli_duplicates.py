"""``bangfu duplicates``: an order entered by two unions is stored with a warning (purchase-add,
purchase-list, import-purchases), listed per level, and explained by a reviewer covering both
(a blank reason is bad input, exit 2; a narrower reviewer is refused)."""

from __future__ import annotations

from pathlib import Path

from tests.entrypoints.cli.test_cli import Cli, assert_one_line_error, bangfu, ready  # noqa: F401  (fixtures)


def buy(run: Cli, org: str, order: str, *extra: str) -> object:
    return run("purchase-add", org, "--paid-at", "2021-10-20T10:00", "--channel", "ygh", "--amount", "100",
               "--people", "2", "--order", order, "--as", f"{org.lower()}-clerk", *extra)


def test_duplicates_from_the_command_line(ready: Cli, tmp_path: Path) -> None:  # noqa: F811
    run = ready
    for org in ("G1", "G3"):
        assert run("plan", org, "--amount", "600", "--members", "100", "--as", f"{org.lower()}-clerk").code == 0
    first = buy(run, "G1", "A-1", "--json")
    assert set(first.json()) == {"purchase_id", "record_id"}  # type: ignore[attr-defined]
    second = buy(run, "G3", "A-1")
    assert second.code == 0, second.err  # type: ignore[attr-defined]
    assert "注意：订单 A-1（粤工惠购" in second.out and "天河一中工会" in second.out  # type: ignore[attr-defined]
    listed = run("purchase-list", "G1", "--as", "g1-clerk")
    assert "疑似重复：越秀医院工会也录入了这张订单" in listed.out
    # An import into G2 of the same order: stored, and the result names the other unions.
    (tmp_path / "g2.csv").write_text("订单号,支付时间,实付金额,领取人数,商品名称,渠道\r\n"
                                     "A-1,2021-10-20 10:00,50.00,1,梅州金柚,粤工惠购\r\n", encoding="utf-8")
    assert run("plan", "G2", "--amount", "600", "--members", "100", "--as", "g2-clerk").code == 0
    imported = run("import-purchases", "G2", str(tmp_path / "g2.csv"), "--as", "g2-clerk")
    assert imported.code == 0, imported.err
    assert "其他单位也录入了" in imported.out and "越秀医院工会" in imported.out
    # Per level: D1 sees the pair of its own unions (G1, G2); C1 sees all three.
    d1 = run("duplicates", "D1", "--round", "2021", "--as", "d1-reviewer", "--json").json()
    assert [[u["org_code"] for u in o["unions"]] for o in d1["orders"]] == [["G1", "G2"]]  # type: ignore[index]
    c1 = run("duplicates", "C1", "--round", "2021", "--as", "c1-reviewer")
    assert c1.code == 0, c1.err
    assert "1 张订单被两个以上单位录入，其中 1 张尚未说明" in c1.out and "越秀医院工会" in c1.out
    assert_one_line_error(run("duplicates", "--explain", "粤工惠购", "A-1", "--reason", " ", "--round", "2021", "--as", "c1-reviewer"),
                          2, "duplicate.reason_missing")
    assert_one_line_error(run("duplicates", "--explain", "ygh", "A-1", "--reason", "分摊", "--round", "2021", "--as", "d1-reviewer"),
                          3, "permission.duplicate_scope")
    done = run("duplicates", "--explain", "粤工惠购", "A-1", "--reason", "三家工会分摊同一订单", "--round", "2021", "--as", "c1-reviewer")
    assert done.code == 0, done.err
    assert "已说明订单 A-1" in done.out
    assert "已说明：C1审核人" in run("duplicates", "C1", "--round", "2021", "--as", "c1-reviewer").out
    assert "疑似重复" not in run("purchase-list", "G1", "--as", "g1-clerk").out
    assert "说明重复订单" in run("history", "G3", "--as", "g3-clerk").out
