"""Scheduler and notification commands: ``sweep``, ``deliver``, ``notify-preview``, ``inbox``,
``round-status``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from workflow.domain import clock
from workflow.domain.errors import BadInput
from workflow.entrypoints.cli import Context, command
from workflow.settings import get_settings

# The templates (Jinja2) load inside the commands that render (lazy, for start-up time). The
# kinds below mirror notifications.templates.KINDS (a test checks).
KINDS = ("quota_reminder", "report_reminder", "reviewer_digest", "record_event", "overdue_notice",
         "quota_lapsed", "outbox_failed")


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
    p = add("outbox", "发件箱：状态、失败记录、重发、健康检查")
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
    p = add("backup", "在线备份 SQLite 数据库到文件")
    p.add_argument("target", metavar="文件", help="要写入的备份文件")


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

    settings = get_settings()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # finish the message, release the rest
    start = _as_of(args.as_of) if args.as_of else None  # leases run on the real clock
    return deliver_all(ctx.db, channels=default_channels(settings), now=start,
                       worker_id=f"cli@{socket.gethostname()}:{os.getpid()}",
                       batch=settings.delivery_batch, lease_seconds=settings.lease_seconds,
                       should_stop=stop.is_set).to_dict()


@command("notify-preview")
def cmd_notify_preview(args: argparse.Namespace, ctx: Context) -> Any:
    from notifications.templates import SAMPLES, render  # lazy: start-up time (Jinja2)

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
    from notifications.templates import render
    from workflow.scheduler.outbox import template_context  # lazy, see above

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


@command("round-status")
def cmd_round_status(args: argparse.Namespace, ctx: Context) -> Any:
    # Lazy: loaded only by this command, keeping `bangfu --help` and other commands quick to start.
    from states import STATE_LABELS  # lazy, see above

    now = clock.now()
    with ctx.uow(readonly=True) as uow:
        rnd = uow.directory.round_by_label(args.round) if args.round else uow.directory.rounds()[-1]
        *rows, total = uow.reports.completeness(rnd.id or 0, now=now, scope="subtree")
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


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "无"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} 小时 {minutes} 分" if hours else f"{minutes} 分 {sec} 秒"


_CHANNEL_LABELS = {"email": "邮件", "sms": "短信", "wecom": "企业微信", "dingtalk": "钉钉"}


@command("outbox")
def cmd_outbox(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app.views import KIND_LABELS  # lazy: start-up time (SQLAlchemy)
    from workflow.scheduler import operations  # lazy: start-up time (SQLAlchemy)

    action = args.outbox_action
    if action == "status":
        st = operations.outbox_status(ctx.db)
        if args.json:
            return st.to_dict()
        lines = ["发送队列状态（渠道 / 通知类型：待发送、占用中、重试中、已发送、失败）："]
        for ln in st.lines:
            lines.append(f"{_CHANNEL_LABELS.get(ln['channel'], ln['channel'])} / "
                         f"{KIND_LABELS.get(ln['kind'], ln['kind'])}：待发送 {ln['pending']}，"
                         f"占用中 {ln['leased']}，重试中 {ln['retrying']}，已发送 {ln['sent']}，"
                         f"失败 {ln['failed']}")
        t = st.totals()
        lines.append(f"合计：待发送 {t['pending']}，已发送 {t['sent']}，失败 {t['failed']}；"
                     f"最早的待发送通知已等待 {_age(st.oldest_pending_seconds)}")
        return "\n".join(lines) + "\n"
    if action == "list":
        failed = operations.failed_rows(ctx.db, limit=max(args.limit, 1))
        if args.json:
            return failed
        if not failed:
            return "没有发送失败的通知\n"
        lines = [f"发送失败的通知（{len(failed)} 条，最新在前）："]
        for r in failed:
            lines.append(f"#{r['id']}  {_CHANNEL_LABELS.get(r['channel'], r['channel'])}  "
                         f"{KIND_LABELS.get(r['kind'], r['kind'])}  收件人 {r['username']}  "
                         f"尝试 {r['attempts']} 次\n    原因：{r['last_error']}")
        return "\n".join(lines) + "\n"
    if action == "retry":
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
    # health
    max_age = args.max_age or get_settings().outbox_max_age
    ok, st = operations.healthy(ctx.db, max_age=max_age)
    out = ({"healthy": ok, **st.to_dict()} if args.json else
           ("正常" if ok else "异常") + f"：最早的待发送通知已等待 {_age(st.oldest_pending_seconds)}"
           f"（上限 {_age(max_age)}）\n")
    if not ok:
        print(json.dumps(out, ensure_ascii=False, default=str) if args.json else out, end="")
        raise SystemExit(1)
    return out


@command("backup")
def cmd_backup(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.scheduler.operations import backup_sqlite  # lazy: start-up time (SQLAlchemy)

    db = ctx.db
    if db.dialect != "sqlite":
        raise BadInput("PostgreSQL 请用 pg_dump 备份，例如：pg_dump -Fc -f bangfu.dump 数据库名"
                       "（见 README 的运维一节）", code="backup.not_sqlite")
    target = Path(args.target).resolve()
    if target.exists():
        raise BadInput(f"备份文件 {target} 已存在：请换一个文件名", code="backup.exists")
    if not target.parent.is_dir():
        raise BadInput(f"目录 {target.parent} 不存在", code="backup.no_dir")
    pages = backup_sqlite(db, target)
    return ({"target": str(target), "pages": pages} if args.json else
            f"已在线备份到 {target}（{pages} 页；备份期间网页和后台照常工作）\n")
