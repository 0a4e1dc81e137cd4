"""``purchase-add``, ``purchase-void``, ``purchase-list``: a record's purchase lines."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.app import purchases
from workflow.domain import money, rules
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.entrypoints.cli.parser import org_argument
from workflow.formats.ledger import BUDGET_LABELS


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("org", metavar="单位代码")
    p.add_argument("--paid-at", required=True, metavar="时间", help="支付时间，如 2021-12-20T10:30（北京时间，可带时区）；不能晚于录入时刻")
    p.add_argument("--channel", required=True, metavar="渠道", help="采购渠道：名称（如 粤工惠购）或代码（如 ygh）")
    p.add_argument("--amount", required=True, metavar="元", help="金额（元）；退款填负数")
    p.add_argument("--people", required=True, metavar="人次", help="领取慰问品的人次")
    p.add_argument("--order", required=True, metavar="订单号")
    p.add_argument("--line", default="1", metavar="行号", help="订单行号（默认 1）")
    p.add_argument("--product", metavar="商品", help="商品名称")
    p.add_argument("--form", metavar="形态", help="商品形态（现金、购物卡、代金券等不允许）")
    p.add_argument("--holiday", metavar="节日", help="慰问节日，如 春节")
    p.add_argument("--origin", metavar="产地", help="产地或帮扶地区")
    p.add_argument("--budget", default="extra_quota", choices=sorted(BUDGET_LABELS), metavar="经费来源",
                   help="经费来源：" + "，".join(f"{k}={v}" for k, v in BUDGET_LABELS.items()) + "（默认 extra_quota）")
    p.add_argument("--refund-of", metavar="订单号", help="退款对应的原订单号")


def add(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    rid = ctx.record_id(args.org)
    paid_at = money.parse_paid_at(args.paid_at)
    entry = purchases.enter_purchase(
        ctx.uow(), record_id=rid, user_id=ctx.user_id(),
        purchase=purchases.PurchaseInput(
            paid_at=paid_at, channel=args.channel, amount_fen=money.parse_yuan(args.amount, "金额"),
            people=money.parse_count(args.people, "领取人数", minimum=0), order_no=args.order,
            line_no=money.parse_count(args.line, "商品行号", minimum=1),
            product=args.product or "", product_form=args.form, holiday=args.holiday,
            origin_region=args.origin, budget=args.budget, refund_of=args.refund_of,
        ),
    )
    result = entry.to_dict()
    if not entry.duplicates:  # the answer's keys stay as they were when nothing is to be said
        del result["duplicate_warnings"]
    return result


def added_text(result: dict[str, Any]) -> None:
    print(f"已录入采购行 #{result['purchase_id']}（记录 #{result['record_id']}）")
    for warning in result.get("duplicate_warnings", []):
        print(f"注意：{warning['message']}")


def _void_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("org", metavar="单位代码")
    p.add_argument("--id", required=True, metavar="编号", help="采购行编号（purchase-list 显示）")
    p.add_argument("--reason", required=True, metavar="原因", help="作废原因")


def void(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    rid = ctx.record_id(args.org)
    hid = purchases.void_purchase(ctx.uow(), record_id=rid,
                                purchase_id=money.parse_count(args.id, "采购行编号", minimum=0),
                                user_id=ctx.user_id(), reason=args.reason or "")
    return {"purchase_id": int(args.id), "record_id": rid, "history_id": hid}


def voided_text(result: dict[str, Any]) -> None:
    print(f"已作废采购行 #{result['purchase_id']}；如需更正，请重新录入正确的数据")


def list_(args: argparse.Namespace, ctx: Context) -> list[dict[str, Any]]:
    rid = ctx.record_id(args.org)
    return purchases.list_purchases(ctx.uow(readonly=True), record_id=rid, user_id=ctx.user_id())


def listed_text(result: list[dict[str, Any]]) -> None:
    # The line's 编号 is what purchase-void --id takes; a voided line stays listed, marked.
    for p in result:
        void = f"  【已作废：{p['void_reason']}】" if p["voided"] else ""
        also = f"  【疑似重复：{'、'.join(p['also_claimed_by'])}也录入了这张订单】" if p.get("also_claimed_by") else ""
        print(f"编号 {p['id']:<6} {p['paid_on']}  {p.get('channel_name') or p['channel']:<12} "
              f"{rules.yuan(p['amount_fen']):>14} 元  {p['people']:>6} 人次  订单 {p['order_no']}#{p['line_no']}"
              f"  {p['product']}{void}{also}")
    voided = sum(1 for p in result if p["voided"])
    claimed = sum(1 for p in result if p.get("also_claimed_by"))
    print(f"共 {len(result)} 条" + (f"，其中已作废 {voided} 条（不计入任何数字）" if voided else "")
          + (f"；{claimed} 条的订单其他单位也录入了，已通知上级审核人核实" if claimed else ""))


COMMANDS = {
    "purchase-add": Command(arguments=_add_arguments, run=add, human=added_text, context=Context),
    "purchase-void": Command(arguments=_void_arguments, run=void, human=voided_text, context=Context),
    "purchase-list": Command(arguments=org_argument, run=list_, human=listed_text, context=Context),
}
