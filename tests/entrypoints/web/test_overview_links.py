"""The overview offers a download only to those the download would not refuse."""

from __future__ import annotations

from tests.conftest import World

CHASE_LABEL = "催报名单（未报送的下级及填报员电话）"


def test_the_observer_gets_no_chase_link_the_reviewer_does(login, web_world: World) -> None:  # type: ignore[no-untyped-def]
    observer = login("observer")
    page = observer.get("/overview")
    assert page.status_code == 200
    assert CHASE_LABEL not in page.text and "/chase.xlsx" not in page.text
    assert "/orgs/C1/annex2.xlsx" in page.text  # the figures stay offered
    assert observer.get("/orgs/C1/chase.xlsx").status_code == 403  # the rule the link follows

    reviewer = login("c1-reviewer")
    page = reviewer.get("/overview")
    assert CHASE_LABEL in page.text and "/orgs/C1/chase.xlsx" in page.text
    assert reviewer.get("/orgs/C1/chase.xlsx").status_code == 200
