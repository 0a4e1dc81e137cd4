"""Four eyes with one reviewer: a district with a single reviewer who fills a union's record in
(代填报) is no dead end. The page says so before anything is entered; the decision goes to the
city's reviewers, who are told at submission; a second district reviewer keeps it at the
district. And a union's submitted record offers its parent's reviewer 通过 and 退回修改, not 撤回.
(SQLite and PostgreSQL; the API and the pages.)"""

from __future__ import annotations

from tests.conftest import NOW_2021, World
from tests.entrypoints.web.conftest import csrf_from
from workflow.app import directory


def filled_in_by_the_district(w: World, org: str = "G1") -> None:
    """The district's reviewer enters and submits the union's record on its behalf."""
    reviewer = "d1-reviewer"
    w.plan(org, 60000, 100, user=reviewer)
    w.buy(org, f"{org}-1", 120000, 20, user=reviewer)
    w.fire(org, "finish_purchasing", reviewer)
    w.info(org, user=reviewer)
    w.fire(org, "summarize", reviewer)
    w.fire(org, "submit", reviewer)


def test_the_page_warns_the_lone_reviewer_before_filling_in(login, web_world: World) -> None:
    w = web_world
    page = login("d1-reviewer").get(f"/records/{w.rid('G1')}").text
    assert 'id="lone-reviewer"' in page and "本单位只有您一位审核人" in page and "“广州市总工会”的审核人决定" in page
    # A union's own clerk is not told (the note is for the reviewer who would fill in).
    assert 'id="lone-reviewer"' not in login("g1-clerk").get(f"/records/{w.rid('G1')}").text


def test_the_city_decides_what_the_lone_district_reviewer_filled_in(token_client, login, web_world: World) -> None:
    w = web_world
    filled_in_by_the_district(w)
    rid = w.rid("G1")
    district = token_client("d1-reviewer").get(f"/api/records/{rid}").json()
    actions = {a["trigger"]: a for a in district["actions"]}
    assert not actions["accept"]["allowed"]
    assert "改由“广州市总工会”的审核人审核" in actions["accept"]["refusal"]["message"]
    assert actions["return_for_revision"]["allowed"]
    assert not actions["withdraw"]["allowed"]  # the reviewer returns; withdrawing is the clerk's

    # The city's reviewer heard of the submission, sees why, and accepts.
    city = token_client("c1-reviewer")
    inbox = city.get("/api/notifications").json()
    assert any(n.get("record_id") == rid for n in inbox["items"]), inbox
    page = login("c1-reviewer").get(f"/records/{rid}").text
    assert 'id="four-eyes-to"' in page and 'data-trigger="accept"' in page
    view = city.get(f"/api/records/{rid}").json()
    assert view["four_eyes_to"] == "广州市总工会"
    done = city.post(f"/api/records/{rid}/fire", json={"trigger": "accept", "seen_version": view["version"]})
    assert done.status_code == 200, done.text
    history = city.get(f"/api/records/{rid}/history").json()
    assert history[-1]["trigger"] == "accept"
    with w.uow(True) as uow:
        last = uow.records.history(rid)[-1]
        assert last.actor_org_id == uow.directory.org_by_code("C1").id and last.on_behalf is False


def test_a_second_district_reviewer_keeps_the_decision_at_the_district(token_client, web_world: World) -> None:
    w = web_world
    directory.import_users(w.uow(), now=NOW_2021, data=(
        "username,display_name,org_code,role\nd1-reviewer2,D1第二审核人,D1,reviewer\n").encode())
    filled_in_by_the_district(w)
    rid = w.rid("G1")
    city = token_client("c1-reviewer").get(f"/api/records/{rid}").json()
    accept = next(a for a in city["actions"] if a["trigger"] == "accept")
    assert not accept["allowed"] and accept["refusal"]["code"] == "permission.not_parent_reviewer"
    refused = token_client("d1-reviewer").get(f"/api/records/{rid}").json()
    accept = next(a for a in refused["actions"] if a["trigger"] == "accept")
    assert "请由上级单位的其他审核人审核" in accept["refusal"]["message"]
    second = token_client("d1-reviewer2")
    version = second.get(f"/api/records/{rid}").json()["version"]
    assert second.post(f"/api/records/{rid}/fire", json={"trigger": "accept", "seen_version": version}).status_code == 200


def test_a_unions_submission_offers_its_parents_reviewer_no_withdraw(login, web_world: World) -> None:
    w = web_world
    w.to_submitted("G1")
    client = login("d1-reviewer")
    page = client.get(f"/records/{w.rid('G1')}").text
    assert 'data-trigger="accept"' in page and 'data-trigger="return_for_revision"' in page
    assert 'data-trigger="withdraw"' not in page
    resp = client.post(f"/records/{w.rid('G1')}/fire", data={
        "trigger": "withdraw", "seen_version": str(w.version("G1")), "csrf_token": csrf_from(page)})
    assert w.state("G1") == "submitted" and "只有本单位的填报员可以执行“撤回”" in resp.text
    # The union's own clerk still may.
    assert 'data-trigger="withdraw"' in login("g1-clerk").get(f"/records/{w.rid('G1')}").text
