"""``plan`` and ``report-info``: a clerk fills in the record's quota and the report's details;
both print the record as ``show`` does."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.app import planning
from workflow.domain import money
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.commands.show import record_text
from workflow.entrypoints.cli.context import Context


def _plan_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("org", metavar="单位代码")
    p.add_argument("--amount", required=True, metavar="元", help="每人额外额度（元），0–600")
    p.add_argument("--members", metavar="人数", help="会员人数（默认用本年度导入的人数）")


def plan(args: argparse.Namespace, ctx: Context) -> Any:
    rid = ctx.record_id(args.org)
    return planning.plan(
        ctx.uow(), record_id=rid, user_id=ctx.user_id(), seen_version=ctx.seen_version(rid),
        amount_per_member_fen=money.parse_yuan(args.amount, "每人增加额度"),
        members=money.parse_count(args.members, "会员人数", minimum=0) if args.members is not None else None,
    )


def _report_info_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("org", metavar="单位代码")
    p.add_argument("--reporter", metavar="姓名", help="填报人")
    p.add_argument("--phone", metavar="电话", help="联系电话")
    p.add_argument("--fill-date", metavar="日期", help="填表时间，如 2021-12-20；不填则导出时留空")
    p.add_argument("--experience", metavar="文字", help="先进经验")
    p.add_argument("--highlights", metavar="文字", help="工作亮点")


def report_info(args: argparse.Namespace, ctx: Context) -> Any:
    rid = ctx.record_id(args.org)
    return planning.update_report_info(
        ctx.uow(), record_id=rid, user_id=ctx.user_id(), seen_version=ctx.seen_version(rid),
        reporter=args.reporter, phone=args.phone,
        fill_date=money.parse_date(args.fill_date, "日期") if args.fill_date else None,
        work_experience=args.experience, work_highlights=args.highlights,
    )


COMMANDS = {
    "plan": Command(arguments=_plan_arguments, run=plan, human=record_text, context=Context),
    "report-info": Command(arguments=_report_info_arguments, run=report_info, human=record_text, context=Context),
}
