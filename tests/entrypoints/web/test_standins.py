"""代理: a reviewer away names a stand-in for a date range; the stand-in decides, the history and
messages say on whose behalf; the wrong people and dates are refused. API (SQLite and PostgreSQL)
and the command line."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import World
from tests.entrypoints.cli.test_cli import Cli, bangfu, ready  # noqa: F401  (fixtures)

RANGE = {"starts_on": "2021-10-25", "ends_on": "2021-11-05"}  # the world's today is 2021-11-01


def test_a_stand_in_decides_for_the_reviewer_away(token_client, web_world: World) -> None:
    w = web_world
    w.to_submitted("G1")
    rid = w.rid("G1")
    city = token_client("c1-reviewer")  # the district's parent: a stand-in from there is allowed
    version = w.version("G1")
    before = city.post(f"/api/records/{rid}/fire", json={"trigger": "accept", "seen_version": version})
    assert before.status_code == 403 and before.json()["code"] == "permission.not_parent_reviewer"

    named = token_client("d1-reviewer").post("/api/delegations", json={
        "org_code": "D1", "delegator": "d1-reviewer", "standin": "c1-reviewer", **RANGE})
    assert named.status_code == 201, named.text
    assert "C1审核人代D1审核人审核" in named.json()["message"]
    # Both are told.
    for user in ("d1-reviewer", "c1-reviewer"):
        inbox = token_client(user).get("/api/notifications").json()
        assert any("指定代理" in str(n) for n in inbox["items"]), (user, inbox)

    # The stand-in's inbox holds the district's submissions beside the city's own.
    inbox = city.get("/api/review/inbox?round=1").json()
    assert [i["org_code"] for i in inbox["items"]] == ["G1"]
    view = city.get(f"/api/records/{rid}").json()
    assert next(a for a in view["actions"] if a["trigger"] == "accept")["allowed"]
    done = city.post(f"/api/records/{rid}/fire", json={"trigger": "accept", "seen_version": version})
    assert done.status_code == 200, done.text
    history = city.get(f"/api/records/{rid}/history").json()
    assert history[-1]["summary"] == "代理D1审核人审核" and history[-1]["actor"] == "C1审核人"
    clerk_inbox = token_client("g1-clerk").get("/api/notifications").json()
    assert any("代理D1审核人" in str(n) for n in clerk_inbox["items"]), clerk_inbox
    assert city.get("/api/review/inbox?round=1").json()["items"] == []


def test_who_may_name_whom_and_when(token_client, web_world: World) -> None:
    def name(user: str, **body: str) -> tuple[int, str]:
        r = token_client(user).post("/api/delegations", json={
            "org_code": "D1", "delegator": "d1-reviewer", "standin": "c1-reviewer", **RANGE, **body})
        return r.status_code, r.json().get("code", "")

    assert name("g1-clerk") == (403, "delegation.not_allowed")  # not the reviewer, not an admin
    assert name("d1-reviewer", standin="c2-reviewer") == (409, "delegation.standin_outside")
    assert name("d1-reviewer", standin="d1-reviewer") == (409, "delegation.standin_outside")
    assert name("d1-reviewer", delegator="d1-clerk") == (409, "delegation.not_reviewer")
    assert name("d1-reviewer", ends_on="2021-10-20")[1] == "delegation.dates"
    assert name("d1-reviewer", starts_on="2021-11-10", ends_on="2021-11-20")[0] == 201
    # A delegation in the future gives nothing today.
    w = web_world
    w.to_submitted("G1")
    view = token_client("c1-reviewer").get(f"/api/records/{w.rid('G1')}").json()
    assert not next(a for a in view["actions"] if a["trigger"] == "accept")["allowed"]


def test_bangfu_delegate_on_the_command_line(ready: Cli, tmp_path: Path) -> None:  # noqa: F811
    r = ready("delegate", "D1", "d1-reviewer", "c1-reviewer", "--from", "2021-10-25", "--to", "2021-11-05",
              "--as", "d1-reviewer")
    assert r.code == 0, r.err
    assert "已指定代理" in r.out and "C1审核人代D1审核人审核" in r.out
    refused = ready("delegate", "D1", "d1-reviewer", "c2-reviewer", "--from", "2021-10-25", "--to", "2021-11-05",
                    "--as", "d1-reviewer")
    assert refused.code != 0 and "[delegation.standin_outside]" in refused.err


def test_the_review_page_names_a_stand_in(login, web_world: World) -> None:
    from tests.entrypoints.web.conftest import csrf_from

    client = login("d1-reviewer")
    page = client.get("/review").text
    assert "外出时指定代理人" in page
    form = {"csrf_token": csrf_from(page), "org_code": "D1", "standin": "c1-reviewer",
            "starts_on": "2021-10-25", "ends_on": "2021-11-05"}
    done = client.post("/review/delegate", data=form, follow_redirects=True)
    assert "已指定代理" in done.text and "C1审核人代D1审核人审核" in done.text
    refused = client.post("/review/delegate", data={**form, "standin": "c2-reviewer"}, follow_redirects=True)
    assert "代理人须是本单位或上级单位的其他人员" in refused.text
    unknown = client.post("/review/delegate", data={**form, "standin": "nobody"}, follow_redirects=True)
    assert unknown.status_code == 200 and "找不到" in unknown.text
