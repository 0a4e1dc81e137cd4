"""Scheduler and notification commands: ``sweep``, ``deliver``, ``notify-preview``, ``inbox``,
``round-status``."""

from __future__ import annotations

import argparse
import json
import socket
from datetime import datetime
from typing import Any

from notifications.templates import KINDS, SAMPLES, render
from workflow.domain import clock
from workflow.domain.errors import BadInput
from workflow.entrypoints.cli import Context, command
from workflow.settings import get_settings


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    def add(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_, parents=[common])  # type: ignore[no-any-return]

    p = add("sweep", "生成现在到期的提醒和年度检查（逾期、迟报、额度失效）")
    p.add_argument("--as-of", metavar="时间", help="按此时刻运行（ISO 格式；不带时区为北京时间）")
    p = add("deliver", "发送待发的通知")
    p.add_argument("--as-of", metavar="时间", help="按此时刻发送（ISO 格式；不带时区为北京时间）")
    p = add("notify-preview", "用示例数据预览一种通知")
    p.add_argument("kind", metavar="类型", help=f"通知类型：{'，'.join(KINDS)}")
    p = add("inbox", "列出用户的站内通知（最新在前）")
    p.add_argument("username", metavar="用户名")
    p.add_argument("--limit", type=int, default=20, metavar="条数", help="最多显示几条（默认 20）")
    add("round-status", "各报送单位：状态、逾期、快照核对")


def _as_of(text: str | None) -> datetime:
    if not text:
        return clock.now()
    try:
        return clock.parse_instant(text)
    except ValueError:
        raise BadInput(f"时间“{text}”格式应为 2021-12-01T09:00（北京时间）", code="input.time") from None


@command("sweep")
def cmd_sweep(args: argparse.Namespace, ctx: Context) -> Any:
    # Lazy: loaded only by this command, keeping `bangfu --help` and other commands quick to start.
    from workflow.scheduler.sweeps import run_sweep

    return run_sweep(ctx.db, now=_as_of(args.as_of)).to_dict()


@command("deliver")
def cmd_deliver(args: argparse.Namespace, ctx: Context) -> Any:
    # Lazy: loaded only by this command, keeping `bangfu --help` and other commands quick to start.
    from workflow.scheduler.outbox import default_channels, deliver_all

    return deliver_all(ctx.db, channels=default_channels(), now=_as_of(args.as_of),
                       worker_id=f"cli@{socket.gethostname()}").to_dict()


@command("notify-preview")
def cmd_notify_preview(args: argparse.Namespace, ctx: Context) -> Any:
    if args.kind not in SAMPLES:
        raise BadInput(f"没有通知类型“{args.kind}”：可选 {', '.join(KINDS)}",
                       code="notify.unknown_kind")
    r = render(args.kind, SAMPLES[args.kind])
    if args.json:
        return {"kind": args.kind, "subject": r.subject, "text": r.text, "html": r.html}
    return (f"主题：{r.subject}\n\n--- 纯文本 ---\n{r.text.rstrip()}\n\n--- HTML ---\n"
            f"{r.html.rstrip()}\n")


@command("inbox")
def cmd_inbox(args: argparse.Namespace, ctx: Context) -> Any:
    # Lazy: loaded only by this command, keeping `bangfu --help` and other commands quick to start.
    from workflow.scheduler.outbox import inbox_rows, template_context

    base = get_settings().base_url
    with ctx.uow(readonly=True) as uow:
        user = uow.user_by_name(args.username)
        who = f"{user.display_name}（{user.username}）"
        stored = inbox_rows(uow.session, user.id or 0, limit=max(args.limit, 1))
    items = []
    for nid, kind, payload, created_at, read_at in stored:
        context = template_context(json.loads(payload), base)
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


@command("round-status")
def cmd_round_status(args: argparse.Namespace, ctx: Context) -> Any:
    # Lazy: loaded only by this command, keeping `bangfu --help` and other commands quick to start.
    from states import STATE_LABELS  # noqa: I001 - lazy, see above
    from workflow.store.aggregates import completeness  # lazy, see above

    now = clock.now()
    with ctx.uow(readonly=True) as uow:
        rnd = uow.round_by_label(args.round) if args.round else uow.rounds()[-1]
        *rows, total = completeness(uow.session, rnd.id or 0, now=now, scope="subtree")
        label = rnd.label
    if args.json:
        return [r.to_dict() for r in [*rows, total]]
    lines = [f"{label} 报送情况（按报送单位）："]
    for r in [*rows, total]:
        states = "，".join(f"{STATE_LABELS[s]} {n}" for s, n in r.by_state.items())
        check = "快照均与采购相符" if r.adds_up else f"{r.mismatched} 份快照与采购不符"
        own = f"（{r.org_code}，本级{STATE_LABELS.get(r.own_state, r.own_state)}）" if r.own_state else ""
        lines.append(f"{r.org_name}{own}：下级 {r.subordinates} 个：{states}；逾期 {r.overdue}；{check}")
    return "\n".join(lines) + "\n"
