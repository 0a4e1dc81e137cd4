"""``notify-preview``: one kind of notification rendered with sample data."""

from __future__ import annotations

import argparse
from typing import Any

from notifications.templates import SAMPLES, render
from workflow.domain.errors import BadInput
from workflow.entrypoints.cli.command import Bare, Command
from workflow.entrypoints.cli.notify import KINDS


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", metavar="类型", help=f"通知类型：{'，'.join(KINDS)}")


def preview(args: argparse.Namespace, ctx: Bare) -> Any:
    if args.kind not in SAMPLES:
        raise BadInput(f"没有通知类型“{args.kind}”：可选 {', '.join(KINDS)}",
                       code="notify.unknown_kind")
    r = render(args.kind, SAMPLES[args.kind])
    if args.json:
        return {"kind": args.kind, "subject": r.subject, "text": r.text, "html": r.html}
    return (f"主题：{r.subject}\n\n--- 纯文本 ---\n{r.text.rstrip()}\n\n--- HTML ---\n"
            f"{r.html.rstrip()}\n")


COMMANDS = {"notify-preview": Command(arguments=_arguments, run=preview, context=Bare)}
