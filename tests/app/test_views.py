"""The list queries on SQLite and PostgreSQL (the overview groups by a path expression that
differs per dialect)."""

from __future__ import annotations

from tests.conftest import NOW_2021, World
from workflow.app import views


def test_inbox_subordinates_visible_and_overview_agree_on_both_databases(any_world: World) -> None:
    w = any_world
    w.to_submitted("G1")
    w.fire("G1", "accept", "d1-reviewer")
    w.to_submitted("G2")
    w.to_submitted("G4")
    rnd = views.current_round(w.uow(True), now=NOW_2021).id
    inbox = views.review_inbox(w.uow(True), user_id=w.uid("d1-reviewer"), round_id=rnd, now=NOW_2021)
    assert [i["org_code"] for i in inbox.items] == ["G2"]
    subs = views.subordinates(w.uow(True), user_id=w.uid("d1-reviewer"), round_id=rnd, sort="state",
                                now=NOW_2021)
    assert [(i["org_code"], i["state"]) for i in subs.items] == [("G1", "accepted"), ("G2", "submitted")]
    seen = views.visible_records(w.uow(True), user_id=w.uid("observer"), round_id=rnd, q="越秀",
                                   now=NOW_2021)
    assert [i["org_code"] for i in seen.items] == ["D2", "G3"]
    paged = views.visible_records(w.uow(True), user_id=w.uid("gd-reviewer"), round_id=rnd, per_page=5,
                                    page=3, now=NOW_2021)
    assert (paged.total, paged.pages, len(paged.items)) == (11, 3, 1)
    data = views.overview(w.uow(True), user_id=w.uid("gd-reviewer"), round_id=rnd, now=NOW_2021)
    units = {u["org_code"]: u for u in data["units"]}
    assert units["C1"]["counts"]["accepted"] == 1 and units["C1"]["amount_fen"] == 120000
    assert units["C2"]["counts"]["submitted"] == 1 and units["C2"]["total"] == 3
    assert units["IND"]["total"] == 2
    assert data["totals"]["total"] == 11
    # A city's reviewer sees its districts; the city's own record and other cities stay out.
    city = views.overview(w.uow(True), user_id=w.uid("c1-reviewer"), round_id=rnd, now=NOW_2021)
    assert [(u["org_code"], u["total"], u["counts"]["accepted"], u["amount_fen"]) for u in city["units"]] == [
        ("D1", 3, 1, 120000), ("D2", 2, 0, 0)]
    assert city["totals"]["total"] == 5


def test_overdue_filter_uses_the_deadline(any_world: World) -> None:
    from datetime import timedelta

    w = any_world
    w.to_submitted("G1")
    rnd = views.current_round(w.uow(True), now=NOW_2021).id
    late = NOW_2021 + timedelta(days=60)  # past the 2021-12-20 lower-level deadline
    overdue = views.subordinates(w.uow(True), user_id=w.uid("d1-reviewer"), round_id=rnd, overdue="yes",
                                   now=late)
    assert [i["org_code"] for i in overdue.items] == ["G2"]  # G1 was submitted in time
    on_time = views.subordinates(w.uow(True), user_id=w.uid("d1-reviewer"), round_id=rnd, overdue="no",
                                   now=late)
    assert [i["org_code"] for i in on_time.items] == ["G1"]


def test_every_sort_pages_through_the_same_order_as_one_page(any_world: World) -> None:
    """The page's ids are chosen first, then its rows read: page by page, each sort gives the
    whole list's order (the amount sort reads the snapshots to order by)."""
    w = any_world
    w.to_submitted("G1")
    w.fire("G1", "accept", "d1-reviewer")
    w.to_submitted("G2")
    rnd = views.current_round(w.uow(True), now=NOW_2021).id
    for sort in views.RECORD_SORTS:
        whole = views.visible_records(w.uow(True), user_id=w.uid("gd-reviewer"), round_id=rnd, sort=sort,
                                      per_page=50, now=NOW_2021)
        paged = [item for page in range(1, whole.total + 1)
                 for item in views.visible_records(w.uow(True), user_id=w.uid("gd-reviewer"), round_id=rnd,
                                                   sort=sort, per_page=1, page=page, now=NOW_2021).items]
        assert [i["record_id"] for i in paged] == [i["record_id"] for i in whole.items], sort
        assert whole.total == 11 and len(whole.items) == 11
    by_amount = views.visible_records(w.uow(True), user_id=w.uid("gd-reviewer"), round_id=rnd, sort="amount",
                                      now=NOW_2021)
    amounts = [i["amount_total_fen"] for i in by_amount.items if i["amount_total_fen"] is not None]
    assert amounts == sorted(amounts, reverse=True) and amounts
