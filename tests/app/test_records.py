"""Use cases end to end on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from tests.conftest import NOW_2021, World
from workflow.app import lifecycle, planning, purchases, record_views
from workflow.domain.errors import NotFound, PermissionDenied, RuleViolation, VersionConflict
from workflow.entrypoints.cli import exit_code_for
from workflow.store.notifications import Notifications
from workflow.store.tables import History, Notification, Purchase
from workflow.store.uow import UnitOfWork

CN = timezone(timedelta(hours=8))
REASON = "人次统计有误，请核对后重新提交"


def history_rows(w: World, org: str) -> list[tuple[str, str, str, str, bool, str | None]]:
    with w.uow(True) as uow:
        return [(h.trigger, h.from_state, h.to_state, h.actor_role, h.on_behalf, h.reason)
                for h in uow.records.history(w.rid(org))]


def snapshot_of(w: World, org: str) -> tuple[dict[str, tuple[int, int]], list[str], int, bool]:
    """(lines by channel, missing children, total fen, stale) of the record's current snapshot."""
    with w.uow(True) as uow:
        rec = uow.records.get(w.rid(org))
        assert rec.snapshot_id is not None
        snap, lines = uow.records.snapshot(rec.snapshot_id)
        return ({ln.channel: (ln.people, ln.amount_fen) for ln in lines},
                json.loads(snap.missing_children), snap.amount_total_fen, rec.snapshot_stale)


def count(w: World, model: type, **where: object) -> int:
    with w.uow(True) as uow:
        stmt = select(func.count()).select_from(model)
        for k, v in where.items():
            stmt = stmt.where(getattr(model, k) == v)
        return int(uow.session.execute(stmt).scalar_one())


# --- the whole lifecycle --------------------------------------------------------------------


def test_nil_plan_goes_all_the_way_to_accepted(any_world: World) -> None:
    w = any_world
    view = w.plan("G1", 0, 80)
    assert (view.amount_per_member_fen, view.members, view.quota_fen) == (0, 80, 0)
    w.fire("G1", "finish_purchasing", "g1-clerk")
    w.info("G1")
    w.fire("G1", "summarize", "g1-clerk")
    w.fire("G1", "submit", "g1-clerk")
    w.fire("G1", "accept", "d1-reviewer")
    assert w.state("G1") == "accepted"
    assert [r[:3] for r in history_rows(w, "G1")] == [
        ("finish_purchasing", "planned", "purchased"),
        ("summarize", "purchased", "summarized"),
        ("submit", "summarized", "submitted"),
        ("accept", "submitted", "accepted"),
    ]
    lines, missing, total, stale = snapshot_of(w, "G1")
    assert (lines, missing, total, stale) == ({}, [], 0, False)


def test_full_lifecycle_with_return_withdraw_and_revoke(any_world: World) -> None:
    w = any_world
    w.to_submitted("G1", 60000, 100)
    view = record_views.record_view(w.uow(True), record_id=w.rid("G1"), user_id=w.uid("g1-clerk"), now=NOW_2021)
    assert view.quota_fen == 6_000_000
    assert view.extra_spent_fen == 120000 and view.quota_left_fen == 6_000_000 - 120000
    w.fire("G1", "withdraw", "g1-clerk")
    w.fire("G1", "submit", "g1-clerk")
    w.fire("G1", "return_for_revision", "d1-reviewer", reason=REASON)
    assert w.state("G1") == "purchased"
    w.fire("G1", "summarize", "g1-clerk")
    w.fire("G1", "submit", "g1-clerk")
    w.fire("G1", "accept", "d1-reviewer")
    w.fire("G1", "revoke_acceptance", "d1-reviewer", reason="发现重复订单")
    assert w.state("G1") == "purchased"
    w.fire("G1", "reopen", "g1-clerk")
    assert w.state("G1") == "planned"
    w.plan("G1", 50000, 100)  # planning is open again
    rows = history_rows(w, "G1")
    assert [r[0] for r in rows] == [
        "finish_purchasing", "summarize", "submit", "withdraw", "submit", "return_for_revision",
        "summarize", "submit", "accept", "revoke_acceptance", "reopen",
    ]
    assert rows[5] == ("return_for_revision", "submitted", "purchased", "reviewer", False, REASON)
    assert rows[9][5] == "发现重复订单"


@pytest.mark.parametrize("trigger", ["return_for_revision", "revoke_acceptance"])
def test_return_and_revoke_need_a_reason(any_world: World, trigger: str) -> None:
    w = any_world
    w.to_submitted("G1")
    if trigger == "revoke_acceptance":
        w.fire("G1", "accept", "d1-reviewer")
    before = (w.state("G1"), w.version("G1"), len(history_rows(w, "G1")))
    for reason in (None, "", "   "):
        with pytest.raises(RuleViolation) as exc:
            w.fire("G1", trigger, "d1-reviewer", reason=reason)
        assert exc.value.code == "decision.reason_missing"
    assert (w.state("G1"), w.version("G1"), len(history_rows(w, "G1"))) == before
    w.fire("G1", trigger, "d1-reviewer", reason="  " + REASON + " ")
    view = record_views.record_view(w.uow(True), record_id=w.rid("G1"), user_id=w.uid("g1-clerk"), now=NOW_2021)
    assert view.state == "purchased"
    assert view.last_reason == REASON
    assert history_rows(w, "G1")[-1][5] == REASON


def test_parent_reviewer_acting_on_behalf_is_recorded(any_world: World) -> None:
    w = any_world
    w.plan("G1", 30000, 10, user="d1-reviewer")
    w.buy("G1", "X-1", 5000, user="d1-reviewer")
    result = w.fire("G1", "finish_purchasing", "d1-reviewer")
    assert result.on_behalf is True
    assert history_rows(w, "G1")[-1] == ("finish_purchasing", "planned", "purchased", "reviewer", True, None)
    with w.uow(True) as uow:
        p = uow.purchases.of_record(w.rid("G1"))[0]
        assert p.on_behalf is True
    # The union's own clerks hear that somebody acted for them.
    assert count(w, Notification, user_id=w.uid("g1-clerk"), source=f"history:{result.history_id}") >= 1


def test_a_grandparent_reviewer_cannot_decide(any_world: World) -> None:
    w = any_world
    w.to_submitted("G1")
    with pytest.raises(PermissionDenied) as exc:
        w.fire("G1", "accept", "c1-reviewer")
    assert exc.value.code == "permission.not_parent_reviewer"
    with pytest.raises(NotFound):
        w.fire("G1", "accept", "d3-reviewer")  # another city's district
    assert w.state("G1") == "submitted"


# --- reporting units and snapshots ----------------------------------------------------------


def test_reporting_unit_must_give_work_report_texts_to_summarize(any_world: World) -> None:
    w = any_world
    w.fire("C1", "finish_purchasing", "c1-clerk")
    with pytest.raises(RuleViolation) as exc:
        w.fire("C1", "summarize", "c1-clerk")
    assert exc.value.code == "report.texts_missing"
    assert "先进经验" in exc.value.message and "工作亮点" in exc.value.message
    w.info("C1", work_experience="以购代捐")
    with pytest.raises(RuleViolation) as exc:
        w.fire("C1", "summarize", "c1-clerk")
    assert exc.value.code == "report.texts_missing" and "工作亮点" in exc.value.message
    w.info("C1", work_highlights="工会搭台、产销对接")
    w.fire("C1", "summarize", "c1-clerk")
    assert w.state("C1") == "summarized"
    # A district federation is not a reporting unit: no texts needed.
    w.fire("D1", "finish_purchasing", "d1-clerk")
    w.fire("D1", "summarize", "d1-clerk")
    assert w.state("D1") == "summarized"


def test_federation_snapshot_adds_own_purchases_and_accepted_children(any_world: World) -> None:
    w = any_world
    # G1: accepted, 1,200 yuan on ygh (20 people) + 300 yuan on p832 (5 people)
    w.plan("G1")
    w.buy("G1", "G1-1", 120000, 20)
    w.buy("G1", "G1-2", 30000, 5, channel="p832")
    w.fire("G1", "finish_purchasing", "g1-clerk")
    w.info("G1")
    w.fire("G1", "summarize", "g1-clerk")
    w.fire("G1", "submit", "g1-clerk")
    w.fire("G1", "accept", "d1-reviewer")
    # G2: submitted but not accepted: its numbers must not count yet
    w.to_submitted("G2")
    # D1's own purchase
    w.buy("D1", "D1-1", 50000, 8, channel="gdg")
    w.fire("D1", "finish_purchasing", "d1-clerk")
    w.fire("D1", "summarize", "d1-clerk")
    lines, missing, total, stale = snapshot_of(w, "D1")
    assert lines == {"ygh": (20, 120000), "p832": (5, 30000), "gdg": (8, 50000)}
    assert missing == ["G2"]
    assert total == 200000
    assert stale is False


def test_accepting_a_child_makes_the_summarized_parent_stale(any_world: World) -> None:
    w = any_world
    w.to_submitted("G1")
    w.fire("D1", "finish_purchasing", "d1-clerk")
    w.info("D1")
    w.fire("D1", "summarize", "d1-clerk")
    assert snapshot_of(w, "D1")[3] is False
    w.fire("G1", "accept", "d1-reviewer")
    assert snapshot_of(w, "D1")[3] is True
    with pytest.raises(RuleViolation) as exc:
        w.fire("D1", "submit", "d1-clerk")
    assert exc.value.code == "snapshot.stale"
    assert w.state("D1") == "summarized"
    # Summarize again: fresh, and G1's accepted numbers are in.
    w.fire("D1", "reopen", "d1-clerk")
    w.fire("D1", "summarize", "d1-clerk")
    lines, missing, _total, stale = snapshot_of(w, "D1")
    assert stale is False and lines == {"ygh": (20, 120000)} and missing == ["G2"]
    w.fire("D1", "submit", "d1-clerk")
    assert w.state("D1") == "submitted"


def test_a_purchase_after_summarize_makes_the_snapshot_stale(any_world: World) -> None:
    w = any_world
    w.plan("G1")
    w.buy("G1", "G1-1", 10000)
    w.fire("G1", "finish_purchasing", "g1-clerk")
    w.info("G1")
    w.fire("G1", "summarize", "g1-clerk")
    w.buy("G1", "G1-late", 2000)
    with pytest.raises(RuleViolation) as exc:
        w.fire("G1", "submit", "g1-clerk")
    assert exc.value.code == "snapshot.stale"


def test_child_decisions_are_locked_while_the_parent_is_submitted_or_accepted(any_world: World) -> None:
    w = any_world
    w.to_submitted("G1")
    w.to_submitted("G2")
    w.fire("G2", "accept", "d1-reviewer")
    w.fire("D1", "finish_purchasing", "d1-clerk")
    w.info("D1")
    w.fire("D1", "summarize", "d1-clerk")
    w.fire("D1", "submit", "d1-clerk")
    for org, trigger, reason in (("G1", "accept", None), ("G2", "revoke_acceptance", REASON)):
        with pytest.raises(RuleViolation) as exc:
            w.fire(org, trigger, "d1-reviewer", reason=reason)
        assert exc.value.code == "decision.parent_locked"
    w.fire("D1", "accept", "c1-reviewer")
    with pytest.raises(RuleViolation) as exc:
        w.fire("G1", "accept", "d1-reviewer")
    assert exc.value.code == "decision.parent_locked"
    # A return lifts the lock.
    w.fire("D1", "revoke_acceptance", "c1-reviewer", reason=REASON)
    w.fire("G1", "accept", "d1-reviewer")
    assert w.state("G1") == "accepted"


# --- submit and data entry ------------------------------------------------------------------


def _summarized(w: World, org: str = "G1") -> None:
    w.plan(org)
    w.buy(org, f"{org}-1", 10000)
    w.fire(org, "finish_purchasing", f"{org.lower()}-clerk")
    w.fire(org, "summarize", f"{org.lower()}-clerk")


def test_submit_needs_reporter_and_phone(any_world: World) -> None:
    w = any_world
    _summarized(w)
    with pytest.raises(RuleViolation) as exc:
        w.fire("G1", "submit", "g1-clerk")
    assert exc.value.code == "contact.reporter_missing"
    w.info("G1", reporter="李四", phone=None)
    with w.uow(True) as uow:  # info(phone=None) leaves the phone unset
        assert uow.records.get(w.rid("G1")).phone is None
    with pytest.raises(RuleViolation) as exc:
        w.fire("G1", "submit", "g1-clerk")
    assert exc.value.code == "contact.phone_missing"
    with pytest.raises(RuleViolation) as exc:
        w.info("G1", phone="1381234567")
    assert exc.value.code == "contact.phone_invalid"
    with pytest.raises(RuleViolation) as exc:
        w.info("G1", fill_date=date(2021, 11, 2))  # NOW_2021 is 2021-11-01 in China
    assert exc.value.code == "contact.fill_date_future"
    w.info("G1", reporter="李四", phone="020-83871234-801", fill_date=date(2021, 10, 31))
    w.fire("G1", "submit", "g1-clerk")
    view = record_views.record_view(w.uow(True), record_id=w.rid("G1"), user_id=w.uid("d1-reviewer"), now=NOW_2021)
    assert (view.state, view.reporter, view.phone, view.fill_date) == (
        "submitted", "李四", "020-83871234-801", date(2021, 10, 31))


def test_summarize_fills_the_fill_date_with_the_snapshot_date(any_world: World) -> None:
    w = any_world
    _summarized(w)
    with w.uow(True) as uow:
        assert uow.records.get(w.rid("G1")).fill_date == date(2021, 11, 1)


def test_purchase_year_is_decided_in_china_time_at_entry(any_world: World) -> None:
    w = any_world
    w.plan("G1")
    entered = datetime(2022, 1, 2, 9, 0, tzinfo=CN)  # entered after both payments, before the cutoff
    w.buy("G1", "NYE", 8800, paid_at=datetime(2021, 12, 31, 23, 50, tzinfo=CN), now=entered)
    with pytest.raises(RuleViolation) as exc:
        w.buy("G1", "NYD", 8800, paid_at=datetime(2022, 1, 1, 0, 10, tzinfo=CN), now=entered)
    assert exc.value.code == "purchase.outside_year"
    assert "2022-01-01 00:10" in exc.value.message
    with w.uow(True) as uow:
        rows = uow.purchases.of_record(w.rid("G1"))
        assert [(p.order_no, p.paid_on) for p in rows] == [("NYE", date(2021, 12, 31))]
        assert rows[0].paid_at == datetime(2021, 12, 31, 15, 50, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kw", "code"),
    [
        ({"product_form": "购物卡"}, "purchase.forbidden_form"),
        ({"channel": "taobao"}, "purchase.unknown_channel"),
        ({"budget": "slush_fund"}, "purchase.unknown_budget"),
        ({"holiday": "圣诞节"}, "purchase.unknown_holiday"),
        ({"amount_fen": -500}, "purchase.refund_unlinked"),
        ({"amount_fen": -500, "refund_of": "NOPE"}, "purchase.refund_unknown_order"),
    ],
)
def test_bad_purchases_are_refused_at_entry(any_world: World, kw: dict[str, object], code: str) -> None:
    w = any_world
    kw = dict(kw)
    amount = kw.pop("amount_fen", 10000)
    with pytest.raises(RuleViolation) as exc:
        w.buy("G1", "BAD-1", amount, **kw)  # type: ignore[arg-type]
    assert exc.value.code == code
    assert count(w, Purchase) == 0


def test_refund_and_duplicate_order(any_world: World) -> None:
    w = any_world
    w.buy("G1", "ORD-1", 10000)
    with pytest.raises(RuleViolation) as exc:
        w.buy("G1", "ORD-1", 10000)
    assert exc.value.code == "purchase.duplicate"
    w.buy("G1", "ORD-1-R", -4000, refund_of="ORD-1")
    with w.uow(True) as uow:
        assert uow.purchases.spent_by_budget(w.rid("G1")) == {"extra_quota": 6000}


def test_purchase_entry_closes_at_the_cutoff(any_world: World) -> None:
    w = any_world
    after = datetime(2022, 2, 1, 0, 0, tzinfo=CN)  # the 17号 cutoff is 31 January
    with pytest.raises(RuleViolation) as exc:
        purchases.add_purchase(
            w.uow(), record_id=w.rid("G1"), user_id=w.uid("g1-clerk"), now=after,
            purchase=purchases.PurchaseInput(paid_at=NOW_2021, channel="ygh", amount_fen=100,
                                            people=1, order_no="LATE"),
        )
    assert exc.value.code == "purchase.after_cutoff"
    assert "2022年01月31日" in exc.value.message


@pytest.mark.parametrize("state", ["submitted", "accepted"])
def test_purchases_are_refused_once_submitted(any_world: World, state: str) -> None:
    w = any_world
    w.to_submitted("G1")
    if state == "accepted":
        w.fire("G1", "accept", "d1-reviewer")
    with pytest.raises(RuleViolation) as exc:
        w.buy("G1", "AFTER", 5000)
    assert exc.value.code == "purchase.record_locked"
    with pytest.raises(RuleViolation) as exc:
        w.info("G1", reporter="王五")
    assert exc.value.code == "report.locked"
    assert count(w, Purchase, record_id=w.rid("G1")) == 1


def test_plan_is_refused_outside_planned_and_above_the_cap(any_world: World) -> None:
    w = any_world
    with pytest.raises(RuleViolation) as exc:
        w.plan("G1", 60001, 10)
    assert exc.value.code == "plan.amount_out_of_range"
    w.plan("G1", 60000, 10)
    w.fire("G1", "finish_purchasing", "g1-clerk")
    with pytest.raises(RuleViolation) as exc:
        w.plan("G1", 100, 10)
    assert exc.value.code == "plan.locked"


def test_spending_above_the_quota_is_shown_as_over_quota(any_world: World) -> None:
    w = any_world
    w.plan("G1", 10000, 10)  # quota 1,000 yuan
    w.buy("G1", "A", 80000)
    w.buy("G1", "B", 50000)
    w.buy("G1", "C", 7000, budget="ordinary_gift")
    view = record_views.record_view(w.uow(True), record_id=w.rid("G1"), user_id=w.uid("g1-clerk"), now=NOW_2021)
    assert view.quota_fen == 100000
    assert view.extra_spent_fen == 130000
    assert view.over_quota_fen == 30000
    assert view.quota_left_fen == 0
    assert view.spent_total_fen == 137000


# --- versions and atomicity -----------------------------------------------------------------


def test_a_stale_version_is_a_conflict(any_world: World) -> None:
    w = any_world
    w.plan("G1")
    seen = w.version("G1")
    w.buy("G1", "A", 1000)  # purchases do not bump the version
    w.fire("G1", "finish_purchasing", "g1-clerk")
    with pytest.raises(VersionConflict) as exc:
        lifecycle.fire(w.uow(), record_id=w.rid("G1"), trigger="reopen", user_id=w.uid("g1-clerk"),
                      seen_version=seen, now=NOW_2021)
    assert exc.value.code == "version.conflict" and exit_code_for(exc.value) == 4
    assert w.state("G1") == "purchased"
    with pytest.raises(VersionConflict):
        planning.update_report_info(w.uow(), record_id=w.rid("G1"), user_id=w.uid("g1-clerk"),
                                    seen_version=seen, reporter="x", now=NOW_2021)
    w.fire("G1", "reopen", "g1-clerk")
    seen = w.version("G1")
    w.info("G1")  # somebody else saves the footer: the version moves on
    with pytest.raises(VersionConflict):
        planning.plan(w.uow(), record_id=w.rid("G1"), user_id=w.uid("g1-clerk"), seen_version=seen,
                      amount_per_member_fen=100, members=1, now=NOW_2021)
    with w.uow(True) as uow:
        assert uow.records.get(w.rid("G1")).amount_per_member_fen == 60000


def test_state_history_and_outbox_commit_together_or_not_at_all(
    any_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = any_world
    w.plan("G1")
    w.buy("G1", "A", 1000)
    w.fire("G1", "finish_purchasing", "g1-clerk")
    w.info("G1")
    w.fire("G1", "summarize", "g1-clerk")
    before = (w.state("G1"), w.version("G1"), count(w, History), count(w, Notification))

    def broken(self: UnitOfWork, *args: object, **kwargs: object) -> int:
        raise RuntimeError("outbox insert failed")

    # fire writes its outbox rows with one INSERT … SELECT (add_event_notifications).
    monkeypatch.setattr(Notifications, "add_event_notifications", broken)
    with pytest.raises(RuntimeError):
        w.fire("G1", "submit", "g1-clerk")
    assert (w.state("G1"), w.version("G1"), count(w, History), count(w, Notification)) == before
    monkeypatch.undo()
    w.fire("G1", "submit", "g1-clerk")
    assert w.state("G1") == "submitted"


def test_submit_notifies_the_parent_reviewers_once_per_channel(any_world: World) -> None:
    w = any_world
    w.to_submitted("G1")
    with w.uow(True) as uow:
        h = uow.records.history(w.rid("G1"))[-1]
        assert h.trigger == "submit"
        source = f"history:{h.id}"
        rows = list(uow.session.execute(select(Notification).where(Notification.source == source)).scalars())
        got = sorted((r.user_id, r.channel, r.kind, r.status) for r in rows)
        payload = json.loads(rows[0].payload)
    reviewer = w.uid("d1-reviewer")
    assert got == [(reviewer, "email", "record_event", "pending"), (reviewer, "inbox", "record_event", "sent")]
    assert payload["trigger"] == "submit" and payload["org_code"] == "G1"
    # The unique key (user, channel, source): inserting the same rows again adds nothing.
    with w.uow() as uow:
        user = uow.directory.user(reviewer)
        again = lifecycle.notification_rows([user], kind="record_event", source=source,
                                           record_id=w.rid("G1"), payload={}, now=NOW_2021)
        assert uow.notifications.add(again) == 0
        uow.commit()
    assert count(w, Notification, source=source) == 2


def test_accept_notifies_the_records_clerks(any_world: World) -> None:
    """The union's clerks, and (issue 22, point 11) the district's clerks, who compile its report."""
    w = any_world
    w.to_submitted("G1")
    result = w.fire("G1", "accept", "d1-reviewer")
    assert result.notifications == 4  # inbox + e-mail, to each
    with w.uow(True) as uow:
        users = set(uow.session.execute(
            select(Notification.user_id).where(Notification.source == f"history:{result.history_id}")
        ).scalars())
    assert users == {w.uid("g1-clerk"), w.uid("d1-clerk")}


def test_observers_read_but_cannot_act(any_world: World) -> None:
    w = any_world
    w.to_submitted("G1")
    view = record_views.record_view(w.uow(True), record_id=w.rid("G1"), user_id=w.uid("observer"), now=NOW_2021)
    assert view.state == "submitted"
    assert not any(a.allowed for a in view.actions)
    with pytest.raises(PermissionDenied):
        w.fire("G1", "accept", "observer")
    with pytest.raises(PermissionDenied):
        w.buy("G1", "OBS", 100, user="observer")
    # Outside the observer's scope (C1's subtree) the record does not exist for them.
    with pytest.raises(NotFound):
        record_views.record_view(w.uow(True), record_id=w.rid("G4"), user_id=w.uid("observer"), now=NOW_2021)


def test_default_round_is_the_newest_that_has_begun(any_world: World) -> None:
    w = any_world
    rounds = {}
    with w.uow(True) as uow:
        for r in uow.directory.rounds():
            rounds[r.year] = r.id
            assert uow.records.get(record_views.find_record(w.uow(True), org_code="G1", round_label=r.label)).round_id == r.id

    def default_round(now: datetime) -> int:
        rid = record_views.find_record(w.uow(True), org_code="G1", now=now)
        with w.uow(True) as uow:
            return uow.records.get(rid).round_id

    assert default_round(NOW_2021) == rounds[2021]
    assert default_round(datetime(2021, 12, 31, 16, 0, tzinfo=UTC)) == rounds[2022]  # 2022-01-01 China
    assert default_round(datetime(2030, 1, 1, tzinfo=UTC)) == rounds[2022]
    assert default_round(datetime(2019, 1, 1, tzinfo=UTC)) == rounds[2022]  # none begun: the newest


def test_revoking_a_child_makes_the_summarized_parent_stale(any_world: World) -> None:
    w = any_world
    w.to_submitted("G1")
    w.fire("G1", "accept", "d1-reviewer")
    w.fire("D1", "finish_purchasing", "d1-clerk")
    w.info("D1")
    w.fire("D1", "summarize", "d1-clerk")
    assert snapshot_of(w, "D1")[0] == {"ygh": (20, 120000)}
    w.fire("G1", "revoke_acceptance", "d1-reviewer", reason=REASON)
    assert snapshot_of(w, "D1")[3] is True
    with pytest.raises(RuleViolation) as exc:
        w.fire("D1", "submit", "d1-clerk")
    assert exc.value.code == "snapshot.stale"
    w.fire("D1", "reopen", "d1-clerk")
    w.fire("D1", "summarize", "d1-clerk")
    lines, missing, total, stale = snapshot_of(w, "D1")
    assert (lines, missing, total, stale) == ({}, ["G1", "G2"], 0, False)


def test_changing_the_work_report_after_summarize_makes_it_stale(any_world: World) -> None:
    w = any_world
    w.fire("C1", "finish_purchasing", "c1-clerk")
    w.info("C1", work_experience="经验一", work_highlights="亮点一")
    w.fire("C1", "summarize", "c1-clerk")
    w.info("C1", work_highlights="亮点二")
    with pytest.raises(RuleViolation) as exc:
        w.fire("C1", "submit", "c1-clerk")
    assert exc.value.code == "snapshot.stale"


def test_roll_up_goes_level_by_level(any_world: World) -> None:
    """G1 → D1 → C1: the city's snapshot holds G1's numbers only through D1's accepted snapshot."""
    w = any_world
    w.to_submitted("G1")  # 1,200 yuan, 20 people on ygh
    w.fire("G1", "accept", "d1-reviewer")
    w.buy("D1", "D1-1", 30000, 3, channel="dxb")
    w.fire("D1", "finish_purchasing", "d1-clerk")
    w.info("D1")
    w.fire("D1", "summarize", "d1-clerk")
    w.fire("D1", "submit", "d1-clerk")
    w.buy("C1", "C1-1", 1000, 1, channel="local_hall")
    w.fire("C1", "finish_purchasing", "c1-clerk")
    w.info("C1", work_experience="经验", work_highlights="亮点")
    w.fire("C1", "summarize", "c1-clerk")
    lines, missing, _, _ = snapshot_of(w, "C1")
    assert lines == {"local_hall": (1, 1000)}  # D1 is submitted, not accepted
    assert missing == ["D1", "D2"]
    w.fire("D1", "accept", "c1-reviewer")
    w.fire("C1", "reopen", "c1-clerk")
    w.fire("C1", "summarize", "c1-clerk")
    lines, missing, total, _ = snapshot_of(w, "C1")
    assert lines == {"ygh": (20, 120000), "dxb": (3, 30000), "local_hall": (1, 1000)}
    assert missing == ["D2"] and total == 151000


def test_days_left_overdue_and_late_are_facts_of_the_view(any_world: World) -> None:
    w = any_world
    uid = w.uid("g1-clerk")
    view = record_views.record_view(w.uow(True), record_id=w.rid("G1"), user_id=uid, now=NOW_2021)
    # NOW_2021 is 2021-11-01 10:00 China; G1 reports by 12-20, the quota lasts until 12-31.
    assert (view.days_left_report, view.days_left_quota) == (49, 60)
    assert not view.is_overdue and not view.is_late
    _summarized(w)
    w.info("G1")
    after_deadline = datetime(2021, 12, 21, 9, 0, tzinfo=CN)
    view = record_views.record_view(w.uow(True), record_id=w.rid("G1"), user_id=uid, now=after_deadline)
    assert view.is_overdue and view.days_left_report == -1
    lifecycle.fire(w.uow(), record_id=w.rid("G1"), trigger="submit", user_id=uid,
                  seen_version=w.version("G1"), now=after_deadline)
    view = record_views.record_view(w.uow(True), record_id=w.rid("G1"), user_id=uid, now=after_deadline)
    assert view.is_late and not view.is_overdue
    # The reporting unit C1 has until 12-31: not overdue on 12-21.
    c1 = record_views.record_view(w.uow(True), record_id=w.rid("C1"), user_id=w.uid("c1-clerk"), now=after_deadline)
    assert not c1.is_overdue and c1.days_left_report == 10
