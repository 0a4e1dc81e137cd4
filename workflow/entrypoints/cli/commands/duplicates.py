"""``duplicates``: orders (channel + order number) held by two or more unions of a subtree, and
a reviewer's explanation of one (``--explain CHANNEL ORDER --reason …``)."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.app import reporting
from workflow.domain import clock, rules
from workflow.domain.errors import BadInput
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("org", nargs="?", metavar="单位代码", help="列出该单位之下的重复订单（说明时不用填）")
    p.add_argument("--explain", nargs=2, metavar=("渠道", "订单号"),
                   help="说明一张订单为什么由多个单位录入（渠道可填名称或代码，如 粤工惠购）")
    p.add_argument("--reason", metavar="原因", help="说明的原因（--explain 时必填）")


def duplicates(args: argparse.Namespace, ctx: Context) -> Any:
    if args.explain:
        channel, order_no = args.explain
        done = reporting.explain_duplicate(ctx.uow(), user_id=ctx.user_id(), round_label=args.round,
                                           channel=channel, order_no=order_no, reason=args.reason or "")
        return done.to_dict() if args.json else done.message
    if not args.org:
        raise BadInput("请填写单位代码，例如 bangfu duplicates C1；说明一张订单请用 --explain 渠道 订单号 --reason 原因",
                       code="cli.usage")
    found = reporting.duplicate_orders(ctx.uow(readonly=True), user_id=ctx.user_id(), org_code=args.org,
                                       round_label=args.round)
    if args.json:
        return found.to_dict()
    return text(found)


def text(found: reporting.DuplicateOrders) -> str:
    if not found.orders:
        return f"{found.org_name}{found.round_label}没有被两个以上单位录入的订单"
    out = [f"{found.org_name}{found.round_label}：{len(found.orders)} 张订单被两个以上单位录入，"
           f"其中 {found.unexplained} 张尚未说明"]
    for o in found.orders:
        out.append(f"订单 {o['order_no']}（{o['channel_name']}）合计 {rules.yuan(o['amount_fen'])} 元，{o['people']} 人次")
        for u in o["unions"]:
            out.append(f"    {u['org_name']}（{u['org_code']}，{u['state_label']}）{rules.yuan(u['amount_fen'])} 元，"
                       f"{u['people']} 人次")
        note = o["explanation"]
        if o["explained"]:
            out.append(f"    已说明：{note['by']} 于 {clock.china_date(note['at']):%Y-%m-%d}：{note['reason']}")
        elif note:
            out.append(f"    未说明（此前的说明不含后来录入的单位：{note['by']}：{note['reason']}）")
        else:
            out.append("    未说明")
    if found.truncated:
        out.append("……订单太多，只列出前一部分；请按下级单位分别查看")
    return "\n".join(out)


COMMANDS = {"duplicates": Command(arguments=_arguments, run=duplicates, context=Context)}
