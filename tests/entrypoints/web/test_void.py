"""Voiding a purchase line: a clerk who typed 500 人次 instead of 50 voids the line with a reason
and enters the correct one under the same order number. The voided line stays listed (who,
when, why), counts nowhere (quota, sums, snapshot, the parent's roll-up), is in the history, and
makes a summarized snapshot stale. After submit only a return opens the ledger again; a
re-import of the voided key says so instead of calling it a repeat."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.conftest import World
from tests.entrypoints.web.test_reports_web import csv_file

BUY = {"paid_at": "2021-10-20T10:00", "channel": "ygh", "amount": "1200", "order_no": "A1"}


def _lines(api: TestClient, rid: int) -> list[dict]:  # type: ignore[type-arg]
    return api.get(f"/api/records/{rid}/purchases").json()  # type: ignore[no-any-return]


def test_clerk_voids_a_mistyped_line_and_enters_the_right_one(web_world: World, token_client) -> None:  # type: ignore[no-untyped-def]
    w = web_world
    w.plan("G1", 60000, 100)
    rid = w.rid("G1")
    api = token_client("g1-clerk")
    wrong = api.post(f"/api/records/{rid}/purchases", json={**BUY, "people": 500}).json()["purchase_id"]
    # Re-entering the order is refused as a repeat while the wrong line is live.
    again = api.post(f"/api/records/{rid}/purchases", json={**BUY, "people": 50})
    assert again.status_code == 409 and "已经录入过" in again.json()["message"]
    # No reason: refused in Chinese, nothing changes.
    no_reason = api.post(f"/api/records/{rid}/purchases/{wrong}/void", json={"reason": "  "})
    assert no_reason.status_code == 422 and "请填写作废原因" in no_reason.json()["message"]
    assert not _lines(api, rid)[0]["voided"]
    done = api.post(f"/api/records/{rid}/purchases/{wrong}/void", json={"reason": "人次误录为 500，应为 50"})
    assert done.status_code == 200, done.text
    right = api.post(f"/api/records/{rid}/purchases", json={**BUY, "people": 50})
    assert right.status_code == 201, right.text
    lines = _lines(api, rid)
    assert [(p["people"], p["voided"]) for p in lines] == [(500, True), (50, False)]
    assert lines[0]["voided_by"] == "G1填报员" and lines[0]["void_reason"] == "人次误录为 500，应为 50"
    assert lines[0]["voided_at"].startswith("2021-11-01T02:00")
    # Voiding twice is refused.
    twice = api.post(f"/api/records/{rid}/purchases/{wrong}/void", json={"reason": "再作废一次"})
    assert twice.status_code == 409 and "已于 2021-11-01 作废" in twice.json()["message"]
    # Counts nowhere: the quota used is the live line only, and so is the snapshot.
    view = api.get(f"/api/records/{rid}").json()
    assert (view["extra_spent_fen"], view["spent_total_fen"]) == (120000, 120000)
    w.fire("G1", "finish_purchasing", "g1-clerk")
    w.info("G1")
    w.fire("G1", "summarize", "g1-clerk")
    with w.uow(True) as uow:
        s, snap_lines = uow.records.snapshot(uow.records.get(rid).snapshot_id or 0)
        assert (s.people_total, s.amount_total_fen) == (50, 120000)
        assert [(x.channel, x.people, x.amount_fen) for x in snap_lines] == [("ygh", 50, 120000)]
    # In the history, with the reason and what the line held.
    hist = api.get(f"/api/records/{rid}/history").json()
    void_rows = [h for h in hist if h["trigger"] == "void_purchase"]
    assert len(void_rows) == 1 and void_rows[0]["label"] == "作废采购行"
    assert void_rows[0]["reason"] == "人次误录为 500，应为 50" and void_rows[0]["actor"] == "G1填报员"
    assert "订单 A1#1：1,200.00 元，500 人次" in void_rows[0]["summary"]
    # The district's roll-up reads the child's snapshot: 50, not 550.
    w.fire("G1", "submit", "g1-clerk")
    w.fire("G1", "accept", "d1-reviewer")
    w.fire("D1", "finish_purchasing", "d1-clerk")
    w.info("D1")
    w.fire("D1", "summarize", "d1-clerk")
    with w.uow(True) as uow:
        d_snap, _ = uow.records.snapshot(uow.records.get(w.rid("D1")).snapshot_id or 0)
        assert d_snap.people_total == 50


def test_voiding_makes_a_summary_stale_and_is_closed_after_submit(web_world: World, token_client) -> None:  # type: ignore[no-untyped-def]
    w = web_world
    w.to_submitted("G1")  # one line, order G1-1
    rid = w.rid("G1")
    api = token_client("g1-clerk")
    line = _lines(api, rid)[0]["id"]
    locked = api.post(f"/api/records/{rid}/purchases/{line}/void", json={"reason": "金额有误"})
    assert locked.status_code == 409 and "由上级退回" in locked.json()["message"]
    assert not _lines(api, rid)[0]["voided"]
    w.fire("G1", "return_for_revision", "d1-reviewer", reason="金额有误，请更正")
    w.fire("G1", "summarize", "g1-clerk")
    assert api.get(f"/api/records/{rid}").json()["snapshot_stale"] is False
    # The parent's reviewer voids on the clerk's behalf (代填报).
    rev = token_client("d1-reviewer")
    assert rev.post(f"/api/records/{rid}/purchases/{line}/void", json={"reason": "发票金额不符"}).status_code == 200
    view = api.get(f"/api/records/{rid}").json()
    assert view["snapshot_stale"] is True and view["spent_total_fen"] == 0
    listed = _lines(api, rid)[0]
    assert listed["voided_by"] == "D1审核人" and listed["void_on_behalf"] is True
    row = [h for h in api.get(f"/api/records/{rid}/history").json() if h["trigger"] == "void_purchase"][0]
    assert row["on_behalf"] is True and row["role"] == "reviewer"
    # Somebody outside the chain cannot void anything (not even see it).
    assert token_client("g2-clerk").post(f"/api/records/{rid}/purchases/{line}/void",
                                         json={"reason": "x"}).status_code == 404


def test_import_of_a_voided_key_says_so(web_world: World, token_client) -> None:  # type: ignore[no-untyped-def]
    w = web_world
    w.plan("G1")
    rid = w.rid("G1")
    api = token_client("g1-clerk")

    def imp(rows: list[str]) -> dict:  # type: ignore[type-arg]
        resp = api.post(f"/api/records/{rid}/purchases/import", data={"mapping": "generic"},
                        files={"file": ("orders.csv", csv_file(rows), "text/csv")})
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    first = ["A001,1,2021-10-20 10:00,1200.00,500,梅州金柚,实物,额外额度,粤工惠购,"]
    assert imp(first)["new"] == 1
    wrong = _lines(api, rid)[0]["id"]
    api.post(f"/api/records/{rid}/purchases/{wrong}/void", json={"reason": "人次误录为 500，应为 50"})
    # The same export again: the voided line is not brought back, and not called a repeat.
    same = imp(first)
    assert (same["new"], same["repeated"], same["voided_skipped"]) == (0, 0, 1)
    assert "已于 2021-11-01 作废，原因：人次误录为 500，应为 50；本行与作废的记录相同，未导入" in same["voided_notes"][0]
    # The corrected export: imported as the correction of the voided line.
    fixed = imp(["A001,1,2021-10-20 10:00,1200.00,50,梅州金柚,实物,额外额度,粤工惠购,"])
    assert (fixed["new"], fixed["repeated"], fixed["voided_skipped"]) == (1, 0, 0)
    assert "本行作为更正导入（1,200.00 元，50 人次）" in fixed["voided_notes"][0]
    assert [(p["people"], p["voided"]) for p in _lines(api, rid)] == [(500, True), (50, False)]
    # And once the correction is live, the file is a plain repeat.
    assert (imp(["A001,1,2021-10-20 10:00,1200.00,50,梅州金柚,实物,额外额度,粤工惠购,"])["repeated"]) == 1


def test_the_record_page_strikes_a_voided_line_through(web_world: World, login: Callable[[str], TestClient]) -> None:
    w = web_world
    w.plan("G1")
    w.buy("G1", "A1", 120000, 500)
    rid = w.rid("G1")
    clerk = login("g1-clerk")
    page = clerk.get(f"/records/{rid}").text
    assert "作废此行" in page
    from tests.entrypoints.web.conftest import csrf_from

    pid = _lines_of(w, rid)[0]
    resp = clerk.post(f"/records/{rid}/purchases/{pid}/void",
                      data={"reason": "人次误录为 500，应为 50", "csrf_token": csrf_from(page)})
    assert resp.status_code == 200 and "已作废该采购行" in resp.text
    assert "采购明细（0 条，另有 1 条已作废）" in resp.text
    assert "<del>" in resp.text and "原因：人次误录为 500，应为 50" in resp.text
    csv_text = clerk.get(f"/records/{rid}/purchases.csv").content.decode("utf-8-sig")
    assert "已作废" in csv_text.splitlines()[0] and "人次误录为 500，应为 50" in csv_text


def _lines_of(w: World, rid: int) -> list[int]:
    with w.uow(True) as uow:
        return [p.id or 0 for p in uow.purchases.of_record(rid)]
