"""A voided purchase line counts nowhere in the sweeps either: the quota reminder's amount left
and the lapse at the entry cutoff read live lines only."""

from __future__ import annotations

import json

from tests.conftest import World
from tests.scheduler.conftest import at, rows, system_history
from workflow.app import purchases
from workflow.scheduler import sweeps


def test_a_voided_line_neither_uses_quota_nor_stops_it_lapsing(round_world: World) -> None:
    w = round_world
    # G4 spent its whole 3,000 yuan in one line; the line is voided: all of it is left again.
    with w.uow(True) as uow:
        line = uow.purchases.of_record(w.rid("G4"))[0].id or 0
    purchases.void_purchase(w.uow(), record_id=w.rid("G4"), purchase_id=line, user_id=w.uid("g4-clerk"),
                          reason="订单已取消", now=at("2021-11-02T10:00"))
    sweeps.run_sweep(w.db, now=at("2021-12-01T09:00"))
    reminders = [json.loads(str(r["payload"])) for r in rows(w.db, "kind = 'quota_reminder' AND channel = 'inbox'")
                 if r["user_id"] == w.uid("g4-clerk")]
    assert reminders and reminders[0]["left_fen"] == 300000 and reminders[0]["used_fen"] == 0
    sweeps.run_sweep(w.db, now=at("2022-02-01T00:00"))
    lapses = {h["code"]: json.loads(str(h["detail"])) for h in system_history(w.db, "lapse")}
    assert lapses["G4"] == {"lapsed_fen": 300000, "quota_fen": 300000}
