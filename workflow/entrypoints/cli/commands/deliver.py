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


COMMANDS = {"deliver": Command(arguments=_arguments, run=deliver, context=Context)}
