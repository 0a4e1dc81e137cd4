"""``aggregate-add``: a parent union enters one aggregate line (channel, people, amount, source)."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.app import reporting
from workflow.domain import money
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("org", metavar="单位代码")
    p.add_argument("--channel", required=True, metavar="渠道", help="采购渠道：名称（如 粤工惠购）或代码（如 ygh）")
    p.add_argument("--people", required=True, metavar="人次")
    p.add_argument("--amount", required=True, metavar="元", help="金额（元）")
    p.add_argument("--note", required=True, metavar="说明", help="数据来源")


def aggregate_add(args: argparse.Namespace, ctx: Context) -> Any:
    rid = ctx.record_id(args.org)
    line_id = reporting.add_aggregate_line(
        ctx.uow(), record_id=rid, user_id=ctx.user_id(), channel=args.channel,
        people=money.parse_count(args.people, "人次", minimum=0),
        amount_fen=money.parse_yuan(args.amount, "金额"), note=args.note,
    )
    return {"aggregate_line_id": line_id, "record_id": rid, "org": args.org}


def added_text(result: dict[str, Any]) -> None:
    print(f"已录入 {result['org']} 的汇总数据（第 {result['aggregate_line_id']} 行）")


COMMANDS = {"aggregate-add": Command(arguments=_arguments, run=aggregate_add, human=added_text, context=Context)}
