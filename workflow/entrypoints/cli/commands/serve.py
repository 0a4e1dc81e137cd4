"""``serve``: the web pages and the JSON API under uvicorn (FastAPI loads for this command only)."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.domain.errors import BadInput
from workflow.entrypoints.cli.command import Bare, Command
from workflow.entrypoints.cli.web import uvicorn_proxy_options
from workflow.entrypoints.web import serve as web_serve
from workflow.settings import get_settings


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", metavar="地址", help="监听地址（默认 127.0.0.1）")
    p.add_argument("--port", type=int, default=8000, metavar="端口", help="端口（默认 8000）")
    p.add_argument("--workers", type=int, default=1, metavar="进程数", help="工作进程数（默认 1；生产环境按 CPU 核数）")


def serve(args: argparse.Namespace, ctx: Bare) -> Any:
    if args.workers < 1:
        raise BadInput("工作进程数至少为 1", code="serve.workers")
    if not 1 <= args.port <= 65535:
        raise BadInput(f"端口须在 1 到 65535 之间，收到 {args.port}", code="serve.port")
    get_settings().check()
    web_serve.serve(host=args.host, port=args.port, workers=args.workers, log_level="info",
                    **uvicorn_proxy_options(get_settings()))
    return {"stopped": True}


COMMANDS = {"serve": Command(arguments=_arguments, run=serve, context=Bare)}
