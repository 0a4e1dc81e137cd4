"""Web and account commands: ``bangfu serve`` (uvicorn), ``bangfu token-create USERNAME`` and
``bangfu password-reset USERNAME`` (a parent's reviewer resets a subordinate clerk's password)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from workflow.domain.errors import BadInput
from workflow.entrypoints.cli import Context, command
from workflow.settings import Settings, get_settings


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("serve", help="启动网页和 JSON 接口（uvicorn）", description="启动网页和 JSON 接口（uvicorn）",
                       parents=[common])
    p.add_argument("--host", default="127.0.0.1", metavar="地址", help="监听地址（默认 127.0.0.1）")
    p.add_argument("--port", type=int, default=8000, metavar="端口", help="端口（默认 8000）")
    p.add_argument("--workers", type=int, default=1, metavar="进程数", help="工作进程数（默认 1；生产环境按 CPU 核数）")
    p = sub.add_parser("token-create", help="为用户创建接口访问令牌（只显示一次）",
                       description="为用户创建接口访问令牌（只显示一次）", parents=[common])
    p.add_argument("username", metavar="用户名")
    p.add_argument("--name", default="", metavar="用途", help="令牌的用途")
    p = sub.add_parser("password-reset", help="上级审核人重置下级单位填报员的密码（新密码从标准输入读取）",
                       description="上级审核人重置下级单位填报员的密码（新密码从标准输入读取）", parents=[common])
    p.add_argument("username", metavar="用户名", help="要重置密码的填报员用户名")


@command("serve")
def cmd_serve(args: argparse.Namespace, ctx: Context) -> Any:
    # Lazy: uvicorn and FastAPI load only for `bangfu serve` (start-up time of the other commands).
    from workflow.entrypoints.web import serve

    if args.workers < 1:
        raise BadInput("工作进程数至少为 1", code="serve.workers")
    if not 1 <= args.port <= 65535:
        raise BadInput(f"端口须在 1 到 65535 之间，收到 {args.port}", code="serve.port")
    get_settings().check()
    serve.serve(host=args.host, port=args.port, workers=args.workers, log_level="info",
                **uvicorn_proxy_options(get_settings()))
    return {"stopped": True}


def uvicorn_proxy_options(settings: Settings) -> dict[str, Any]:
    """Forwarded headers only from the proxies named in ``BANGFU_TRUSTED_PROXIES`` (default:
    none). uvicorn's own default trusts 127.0.0.1, so any local process could claim another
    client address and step around the login throttle."""
    if not settings.trusted_proxies:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(settings.trusted_proxies)}


@command("token-create")
def cmd_token_create(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import accounts  # lazy: start-up time

    token = accounts.create_token(ctx.uow(), username=args.username, name=args.name)
    return {"username": args.username, "token": token,
            "usage": "Authorization: Bearer <token>（只显示这一次，请妥善保存）"}


@command("password-reset")
def cmd_password_reset(args: argparse.Namespace, ctx: Context) -> Any:
    # The new password comes from standard input, never from the command line (ps, shell history).
    from workflow.app import accounts  # lazy: start-up time

    new_password = sys.stdin.readline().rstrip("\r\n")
    accounts.reset_password(ctx.uow(), actor_id=ctx.user_id(), username=args.username,
                            new_password=new_password)
    return {"username": args.username, "reset": True}
