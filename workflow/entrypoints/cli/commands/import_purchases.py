"""``import-purchases``: a purchase file (CSV or XLSX) into an organisation's record."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from workflow.app import purchase_import
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.entrypoints.cli.output import read_file
from workflow.entrypoints.cli.reports import MAPPING_CHOICES
from workflow.formats import ledger


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("org", metavar="单位代码")
    p.add_argument("file", metavar="文件")
    p.add_argument("--mapping", choices=MAPPING_CHOICES, metavar="格式",
                   help="文件格式：ygh=粤工惠购订单，p832=832平台，gdg=广东馆，dxb=东西部交易网，generic=通用模板（默认）")


def import_purchases(args: argparse.Namespace, ctx: Context) -> Any:
    data = read_file(args.file)
    rid = ctx.record_id(args.org)
    result = purchase_import.import_purchases(ctx.uow(), record_id=rid, user_id=ctx.user_id(), data=data,
                                              filename=Path(args.file).name, mapping=args.mapping)
    if args.json:
        return result
    with ctx.uow(readonly=True) as uow:
        rnd = uow.directory.round(uow.records.get(rid).round_id)
        names = {c.code: c.name for c in uow.directory.policy(rnd.policy_code).channels}
    return (f"{result.summary(limit=max(len(result.voided_notes), len(result.duplicates)))}（表头在第 {result.header_row} 行，"
            f"按“{ledger.mapping_label(result.mapping, names)}”识别列）")


COMMANDS = {"import-purchases": Command(arguments=_arguments, run=import_purchases, context=Context)}
