"""The scheduler's commands, the demo's reminders in the inbox, and the round status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from tests.conftest import World
from tests.scheduler.conftest import DEC_1_0900, at
from workflow import settings
from workflow.domain import clock
from workflow.entrypoints import cli, demo
from workflow.scheduler.sweeps import run_sweep
from workflow.store.tables import Database


@pytest.fixture()
def use_db(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    def point_at(db: Database) -> None:
        monkeypatch.setenv("BANGFU_DATABASE_URL", db.url)
        monkeypatch.setenv("BANGFU_BASE_URL", "https://bangfu.test")
        settings.get_settings.cache_clear()

    yield point_at
    settings.get_settings.cache_clear()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_sweep_and_inbox_commands(round_world: World, use_db, capsys) -> None:  # type: ignore[no-untyped-def]
    use_db(round_world.db)
    code, out, _ = run(capsys, "sweep", "--as-of", "2021-12-01T09:00", "--json")
    assert code == 0 and json.loads(out)["notifications"]["quota_reminder"] == 4
    code, out, _ = run(capsys, "inbox", "g1-clerk")
    assert code == 0
    assert "额外额度剩余 12,345.60 元" in out
    assert f"https://bangfu.test/records/{round_world.rid('G1')}" in out
    code, out, _ = run(capsys, "inbox", "g1-clerk", "--json")
    items = json.loads(out)
    assert [i["kind"] for i in items][:1] and all(not i["read"] for i in items)
    code, _, err = run(capsys, "sweep", "--as-of", "十二月")
    assert code == 2 and "input.time" in err


def test_notify_preview_renders_text_and_html(capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(capsys, "notify-preview", "quota_reminder")
    assert code == 0
    assert "剩余 12,345.60 元，截止 2021年12月31日" in out and "<html" in out.lower()
    code, _, err = run(capsys, "notify-preview", "nope")
    assert code == 2 and "notify.unknown_kind" in err and "quota_reminder" in err


def test_the_demo_round_puts_todays_reminders_in_the_inbox(sqlite_db: Database) -> None:
    # The demo round's lower-level deadline is 14 days after "today": the 14-day reminder is
    # due today at 09:00 China time. `make run` at 08:00 sweeps at once: the 14-day one is not
    # due yet, so the latest due offset (30 days, never sent) goes out as the catch-up; the
    # hourly beat after 09:00 sends the 14-day one.
    with time_machine.travel(at("2026-06-10T08:00"), tick=False):
        demo.build(sqlite_db)
        early = run_sweep(sqlite_db, now=clock.now())
    assert [o[3] for o in early.sent_offsets if o[1] == "report"] == [30]
    report = run_sweep(sqlite_db, now=at("2026-06-10T10:00"))
    assert report.notifications["report_reminder"] > 0
    assert [o[3] for o in report.sent_offsets if o[1] == "report"] == [14]
    assert report.skipped_offsets == []
    from workflow.store.uow import UnitOfWork

    with UnitOfWork(sqlite_db, readonly=True) as uow:
        clerk = uow.directory.user_by_name("gz-d1-g1-clerk").id or 0
        _total, _unread, inbox = uow.notifications.inbox_page(clerk, page=1, per_page=10)
    reminders = [n.payload for n in inbox if n.kind == "report_reminder"]
    assert len(reminders) == 2 and all('"2026-06-24"' in p for p in reminders)


def test_round_status_counts_states_overdue_and_snapshots(round_world: World) -> None:
    w = round_world
    run_sweep(w.db, now=at("2021-12-21T10:00"))
    with w.uow(True) as uow:
        rnd = uow.directory.round_by_label("2021年度")
        *units, total = uow.reports.completeness(rnd.id or 0, now=at("2021-12-21T10:00"),
                                     scope="subtree")
    rows = {r.org_code: r for r in units}
    assert sorted(rows) == ["C1", "C2", "IND"] and total.org_id is None
    assert rows["C1"].own_state == "planned"
    c1 = rows["C1"]
    assert c1.subordinates == 5  # D1, D2, G1, G2, G3
    assert c1.by_state["submitted"] == 1 and c1.by_state["planned"] == 4
    assert c1.overdue == 4 and c1.snapshots == 1 and c1.adds_up
    assert rows["IND"].overdue == 1


def test_round_status_finds_a_snapshot_that_does_not_add_up(round_world: World) -> None:
    from sqlalchemy import text

    w = round_world
    with w.db.engine.begin() as conn:
        conn.execute(text("UPDATE snapshot SET amount_total_fen = amount_total_fen + 1"))
    with w.uow(True) as uow:
        rnd = uow.directory.round_by_label("2021年度")
        rows = {r.org_code: r for r in uow.reports.completeness(rnd.id or 0, now=DEC_1_0900,
                                                    scope="subtree")}
    assert not rows["C1"].adds_up and rows["C1"].mismatched == 1 and rows["C2"].adds_up


def test_round_status_command_reads_the_subtree_scope(round_world: World, use_db, capsys) -> None:  # type: ignore[no-untyped-def]
    use_db(round_world.db)
    code, out, err = run(capsys, "round-status", "--round", "2021年度", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["org_code"] for r in rows] == ["C1", "C2", "IND", ""]
    assert rows[0]["subordinates"] == 5 and rows[0]["adds_up"] and rows[0]["own_state"] == "planned"
    code, out, err = run(capsys, "round-status", "--round", "2021年度")
    assert code == 0, err
    assert "（C1，本级计划中）：下级 5 个" in out and "全省合计：下级 8 个" in out


# --- issue 11.5: an outbox an operator can run ------------------------------------------------


def test_outbox_status_list_and_retry_commands(round_world: World, use_db, capsys) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    w = round_world
    use_db(w.db)
    run_sweep(w.db, now=DEC_1_0900)
    with w.db.engine.begin() as conn:
        conn.execute(text("UPDATE notification SET status = 'failed', attempts = 8,"
                          " last_error = 'SMTP 550: no such mailbox' WHERE id IN"
                          " (SELECT MIN(id) FROM notification WHERE channel = 'email')"))
    code, out, _ = run(capsys, "outbox", "status")
    assert code == 0 and "邮件 / 额度提醒：待发送" in out and "失败 1" in out
    assert "最早的待发送通知已等待" in out
    code, out, _ = run(capsys, "outbox", "status", "--json")
    status = json.loads(out)
    assert status["totals"]["failed"] == 1 and status["totals"]["pending"] >= 1
    code, out, _ = run(capsys, "outbox", "list", "--failed")
    assert code == 0 and "SMTP 550: no such mailbox" in out and "尝试 8 次" in out
    [failed] = json.loads(run(capsys, "outbox", "list", "--failed", "--json")[1])
    # Bad input: a clear message, exit 2, nothing changed.
    code, _, err = run(capsys, "outbox", "retry")
    assert code == 2 and "请指定要重发的通知编号" in err
    code, _, err = run(capsys, "outbox", "retry", "--kind", "nope")
    assert code == 2 and "没有通知类型“nope”" in err
    code, out, _ = run(capsys, "outbox", "retry", str(failed["id"]))
    assert code == 0 and "已将 1 条失败的通知重新排队" in out
    with w.db.engine.connect() as conn:
        row = conn.execute(text("SELECT status, attempts, last_error FROM notification"
                                " WHERE id = :i"), {"i": failed["id"]}).one()
        audit = conn.execute(text("SELECT actor, action, rows FROM outbox_event")).all()
    assert tuple(row) == ("pending", 0, None)
    assert [(a[1], a[2]) for a in audit] == [("retry", 1)] and audit[0][0].startswith("cli@")
    assert "没有发送失败的通知" in run(capsys, "outbox", "list", "--failed")[1]


def test_outbox_health_fails_when_the_oldest_pending_row_is_too_old(
    round_world: World, use_db, capsys, monkeypatch  # type: ignore[no-untyped-def]
) -> None:
    from sqlalchemy import bindparam, text

    from workflow.store.types import UTCDateTime

    w = round_world
    use_db(w.db)
    with w.db.engine.begin() as conn:  # everything delivered so far
        conn.execute(text("UPDATE notification SET status = 'sent'"))
    code, out, _ = run(capsys, "outbox", "health")
    assert code == 0 and out.startswith("正常")
    run_sweep(w.db, now=DEC_1_0900)  # a sweep in business time: rows dated 1 December 2021
    # Issue 25.5: they became deliverable just now, whichever clock the reader runs in.
    for business in (None, "2021-12-01T09:00", "2021-12-24T10:00"):
        if business:
            monkeypatch.setenv("BANGFU_NOW", business)
        code, out, _ = run(capsys, "outbox", "health", "--max-age", "600", "--json")
        monkeypatch.delenv("BANGFU_NOW", raising=False)
        health = json.loads(out)
        assert code == 0 and health["healthy"], (business, health)
        assert 0 <= health["oldest_pending_seconds"] < 600
    code, out, _ = run(capsys, "outbox", "health")
    assert code == 0 and out.startswith("正常") and "小时" not in out
    with w.db.engine.begin() as conn:  # one row really waits: written an hour ago
        conn.execute(text("UPDATE notification SET available_at = :t WHERE id ="
                          " (SELECT MIN(id) FROM notification WHERE status = 'pending')")
                     .bindparams(bindparam("t", type_=UTCDateTime)),
                     {"t": datetime.now(UTC) - timedelta(hours=1, minutes=1)})
    with pytest.raises(SystemExit) as exit_:
        cli.main(["outbox", "health", "--max-age", "600"])
    out = capsys.readouterr().out
    assert exit_.value.code == 1 and out.startswith("异常") and "1 小时" in out, out


def test_backup_copies_the_sqlite_database_online(world: World, use_db, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    use_db(world.db)
    target = tmp_path / "backup.db"
    code, out, _ = run(capsys, "backup", str(target))
    assert code == 0 and "已在线备份到" in out
    copy = Database(f"sqlite:///{target}")
    try:
        with copy.engine.connect() as conn:
            from sqlalchemy import text

            assert conn.execute(text("SELECT COUNT(*) FROM organisation")).scalar() == 12
    finally:
        copy.dispose()
    code, _, err = run(capsys, "backup", str(target))
    assert code == 2 and "已存在" in err
