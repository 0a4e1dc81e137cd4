"""``token-create``, ``password-reset``, ``unlock`` and ``totp-enroll``: API tokens, a clerk's
password (by a parent union's reviewer), lifting a lockout and an administrator's second factor
(by the operator acting as security administrator)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from workflow.app import accounts
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.settings import get_settings


def _token_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("username", metavar="用户名")
    p.add_argument("--name", default="", metavar="用途", help="令牌的用途")


def create_token(args: argparse.Namespace, ctx: Context) -> Any:
    token = accounts.create_token(ctx.uow(), username=args.username, name=args.name)
    return {"username": args.username, "token": token,
            "usage": "Authorization: Bearer <token>（只显示这一次，请妥善保存）"}


def token_text(result: dict[str, Any]) -> None:
    print(f"已为 {result['username']} 创建接口令牌（只显示这一次，请妥善保存）：")
    print(result["token"])
    print("使用方法：请求头 Authorization: Bearer <令牌>")


def _reset_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("username", metavar="用户名", help="要重置密码的填报员用户名")


def reset_password(args: argparse.Namespace, ctx: Context) -> Any:
    # The new password comes from standard input, never from the command line (ps, shell history).
    new_password = sys.stdin.readline().rstrip("\r\n")
    accounts.reset_password(ctx.uow(), actor_id=ctx.user_id(), username=args.username,
                            new_password=new_password, policy=get_settings().security)
    return {"username": args.username, "reset": True}


def reset_text(result: dict[str, Any]) -> None:
    print(f"已重置 {result['username']} 的密码；该账号原有的登录和接口令牌已失效")


def _user_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("username", metavar="用户名")


def unlock(args: argparse.Namespace, ctx: Context) -> Any:
    actor = ctx.user_id() if (args.as_user or "") else None
    accounts.unlock(ctx.uow(), username=args.username, actor_id=actor)
    return {"username": args.username, "unlocked": True}


def unlock_text(result: dict[str, Any]) -> None:
    print(f"已解锁 {result['username']}，可以重新登录")


def enroll_totp(args: argparse.Namespace, ctx: Context) -> Any:
    uri = accounts.enroll_totp(ctx.uow(), username=args.username)
    return {"username": args.username, "otpauth": uri,
            "usage": "用手机验证器（如 FreeOTP、Google Authenticator）扫描或输入此地址；只显示这一次"}


def totp_text(result: dict[str, Any]) -> None:
    print(f"{result['username']} 的动态验证码已开通。{result['usage']}：")
    print(result["otpauth"])


COMMANDS = {
    "token-create": Command(arguments=_token_arguments, run=create_token, human=token_text, context=Context),
    "password-reset": Command(arguments=_reset_arguments, run=reset_password, human=reset_text, context=Context),
    "unlock": Command(arguments=_user_argument, run=unlock, human=unlock_text, context=Context),
    "totp-enroll": Command(arguments=_user_argument, run=enroll_totp, human=totp_text, context=Context),
}
