"""``province-workbook``: the province's summary workbook (the summary sheet and one Annex 2 per
reporting unit)."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.app import reporting
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.entrypoints.cli.output import write_file


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="文件")


def province_workbook(args: argparse.Namespace, ctx: Context) -> Any:
    data = reporting.province_workbook(ctx.uow(readonly=True), user_id=ctx.user_id(), round_label=args.round)
    return {"written": write_file(args.file, data)}


def written_text(result: dict[str, Any]) -> None:
    print(f"已写入全省汇总工作簿：{result['written']}")


COMMANDS = {"province-workbook": Command(arguments=_arguments, run=province_workbook, human=written_text,
                                         context=Context)}
