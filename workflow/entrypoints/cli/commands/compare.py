"""``compare``: the subordinates' numbers in two rounds."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.app import reporting
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.formats import exports


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("org", metavar="单位代码")
    p.add_argument("--before", required=True, metavar="年度", help="年度名称或年份，如 2021")
    p.add_argument("--after", required=True, metavar="年度", help="年度名称或年份，如 2022")


def compare(args: argparse.Namespace, ctx: Context) -> Any:
    rows = reporting.compare_rounds(ctx.uow(readonly=True), org_code=args.org, user_id=ctx.user_id(),
                                    before=args.before, after=args.after)
    if args.json:
        return [{**r.__dict__, "change_fen": r.change_fen,
                 "change_percent": str(r.change_percent) if r.change_percent is not None else None} for r in rows]
    out = []
    for r in rows:
        pct = f"{r.change_percent:+}%" if r.change_percent is not None else "—"
        out.append(f"{r.org_code:<8}{r.org_name:<16} {r.before_label} {exports.wan_yuan(r.before_fen)} 万元 → "
                   f"{r.after_label} {exports.wan_yuan(r.after_fen)} 万元  变化 {pct}")
    return "\n".join(out) or "没有下级单位"


COMMANDS = {"compare": Command(arguments=_arguments, run=compare, context=Context)}
