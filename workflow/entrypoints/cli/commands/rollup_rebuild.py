"""``rollup-rebuild``: recompute the overview's rollup table from the records."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.app import directory
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context


def rebuild(args: argparse.Namespace, ctx: Context) -> Any:
    return directory.rebuild_rollup(ctx.uow(), round_label=args.round)


COMMANDS = {"rollup-rebuild": Command(run=rebuild, context=Context)}
