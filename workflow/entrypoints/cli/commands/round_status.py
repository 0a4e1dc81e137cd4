"""``round-status``: each reporting unit's states, overdue records and snapshot checks."""

from __future__ import annotations

import argparse
from typing import Any

from states import STATE_LABELS
from workflow.domain import clock
from workflow.domain.policy import begun_rounds
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context


def round_status(args: argparse.Namespace, ctx: Context) -> Any:
    now = clock.now()
    with ctx.uow(readonly=True) as uow:
        rnd = uow.directory.round_by_label(args.round) if args.round else begun_rounds(uow.directory.rounds(), clock.china_date(now))[0]
        *rows, total = uow.reports.completeness(rnd.id or 0, now=now, scope="subtree")
        label = rnd.label
    if args.json:
        return [r.to_dict() for r in [*rows, total]]
    lines = [f"{label} 报送情况（按报送单位）："]
    for r in [*rows, total]:
        by_state = "，".join(f"{STATE_LABELS[s]} {n}" for s, n in r.by_state.items())
        check = "快照均与采购相符" if r.adds_up else f"{r.mismatched} 份快照与采购不符"
        own = f"（{r.org_code}，本级{STATE_LABELS.get(r.own_state, r.own_state)}）" if r.own_state else ""
        lines.append(f"{r.org_name}{own}：下级 {r.subordinates} 个：{by_state}；逾期 {r.overdue}；{check}")
    return "\n".join(lines) + "\n"


COMMANDS = {"round-status": Command(run=round_status, context=Context)}
