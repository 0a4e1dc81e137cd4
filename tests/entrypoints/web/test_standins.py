"""代理: a reviewer away names a stand-in for a date range; the stand-in decides, the history and
messages say on whose behalf; the wrong people and dates are refused. API (SQLite and PostgreSQL)
and the command line."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from tests.conftest import NOW_2021, World
from tests.entrypoints.cli.test_cli import Cli, bangfu, ready  # noqa: F401  (fixtures)
from workflow.app import directory
from workflow.domain import clock
from workflow.scheduler import sweeps
from workflow.store.oplog import Filters
from workflow.store.uow import UnitOfWork

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


def _told(token_client, user: str, word: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The messages in ``user``'s inbox that mention ``word``."""
    items = token_client(user).get("/api/notifications?per_page=100").json()["items"]
    return [str(n) for n in items if word in str(n)]


def _china(day: int, hour: int = 9) -> datetime:
    return datetime(2021, 11, day, hour, tzinfo=clock.CHINA)


def test_both_are_told_when_a_range_named_ahead_starts_and_when_it_ends(token_client, web_world: World) -> None:
    w = web_world
    named = token_client("d1-reviewer").post("/api/delegations", json={
        "org_code": "D1", "delegator": "d1-reviewer", "standin": "c1-reviewer",
        "starts_on": "2021-11-03", "ends_on": "2021-11-05"})
    assert named.status_code == 201, named.text
    # Not yet started: the sweep of today says nothing.
    assert sweeps.run_sweep(w.db, now=_china(1)).notifications.get("delegation_start", 0) == 0
    for user in ("d1-reviewer", "c1-reviewer"):
        assert _told(token_client, user, "代理开始") == []

    # The first day: both are told once, a second sweep adds nothing.
    first = sweeps.run_sweep(w.db, now=_china(3))
    assert first.notifications.get("delegation_start", 0) >= 2
    assert sweeps.run_sweep(w.db, now=_china(3, 15)).notifications.get("delegation_start", 0) == 0
    assert sweeps.run_sweep(w.db, now=_china(4)).notifications.get("delegation_start", 0) == 0
    for user in ("d1-reviewer", "c1-reviewer"):
        started = _told(token_client, user, "代理开始")
        assert len(started) == 1 and "C1审核人从今天起代D1审核人审核" in started[0], (user, started)
        assert _told(token_client, user, "代理结束") == []

    # The last day: both told it ends, once.
    assert sweeps.run_sweep(w.db, now=_china(5)).notifications.get("delegation_end", 0) >= 2
    assert sweeps.run_sweep(w.db, now=_china(6)).notifications.get("delegation_end", 0) == 0
    for user in ("d1-reviewer", "c1-reviewer"):
        ended = _told(token_client, user, "代理结束")
        assert len(ended) == 1 and "2021-11-05（含当天）结束，之后由D1审核人本人审核" in ended[0], (user, ended)
        assert len(_told(token_client, user, "代理开始")) == 1


def test_a_range_starting_today_is_announced_once(token_client, web_world: World) -> None:
    w = web_world
    assert token_client("d1-reviewer").post("/api/delegations", json={
        "org_code": "D1", "delegator": "d1-reviewer", "standin": "c1-reviewer", **RANGE}).status_code == 201
    # Naming it was its start notice: the sweep adds none.
    assert sweeps.run_sweep(w.db, now=_china(1, 11)).notifications.get("delegation_start", 0) == 0
    for user in ("d1-reviewer", "c1-reviewer"):
        assert len(_told(token_client, user, "指定代理")) == 1
        assert _told(token_client, user, "代理开始") == []


def test_cancelling_a_stand_in_early(token_client, web_world: World) -> None:
    w = web_world
    w.to_submitted("G1")
    rid = w.rid("G1")
    did = token_client("d1-reviewer").post("/api/delegations", json={
        "org_code": "D1", "delegator": "d1-reviewer", "standin": "c1-reviewer", **RANGE}).json()["id"]
    city = token_client("c1-reviewer")
    listed = city.get("/api/delegations").json()
    assert [(d["delegator"], d["standin"], d["running"], d["may_cancel"]) for d in listed] == [
        ("D1审核人", "C1审核人", True, False)]
    # Only the reviewer away or the federation's admin cancels.
    refused = city.delete(f"/api/delegations/{did}")
    assert refused.status_code == 404 and refused.json()["code"] == "delegation.not_found"
    assert token_client("d2-reviewer").delete(f"/api/delegations/{did}").status_code == 404

    done = token_client("d1-reviewer").delete(f"/api/delegations/{did}")
    assert done.status_code == 200 and "已取消代理" in done.json()["message"], done.text
    again = token_client("d1-reviewer").post(f"/api/delegations/{did}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "delegation.over"
    for user in ("d1-reviewer", "c1-reviewer"):
        assert len(_told(token_client, user, "取消代理")) == 1, user
    # The stand-in decides nothing any more, the list is empty, and no end notice follows.
    view = city.get(f"/api/records/{rid}").json()
    assert not next(a for a in view["actions"] if a["trigger"] == "accept")["allowed"]
    assert city.get("/api/delegations").json() == []
    assert sweeps.run_sweep(w.db, now=_china(5)).notifications.get("delegation_end", 0) == 0
    # Audited.
    with UnitOfWork(w.db, readonly=True) as uow:
        rows = uow.oplog.search(Filters(action="delegation.cancel"))
    assert sorted(r.outcome for r in rows) == ["ok", "refused", "refused", "refused"]


def test_the_federation_admin_cancels_and_the_review_page_lists(login, token_client, web_world: World) -> None:
    from tests.entrypoints.web.conftest import csrf_from

    token_client("d1-reviewer").post("/api/delegations", json={
        "org_code": "D1", "delegator": "d1-reviewer", "standin": "c1-reviewer", **RANGE})
    token_client("d1-reviewer").post("/api/delegations", json={
        "org_code": "D1", "delegator": "d1-reviewer", "standin": "d1-clerk",
        "starts_on": "2021-11-20", "ends_on": "2021-11-25"})
    directory.import_users(UnitOfWork(web_world.db), data="username,display_name,org_code,role\n"
                           "d1-admin,D1管理员,D1,admin\nd1-admin,D1管理员,D1,reviewer\n".encode(), now=NOW_2021)
    page = login("c1-reviewer").get("/review").text
    assert "代理安排" in page and "代理中" in page and "取消代理" not in page  # the stand-in sees it, cannot cancel
    admin = login("d1-admin")
    page = admin.get("/review").text
    assert "代理中" in page and "未开始" in page and page.count('class="secondary">取消代理') == 2
    first = re.search(r'action="(/review/delegations/\d+/cancel)"', page)
    assert first
    done = admin.post(first.group(1), data={"csrf_token": csrf_from(page)}, follow_redirects=True)
    assert "已取消代理：C1审核人不再代D1审核人审核" in done.text
    assert "代理中" not in done.text and "未开始" in done.text


def test_bangfu_delegate_cancel(ready: Cli) -> None:  # noqa: F811
    r = ready("delegate", "D1", "d1-reviewer", "c1-reviewer", "--from", "2021-10-25", "--to", "2021-11-05",
              "--as", "d1-reviewer", "--json")
    assert r.code == 0, r.err
    did = json.loads(r.out)["delegation_id"]
    refused = ready("delegate", "--cancel", str(did), "--as", "c1-reviewer")
    assert refused.code != 0 and "[delegation.not_found]" in refused.err
    done = ready("delegate", "--cancel", str(did), "--as", "d1-reviewer")
    assert done.code == 0 and "已取消代理：C1审核人不再代D1审核人审核" in done.out, done.err
    missing = ready("delegate", "D1", "--as", "d1-reviewer")
    assert missing.code != 0 and "[input.delegate_args]" in missing.err
