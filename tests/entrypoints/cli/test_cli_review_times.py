"""``bangfu review-times``: the days from submit to decision in a reviewer's words, as JSON and
XLSX; a district sees its own unions only; a clerk is refused."""

from __future__ import annotations

import os
from pathlib import Path

from tests.app.test_review_times import build_waits
from tests.conftest import World
from tests.entrypoints.cli.test_cli import Cli, assert_one_line_error, bangfu, ready  # noqa: F401  (fixtures)
from workflow.store.engine import Database


def test_review_times_from_the_command_line(ready: Cli, tmp_path: Path) -> None:  # noqa: F811
    run = ready
    db = Database(os.environ["BANGFU_DATABASE_URL"])
    try:
        build_waits(World(db=db))
    finally:
        db.dispose()
    c1 = run("review-times", "--round", "2021", "--as", "c1-reviewer")
    assert c1.code == 0, c1.err
    assert "广州市总工会2021年度审核用时" in c1.out
    assert "合计：审核 4 次，用时中位数 4.0 天、90% 8.8 天、最长 10.0 天；退回 1 次（每条记录 0.33 次）" in c1.out
    assert "天河区总工会：审核 3 次，用时中位数 2.0 天、90% 5.2 天、最长 6.0 天" in c1.out
    assert "越秀医院工会（越秀区总工会 D2审核人，通过）：10.0 天" in c1.out
    d1 = run("review-times", "--round", "2021", "--as", "d1-reviewer", "--json", "--xlsx", str(tmp_path / "t.xlsx"))
    data = d1.json()
    assert isinstance(data, dict)
    assert [g["label"] for g in data["by_federation"]] == ["天河区总工会"]
    assert data["total"]["median_days"] == 2.0 and data["total"]["p90_days"] == 5.2
    assert (tmp_path / "t.xlsx").stat().st_size > 0
    assert_one_line_error(run("review-times", "--org", "G1", "--round", "2021", "--as", "g1-clerk"),
                          3, "permission.report_scope")
