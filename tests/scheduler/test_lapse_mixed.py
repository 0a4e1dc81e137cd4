"""The lapse at the entry cutoff over records with every kind of spending: none, partial, full,
over the quota, voided lines, refunds and lines charged to other budgets. What lapses is the
quota less the live extra-quota lines (refunds subtracted), never below zero."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import insert, text

from tests.conftest import NOW_2021, World
from tests.scheduler.conftest import at, rows, system_history
from workflow.scheduler import sweeps
from workflow.store.tables import Purchase

QUOTA = 6_000_000  # 600 yuan × 100 members


def _lines(w: World, org: str, *lines: tuple[int, str, bool, int | None]) -> list[int]:
    """Ledger lines (amount, budget, voided, index of the refunded line) for ``org``'s record."""
    ids: list[int] = []
    with w.db.begin() as s:
        for n, (amount, budget, voided, refund_of) in enumerate(lines, start=1):
            result = s.execute(insert(Purchase.__table__).values(  # type: ignore[attr-defined]
                record_id=w.rid(org), paid_at=NOW_2021, paid_on=date(2021, 11, 1), channel="ygh",
                amount_fen=amount, people=0 if amount < 0 else 10, order_no=f"{org}-{n}",
                line_no=1, budget=budget, product="", source="manual", on_behalf=False,
                refund_of_id=ids[refund_of] if refund_of is not None else None,
                voided_at=NOW_2021 if voided else None, void_on_behalf=False,
            ).returning(Purchase.__table__.c.id))  # type: ignore[attr-defined]
            ids.append(int(result.scalar_one()))
    return ids


def _lapsed(w: World) -> dict[str, int | None]:
    with w.db.engine.connect() as conn:
        return {str(code): fen for code, fen in conn.execute(text(
            "SELECT o.code, r.lapsed_fen FROM record r JOIN organisation o ON o.id = r.org_id"
            " WHERE r.round_id = (SELECT id FROM round WHERE year = 2021)")).all()}


def test_a_lapse_over_mixed_spending_writes_exactly_what_is_left(any_world: World) -> None:
    w = any_world
    for org in ("G1", "G2", "G3", "G4", "G5"):
        w.plan(org, 60000, 100)
    # G1: nothing spent. G2: partial, beside a voided extra-quota line and an ordinary-gift line.
    _lines(w, "G2", (1_000_000, "extra_quota", False, None), (2_000_000, "extra_quota", True, None),
           (500_000, "ordinary_gift", False, None))
    # G3: spent in full once its refund is taken off. G4: over the quota (an import may do it).
    _lines(w, "G3", (4_000_000, "extra_quota", False, None), (2_500_000, "extra_quota", False, None),
           (-500_000, "extra_quota", False, 1))
    _lines(w, "G4", (7_000_000, "extra_quota", False, None), (900_000, "hardship", False, None))
    # G5: a refund that counts and a voided refund that does not; a member-activity line.
    _lines(w, "G5", (3_000_000, "extra_quota", False, None), (-1_000_000, "extra_quota", False, 0),
           (-2_000_000, "extra_quota", True, 0), (1_500_000, "member_activity", False, None))

    report = sweeps.run_sweep(w.db, now=at("2022-02-01T00:00"))

    expected = {"G1": QUOTA, "G2": 5_000_000, "G3": 0, "G4": 0, "G5": 4_000_000}
    assert report.lapsed == 5
    lapsed = _lapsed(w)
    assert {k: v for k, v in lapsed.items() if k in expected} == expected
    assert all(v is None for k, v in lapsed.items() if k not in expected)  # federations: no quota
    history = {str(h["code"]): h for h in system_history(w.db, "lapse")}
    assert sorted(history) == ["G1", "G2", "G5"]  # nothing left, no history row
    for code, h in history.items():
        assert json.loads(str(h["detail"])) == {"lapsed_fen": expected[code], "quota_fen": QUOTA}
        assert h["actor_user_id"] is None and h["actor_role"] == "system"
        assert h["from_state"] == h["to_state"] == "planned"
    notices = rows(w.db, "kind = 'quota_lapsed' AND channel = 'inbox'")
    assert report.notifications.get("quota_lapsed", 0) == len(rows(w.db, "kind = 'quota_lapsed'"))
    by_clerk = {int(str(n["user_id"])): json.loads(str(n["payload"])) for n in notices}
    assert sorted(by_clerk) == sorted(w.uid(f"{c.lower()}-clerk") for c in ("G1", "G2", "G5"))
    for code in ("G1", "G2", "G5"):
        payload = by_clerk[w.uid(f"{code.lower()}-clerk")]
        assert payload["lapsed_fen"] == expected[code] and payload["path"] == f"/records/{w.rid(code)}"

    # Once lapsed, for good: a second sweep writes nothing and changes no amount.
    again = sweeps.run_sweep(w.db, now=at("2022-02-02T00:00"))
    assert again.lapsed == 0 and again.notifications.get("quota_lapsed", 0) == 0
    assert _lapsed(w) == lapsed
    assert len(system_history(w.db, "lapse")) == 3
