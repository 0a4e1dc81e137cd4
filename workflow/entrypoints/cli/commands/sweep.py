"""``sweep``: the reminders and round checks due now (overdue, late, lapsed quotas)."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.entrypoints.cli.notify import as_of
from workflow.scheduler.sweeps import run_sweep


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as-of", metavar="时间", help="按此时刻运行（ISO 格式；不带时区为北京时间）")


def sweep(args: argparse.Namespace, ctx: Context) -> Any:
    return run_sweep(ctx.db, now=as_of(args.as_of)).to_dict()


COMMANDS = {"sweep": Command(arguments=_arguments, run=sweep, context=Context)}
