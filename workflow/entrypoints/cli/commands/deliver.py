"""``deliver``: send the notifications due."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import threading
from typing import Any

from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.entrypoints.cli.notify import as_of
from workflow.scheduler.outbox import default_channels, deliver_all
from workflow.settings import get_settings


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as-of", metavar="时间", help="按此时刻发送（ISO 格式；不带时区为北京时间）")


def deliver(args: argparse.Namespace, ctx: Context) -> Any:
    settings = get_settings()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())  # finish the message, release the rest
    start = as_of(args.as_of) if args.as_of else None  # leases run on the real clock
    return deliver_all(ctx.db, channels=default_channels(settings), now=start,
                       worker_id=f"cli@{socket.gethostname()}:{os.getpid()}",
                       batch=settings.delivery_batch, lease_seconds=settings.lease_seconds,
                       connections=settings.smtp_connections,
                       max_seconds=settings.delivery_run_seconds,
                       should_stop=stop.is_set).to_dict()


def deliver_text(result: dict[str, Any]) -> None:
    """What a delivery sent, in an operator's words (``--json`` gives every figure and error)."""
    print(f"已发送 {result.get('sent', 0)} 条，稍后重试 {result.get('retry', 0)} 条，"
          f"失败 {result.get('failed', 0)} 条")
    errors = result.get("errors") or []
    if errors:
        print(f"第一个错误：{errors[0]['error']}")
        if result.get("error_count", 0) > 1:
            print(f"共 {result['error_count']} 个错误；详情：bangfu deliver --json、bangfu outbox list --failed")
    if result.get("stopped"):
        print("收到停止信号：其余通知已放回队列")


COMMANDS = {"deliver": Command(arguments=_arguments, run=deliver, human=deliver_text, context=Context)}
