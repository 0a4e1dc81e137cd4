"""`make run`'s demo leaves a world in which every account the README names can do its part of
the round at once: the grassroots clerk corrects a mistyped line and goes on, the district's
reviewer decides a child (its parent is not locked), the district's clerk summarizes and submits,
the city's and the province's reviewers each find a submission in their inbox, the observer reads
the overview."""

from __future__ import annotations

import re
from pathlib import Path

import time_machine
from sqlalchemy import text

from tests.scheduler.conftest import at
from workflow.app import lifecycle, purchases, record_views, views
from workflow.entrypoints import demo
from workflow.store.tables import Database
from workflow.store.uow import UnitOfWork

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_readme_account_can_do_its_part_at_once(sqlite_db: Database) -> None:
    db = sqlite_db
    with time_machine.travel(at("2026-06-10T10:00"), tick=False):
        demo.build(db)

        def uid(name: str) -> int:
            with UnitOfWork(db, readonly=True) as uow:
                return uow.directory.user_by_name(name).id or 0

        def rid(code: str) -> int:
            return record_views.find_record(UnitOfWork(db), org_code=code)

        def fire(code: str, trigger: str, user: str, reason: str | None = None) -> str:
            with UnitOfWork(db, readonly=True) as uow:
                version = uow.records.get(rid(code)).version
            return lifecycle.fire(UnitOfWork(db), record_id=rid(code), trigger=trigger, user_id=uid(user),
                                seen_version=version, reason=reason).to_state

        round_id = views.current_round(UnitOfWork(db)).id

        def inbox(user: str) -> list[str]:
            return [i["org_code"] for i in views.review_inbox(UnitOfWork(db, readonly=True), user_id=uid(user),
                                                              round_id=round_id).items]

        # The grassroots clerk: void the mistyped line, enter it right, finish purchasing.
        clerk = uid("gz-d1-g1-clerk")
        lines = purchases.list_purchases(UnitOfWork(db), record_id=rid("GZ-D1-G1"), user_id=clerk)
        wrong = [p for p in lines if p["order_no"] == demo.MISTYPED_ORDER]
        assert len(wrong) == 1 and wrong[0]["people"] == 500
        purchases.void_purchase(UnitOfWork(db), record_id=rid("GZ-D1-G1"), purchase_id=wrong[0]["id"],
                              user_id=clerk, reason="人次误录为 500，应为 50")
        purchases.add_purchase(UnitOfWork(db), record_id=rid("GZ-D1-G1"), user_id=clerk, purchase=purchases.PurchaseInput(
            paid_at=wrong[0]["paid_at"], channel="ygh", amount_fen=wrong[0]["amount_fen"], people=50,
            order_no=demo.MISTYPED_ORDER))
        assert fire("GZ-D1-G1", "finish_purchasing", "gz-d1-g1-clerk") == "purchased"
        # The district reviewer: a child waits, and accepting it is not locked.
        assert inbox("gz-d1-reviewer") == ["GZ-D1-G4"]
        assert fire("GZ-D1-G4", "accept", "gz-d1-reviewer") == "accepted"
        # The district clerk summarizes and submits to the city.
        assert fire("GZ-D1", "summarize", "gz-d1-clerk") == "summarized"
        assert fire("GZ-D1", "submit", "gz-d1-clerk") == "submitted"
        # The city reviewer: GZ-D2 waited, GZ-D1 just arrived; both can be decided.
        assert sorted(inbox("gz-reviewer")) == ["GZ-D1", "GZ-D2"]
        assert fire("GZ-D2", "accept", "gz-reviewer") == "accepted"
        assert fire("GZ-D1", "return_for_revision", "gz-reviewer", "请补充先进经验") == "purchased"
        # The province reviewer: the city SZ has submitted.
        assert inbox("gd-reviewer") == ["SZ"]
        assert fire("SZ", "accept", "gd-reviewer") == "accepted"
        # The observer reads the overview.
        ov = views.overview(UnitOfWork(db, readonly=True), user_id=uid("xczx-observer"), round_id=round_id)
        assert len(ov["units"]) == 24
        # The admin too.
        assert views.overview(UnitOfWork(db, readonly=True), user_id=uid("gd-admin"), round_id=round_id)["units"]


def test_the_readme_lists_every_demo_account_with_what_to_try() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Demo accounts", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"^\| `([a-z0-9-]+)` \|", section, flags=re.M)
    assert named == [name for name, _who, _what in demo.ACCOUNTS]
    assert "demo1234" in section


def test_the_demo_forms_name_a_person_as_reporter_not_an_organisation_code(sqlite_db: Database) -> None:
    """The printed Annex 2 shows 填报人: in the demo it is a person's name, never ``GZ-D1填报员``."""
    with time_machine.travel(at("2026-06-10T10:00"), tick=False):
        demo.build(sqlite_db)
    with sqlite_db.session(readonly=True) as session:
        reporters = [r for (r,) in session.execute(text("SELECT reporter FROM record WHERE reporter IS NOT NULL"))]
    assert reporters, "the demo fills the report info of its summarized records"
    assert [r for r in reporters if re.search(r"[A-Za-z0-9]", r)] == []
