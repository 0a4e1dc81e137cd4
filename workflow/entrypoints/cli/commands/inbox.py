"""``inbox``: a user's in-app notifications, newest first."""

from __future__ import annotations

import argparse
import json
from typing import Any

from notifications.templates import render
from workflow.domain import clock
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.scheduler.outbox import template_context
from workflow.settings import get_settings


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("username", metavar="用户名")
    p.add_argument("--limit", type=int, default=20, metavar="条数", help="最多显示几条（默认 20）")


def inbox(args: argparse.Namespace, ctx: Context) -> Any:
    base = get_settings().base_url
    with ctx.uow(readonly=True) as uow:
        user = uow.directory.user_by_name(args.username)
        who = f"{user.display_name}（{user.username}）"
        _total, _unread, stored = uow.notifications.inbox_page(user.id or 0, page=1, per_page=max(args.limit, 1))
    items = []
    for row in stored:
        nid, kind, created_at, read_at = row.id, row.kind, row.created_at, row.read_at
        context = template_context(json.loads(row.payload), base)
        try:
            subject = render(kind, context).subject
        except Exception as exc:  # a stored payload the templates cannot render: say so
            subject = f"（无法显示：{type(exc).__name__}）"
        items.append({"id": nid, "kind": kind, "subject": subject, "link": context["link"],
                      "created_at": created_at, "read": read_at is not None})
    if args.json:
        return items
    if not items:
        return f"{who}的站内通知：无\n"
    lines = [f"{who}的站内通知，最新在前："]
    for it in items:
        at = it["created_at"].astimezone(clock.CHINA).strftime("%Y-%m-%d %H:%M")
        mark = "  " if it["read"] else "● "
        lines.append(f"{mark}{at}  {it['subject']}\n    {it['link']}")
    return "\n".join(lines) + "\n"


COMMANDS = {"inbox": Command(arguments=_arguments, run=inbox, context=Context)}
