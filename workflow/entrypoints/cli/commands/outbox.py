"""``outbox status|list|retry|health``: the delivery queue for operators."""

from __future__ import annotations

import argparse
import json
import os
import socket
from typing import Any

from workflow.app.views import KIND_LABELS
from workflow.domain.errors import BadInput
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.entrypoints.cli.notify import CHANNEL_LABELS, KINDS, age
from workflow.entrypoints.cli.parser import common_options
from workflow.scheduler import operations
from workflow.settings import get_settings


def _arguments(p: argparse.ArgumentParser) -> None:
    common = common_options()
    ops = p.add_subparsers(dest="outbox_action", required=True, metavar="操作", title="操作")
    ops.add_parser("status", help="各渠道、各类型的待发／发送中／已发／失败数量",
                   description="各渠道、各类型的待发／发送中／已发／失败数量", parents=[common])
    q = ops.add_parser("list", help="列出记录（--failed：失败的记录及其错误）",
                       description="列出记录（--failed：失败的记录及其错误）", parents=[common])
    q.add_argument("--failed", action="store_true", help="只列失败的记录（默认）")
    q.add_argument("--limit", type=int, default=100, metavar="条数", help="最多列出几条（默认 100）")
    q = ops.add_parser("retry", help="把失败的记录重新设为待发，重试次数清零（留有审计记录）",
                       description="把失败的记录重新设为待发，重试次数清零（留有审计记录）", parents=[common])
    q.add_argument("ids", nargs="*", type=int, metavar="编号", help="通知编号")
    q.add_argument("--kind", metavar="类型", help="该类型的全部失败记录")
    q.add_argument("--all-failed", action="store_true", help="全部失败记录")
    q = ops.add_parser("health", help="最早的待发记录过旧时以退出码 1 结束",
                       description="最早的待发记录过旧时以退出码 1 结束", parents=[common])
    q.add_argument("--max-age", type=int, metavar="秒", help="秒数（默认 BANGFU_OUTBOX_MAX_AGE）")


def outbox(args: argparse.Namespace, ctx: Context) -> Any:
    action = args.outbox_action
    if action == "status":
        return _status(args, ctx)
    if action == "list":
        return _list(args, ctx)
    if action == "retry":
        return _retry(args, ctx)
    return _health(args, ctx)


def _status(args: argparse.Namespace, ctx: Context) -> Any:
    st = operations.outbox_status(ctx.db)
    if args.json:
        return st.to_dict()
    lines = ["发送队列状态（渠道 / 通知类型：待发送、占用中、重试中、已发送、失败）："]
    for ln in st.lines:
        lines.append(f"{CHANNEL_LABELS.get(ln['channel'], ln['channel'])} / "
                     f"{KIND_LABELS.get(ln['kind'], ln['kind'])}：待发送 {ln['pending']}，"
                     f"占用中 {ln['leased']}，重试中 {ln['retrying']}，已发送 {ln['sent']}，"
                     f"失败 {ln['failed']}")
    t = st.totals()
    lines.append(f"合计：待发送 {t['pending']}，已发送 {t['sent']}，失败 {t['failed']}；"
                 f"最早的待发送通知已等待 {age(st.oldest_pending_seconds)}")
    return "\n".join(lines) + "\n"


def _list(args: argparse.Namespace, ctx: Context) -> Any:
    failed = operations.failed_rows(ctx.db, limit=max(args.limit, 1))
    if args.json:
        return failed
    if not failed:
        return "没有发送失败的通知\n"
    lines = [f"发送失败的通知（{len(failed)} 条，最新在前）："]
    for r in failed:
        lines.append(f"#{r['id']}  {CHANNEL_LABELS.get(r['channel'], r['channel'])}  "
                     f"{KIND_LABELS.get(r['kind'], r['kind'])}  收件人 {r['username']}  "
                     f"尝试 {r['attempts']} 次\n    原因：{r['last_error']}")
    return "\n".join(lines) + "\n"


def _retry(args: argparse.Namespace, ctx: Context) -> Any:
    if not (args.ids or args.kind or args.all_failed):
        raise BadInput("请指定要重发的通知编号，或 --kind 通知类型，或 --all-failed",
                       code="outbox.retry_what")
    if args.kind and args.kind not in KINDS:
        raise BadInput(f"没有通知类型“{args.kind}”：可选 {', '.join(KINDS)}",
                       code="notify.unknown_kind")
    actor = f"cli@{socket.gethostname()}:{os.environ.get('USER', '?')}"
    n = operations.retry(ctx.db, actor=actor, ids=args.ids or None, kind=args.kind,
                         all_failed=args.all_failed)
    return {"retried": n} if args.json else f"已将 {n} 条失败的通知重新排队（尝试次数清零）\n"


def _health(args: argparse.Namespace, ctx: Context) -> Any:
    max_age = args.max_age or get_settings().outbox_max_age
    ok, st = operations.healthy(ctx.db, max_age=max_age)
    out = ({"healthy": ok, **st.to_dict()} if args.json else
           ("正常" if ok else "异常") + f"：最早的待发送通知已等待 {age(st.oldest_pending_seconds)}"
           f"（上限 {age(max_age)}）\n")
    if not ok:
        print(json.dumps(out, ensure_ascii=False, default=str) if args.json else out, end="")
        raise SystemExit(1)
    return out


COMMANDS = {"outbox": Command(arguments=_arguments, run=outbox, context=Context)}
