"""``work-report``: a reporting unit's work report (Markdown, HTML or DOCX)."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.app import reporting
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.entrypoints.cli.output import write_file


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("org", metavar="单位代码")
    p.add_argument("--md", metavar="文件", help="写成 Markdown")
    p.add_argument("--html", metavar="文件", help="写成可打印的 HTML（A4）")
    p.add_argument("--docx", metavar="文件", help="写成 Word 文档（DOCX，可编辑、盖章）")


def work_report(args: argparse.Namespace, ctx: Context) -> Any:
    report = reporting.work_report(ctx.uow(readonly=True), org_code=args.org, user_id=ctx.user_id(),
                                   round_label=args.round)
    written = []
    if args.md:
        written.append(write_file(args.md, report.markdown))
    if args.html:
        written.append(write_file(args.html, report.html))
    if args.docx:
        written.append(write_file(args.docx, report.docx()))
    if args.json:
        return {"markdown": report.markdown, "written": written}
    return report.markdown if not written else "".join(f"已写入 {w}\n" for w in written)


COMMANDS = {"work-report": Command(arguments=_arguments, run=work_report, context=Context)}
