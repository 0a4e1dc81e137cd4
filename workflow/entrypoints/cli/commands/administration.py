"""``account-add``, ``account-deactivate``, ``org-add``, ``org-rename``, ``org-move``: the
system administrator's work (a reviewer may add a clerk or a second reviewer for its own
units), as on the page ``/admin/orgs``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from workflow.app import administration
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context


def _account_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("org", metavar="单位代码")
    p.add_argument("username", metavar="用户名", help="新账号的用户名")
    p.add_argument("--name", required=True, metavar="姓名")
    p.add_argument("--role", required=True, choices=("clerk", "reviewer"), help="clerk 填报员，reviewer 审核人")
    p.add_argument("--phone", default="", metavar="手机")
    p.add_argument("--email", default="", metavar="邮箱")


def add_account(args: argparse.Namespace, ctx: Context) -> Any:
    # The initial password comes from standard input, never from the command line.
    password = sys.stdin.readline().rstrip("\r\n")
    administration.add_account(ctx.uow(), user_id=ctx.user_id(), org_code=args.org, role=args.role,
                               new_username=args.username, display_name=args.name, new_password=password,
                               email=args.email, phone=args.phone)
    return {"username": args.username, "org_code": args.org, "role": args.role}


def _user_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("username", metavar="用户名")


def deactivate(args: argparse.Namespace, ctx: Context) -> Any:
    administration.deactivate_account(ctx.uow(), user_id=ctx.user_id(), username=args.username)
    return {"username": args.username, "active": False}


def _org_add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("parent", metavar="上级单位代码")
    p.add_argument("code", metavar="新单位代码")
    p.add_argument("--name", required=True, metavar="名称")
    p.add_argument("--kind", required=True, choices=sorted(administration.KIND_LABELS), metavar="类型")


def org_add(args: argparse.Namespace, ctx: Context) -> Any:
    r = administration.add_org(ctx.uow(), user_id=ctx.user_id(), org_code=args.code, name=args.name,
                               kind=args.kind, parent_code=args.parent)
    return {"org_code": args.code, "records_opened": r.records_opened}


def _org_rename_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("org", metavar="单位代码")
    p.add_argument("name", metavar="新名称")


def org_rename(args: argparse.Namespace, ctx: Context) -> Any:
    administration.rename_org(ctx.uow(), user_id=ctx.user_id(), org_code=args.org, name=args.name)
    return {"org_code": args.org, "name": args.name}


def _org_move_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("org", metavar="单位代码")
    p.add_argument("parent", metavar="新的上级单位代码")


def org_move(args: argparse.Namespace, ctx: Context) -> Any:
    administration.move_org(ctx.uow(), user_id=ctx.user_id(), org_code=args.org, parent_code=args.parent)
    return {"org_code": args.org, "parent_code": args.parent}


COMMANDS = {
    "account-add": Command(arguments=_account_arguments, run=add_account, context=Context),
    "account-deactivate": Command(arguments=_user_argument, run=deactivate, context=Context),
    "org-add": Command(arguments=_org_add_arguments, run=org_add, context=Context),
    "org-rename": Command(arguments=_org_rename_arguments, run=org_rename, context=Context),
    "org-move": Command(arguments=_org_move_arguments, run=org_move, context=Context),
}
