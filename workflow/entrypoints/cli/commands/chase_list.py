"""``chase-list``: the subordinates that have not reported, with their clerks' phones (XLSX)."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.app import reporting
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.entrypoints.cli.output import write_file
from workflow.store.reports import CHASE_HEADERS


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("org", metavar="单位代码")
    p.add_argument("file", metavar="文件")


def chase_list(args: argparse.Namespace, ctx: Context) -> Any:
    rows, data = reporting.chase(ctx.uow(readonly=True), user_id=ctx.user_id(), org_code=args.org,
                                 round_label=args.round)
    written = write_file(args.file, data)
    if args.json:
        return {"written": written, "rows": [dict(zip(CHASE_HEADERS, r, strict=True)) for r in rows]}
    return "\n".join([*("  ".join(str(c) for c in r) for r in rows), f"共 {len(rows)} 个单位未报送，已写入 {written}"])


COMMANDS = {"chase-list": Command(arguments=_arguments, run=chase_list, context=Context)}
