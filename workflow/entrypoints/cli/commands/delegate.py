"""``delegate``: name a reviewer's stand-in (代理) for a date range."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.app import delegations
from workflow.domain import money
from workflow.domain.errors import BadInput
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("org", nargs="?", metavar="单位代码", help="被代理的审核人所在单位")
    p.add_argument("delegator", nargs="?", metavar="审核人", help="被代理的审核人用户名")
    p.add_argument("standin", nargs="?", metavar="代理人", help="代理人用户名（本单位或上级单位的人员）")
    p.add_argument("--from", dest="starts_on", metavar="开始日期", help="如 2021-12-20")
    p.add_argument("--to", dest="ends_on", metavar="结束日期", help="如 2022-01-03（含当天）")
    p.add_argument("--cancel", metavar="代理编号", help="提前取消一项代理（编号见 GET /api/delegations）")


def delegate(args: argparse.Namespace, ctx: Context) -> Any:
    if args.cancel is not None:
        return delegations.cancel(ctx.uow(), user_id=ctx.user_id(),
                                  delegation_id=money.parse_count(args.cancel, "代理编号", minimum=1))
    if not (args.org and args.delegator and args.standin and args.starts_on and args.ends_on):
        raise BadInput("请写明单位代码、审核人、代理人和 --from/--to 日期，或用 --cancel 代理编号 取消代理",
                       code="input.delegate_args")
    return delegations.name_standin(
        ctx.uow(), user_id=ctx.user_id(), org_code=args.org, delegator=args.delegator, standin=args.standin,
        starts_on=money.parse_date(args.starts_on, "开始日期"), ends_on=money.parse_date(args.ends_on, "结束日期"))


def named_text(result: delegations.Named | delegations.Cancelled) -> None:
    print(result.message)


COMMANDS = {"delegate": Command(arguments=_arguments, run=delegate, human=named_text, context=Context)}
