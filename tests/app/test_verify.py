"""Issue 20 point 2: ``bangfu verify`` recomputes every snapshot, rollup row, quota and lapsed
amount of a round from the ledger and names each difference by organisation, in Chinese; exit 1
on any. Each tamper below is a statement somebody with the database could run."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import World
from workflow.app import verify as verifying
from workflow.entrypoints import cli


def _world_sent_up(w: World) -> None:
    """G1 and G2 submitted, G1 accepted by D1, D1 summarized (own line + G1)."""
    w.to_submitted("G1")
    w.to_submitted("G2", amount_fen=50000, members=40)
    w.fire("G1", "accept", "d1-reviewer")
    w.plan("D1", 0, 0)
    w.buy("D1", "D1-own", 30000, 3)
    w.fire("D1", "finish_purchasing", "d1-clerk")
    w.info("D1", work_experience="先进经验", work_highlights="工作亮点")
    w.fire("D1", "summarize", "d1-clerk")


def _findings(w: World) -> list[verifying.Finding]:
    (report,) = verifying.verify(w.uow(True), round_label=w.round_label)
    return report.findings


def _run(w: World, sql: str) -> None:
    with w.db.engine.begin() as conn:
        conn.execute(text(sql))


def test_a_round_worked_through_the_system_verifies_clean(any_world: World) -> None:
    w = any_world
    _world_sent_up(w)
    (report,) = verifying.verify(w.uow(True), round_label=w.round_label)
    assert report.ok, report.text()
    assert "都与明细一致" in report.text()


@pytest.mark.parametrize(("tamper", "org", "check", "words"), [
    # a frozen figure edited: the snapshot line and the snapshot's total both disagree
    ("UPDATE snapshot_line SET amount_fen = amount_fen + 100 WHERE snapshot_id IN"
     " (SELECT snapshot_id FROM record r JOIN organisation o ON o.id = r.org_id WHERE o.code = 'G2')",
     "G2", "snapshot_line", "汇总快照与明细不符（粤工惠购）：应为 20 人次、1,200.00 元，实存 20 人次、1,201.00 元"),
    # a purchase under a submitted record changed behind the system's back
    ("UPDATE purchase SET people = people + 5 WHERE order_no = 'G2-1'",
     "G2", "snapshot_line", "应为 25 人次、1,200.00 元，实存 20 人次、1,200.00 元"),
    # an accepted child's snapshot no longer adds up in its parent's
    ("DELETE FROM purchase WHERE order_no = 'D1-own'", "D1", "snapshot_line", "汇总快照与明细不符"),
    # a submitted record whose snapshot is marked stale
    ("UPDATE record SET snapshot_stale = TRUE WHERE org_id = (SELECT id FROM organisation WHERE code = 'G2')",
     "G2", "snapshot_stale_sent", "已提交或已通过，但汇总快照已过期"),
    # the overview's rollup moved by hand
    ("UPDATE rollup SET n = n + 1 WHERE org_id = (SELECT id FROM organisation WHERE code = 'D1')"
     " AND state = 'submitted'", "D1", "rollup", "概况汇总表与记录不符（已提交，基层"),
    # a quota that is not amount × members
    ("UPDATE record SET quota_fen = quota_fen + 1 WHERE org_id = (SELECT id FROM organisation WHERE code = 'G1')",
     "G1", "quota", "额外额度不等于每人额度×会员人数：应为 60,000.00 元，实存 60,000.01 元"),
    # a lapsed amount that the purchases do not give
    ("UPDATE record SET lapsed_fen = 1 WHERE org_id = (SELECT id FROM organisation WHERE code = 'G1')",
     "G1", "lapsed", "作废额度不等于额度减去已用额度：应为 58,800.00 元，实存 0.01 元"),
])
def test_each_tamper_is_named_by_organisation(any_world: World, tamper: str, org: str, check: str,
                                              words: str) -> None:
    w = any_world
    _world_sent_up(w)
    if "TRUE" in tamper and w.db.is_sqlite:
        tamper = tamper.replace("TRUE", "1")
    _run(w, tamper)
    found = _findings(w)
    mine = [f for f in found if f.org_code == org and f.check == check]
    assert mine, [f.line for f in found]
    assert any(words in f.line for f in mine), [f.line for f in mine]


def test_the_command_prints_chinese_and_exits_1_on_a_difference(world: World, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    w = world
    _world_sent_up(w)
    monkeypatch.setenv("BANGFU_DATABASE_URL", str(w.db.engine.url))
    from workflow.settings import get_settings

    get_settings.cache_clear()
    try:
        assert cli.main(["verify", "--round", w.round_label]) == 0
        assert "都与明细一致" in capsys.readouterr().out
        _run(w, "UPDATE record SET quota_fen = quota_fen + 1 WHERE org_id = (SELECT id FROM organisation"
                " WHERE code = 'G1')")
        assert cli.main(["verify", "--round", w.round_label]) == 1
        out = capsys.readouterr().out
        assert "发现 1 处不一致" in out and "天河一中工会（G1）额外额度不等于每人额度×会员人数" in out
        assert cli.main(["verify", "--round", w.round_label, "--json"]) == 1
        assert '"check": "quota"' in capsys.readouterr().out
    finally:
        get_settings.cache_clear()


def test_the_nightly_task_is_scheduled_and_logs_each_difference(world: World, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    import worker as worker_module
    from workflow.settings import from_env

    w = world
    _world_sent_up(w)
    assert worker_module.app.conf.beat_schedule["verify-nightly"]["task"] == "bangfu.verify"
    settings = dataclasses.replace(from_env(), var_dir=tmp_path / "var", database_url=w.db.url)
    app = worker_module.create_app(settings)
    assert app.tasks["bangfu.verify"].apply().get()[w.round_label] == 0
    _run(w, "UPDATE record SET quota_fen = quota_fen + 1 WHERE org_id = (SELECT id FROM organisation WHERE code = 'G1')")
    logger = logging.getLogger("bangfu.worker")  # the app's logging may not propagate to the root
    logger.addHandler(caplog.handler)
    try:
        assert app.tasks["bangfu.verify"].apply().get()[w.round_label] == 1
    finally:
        logger.removeHandler(caplog.handler)
    assert any("天河一中工会（G1）额外额度不等于每人额度×会员人数" in r.getMessage() for r in caplog.records)
