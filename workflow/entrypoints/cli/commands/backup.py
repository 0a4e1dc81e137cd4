"""``backup``: an online backup of the SQLite database to a file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from workflow.domain.errors import BadInput
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.scheduler.operations import backup_sqlite


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="文件", help="要写入的备份文件")


def backup(args: argparse.Namespace, ctx: Context) -> Any:
    db = ctx.db
    if db.dialect != "sqlite":
        raise BadInput("PostgreSQL 请用 pg_dump 备份，例如：pg_dump -Fc -f bangfu.dump 数据库名"
                       "（见 README 的运维一节）", code="backup.not_sqlite")
    target = Path(args.target).resolve()
    if target.exists():
        raise BadInput(f"备份文件 {target} 已存在：请换一个文件名", code="backup.exists")
    if not target.parent.is_dir():
        raise BadInput(f"目录 {target.parent} 不存在", code="backup.no_dir")
    pages = backup_sqlite(db, target)
    return ({"target": str(target), "pages": pages} if args.json else
            f"已在线备份到 {target}（{pages} 页；备份期间网页和后台照常工作）\n")


COMMANDS = {"backup": Command(arguments=_arguments, run=backup, context=Context)}
