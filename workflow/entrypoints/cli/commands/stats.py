"""``stats``: an organisation's Annex 2 statistics (snapshot, live or its subordinates' sum),
optionally written as XLSX, CSV or HTML."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.app import reporting
from workflow.domain import figures
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.entrypoints.cli.output import write_file
from workflow.formats import exports


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("org", metavar="单位代码")
    p.add_argument("--live", action="store_true", help="草稿即使已汇总也按实时采购统计")
    p.add_argument("--xlsx", metavar="文件", help="把附件2写成 XLSX")
    p.add_argument("--csv", metavar="文件", help="写成 CSV（UTF-8，带 BOM）")
    p.add_argument("--html", metavar="文件", help="写成可打印的 HTML")


def stats(args: argparse.Namespace, ctx: Context) -> Any:
    view = reporting.stats(ctx.uow(readonly=True), org_code=args.org, user_id=ctx.user_id(),
                           round_label=args.round, live=args.live)
    written = []
    if args.xlsx:
        written.append(write_file(args.xlsx, exports.write_xlsx([view.table])))
    if args.csv:
        written.append(write_file(args.csv, exports.write_csv(view.table)))
    if args.html:
        written.append(write_file(args.html, exports.render_html(view.table)))
    if args.json:
        return {**view.to_dict(), "written": written}
    return _stats_text(view) + "".join(f"已写入 {w}\n" for w in written)


def _stats_text(view: reporting.StatsView) -> str:
    t = view.table
    lines = [f"{view.org_name}（{view.org_code}）  {view.round_label}  {t.status_note or ''}",
             f"{'采购平台':<24}{'人次(万)':>10}{'金额(万元)':>14}"]
    for r in t.rows:
        lines.append(f"{r.label:<24}{exports.wan_people(r.people):>12}{exports.wan_yuan(r.amount_fen):>16}")
    lines.append(f"{'合计':<24}{exports.wan_people(t.total_people):>12}{exports.wan_yuan(t.total_amount_fen):>16}")
    lines.append(view.official.text())
    if view.pending:
        people = sum(p for p, _a in view.pending.values())
        amount = sum(a for _p, a in view.pending.values())
        lines.append(f"{figures.STATUS_PENDING}（未计入合计）：人次 {exports.wan_people(people)} 万，"
                     f"金额 {exports.wan_yuan(amount)} 万元")
    if view.units:
        lines.append("下级单位：")
        for u in view.units:
            lines.append(f"  {u.org_code:<8} {u.org_name:<16} {u.status_note:<18} 人次 {exports.wan_people(u.people)} 万"
                         f"  金额 {exports.wan_yuan(u.amount_fen)} 万元")
    return "\n".join(lines) + "\n"


COMMANDS = {"stats": Command(arguments=_arguments, run=stats, context=Context)}
