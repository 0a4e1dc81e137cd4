"""``org-import``, ``user-import``, ``members-import``: the organisations, users and member
counts from CSV files."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.app import directory
from workflow.app.passwords import hash_password
from workflow.domain.errors import BadInput
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.entrypoints.cli.output import read_file


def _file_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="文件")


def import_orgs(args: argparse.Namespace, ctx: Context) -> Any:
    return directory.import_organisations(ctx.uow(), data=read_file(args.file))


def import_users(args: argparse.Namespace, ctx: Context) -> Any:
    return directory.import_users(ctx.uow(), data=read_file(args.file), hash_password=hash_password)


def import_members(args: argparse.Namespace, ctx: Context) -> Any:
    if not args.round:
        raise BadInput("请用 --round 指定年度", code="cli.no_round")
    return directory.import_member_counts(ctx.uow(), data=read_file(args.file), round_label=args.round)


def imported_text(result: Any) -> None:
    print(f"导入完成：新增 {result.created} 条，更新 {result.updated} 条"
          + (f"，新开记录 {result.records_opened} 份" if result.records_opened else ""))


COMMANDS = {
    "org-import": Command(arguments=_file_argument, run=import_orgs, human=imported_text, context=Context),
    "user-import": Command(arguments=_file_argument, run=import_users, human=imported_text, context=Context),
    "members-import": Command(arguments=_file_argument, run=import_members, human=imported_text, context=Context),
}
