"""``fire``: one step of the workflow (submit, approve, return, ...)."""

from __future__ import annotations

import argparse
from typing import Any

import states
from workflow.app import lifecycle
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("org", metavar="单位代码")
    p.add_argument("trigger", choices=list(states.TRIGGERS), metavar="操作",
                   help="，".join(f"{t}={states.TRIGGER_LABELS.get(t, t)}" for t in states.TRIGGERS))
    p.add_argument("--reason", metavar="原因", help="原因（退回修改、撤销通过时必填）")


def fire(args: argparse.Namespace, ctx: Context) -> Any:
    rid = ctx.record_id(args.org)
    return lifecycle.fire(
        ctx.uow(), record_id=rid, trigger=args.trigger, user_id=ctx.user_id(),
        seen_version=ctx.seen_version(rid), reason=args.reason,
    )


def fired_text(result: Any) -> None:
    print(f"{result.message}（版本 {result.version}，通知 {result.notifications} 条）")


COMMANDS = {"fire": Command(arguments=_arguments, run=fire, human=fired_text, context=Context)}
