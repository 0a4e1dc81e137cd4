"""补报 through the API and the pages: a union late after its district (and the city) were
accepted reaches the province as a supplement (SQLite and PostgreSQL)."""

from __future__ import annotations

from tests.conftest import World
from tests.entrypoints.web.conftest import csrf_from
from tests.entrypoints.web.test_review_levels import federation_to_submitted


def accepted_up_to_the_province(w: World) -> None:
    w.to_submitted("G1")
    w.fire("G1", "accept", "d1-reviewer")
    federation_to_submitted(w, "D1")
    w.fire("D1", "accept", "c1-reviewer")
    federation_to_submitted(w, "C1")
    w.fire("C1", "accept", "gd-reviewer")
    w.to_submitted("G2")


def test_the_api_carries_a_late_union_to_the_province(token_client, web_world: World) -> None:
    w = web_world
    accepted_up_to_the_province(w)
    d1 = token_client("d1-reviewer")
    g2 = w.rid("G2")
    record = d1.get(f"/api/records/{g2}").json()
    actions = {a["trigger"]: a for a in record["actions"]}
    assert actions["accept_late"]["allowed"] and actions["accept_late"]["label"] == "补报通过"
    assert not actions["accept"]["allowed"] and "补报通过" in actions["accept"]["refusal"]["message"]
    refused = d1.post(f"/api/records/{g2}/fire", json={"trigger": "accept", "seen_version": record["version"]})
    assert refused.status_code == 409 or refused.status_code == 422, refused.text
    assert refused.json()["code"] == "decision.parent_locked"
    done = d1.post(f"/api/records/{g2}/fire", json={"trigger": "accept_late", "seen_version": record["version"]})
    assert done.status_code == 200, done.text

    (sup,) = token_client("c1-reviewer").get(f"/api/records/{w.rid('D1')}/supplements").json()
    assert (sup["label"], sup["state"], sup["amount_fen"]) == ("补报1", "submitted", 120000)
    assert sup["late_units"] == [{"org_code": "G2", "org_name": "天河供电局工会"}]
    # The district's own reviewer is not the one to decide the district's supplement.
    wrong = d1.post(f"/api/supplements/{sup['id']}/accept")
    assert wrong.status_code in (403, 404) and wrong.json()["code"] in ("permission.not_parent_reviewer", "supplement.not_found")
    city = token_client("c1-reviewer").post(f"/api/supplements/{sup['id']}/accept").json()
    assert city["supplement"]["state"] == "accepted" and city["forwarded"]["label"] == "补报1"

    # The province hears of it, and sees it beside the city's accepted report.
    gd = token_client("gd-reviewer")
    inbox = gd.get("/api/notifications").json()
    assert any("补报1待审核" in str(n) for n in inbox["items"]), inbox
    (c1_sup,) = gd.get(f"/api/records/{w.rid('C1')}/supplements").json()
    assert c1_sup["state"] == "submitted"
    top = gd.post(f"/api/supplements/{c1_sup['id']}/accept").json()
    assert top["forwarded"] is None and top["supplement"]["state"] == "accepted"
    history = gd.get(f"/api/records/{w.rid('C1')}/history").json()
    assert [h["trigger"] for h in history][-2:] == ["supplement", "accept_supplement"]


def test_the_pages_offer_supplement_acceptance_at_each_level(login, web_world: World) -> None:
    w = web_world
    accepted_up_to_the_province(w)
    d1 = login("d1-reviewer")
    page = d1.get(f"/records/{w.rid('G2')}").text
    assert 'data-trigger="accept_late"' in page and "补报通过" in page
    resp = d1.post(f"/records/{w.rid('G2')}/fire", data={
        "trigger": "accept_late", "seen_version": str(w.version("G2")), "csrf_token": csrf_from(page)},
        follow_redirects=True)
    assert resp.status_code == 200 and "已补报通过" in resp.text

    c1 = login("c1-reviewer")
    page = c1.get(f"/records/{w.rid('D1')}").text
    assert "补报（报表报送后才通过的下级）" in page and "天河供电局工会（G2）" in page and "待上级审核" in page
    sup_id = page.split('/supplements/')[1].split('/accept')[0]
    resp = c1.post(f"/records/{w.rid('D1')}/supplements/{sup_id}/accept",
                   data={"csrf_token": csrf_from(page)}, follow_redirects=True)
    assert resp.status_code == 200 and "已通过补报1" in resp.text and "报上级审核" in resp.text

    gd = login("gd-reviewer")
    page = gd.get(f"/records/{w.rid('C1')}").text
    assert 'data-supplement="1"' in page
    sup_id = page.split('/supplements/')[1].split('/accept')[0]
    resp = gd.post(f"/records/{w.rid('C1')}/supplements/{sup_id}/accept",
                   data={"csrf_token": csrf_from(page)}, follow_redirects=True)
    assert "已通过补报1" in resp.text and 'data-supplement="1"' not in resp.text
    history = gd.get(f"/records/{w.rid('C1')}/history").text
    assert "补报" in history and "天河供电局工会" in history
