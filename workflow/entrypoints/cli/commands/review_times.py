"""``review-times``: days from submit to the parent's decision, per level, federation and reviewer."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.app import review_times as times
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.entrypoints.cli.output import write_file


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--org", metavar="单位代码", help="看哪个单位及其下级（默认：本人最高一级的审核单位）")
    p.add_argument("--xlsx", metavar="文件", help="同时写成 XLSX")


def _line(g: times.Group) -> str:
    return (f"{g.label}：审核 {g.decisions} 次，用时中位数 {g.median_days} 天、90% {g.p90_days} 天、"
            f"最长 {g.longest_days} 天；退回 {g.returns} 次（每条记录 {g.returns_per_record} 次）")


def review_times(args: argparse.Namespace, ctx: Context) -> Any:
    report = times.review_times(ctx.uow(readonly=True), user_id=ctx.user_id(), org_code=args.org,
                                round_label=args.round)
    written = write_file(args.xlsx, report.xlsx()) if args.xlsx else None
    if args.json:
        return {**report.to_dict(), **({"written": written} if written else {})}
    lines = [f"{report.title}（从提交到上级审核，已审核的）："]
    if report.total is None:
        lines.append("还没有已审核的提交")
    else:
        lines.append(_line(report.total))
        for heading, groups in (("按层级", report.by_level), ("按审核单位", report.by_federation),
                                ("按审核人", report.by_reviewer)):
            lines.append(f"{heading}：")
            lines.extend(f"  {_line(g)}" for g in groups)
        lines.append("最慢的单位：")
        lines.extend(f"  {s.unit_name}（{s.federation_name} {s.reviewer_name}，{s.row()[3]}）：{s.days} 天"
                     for s in report.slowest)
    if written:
        lines.append(f"已写入 {written}")
    return "\n".join(lines) + "\n"


COMMANDS = {"review-times": Command(arguments=_arguments, run=review_times, context=Context)}
