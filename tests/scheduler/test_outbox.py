"""Outbox delivery: leases, backoff, permanent failures, robots, per-user channels."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, text

from notifications.channels import message_id_for
from tests.conftest import World
from tests.notifications.conftest import RobotServer, SmtpServer
from tests.scheduler.conftest import BASE_URL, DEC_1_0900, channels_for, message_ids, rows
from workflow.scheduler import sweeps
from workflow.scheduler.outbox import claim, deliver_all, deliver_pending
from workflow.store.tables import Notification, OrgRobot


def _deliver(w: World, server: SmtpServer, now=DEC_1_0900):  # type: ignore[no-untyped-def]
    return deliver_pending(w.db, channels=channels_for(server), now=now, worker_id="t",
                           base_url=BASE_URL, batch=1000)


def _sql(w: World, sql: str, **params: object) -> None:
    with w.db.engine.begin() as conn:
        conn.execute(text(sql), params)


def test_rows_claimed_by_a_dead_worker_are_sent_once_after_the_lease(
    round_world: World, smtp_server: SmtpServer
) -> None:
    w = round_world
    sweeps.run_sweep(w.db, now=DEC_1_0900)
    pending = rows(w.db, "status = 'pending'")
    # A worker claims everything and dies before sending.
    dead = claim(w.db, channels=["email"], now=DEC_1_0900, batch=1000, lease_seconds=60)
    assert len(dead) == len(pending) > 0

    assert _deliver(w, smtp_server, DEC_1_0900 + timedelta(seconds=59)).claimed == 0
    assert smtp_server.handler.received == []
    later = _deliver(w, smtp_server, DEC_1_0900 + timedelta(seconds=61))
    assert later.sent == len(pending)
    expected = sorted(message_id_for(f"{r['user_id']}:email:{r['source']}") for r in pending)
    assert message_ids(smtp_server) == expected  # each exactly once
    assert _deliver(w, smtp_server, DEC_1_0900 + timedelta(hours=1)).claimed == 0


def test_temporary_failures_back_off_and_permanent_ones_fail(
    round_world: World, smtp_server: SmtpServer
) -> None:
    w = round_world
    _sql(w, "UPDATE app_user SET email = 'busy-g1@example.test' WHERE username = 'g1-clerk'")
    _sql(w, "UPDATE app_user SET email = 'reject-g3@example.test' WHERE username = 'g3-clerk'")
    sweeps.run_sweep(w.db, now=DEC_1_0900)
    first = _deliver(w, smtp_server)
    assert first.retry >= 1 and first.failed >= 1
    g1 = rows(w.db, "user_id = :u AND channel = 'email'", u=w.uid("g1-clerk"))
    assert {r["status"] for r in g1} == {"pending"}
    assert all(r["attempts"] == 1 and "451" in r["last_error"] for r in g1)
    g3 = rows(w.db, "user_id = :u AND channel = 'email'", u=w.uid("g3-clerk"))
    assert {r["status"] for r in g3} == {"failed"}
    assert all("550" in r["last_error"] for r in g3)
    # Backoff: not retried within the first minute, retried after it, then waits two minutes.
    assert _deliver(w, smtp_server, DEC_1_0900 + timedelta(seconds=30)).claimed == 0
    second = _deliver(w, smtp_server, DEC_1_0900 + timedelta(seconds=61))
    assert second.claimed == len(g1) and second.retry == len(g1)
    assert _deliver(w, smtp_server, DEC_1_0900 + timedelta(seconds=121)).claimed == 0
    # The address is fixed: the next attempt goes through.
    _sql(w, "UPDATE app_user SET email = 'g1@example.test' WHERE username = 'g1-clerk'")
    third = _deliver(w, smtp_server, DEC_1_0900 + timedelta(seconds=200))
    assert third.sent == len(g1)
    assert {r["status"] for r in rows(w.db, "user_id = :u AND channel = 'email'",
                                      u=w.uid("g1-clerk"))} == {"sent"}


def test_a_user_who_chose_the_inbox_only_gets_no_mail(
    round_world: World, smtp_server: SmtpServer
) -> None:
    w = round_world
    _sql(w, "UPDATE app_user SET channels = 'inbox' WHERE username = 'g1-clerk'")
    sweeps.run_sweep(w.db, now=DEC_1_0900)
    assert {r["channel"] for r in rows(w.db, "user_id = :u", u=w.uid("g1-clerk"))} == {"inbox"}


def test_reviewer_digest_reaches_the_federation_robot(
    round_world: World, smtp_server: SmtpServer, robot_server: RobotServer
) -> None:
    w = round_world
    with w.uow() as uow:
        d1 = uow.directory.org_by_code("D1").id
        gd = uow.directory.org_by_code("GD").id
        uow.session.add(OrgRobot(org_id=d1, kind="wecom", url=robot_server.url("/ok?key=secret")))
        uow.session.add(OrgRobot(org_id=gd, kind="dingtalk", url=robot_server.url("/invalid-key")))
        uow.commit()
    sweeps.run_sweep(w.db, now=DEC_1_0900)
    robot_rows = rows(w.db, "channel IN ('wecom', 'dingtalk')")
    # Robots carry the federation digests only, never a personal reminder.
    assert {r["kind"] for r in robot_rows} == {"reviewer_digest"}
    assert len(robot_rows) == 2
    report = deliver_all(w.db, channels=channels_for(smtp_server), now=DEC_1_0900,
                         worker_id="t", base_url=BASE_URL)
    [(path, _headers, posted)] = robot_server.requests[:1]
    assert path == "/ok?key=secret"
    content = posted["markdown"]["content"]
    assert "天河一中工会" in content and "天河供电局工会" in content
    assert f"{BASE_URL}/records/{w.rid('G1')}" in content
    statuses = {r["channel"]: (r["status"], r["last_error"]) for r in
                rows(w.db, "channel IN ('wecom', 'dingtalk')")}
    assert statuses["wecom"] == ("sent", None)
    assert statuses["dingtalk"][0] == "failed" and "93000" in statuses["dingtalk"][1]
    assert report.failed == 1


def test_an_unreachable_server_delays_one_row_per_connection_and_hands_back_the_rest(
    round_world: World,
) -> None:
    from tests.notifications.conftest import free_port
    from tests.scheduler.conftest import channels_for as make

    w = round_world
    sweeps.run_sweep(w.db, now=DEC_1_0900)
    pending = rows(w.db, "status = 'pending'")
    dead = SmtpServer("127.0.0.1", free_port(), None)  # type: ignore[arg-type]
    report = deliver_pending(w.db, channels=make(dead), now=DEC_1_0900, worker_id="t",
                             base_url=BASE_URL, batch=1000, connections=4)
    # Issue 25.4: each connection tries once; the rows it did not reach are not pushed back.
    assert report.relay_down and report.sent == 0
    assert 1 <= report.retry <= 4 and report.released == len(pending) - report.retry
    after = rows(w.db, "status = 'pending'")
    assert len(after) == len(pending)
    tried = [r for r in after if r["last_error"] is not None]
    # Unreachable for everybody: the attempt is given back (issue 11.5), the error recorded.
    assert len(tried) == report.retry
    assert all(r["attempts"] == 0 and "Connection refused" in r["last_error"] for r in tried)
    handed_back = [r for r in after if r["last_error"] is None]
    assert all(r["attempts"] == 0 and r["lease_until"] is None and r["claim"] is None
               for r in handed_back)
    # Claimable again at once by anybody.
    again = claim(w.db, channels=["email"], now=DEC_1_0900, batch=1000, lease_seconds=60)
    assert {r.id for r in again} == {r["id"] for r in handed_back}


def test_two_workers_delivering_at_once_send_each_row_once(
    round_world: World, smtp_server: SmtpServer
) -> None:
    import threading

    w = round_world
    sweeps.run_sweep(w.db, now=DEC_1_0900)
    barrier = threading.Barrier(2)

    def work(name: str) -> None:
        barrier.wait()
        deliver_all(w.db, channels=channels_for(smtp_server), now=DEC_1_0900, worker_id=name,
                    batch=3, base_url=BASE_URL)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    email = rows(w.db, "channel = 'email'")
    assert {r["status"] for r in email} == {"sent"}
    assert message_ids(smtp_server) == sorted(
        message_id_for(f"{r['user_id']}:email:{r['source']}") for r in email)


# --- issue 11.1: leases that mean something ---------------------------------------------------


def test_a_mark_after_the_lease_was_taken_over_is_refused_and_not_counted(
    round_world: World, smtp_server: SmtpServer
) -> None:
    from workflow.scheduler.outbox import _Lease, _mark

    w = round_world
    sweeps.run_sweep(w.db, now=DEC_1_0900)
    slow = claim(w.db, channels=["email"], now=DEC_1_0900, batch=1, lease_seconds=60,
                 token="slow:1")
    [row] = slow
    # The lease runs out; another worker claims the row and sends it.
    fast = claim(w.db, channels=["email"], now=DEC_1_0900 + timedelta(seconds=61), batch=1,
                 lease_seconds=60, token="fast:1")
    assert [r.id for r in fast] == [row.id] and fast[0].claim == "fast:1"
    lease = _Lease("slow:1", DEC_1_0900, 60, {row.id})
    assert _mark(w.db, row, lease, "sent", DEC_1_0900 + timedelta(seconds=62)) is False
    [after] = rows(w.db, "id = :i", i=row.id)
    assert after["status"] == "pending" and after["claim"] == "fast:1"


def test_a_slow_relay_renews_the_lease_and_each_row_gets_its_own_sent_at(
    round_world: World, slow_smtp: SmtpServer
) -> None:
    w = round_world
    sweeps.run_sweep(w.db, now=DEC_1_0900)
    email = rows(w.db, "channel = 'email' AND status = 'pending'")
    # 50 ms a message, a lease of 0.1 s: without renewal the batch would outlive it.
    report = deliver_pending(w.db, channels=channels_for(slow_smtp), worker_id="slow",
                             base_url=BASE_URL, batch=1000, lease_seconds=0.1)
    assert report.sent == len(email) and report.renewed >= 1
    sent = rows(w.db, "channel = 'email'")
    assert len({r["sent_at"] for r in sent}) == len(sent)  # when each was sent, not one time
    assert all(str(r["claim"]).startswith("slow:") for r in sent)


def test_a_stop_request_releases_the_rest_of_the_batch_unspent(
    round_world: World, smtp_server: SmtpServer
) -> None:
    w = round_world
    sweeps.run_sweep(w.db, now=DEC_1_0900)
    pending = rows(w.db, "status = 'pending'")
    asked = iter([False, True])
    report = deliver_pending(w.db, channels=channels_for(smtp_server), worker_id="t",
                             base_url=BASE_URL, batch=1000,
                             should_stop=lambda: next(asked, True))
    assert report.stopped and report.sent == 1 and report.released == len(pending) - 1
    left = rows(w.db, "status = 'pending'")
    assert all(r["lease_until"] is None and r["attempts"] == 0 for r in left)
    again = deliver_pending(w.db, channels=channels_for(smtp_server), worker_id="t",
                            base_url=BASE_URL, batch=1000)
    assert again.sent == len(pending) - 1  # at once, not after a lease


def test_a_second_sweep_stands_aside_while_one_runs(round_world: World) -> None:
    from workflow.scheduler.locks import named_lock

    w = round_world
    with named_lock(w.db, "sweep", holder="beat-a", seconds=600) as lock:
        assert lock.held
        report = sweeps.run_sweep(w.db, now=DEC_1_0900, holder="beat-b")
        assert report.stood_aside and report.stood_aside.startswith("beat-a")
        assert report.total_notifications == 0 and rows(w.db, "source LIKE 'reminder:%'") == []
    report = sweeps.run_sweep(w.db, now=DEC_1_0900, holder="beat-b")
    assert report.stood_aside is None and report.total_notifications > 0


# --- issue 8.6: SMS rows are delivered by a real channel or not written ----------------------


def test_sms_rows_are_not_written_without_a_provider(round_world: World) -> None:
    w = round_world
    _sql(w, "UPDATE app_user SET channels = 'inbox,email,sms', phone = '13800000001'")
    sweeps.run_sweep(w.db, now=DEC_1_0900)
    assert rows(w.db, "channel = 'sms'") == []


def test_sms_rows_go_to_the_http_provider(round_world: World, sms_provider) -> None:  # type: ignore[no-untyped-def]
    from notifications.channels import HttpSmsGateway, SmsChannel

    w = round_world
    _sql(w, "UPDATE app_user SET channels = 'inbox,sms', phone = '13800000001'"
            " WHERE username = 'g1-clerk'")
    _sql(w, "UPDATE app_user SET channels = 'inbox,sms', phone = '13800000004'"
            " WHERE username = 'g4-clerk'")
    sweeps.run_sweep(w.db, now=DEC_1_0900, sms=True)
    sms = rows(w.db, "channel = 'sms'")
    assert len(sms) >= 2 and {r["status"] for r in sms} == {"pending"}
    assert {r["user_id"] for r in sms} == {w.uid("g1-clerk"), w.uid("g4-clerk")}
    channel = SmsChannel(HttpSmsGateway(sms_provider.url("/send"), "k-secret", sign="广东省总工会"))
    report = deliver_all(w.db, channels={"sms": channel}, worker_id="t", base_url=BASE_URL)
    assert report.sent == len(sms)
    assert {r["status"] for r in rows(w.db, "channel = 'sms'")} == {"sent"}
    posted = sms_provider.requests
    assert {p[2]["phone"] for p in posted} == {"13800000001", "13800000004"}
    assert all(p[1]["Authorization"] == "Bearer k-secret" for p in posted)
    assert any("剩余 12,345.60 元" in p[2]["text"] for p in posted)
    assert all(p[2]["sign"] == "广东省总工会" and p[2]["key"] for p in posted)
    # A provider refusing the number fails the row (no retry loop); a busy one retries.
    _sql(w, "UPDATE notification SET status = 'pending', lease_until = NULL WHERE channel = 'sms'")
    bad = SmsChannel(HttpSmsGateway(sms_provider.url("/refuse"), "k", sign=""))
    report = deliver_all(w.db, channels={"sms": bad}, worker_id="t", base_url=BASE_URL)
    assert report.failed == len(sms)
    assert all("provider refused" in r["last_error"] for r in rows(w.db, "channel = 'sms'"))


def test_failed_rows_are_told_to_the_province_admins_once_a_day(
    round_world: World, smtp_server: SmtpServer
) -> None:
    w = round_world
    _sql(w, "INSERT INTO membership (user_id, org_id, role) SELECT u.id, o.id, 'admin'"
            " FROM app_user u, organisation o WHERE u.username = 'gd-reviewer' AND o.code = 'GD'")
    first = sweeps.run_sweep(w.db, now=DEC_1_0900)
    assert "outbox_failed" not in first.notifications  # nothing failed yet
    _sql(w, "UPDATE app_user SET email = 'reject-g3@example.test' WHERE username = 'g3-clerk'")
    _sql(w, "UPDATE notification SET status = 'pending', lease_until = NULL"
            " WHERE channel = 'email'")
    deliver_all(w.db, channels=channels_for(smtp_server), worker_id="t", base_url=BASE_URL)
    later = DEC_1_0900 + timedelta(hours=1)
    report = sweeps.run_sweep(w.db, now=later)
    assert report.notifications.get("outbox_failed", 0) >= 1
    notice = rows(w.db, "kind = 'outbox_failed'")
    assert {r["user_id"] for r in notice} == {w.uid("gd-reviewer")}
    import json

    payload = json.loads(str(notice[0]["payload"]))
    assert payload["org_name"] == "广东省总工会" and payload["failed"] >= 1
    assert payload["by_channel"][0]["label"] == "邮件" and payload["path"] == "/admin/outbox"
    # Once a China day: the next hourly sweep adds nothing.
    again = sweeps.run_sweep(w.db, now=later + timedelta(hours=1))
    assert again.notifications.get("outbox_failed", 0) == 0


def test_marks_store_instants_as_every_other_write_does(
    round_world: World, smtp_server: SmtpServer
) -> None:
    """The marks go to the driver itself: their ``sent_at`` and backoff ``lease_until`` must be
    stored in the format the typed columns write (SQLite keeps text and compares it as text),
    and read back as the delivery clock's instants."""
    w = round_world
    _sql(w, "UPDATE app_user SET email = 'busy-g1@example.test' WHERE username = 'g1-clerk'")
    sweeps.run_sweep(w.db, now=DEC_1_0900)
    report = _deliver(w, smtp_server)
    assert report.sent >= 1 and report.retry >= 1
    with w.db.engine.connect() as conn:
        raw = conn.execute(text(
            "SELECT created_at, sent_at, lease_until FROM notification WHERE channel = 'email'"
            " AND (status = 'sent' OR last_error IS NOT NULL)")).all()
    assert raw
    if w.db.dialect == "sqlite":
        stored = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")
        for created, sent, lease in raw:
            assert stored.fullmatch(created), created
            assert all(stored.fullmatch(v) for v in (sent, lease) if v is not None), (sent, lease)
    n = Notification.__table__  # type: ignore[attr-defined]
    with w.db.engine.connect() as conn:
        typed = conn.execute(select(n.c.sent_at, n.c.lease_until, n.c.status)
                             .where(n.c.channel == "email", n.c.status != "failed")).all()
    sent = [s for s, _lease, status in typed if status == "sent"]
    backoff = [lease for _s, lease, status in typed if status == "pending" and lease is not None]
    assert sent and backoff
    assert all(DEC_1_0900 <= s < DEC_1_0900 + timedelta(minutes=1) for s in sent)
    # A temporary failure's first backoff: one minute from the attempt.
    assert all(DEC_1_0900 + timedelta(seconds=55) <= t < DEC_1_0900 + timedelta(minutes=2)
               for t in backoff)
