"""``sweep``: the reminders and round checks due now (overdue, late, lapsed quotas)."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.app.views import KIND_LABELS
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.entrypoints.cli.notify import as_of
from workflow.scheduler.sweeps import run_sweep


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as-of", metavar="时间", help="按此时刻运行（ISO 格式；不带时区为北京时间）")


def sweep(args: argparse.Namespace, ctx: Context) -> Any:
    return run_sweep(ctx.db, now=as_of(args.as_of)).to_dict()


def sweep_text(result: dict[str, Any]) -> None:
    """What a sweep did, in an operator's words (``--json`` gives every figure)."""
    if result.get("stood_aside"):
        print("另一次检查正在进行，本次未执行（稍后再试）")
        return
    counts = result.get("notifications") or {}
    total = sum(counts.values())
    parts = "、".join(f"{KIND_LABELS.get(k, k)} {n} 条" for k, n in counts.items() if n)
    print(f"已写入通知 {total} 条" + (f"：{parts}" if parts else ""))
    print(f"标为逾期 {result.get('overdue', 0)} 份，迟报 {result.get('late', 0)} 份，"
          f"额度失效 {result.get('lapsed', 0)} 份")
    skipped = len(result.get("skipped_offsets") or [])
    if skipped:
        print(f"已过期未发的提醒 {skipped} 次不再补发，只发最近一次")


COMMANDS = {"sweep": Command(arguments=_arguments, run=sweep, human=sweep_text, context=Context)}
