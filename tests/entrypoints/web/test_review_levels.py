"""The review inbox and the subordinates list serve every level of the tree: a district's
grassroots unions, a city's districts, the province's reporting units (the province has no
record of its own, so the inbox must not go through the parent's record)."""

from __future__ import annotations

from tests.conftest import World


def federation_to_submitted(w: World, org: str) -> None:
    """Summarize and submit a federation's record as its clerk (work-report texts included)."""
    clerk = f"{org.lower()}-clerk"
    w.fire(org, "finish_purchasing", clerk)
    w.info(org, work_experience="以工会采购带动帮扶", work_highlights="全年组织三次集中采购")
    w.fire(org, "summarize", clerk)
    w.fire(org, "submit", clerk)


def test_each_level_sees_its_own_childrens_submissions(token_client, web_world: World) -> None:
    w = web_world
    w.to_submitted("G1")
    federation_to_submitted(w, "D1")
    federation_to_submitted(w, "C1")

    def inbox(user: str) -> list[str]:
        body = token_client(user).get("/api/review/inbox?round=1").json()
        assert body["total"] == len(body["items"])
        return [i["org_code"] for i in body["items"]]

    def subordinates(user: str) -> list[str]:
        return [i["org_code"] for i in token_client(user).get("/api/review/subordinates?round=1").json()["items"]]

    assert inbox("d1-reviewer") == ["G1"]
    assert inbox("c1-reviewer") == ["D1"]
    assert inbox("gd-reviewer") == ["C1"]
    assert subordinates("d1-reviewer") == ["G1", "G2"]
    assert subordinates("c1-reviewer") == ["D1", "D2"]
    assert subordinates("gd-reviewer") == ["C1", "C2", "IND"]
    # A reviewer sees nothing from a level that is not theirs.
    assert inbox("c2-reviewer") == [] and inbox("ind-reviewer") == []


def test_the_province_reviewer_accepts_a_city_from_the_review_page(login, web_world: World) -> None:
    w = web_world
    federation_to_submitted(w, "C1")
    client = login("gd-reviewer")
    page = client.get("/review").text
    assert "待审核（1）" in page and "广州市总工会" in page
    assert "下级单位情况" in page and "深圳市总工会" in page and "广东省教科文卫工会" in page
