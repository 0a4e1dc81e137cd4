"""The daily sweep: reminders at the policy offsets, catch-up, idempotency, round checks."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import text

from notifications.channels import message_id_for
from tests.conftest import World
from tests.notifications.conftest import SmtpServer
from tests.scheduler.conftest import (
    BASE_URL,
    DEC_1_0900,
    at,
    body,
    channels_for,
    mails,
    rows,
    system_history,
)
from workflow.scheduler import sweeps
from workflow.scheduler.outbox import deliver_pending


def _clerk_mails(server: SmtpServer, kind_word: str) -> dict[str, str]:
    return {str(m["To"]): body(m) for m in mails(server) if kind_word in str(m["Subject"])}


def test_due_offsets_catch_up_picks_the_latest_and_supersedes_the_rest() -> None:
    from datetime import date

    last = date(2021, 12, 31)
    offsets = (30, 14, 7, 3, 1, 0)
    assert sweeps.due_offsets(last, offsets, 9, at("2021-12-01T08:59")).latest is None
    on_time = sweeps.due_offsets(last, offsets, 9, at("2021-12-01T09:00"))
    assert on_time.latest == 30 and on_time.superseded == ()
    late = sweeps.due_offsets(last, offsets, 9, at("2021-12-29T10:00"))
    assert late.latest == 3
    assert [n for n, _ in late.superseded] == [30, 14, 7]
    assert sweeps.due_offsets(last, offsets, 9, at("2021-12-31T23:59")).latest == 0
    assert sweeps.due_offsets(last, offsets, 9, at("2022-01-01T00:00")).latest is None


def test_thirty_days_before_the_quota_deadline_the_right_mails_arrive(
    round_world: World, smtp_server: SmtpServer
) -> None:
    w = round_world
    report = sweeps.run_sweep(w.db, now=DEC_1_0900)
    assert report.notifications["quota_reminder"] == 4  # G1 and G3: inbox + e-mail each

    result = deliver_pending(w.db, channels=channels_for(smtp_server), now=DEC_1_0900,
                             worker_id="test", base_url=BASE_URL)
    assert result.failed == 0 and result.retry == 0

    quota = _clerk_mails(smtp_server, "额外额度剩余")
    # G2 chose 0, G4 used its quota up, G5 has not planned: no quota reminder for them.
    assert sorted(quota) == ["g1-clerk@example.test", "g3-clerk@example.test"]
    assert "剩余 12,345.60 元，截止 2021年12月31日" in quota["g1-clerk@example.test"]
    assert "已使用 47,654.40 元" in quota["g1-clerk@example.test"]
    assert "剩余 58,800.00 元，截止 2021年12月31日" in quota["g3-clerk@example.test"]
    assert f"{BASE_URL}/records/{w.rid('G1')}" in quota["g1-clerk@example.test"]
    # Every pending e-mail row went out once, with the Message-ID derived from its key.
    email_rows = rows(w.db, "channel = 'email'")
    assert {r["status"] for r in email_rows} == {"sent"}
    expected = sorted(message_id_for(f"{r['user_id']}:email:{r['source']}") for r in email_rows)
    assert sorted(str(m["Message-ID"]) for m in mails(smtp_server)) == expected
    # The in-app copies are in the inbox at once.
    inbox = rows(w.db, "channel = 'inbox' AND kind = 'quota_reminder'")
    assert {r["user_id"] for r in inbox} == {w.uid("g1-clerk"), w.uid("g3-clerk")}
    assert {r["status"] for r in inbox} == {"sent"}


def test_report_reminders_and_digest_name_who_is_missing(
    round_world: World, smtp_server: SmtpServer
) -> None:
    w = round_world
    sweeps.run_sweep(w.db, now=DEC_1_0900)
    deliver_pending(w.db, channels=channels_for(smtp_server), now=DEC_1_0900, worker_id="t",
                    base_url=BASE_URL)
    report_to = {str(m["To"]) for m in mails(smtp_server) if "报送" in str(m["Subject"])
                 or "提交" in str(m["Subject"])}
    # Every organisation not yet submitted hears about its own deadline; G3 (submitted) does not.
    assert "g3-clerk@example.test" not in report_to
    assert {"g1-clerk@example.test", "d1-clerk@example.test", "c1-clerk@example.test"} <= report_to
    digests = {str(m["To"]): body(m) for m in mails(smtp_server)
               if str(m["To"]).endswith("-reviewer@example.test")}
    d2 = digests["d2-reviewer@example.test"]
    assert "越秀医院工会" in d2 and "待审核（1 项）" in d2  # G3 awaits D2's decision
    d1 = digests["d1-reviewer@example.test"]
    assert "天河一中工会（计划中）" in d1 and "天河供电局工会（计划中）" in d1
    assert "2021年12月20日" in d1


def test_catch_up_after_a_stopped_clock_sends_only_the_latest_reminder(round_world: World) -> None:
    w = round_world
    sweeps.run_sweep(w.db, now=DEC_1_0900)
    report = sweeps.run_sweep(w.db, now=at("2021-12-29T10:00"))

    g1 = rows(w.db, "user_id = :u AND kind = 'quota_reminder' AND channel = 'email'",
              u=w.uid("g1-clerk"))
    assert [r["source"].rsplit(":", 1)[1] for r in g1] == ["2021-12-01", "2021-12-28"]
    skipped = sorted((g, d.isoformat(), n) for _, g, d, n in report.skipped_offsets)
    assert ("quota", "2021-12-31", 14) in skipped and ("quota", "2021-12-31", 7) in skipped
    assert ("quota", "2021-12-31", 30) not in skipped  # it was sent on 1 December
    with w.db.engine.connect() as conn:
        runs = conn.execute(text(
            "SELECT offset_days, status FROM reminder_run WHERE grp = 'quota' ORDER BY offset_days"
        )).all()
    assert [tuple(r) for r in runs] == [(3, "sent"), (7, "skipped"), (14, "skipped"), (30, "sent")]
    payload = g1[-1]["payload"]
    assert '"days_left"' in payload and "2021-12-31" in payload


def test_a_second_sweep_adds_nothing(round_world: World) -> None:
    w = round_world
    for moment in ("2021-12-01T09:00", "2021-12-29T10:00", "2022-02-02T10:00"):
        sweeps.run_sweep(w.db, now=at(moment))
        before = (rows(w.db), system_history(w.db, "overdue"), system_history(w.db, "lapse"))
        again = sweeps.run_sweep(w.db, now=at(moment))
        assert again.total_notifications == 0 and again.overdue == 0 and again.late == 0
        after = (rows(w.db), system_history(w.db, "overdue"), system_history(w.db, "lapse"))
        assert after == before


def test_two_sweeps_at_once_write_each_row_once(round_world: World) -> None:
    w = round_world
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            sweeps.run_sweep(w.db, now=at("2022-02-02T10:00"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    keys = [(r["user_id"], r["channel"], r["source"]) for r in rows(w.db)]
    assert len(keys) == len(set(keys))
    overdue = [h["code"] for h in system_history(w.db, "overdue")]
    assert overdue == sorted(set(overdue))  # one overdue row per record
    assert len(system_history(w.db, "lapse")) == 2


def test_lapse_at_the_entry_cutoff_by_the_system_actor(round_world: World) -> None:
    w = round_world
    assert sweeps.run_sweep(w.db, now=at("2022-01-31T23:59")).lapsed == 0
    report = sweeps.run_sweep(w.db, now=at("2022-02-01T00:00"))
    assert report.lapsed == 5  # every grassroots record gets its lapsed amount, 0 included
    lapses = {h["code"]: h for h in system_history(w.db, "lapse")}
    assert sorted(lapses) == ["G1", "G3"]
    g1 = lapses["G1"]
    assert g1["actor_user_id"] is None and g1["actor_role"] == "system"
    assert g1["from_state"] == g1["to_state"] == "planned"
    assert json.loads(g1["detail"]) == {"lapsed_fen": 1234560, "quota_fen": 6000000}
    with w.db.engine.connect() as conn:
        lapsed = dict(conn.execute(text(
            "SELECT o.code, r.lapsed_fen FROM record r JOIN organisation o ON o.id = r.org_id"
            " WHERE r.is_grassroots AND r.round_id = (SELECT id FROM round WHERE year = 2021)"
        )).all())
    assert lapsed == {"G1": 1234560, "G2": 0, "G3": 5880000, "G4": 0, "G5": 0}
    notices = rows(w.db, "kind = 'quota_lapsed' AND channel = 'inbox'")
    assert {n["user_id"] for n in notices} == {w.uid("g1-clerk"), w.uid("g3-clerk")}


def test_overdue_at_the_deadline_and_the_parent_reviewers_told(round_world: World) -> None:
    w = round_world
    assert sweeps.run_sweep(w.db, now=at("2021-12-20T23:59")).overdue == 0
    report = sweeps.run_sweep(w.db, now=at("2021-12-21T00:00"))
    overdue = {h["code"]: h for h in system_history(w.db, "overdue")}
    # Lower levels (deadline 20 December) not yet submitted; G3 submitted; cities not yet due.
    assert sorted(overdue) == ["D1", "D2", "D3", "G1", "G2", "G4", "G5"]
    assert report.overdue == 7
    g1 = overdue["G1"]
    assert g1["actor_user_id"] is None and g1["actor_role"] == "system"
    assert g1["from_state"] == g1["to_state"] == "planned"
    notices = rows(w.db, "kind = 'overdue_notice' AND channel = 'email'")
    # Issue 25.6: one digest per parent (its own record), listing its overdue children.
    listed = {n["user_id"]: (n["record_id"], [c["path"] for c in json.loads(str(n["payload"]))["children"]])
              for n in notices}
    assert len(listed) == len(notices)
    assert listed[w.uid("d1-reviewer")][0] == w.rid("D1")
    assert f"/records/{w.rid('G1')}" in listed[w.uid("d1-reviewer")][1]
    assert f"/records/{w.rid('D1')}" in listed[w.uid("c1-reviewer")][1]
    assert w.uid("d2-reviewer") not in listed  # G3 submitted: nothing overdue under D2
    assert w.state("G1") == "planned"  # a fact, not a state


@pytest.mark.parametrize("robot", [False, True])
def test_a_parent_gets_one_overdue_digest_listing_its_children_never_one_per_child(
    round_world: World, smtp_server: SmtpServer, robot_server, robot: bool  # type: ignore[no-untyped-def]
) -> None:
    from workflow.store.tables import OrgRobot

    w = round_world
    if robot:
        with w.uow() as uow:
            d1 = uow.directory.org_by_code("D1").id
            uow.session.add(OrgRobot(org_id=d1, kind="wecom", url=robot_server.url("/ok?key=s")))
            uow.commit()
    report = sweeps.run_sweep(w.db, now=at("2021-12-21T00:00"))
    # Seven children overdue under five parents (D1: G1 G2; C1: D1 D2; C2: D3; D3: G4;
    # IND: G5): one digest per parent and reviewer channel, not one per child.
    notices = rows(w.db, "kind = 'overdue_notice'")
    email = [n for n in notices if n["channel"] == "email"]
    assert report.overdue == 7
    assert sorted(json.loads(str(n["payload"]))["org_name"] for n in email) == sorted(
        ["天河区总工会", "广州市总工会", "深圳市总工会", "福田区总工会", "广东省教科文卫工会"])
    d1 = next(n for n in email if n["user_id"] == w.uid("d1-reviewer"))
    payload = json.loads(str(d1["payload"]))
    assert sorted(c["child_org_name"] for c in payload["children"]) == ["天河一中工会", "天河供电局工会"]
    assert d1["source"] == f"reminder:{round_of(w, 'D1')}:overdue_digest:{payload['org_id']}:2021-12-20"
    robots = [n for n in notices if n["channel"] == "wecom"]
    assert len(robots) == (1 if robot else 0)
    # A second sweep the same day (and the next) writes nothing more.
    again = sweeps.run_sweep(w.db, now=at("2021-12-21T01:05"))
    assert again.notifications.get("overdue_notice", 0) == 0
    assert len(rows(w.db, "kind = 'overdue_notice'")) == len(notices)
    # What the reviewer reads: one mail naming both unions, each with its link.
    deliver_pending(w.db, channels=channels_for(smtp_server), now=DEC_1_0900, worker_id="t",
                    base_url=BASE_URL, batch=1000)
    to_d1 = [m for m in mails(smtp_server) if m["To"] == "d1-reviewer@example.test"
             and "逾期" in str(m["Subject"])]
    assert len(to_d1) == 1
    assert str(to_d1[0]["Subject"]) == "【消费帮扶】2家下级单位逾期未提交（截止2021年12月20日）"
    text_ = body(to_d1[0])
    assert "天河一中工会" in text_ and "天河供电局工会" in text_
    assert f"{BASE_URL}/records/{w.rid('G1')}" in text_ and f"{BASE_URL}/records/{w.rid('G2')}" in text_
    if robot:
        [(_path, _headers, posted)] = [r for r in robot_server.requests]
        assert "天河一中工会" in posted["markdown"]["content"]


def round_of(w: World, org: str) -> int:
    with w.db.engine.connect() as conn:
        return int(conn.execute(text("SELECT round_id FROM record WHERE id = :r"),
                                {"r": w.rid(org)}).scalar_one())


def test_a_late_submission_is_marked_by_the_system(round_world: World) -> None:
    w = round_world
    late = at("2021-12-22T10:00")
    w.fire("G4", "finish_purchasing", "g4-clerk", now=late)
    w.info("G4")
    w.fire("G4", "summarize", "g4-clerk", now=late)
    w.fire("G4", "submit", "g4-clerk", now=late)
    report = sweeps.run_sweep(w.db, now=at("2021-12-22T11:00"))
    assert report.late == 1
    [row] = system_history(w.db, "late")
    assert row["code"] == "G4" and row["actor_user_id"] is None and row["actor_role"] == "system"
    assert row["from_state"] == row["to_state"] == "submitted"
    assert sweeps.run_sweep(w.db, now=at("2021-12-23T11:00")).late == 0


def test_chunked_writes_give_the_same_rows(round_world: World, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    whole = sweeps.run_sweep(round_world.db, now=DEC_1_0900).notifications
    keys = sorted((r["user_id"], r["channel"], r["source"]) for r in rows(round_world.db))
    with round_world.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM notification WHERE source LIKE 'reminder:%'"))
    monkeypatch.setattr(sweeps, "CHUNK", 2)  # on SQLite: six transactions per statement
    chunked = sweeps.run_sweep(round_world.db, now=DEC_1_0900).notifications
    assert chunked == whole
    assert {k: v for k, v in whole.items() if v} == {
        "quota_reminder": 4, "report_reminder": 20, "reviewer_digest": 14}
    assert sorted((r["user_id"], r["channel"], r["source"]) for r in rows(round_world.db)) == keys
