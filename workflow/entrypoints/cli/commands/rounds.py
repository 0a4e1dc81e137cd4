"""``rounds``: the rounds loaded, with their deadlines."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.domain import clock
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context


def rounds(args: argparse.Namespace, ctx: Context) -> list[dict[str, Any]]:
    with ctx.uow(readonly=True) as uow:
        return [
            {"id": r.id, "policy": r.policy_code, "year": r.year, "label": r.label,
             "quota_deadline": clock.deadline_last_day(r.quota_deadline),
             "report_deadline_reporting_unit": clock.deadline_last_day(r.report_deadline_reporting_unit),
             "report_deadline_default": clock.deadline_last_day(r.report_deadline_default),
             "entry_cutoff": clock.deadline_last_day(r.entry_cutoff)}
            for r in uow.directory.rounds()
        ]


def rounds_text(result: list[dict[str, Any]]) -> None:
    if not result:
        print("尚未加载任何年度（先运行 bangfu init）")
    for r in result:
        print(f"{r['label']}（{r['policy']}）  额度截止 {r['quota_deadline']:%Y年%m月%d日}  "
              f"报送单位报送截止 {r['report_deadline_reporting_unit']:%Y年%m月%d日}  "
              f"下级默认报送截止 {r['report_deadline_default']:%Y年%m月%d日}  "
              f"补录截止 {r['entry_cutoff']:%Y年%m月%d日}")


COMMANDS = {"rounds": Command(run=rounds, human=rounds_text, context=Context)}
