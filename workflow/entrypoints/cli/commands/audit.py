"""``audit-verify`` and ``audit-export-head``: the history chain's check and its export."""

from __future__ import annotations

import argparse
import json
from typing import Any

from workflow.app import audit
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.settings import get_settings


def verify(args: argparse.Namespace, ctx: Context) -> Any:
    """Every chain; with ``--round``, that round's records only (not the chains deleted whole)."""
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
    "audit-verify": Command(run=verify, context=Context),
    "audit-export-head": Command(run=export_head, context=Context),
}
