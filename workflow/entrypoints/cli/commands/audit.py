"""``audit-verify`` and ``audit-export-head``: the history chain's check and its export."""

from __future__ import annotations

import argparse
import json
from typing import Any

from workflow.app import audit
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.settings import get_settings


def _verify_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--round", help="只核对这个年度的记录（例如 2021；不指定则全部，并核对整条链被删除的记录）")


def verify(args: argparse.Namespace, ctx: Context) -> Any:
    report = audit.verify(ctx.uow(readonly=True), var_dir=get_settings().var_dir, round_label=args.round)
    out = report.to_dict() if args.json else audit.verify_text(report)
    if not report.ok:
        print(json.dumps(out, ensure_ascii=False, default=str) if args.json else out, end="\n" if args.json else "")
        raise SystemExit(1)
    return out


def export_head(args: argparse.Namespace, ctx: Context) -> Any:
    entry = audit.export_head(ctx.uow(), var_dir=get_settings().var_dir)
    return entry if args.json else audit.export_text(entry)


COMMANDS = {
    "audit-verify": Command(arguments=_verify_arguments, run=verify, context=Context),
    "audit-export-head": Command(run=export_head, context=Context),
}
