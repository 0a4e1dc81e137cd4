"""``limits``: a grassroots union's ordinary holiday-gift limits."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.app import reporting
from workflow.domain import limits, money
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("org", metavar="单位代码")
    p.add_argument("--ordinary", required=True, metavar="元", help="本年度普通节日慰问品支出（元）")
    p.add_argument("--budget", required=True, metavar="元", help="本年度预算支出（元）")
    p.add_argument("--retained", default="0", metavar="元", help="留成经费（元）")
    p.add_argument("--basis", required=True, choices=sorted(limits.BASES), metavar="基数",
                   help="计算基数：" + "，".join(f"{k}={v}" for k, v in limits.BASES.items()))


def check_limits(args: argparse.Namespace, ctx: Context) -> Any:
    result = reporting.limits_for(
        ctx.uow(readonly=True), org_code=args.org, user_id=ctx.user_id(), round_label=args.round,
        ordinary_fen=money.parse_yuan(args.ordinary, "普通节日慰问品"),
        budget_fen=money.parse_yuan(args.budget, "年度预算支出"),
        retained_fen=money.parse_yuan(args.retained, "留成经费"), basis=args.basis,
    )
    if args.json:
        return {"level": result.level, "exempt_fen": result.exempt_fen, "moved_fen": result.moved_fen,
                "counted_fen": result.counted_fen, "lines": result.lines(),
                "verdicts": [{"code": v.code, "level": v.level, "message": v.message} for v in result.verdicts]}
    return "\n".join([*result.lines(), f"结论：{limits.LEVEL_LABELS[result.level]}"])


COMMANDS = {"limits": Command(arguments=_arguments, run=check_limits, context=Context)}
