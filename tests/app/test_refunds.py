"""Issue 10 point 9: the refunds of an order never add up to more than the order (amount and
people), entered by hand, over the API or in an import; no Annex 2 figure goes negative."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.app.test_purchase_import import csv, run
from tests.conftest import World
from workflow.app import reporting
from workflow.domain.errors import ImportRefused, RuleViolation
from workflow.store.tables import Purchase


def _count(w: World) -> int:
    with w.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Purchase)).scalar_one())


def _annex2_figures(w: World, org: str = "G1") -> list[tuple[int, int]]:
    view = reporting.stats(w.uow(True), org_code=org, user_id=w.uid(f"{org.lower()}-clerk"), round_label=w.round_label)
    return [(r.people, r.amount_fen) for r in view.table.rows] + [(view.table.total_people, view.table.total_amount_fen)]


def test_manual_refunds_beyond_the_order_are_refused(any_world: World) -> None:
    w = any_world
    w.plan("G1")
    w.buy("G1", "O-1", 50000, 5)
    w.buy("G1", "O-1R1", -30000, 2, refund_of="O-1")
    w.buy("G1", "O-1R2", -20000, 3, refund_of="O-1")  # exactly the order: allowed
    before = _count(w)
    with pytest.raises(RuleViolation) as exc:
        w.buy("G1", "O-1R3", -1, 0, refund_of="O-1")
    assert exc.value.code == "purchase.refund_exceeds_order" and "超过订单金额 500.00 元" in exc.value.message
    w.buy("G1", "O-2", 10000, 2)
    with pytest.raises(RuleViolation) as exc:
        w.buy("G1", "O-2R", -100, 3, refund_of="O-2")
    assert exc.value.code == "purchase.refund_people_exceed_order"
    assert _count(w) == before + 1
    assert all(p >= 0 and a >= 0 for p, a in _annex2_figures(w))


def test_import_refunds_beyond_the_order_are_refused(any_world: World) -> None:
    w = any_world
    w.plan("G1")
    data = csv([
        "A1,1,2021-10-20 10:00,500.00,5,梅州金柚,实物,额外额度,粤工惠购,",
        "A1-退1,1,2021-10-21 10:00,-300.00,0,梅州金柚,实物,额外额度,粤工惠购,A1",
        "A1-退2,1,2021-10-22 10:00,-300.00,0,梅州金柚,实物,额外额度,粤工惠购,A1",
    ])
    with pytest.raises(ImportRefused) as exc:
        run(w, data)
    assert any("第 4 行" in e and "超过订单金额 500.00 元" in e for e in exc.value.errors), exc.value.errors
    assert _count(w) == 0
    # Within the order it goes in; a later file cannot push the ledger's refunds past it.
    run(w, csv(["A1,1,2021-10-20 10:00,500.00,5,梅州金柚,实物,额外额度,粤工惠购,",
                "A1-退1,1,2021-10-21 10:00,-300.00,0,梅州金柚,实物,额外额度,粤工惠购,A1"]))
    with pytest.raises(ImportRefused):
        run(w, csv(["A1-退3,1,2021-10-23 10:00,-200.01,0,梅州金柚,实物,额外额度,粤工惠购,A1"]))
    with pytest.raises(RuleViolation):
        w.buy("G1", "A1-退4", -20001, 0, refund_of="A1")
    assert _count(w) == 2
    assert all(p >= 0 and a >= 0 for p, a in _annex2_figures(w))
