"""``init``, ``db-upgrade``, ``policy-check``, ``policy-load``: the database's schema and the
policy documents."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from workflow.app import directory
from workflow.domain.policy import POLICY_DIR, Policy, load_policy
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context

BUILT_IN = POLICY_DIR / "yuegongzong-2021-17.toml"


def _init_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-policy", action="store_true", help="不加载政策")


def _file_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="文件", help="政策文件（TOML）或内置政策代码")


def upgrade(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    ctx.db.upgrade()
    return {"database": ctx.db.shown_url, "schema": "head"}


def init(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    out = upgrade(args, ctx)
    if not args.no_policy:
        out["policy"] = _install(ctx, load_policy(BUILT_IN))
    return out


def _install(ctx: Context, policy: Policy) -> dict[str, Any]:
    return {**directory.install_policy(ctx.uow(), policy=policy), "document": policy.document}


def _policy_path(arg: str) -> Path:
    path = Path(arg)
    if not path.exists() and (POLICY_DIR / f"{arg}.toml").exists():
        path = POLICY_DIR / f"{arg}.toml"
    return path


def check(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    p = load_policy(_policy_path(args.file))
    return {"policy": p.code, "document": p.document, "rounds": [r.label for r in p.rounds],
            "channels": len(p.channels)}


def load(args: argparse.Namespace, ctx: Context) -> dict[str, Any]:
    return _install(ctx, load_policy(_policy_path(args.file)))


def upgraded_text(result: dict[str, Any]) -> None:
    print(f"数据库结构已是最新版本：{result['database']}")
    if result.get("policy"):
        loaded_text(result["policy"])


def checked_text(result: dict[str, Any]) -> None:
    print(f"政策文件无误：{result['document']}，年度 {'、'.join(result['rounds'])}，采购渠道 {result['channels']} 个")


def loaded_text(result: dict[str, Any]) -> None:
    print(f"已加载政策 {result['document']}：{'、'.join(result['rounds'])}"
          + (f"，新开记录 {result['records_opened']} 份" if result["records_opened"] else ""))


COMMANDS = {
    "init": Command(arguments=_init_arguments, run=init, human=upgraded_text, context=Context),
    "db-upgrade": Command(run=upgrade, human=upgraded_text, context=Context),
    "policy-check": Command(arguments=_file_argument, run=check, human=checked_text, context=Context),
    "policy-load": Command(arguments=_file_argument, run=load, human=loaded_text, context=Context),
}
