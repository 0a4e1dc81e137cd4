"""``completeness``: each union's subordinates by state, overdue, late and snapshot checks."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.app import reporting
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.entrypoints.cli.reports import SCOPE_CHOICES


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--under", metavar="单位代码", help="只看该单位之下的工会（subtree 范围时为其直属单位）")
    p.add_argument("--scope", choices=SCOPE_CHOICES, default="children", metavar="范围",
                   help="children=每个工会的直属下级（默认）；subtree=每个报送单位之下的全部记录")


def completeness(args: argparse.Namespace, ctx: Context) -> Any:
    rows = reporting.completeness_for(ctx.uow(readonly=True), user_id=ctx.user_id(), round_label=args.round,
                                      under_code=args.under, scope=args.scope)
    if args.json:
        return [r.to_dict() for r in rows]
    out = [f"{'单位':<20}{'下级':>5}{'计划中':>6}{'已采购':>6}{'已汇总':>6}{'已提交':>6}{'已通过':>6}"
           f"{'逾期':>5}{'迟报':>5}{'报送率':>8}{'快照不符':>6}"]
    for r in rows:
        out.append(f"{(r.org_name or r.org_code):<20}{r.total:>6}{r.planned:>8}{r.purchased:>8}{r.summarized:>8}"
                   f"{r.submitted:>8}{r.accepted:>8}{r.overdue:>7}{r.late:>7}{r.submitted_percent:>9}%"
                   f"{r.mismatched:>8}")
    return "\n".join(out)


COMMANDS = {"completeness": Command(arguments=_arguments, run=completeness, context=Context)}
