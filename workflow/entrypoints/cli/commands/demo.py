"""``demo``: load the demo province and this year's demo round."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.entrypoints import demo
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reset", action="store_true", help="先清空再加载")


def build(args: argparse.Namespace, ctx: Context) -> Any:
    return demo.build(ctx.db, reset=args.reset)


COMMANDS = {"demo": Command(arguments=_arguments, run=build, context=Context)}
