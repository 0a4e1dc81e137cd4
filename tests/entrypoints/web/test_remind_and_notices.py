"""Issue 22, points 7 and 11: 一键催办 from the review page (in-app and e-mail to the late units'
clerks, once a day per unit, in the history), and event notices that say what happened, the
figures, what to do and by when, to everyone concerned."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import event, select

from tests.conftest import World
from tests.entrypoints.web.conftest import csrf_from
from workflow.app import views
from workflow.domain import clock
from workflow.scheduler import sweeps
from workflow.store.tables import History, Notification


def _notes(w: World, username: str, kind: str = "record_event") -> list[Notification]:
    with w.uow(True) as uow:
        return list(uow.session.execute(select(Notification).where(
            Notification.user_id == w.uid(username), Notification.kind == kind).order_by(Notification.id)).scalars())


def test_one_click_reminds_the_late_units_once_a_day(web_world: World, login: Callable[[str], TestClient]) -> None:
    w = web_world
    w.to_submitted("G2")  # G2 has reported: not reminded
    reviewer = login("d1-reviewer")
    page = reviewer.get("/review").text
    assert "一键催办所有未报送的单位" in page and f'data-remind="{w.rid("G1")}"' in page
    done = reviewer.post("/review/remind", data={"csrf_token": csrf_from(page)})
    assert "已催办 1 个单位：天河一中工会" in done.text
    inbox, mail = ({n.channel: n for n in _notes(w, "g1-clerk")}[c] for c in ("inbox", "email"))
    payload = json.loads(inbox.payload)
    assert payload["event"] == "上级催办" and "报送截止 2021年12月20日（剩 49 天）" in payload["note"]
    assert mail.status == "pending"  # the e-mail waits for delivery
    clerk_page = login("g1-clerk").get("/notifications").text
    assert "上级催办" in clerk_page and "请尽快完成采购录入、汇总并提交" in clerk_page
    with w.uow(True) as uow:
        assert [h.trigger for h in uow.records.history(w.rid("G1"))].count("remind") == 1
    history = reviewer.get(f"/records/{w.rid('G1')}/history").text
    assert "上级催办" in history
    # The same day again: nothing is sent, and the page says why.
    again = reviewer.post("/review/remind", data={"csrf_token": csrf_from(page), "record": str(w.rid("G1"))})
    assert "今天已催办过" in again.text
    assert len(_notes(w, "g1-clerk")) == 2
    # A clerk cannot remind.
    clerk = login("g1-clerk")
    refused = clerk.post("/review/remind", data={"csrf_token": csrf_from(clerk.get("/notifications").text),
                                                 "record": str(w.rid("G2"))})
    assert refused.status_code in (403, 404)


def test_notices_carry_figures_what_to_do_and_by_when(web_world: World) -> None:
    w = web_world
    w.to_submitted("G1")  # 600 yuan x 100 members quota; one purchase
    submit = json.loads(_notes(w, "d1-reviewer")[-1].payload)
    assert submit["figures"] and "人次" in submit["figures"] and "元" in submit["figures"]
    assert "请审核" in submit["note"] and "2021年12月20日" in submit["note"]
    w.fire("G1", "return_for_revision", "d1-reviewer", reason="请补充发放名单")
    back = json.loads(_notes(w, "g1-clerk")[-1].payload)
    assert "重新汇总后于 2021年12月20日 前再次提交" in back["note"]
    w.fire("G1", "summarize", "g1-clerk")
    w.fire("G1", "submit", "g1-clerk")
    w.fire("G1", "accept", "d1-reviewer")
    told = [json.loads(n.payload)["event"] for n in _notes(w, "d1-clerk")]
    assert "通过" in told  # the district's clerk hears its union was accepted
    # A reviewer submitting on the union's behalf: the union's clerk is told.
    w.plan("G2")
    w.buy("G2", "B-1", 120000, 20)
    for trigger in ("finish_purchasing", "summarize"):
        w.fire("G2", trigger, "d1-reviewer")
    w.info("G2", user="d1-reviewer")
    w.fire("G2", "submit", "d1-reviewer")
    with w.uow(True) as uow:
        last = uow.session.execute(select(History).where(History.record_id == w.rid("G2"))
                                   .order_by(History.id.desc())).scalars().first()
    assert last is not None and last.trigger == "submit" and last.on_behalf
    assert any(n.source == f"history:{last.id}" for n in _notes(w, "g2-clerk"))


def test_the_inbox_shows_each_records_state_now_beside_an_old_reminder(
        web_world: World, login: Callable[[str], TestClient]) -> None:
    """Issue 22 point 11: a reminder that said 当前状态为「计划中」 does not mislead once the union
    has submitted: the inbox says 现在：已提交 beside it, read in one query for the page."""
    w = web_world
    sweeps.run_sweep(w.db, now=clock.parse_instant("2021-12-01T09:00"))
    reminders = [n for n in _notes(w, "g1-clerk", "report_reminder") if n.channel == "inbox"]
    assert reminders and "当前状态为「计划中」" in login("g1-clerk").get("/notifications").text
    reviewer = login("d1-reviewer")  # and a 上级催办: two notices on G1 in the inbox
    assert "已催办" in reviewer.post("/review/remind", data={"csrf_token": csrf_from(reviewer.get("/review").text),
                                                          "record": str(w.rid("G1"))}).text
    w.to_submitted("G1")
    page = login("g1-clerk").get("/notifications").text
    note = page.split(f'id="note-{reminders[0].id}"', 1)[1].split("</li>", 1)[0]
    assert "当前状态为「计划中」" in note and "现在：已提交" in note
    # One query for the states of the page's records, whatever the number of notifications.
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    engine = w.db.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        items = views.notifications(w.uow(True), user_id=w.uid("g1-clerk"), per_page=50).items
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len([i for i in items if i["record_id"]]) >= 2
    assert len([s for s in statements if re.search(r'(FROM|JOIN) "?record"?(\s|$)', s, re.I)]) == 1
    assert {i["state_label_now"] for i in items if i["record_id"] == w.rid("G1")} == {"已提交"}
