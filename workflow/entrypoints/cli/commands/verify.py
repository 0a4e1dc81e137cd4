"""``verify``: recompute a round's figures from the ledger; exit 1 on any difference."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from workflow.app import verify as verifying
from workflow.entrypoints.cli.command import Command, no_arguments
from workflow.entrypoints.cli.context import Context


def run(args: argparse.Namespace, ctx: Context) -> Any:
    return verifying.verify(ctx.uow(readonly=True), round_label=args.round)


def human(reports: list[verifying.VerifyReport]) -> None:
    for report in reports:
        sys.stdout.write(report.text())


def exit_code(reports: list[verifying.VerifyReport]) -> int:
    return 0 if all(r.ok for r in reports) else 1


COMMANDS = {"verify": Command(run=run, context=Context, arguments=no_arguments, human=human, exit_code=exit_code)}
