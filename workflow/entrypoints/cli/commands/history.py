"""``history``: a record's history, oldest first."""

from __future__ import annotations

import argparse
from typing import Any

import states
from workflow.app import record_views
from workflow.domain import clock
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.entrypoints.cli.output import ROLE_LABELS
from workflow.entrypoints.cli.parser import org_argument


def history(args: argparse.Namespace, ctx: Context) -> Any:
    rid = ctx.record_id(args.org)
    return record_views.history(ctx.uow(readonly=True), record_id=rid, user_id=ctx.user_id())


def history_text(result: list[dict[str, Any]]) -> None:
    for h in result:
        role = ROLE_LABELS.get(h["role"], h["role"] or "")
        who = f"{h['actor']}（{role}{'，代填报' if h['on_behalf'] else ''}）" if role else h["actor"]
        reason = f"  原因：{h['reason']}" if h["reason"] else ""
        at = h["at"].astimezone(clock.CHINA).strftime("%Y-%m-%d %H:%M")
        moved = (f"{states.STATE_LABELS.get(h['from'], h['from'])} → {states.STATE_LABELS.get(h['to'], h['to'])}"
                 if h["from"] != h["to"] else "")
        print(f"{at}  {h['label']}  {moved}  {who}{reason}")


COMMANDS = {"history": Command(arguments=org_argument, run=history, human=history_text, context=Context)}
