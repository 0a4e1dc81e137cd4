"""The ``bangfu`` command line: a thin entry point over the services.

Exit codes: 0 done, 2 bad input (or not found), 3 refused by a rule or a permission,
4 version conflict (try again), 1 a bug. Errors are one line on stderr, never a traceback
(set ``BANGFU_DEBUG=1`` to see one). ``--json`` prints machine-readable output, and under it a
refusal is JSON too: ``{"code", "message", "exit"}`` on stdout.

Start-up: this module imports only the standard library, ``states`` and pure domain modules, so
``bangfu --help`` and commands without a database start fast. The services, SQLAlchemy,
openpyxl, FastAPI and Celery are imported inside the commands that use them (each such import
says so). The help and argparse's own messages are Chinese (see :mod:`.argparse_zh`).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import states
from workflow.domain import clock, money, rules
from workflow.domain.errors import (
    AuthRequired,
    BadInput,
    BangfuError,
    CsrfFailed,
    LoginFailed,
    NotFound,
    PermissionDenied,
    RuleViolation,
    StoreError,
    TooManyAttempts,
    VersionConflict,
    nearest,
)
from workflow.domain.policy import POLICY_DIR, load_policy
from workflow.entrypoints.cli.argparse_zh import ChineseParser, json_refusal, wants_json
from workflow.settings import get_settings

if TYPE_CHECKING:
    from workflow.store.engine import Database
    from workflow.store.uow import UnitOfWork

log = logging.getLogger("bangfu.cli")

Handler = Callable[[argparse.Namespace, "Context"], Any]
COMMANDS: dict[str, Handler] = {}
#: The commands that run one short transaction (a clerk's everyday commands): they run with the
#: cyclic garbage collector paused, see :func:`_collector_paused`.
SHORT_COMMANDS: set[str] = set()

#: Exit codes: 0 done, 2 bad input or not found, 3 refused by a rule or a permission, 4 version
#: conflict (read again and retry), 1 a bug. Looked up along the class hierarchy, nearest first.
EXIT_CODES: dict[type[BangfuError], int] = {
    BadInput: 2,
    NotFound: 2,
    PermissionDenied: 3,
    RuleViolation: 3,
    VersionConflict: 4,
    LoginFailed: 3,
    AuthRequired: 3,
    CsrfFailed: 3,
    TooManyAttempts: 3,
    StoreError: 1,  # a database refusal no rule foresaw: a bug, as an unexpected error is
}


def exit_code_for(exc: BangfuError) -> int:
    return nearest(EXIT_CODES, exc, 1)


class Context:
    """What a command needs: the database and the acting user."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._db: Database | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            from workflow.store.engine import Database  # lazy: start-up time (SQLAlchemy)

            self._db = Database(get_settings().database_url)
        return self._db

    @property
    def opened_db(self) -> Database | None:
        """The database if this command opened one (nothing is opened to ask)."""
        return self._db

    def uow(self, *, readonly: bool = False) -> UnitOfWork:
        from workflow.store.uow import UnitOfWork  # lazy: start-up time (SQLAlchemy, SQLModel)

        return UnitOfWork(self.db, readonly=readonly)

    def core_uow(self, *, readonly: bool = False) -> UnitOfWork:
        return self.uow(readonly=readonly)

    def user_id(self) -> int:
        name = self.args.as_user or os.environ.get("BANGFU_USER")
        if not name:
            raise BadInput("请用 --as 用户名 指定以哪个用户身份操作（或设置 BANGFU_USER）", code="cli.no_user")
        with self.core_uow(readonly=True) as uow:
            return uow.directory.user_by_name(name).id or 0

    def record_id(self, org: str) -> int:
        from workflow.app import record_views  # lazy: start-up time

        return record_views.find_record(self.core_uow(readonly=True), org_code=org, round_label=self.args.round)

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()


def command(name: str, *, short: bool = False) -> Callable[[Handler], Handler]:
    """Register a command's handler; ``short``: one short transaction, see :data:`SHORT_COMMANDS`."""
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = fn
        if short:
            SHORT_COMMANDS.add(name)
        return fn

    return register


def _to_jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _to_jsonable(value.to_dict() if hasattr(value, "to_dict") else asdict(value))
    if isinstance(value, dict):
        return {k: _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _parse_date(text: str) -> date:
    return money.parse_date(text, "日期")


def _parse_int(text: str, what: str, *, minimum: int = 0) -> int:
    return money.parse_count(text, what, minimum=minimum)


def _version(ctx: Context, record_id: int) -> int:
    """The version the caller saw: ``--version`` or, on the command line, the current one."""
    if ctx.args.version is not None:
        return money.parse_count(ctx.args.version, "版本号", minimum=1)
    with ctx.core_uow(readonly=True) as uow:
        return uow.records.get(record_id).version


# --- commands -------------------------------------------------------------------------------
# The services are imported inside each command (lazy: start-up time, see the module docstring).


@command("init")
def cmd_init(args: argparse.Namespace, ctx: Context) -> Any:
    ctx.db.upgrade()
    out: dict[str, Any] = {"database": ctx.db.shown_url, "schema": "head"}
    if not args.no_policy:
        out["policy"] = _install(ctx, load_policy(POLICY_DIR / "yuegongzong-2021-17.toml"))
    return out


def _install(ctx: Context, policy: Any) -> dict[str, Any]:
    from workflow.app import directory  # lazy: start-up time

    return {**directory.install_policy(ctx.uow(), policy=policy), "document": policy.document}


@command("db-upgrade")
def cmd_db_upgrade(args: argparse.Namespace, ctx: Context) -> Any:
    ctx.db.upgrade()
    return {"database": ctx.db.shown_url, "schema": "head"}


def _policy_path(arg: str) -> Path:
    path = Path(arg)
    if not path.exists() and (POLICY_DIR / f"{arg}.toml").exists():
        path = POLICY_DIR / f"{arg}.toml"
    return path


@command("policy-check")
def cmd_policy_check(args: argparse.Namespace, ctx: Context) -> Any:
    p = load_policy(_policy_path(args.file))
    return {"policy": p.code, "document": p.document, "rounds": [r.label for r in p.rounds],
            "channels": len(p.channels)}


@command("policy-load")
def cmd_policy_load(args: argparse.Namespace, ctx: Context) -> Any:
    return _install(ctx, load_policy(_policy_path(args.file)))


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise BadInput(f"无法读取文件 {path}：{exc.strerror}", code="input.file") from None


@command("org-import")
def cmd_org_import(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import directory  # lazy: start-up time

    return directory.import_organisations(ctx.uow(), data=_read_file(args.file))


@command("user-import")
def cmd_user_import(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import directory  # lazy: start-up time
    from workflow.app.passwords import hash_password  # lazy: start-up time

    return directory.import_users(ctx.uow(), data=_read_file(args.file), hash_password=hash_password)


@command("members-import")
def cmd_members_import(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import directory  # lazy: start-up time

    if not args.round:
        raise BadInput("请用 --round 指定年度", code="cli.no_round")
    return directory.import_member_counts(ctx.uow(), data=_read_file(args.file), round_label=args.round)


@command("rollup-rebuild")
def cmd_rollup_rebuild(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import directory  # lazy: start-up time

    return directory.rebuild_rollup(ctx.uow(), round_label=args.round)


@command("rounds", short=True)
def cmd_rounds(args: argparse.Namespace, ctx: Context) -> Any:
    with ctx.uow(readonly=True) as uow:
        return [
            {"id": r.id, "policy": r.policy_code, "year": r.year, "label": r.label,
             "quota_deadline": clock.deadline_last_day(r.quota_deadline),
             "report_deadline_reporting_unit": clock.deadline_last_day(r.report_deadline_reporting_unit),
             "report_deadline_default": clock.deadline_last_day(r.report_deadline_default),
             "entry_cutoff": clock.deadline_last_day(r.entry_cutoff)}
            for r in uow.directory.rounds()
        ]


@command("plan", short=True)
def cmd_plan(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import planning  # lazy: start-up time

    rid = ctx.record_id(args.org)
    return planning.plan(
        ctx.uow(), record_id=rid, user_id=ctx.user_id(), seen_version=_version(ctx, rid),
        amount_per_member_fen=money.parse_yuan(args.amount, "每人增加额度"),
        members=_parse_int(args.members, "会员人数") if args.members is not None else None,
    )


@command("report-info", short=True)
def cmd_report_info(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import planning  # lazy: start-up time

    rid = ctx.record_id(args.org)
    return planning.update_report_info(
        ctx.uow(), record_id=rid, user_id=ctx.user_id(), seen_version=_version(ctx, rid),
        reporter=args.reporter, phone=args.phone,
        fill_date=_parse_date(args.fill_date) if args.fill_date else None,
        work_experience=args.experience, work_highlights=args.highlights,
    )


@command("purchase-add", short=True)
def cmd_purchase_add(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import purchases  # lazy: start-up time

    rid = ctx.record_id(args.org)
    paid_at = money.parse_paid_at(args.paid_at)
    pid = purchases.add_purchase(
        ctx.core_uow(), record_id=rid, user_id=ctx.user_id(),
        purchase=purchases.PurchaseInput(
            paid_at=paid_at, channel=args.channel, amount_fen=money.parse_yuan(args.amount, "金额"),
            people=_parse_int(args.people, "领取人数"), order_no=args.order,
            line_no=_parse_int(args.line, "商品行号", minimum=1),
            product=args.product or "", product_form=args.form, holiday=args.holiday,
            origin_region=args.origin, budget=args.budget, refund_of=args.refund_of,
        ),
    )
    return {"purchase_id": pid, "record_id": rid}


@command("purchase-void", short=True)
def cmd_purchase_void(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import purchases  # lazy: start-up time

    rid = ctx.record_id(args.org)
    hid = purchases.void_purchase(ctx.uow(), record_id=rid, purchase_id=_parse_int(args.id, "采购行编号"),
                                user_id=ctx.user_id(), reason=args.reason or "")
    return {"purchase_id": int(args.id), "record_id": rid, "history_id": hid}


@command("purchase-list", short=True)
def cmd_purchase_list(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import purchases  # lazy: start-up time

    rid = ctx.record_id(args.org)
    return purchases.list_purchases(ctx.core_uow(readonly=True), record_id=rid, user_id=ctx.user_id())


@command("fire", short=True)
def cmd_fire(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import lifecycle  # lazy: start-up time

    rid = ctx.record_id(args.org)
    # summarize freezes the Annex 2 numbers through the ORM; every other trigger is Core only.
    uow = ctx.uow() if args.trigger == "summarize" else ctx.core_uow()
    return lifecycle.fire(
        uow, record_id=rid, trigger=args.trigger, user_id=ctx.user_id(),
        seen_version=_version(ctx, rid), reason=args.reason,
    )


@command("show", short=True)
def cmd_show(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import record_views  # lazy: start-up time

    rid = ctx.record_id(args.org)
    return record_views.record_view(ctx.core_uow(readonly=True), record_id=rid, user_id=ctx.user_id())


@command("history", short=True)
def cmd_history(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import record_views  # lazy: start-up time

    rid = ctx.record_id(args.org)
    return record_views.history(ctx.uow(readonly=True), record_id=rid, user_id=ctx.user_id())


@command("lifecycle", short=True)
def cmd_lifecycle(args: argparse.Namespace, ctx: Context) -> Any:
    return states.mermaid()


@command("demo")
def cmd_demo(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.entrypoints import demo  # lazy: start-up time

    return demo.build(ctx.db, reset=args.reset)


# --- output ---------------------------------------------------------------------------------

ROLE_LABELS = {states.CLERK: "填报员", states.REVIEWER: "审核人", states.OBSERVER: "观察员", states.ADMIN: "管理员"}


def days_text(n: int) -> str:
    """Days to a deadline in the web's words: 剩 N 天 / 今天截止 / 已过 N 天."""
    if n > 0:
        return f"剩 {n} 天"
    return "今天截止" if n == 0 else f"已过 {-n} 天"


def _print_human(name: str, result: Any) -> None:
    if result is None:
        return
    if isinstance(result, str):
        print(result, end="" if result.endswith("\n") else "\n")
        return
    if name in ("init", "db-upgrade"):
        print(f"数据库结构已是最新版本：{result['database']}")
        if result.get("policy"):
            _print_human("policy-load", result["policy"])
        return
    if name == "policy-check":
        print(f"政策文件无误：{result['document']}，年度 {'、'.join(result['rounds'])}，采购渠道 {result['channels']} 个")
        return
    if name == "policy-load":
        print(f"已加载政策 {result['document']}：{'、'.join(result['rounds'])}"
              + (f"，新开记录 {result['records_opened']} 份" if result["records_opened"] else ""))
        return
    if name in ("show", "plan", "report-info"):
        _print_record(result)
        return
    if name == "fire":
        print(f"{result.message}（版本 {result.version}，通知 {result.notifications} 条）")
        return
    if name == "purchase-add":
        print(f"已录入采购行 #{result['purchase_id']}（记录 #{result['record_id']}）")
        return
    if name == "purchase-void":
        print(f"已作废采购行 #{result['purchase_id']}；如需更正，请重新录入正确的数据")
        return
    if name in ("org-import", "user-import", "members-import"):
        print(f"导入完成：新增 {result.created} 条，更新 {result.updated} 条"
              + (f"，新开记录 {result.records_opened} 份" if result.records_opened else ""))
        return
    if name == "history":
        for h in result:
            role = ROLE_LABELS.get(h["role"], h["role"] or "")
            who = f"{h['actor']}（{role}{'，代填报' if h['on_behalf'] else ''}）" if role else h["actor"]
            reason = f"  原因：{h['reason']}" if h["reason"] else ""
            at = h["at"].astimezone(clock.CHINA).strftime("%Y-%m-%d %H:%M")
            moved = (f"{states.STATE_LABELS.get(h['from'], h['from'])} → {states.STATE_LABELS.get(h['to'], h['to'])}"
                     if h["from"] != h["to"] else "")
            print(f"{at}  {h['label']}  {moved}  {who}{reason}")
        return
    if name == "purchase-list":
        # The line's 编号 is what purchase-void --id takes; a voided line stays listed, marked.
        for p in result:
            void = f"  【已作废：{p['void_reason']}】" if p["voided"] else ""
            print(f"编号 {p['id']:<6} {p['paid_on']}  {p.get('channel_name') or p['channel']:<12} "
                  f"{rules.yuan(p['amount_fen']):>14} 元  {p['people']:>6} 人次  订单 {p['order_no']}#{p['line_no']}"
                  f"  {p['product']}{void}")
        voided = sum(1 for p in result if p["voided"])
        print(f"共 {len(result)} 条" + (f"，其中已作废 {voided} 条（不计入任何数字）" if voided else ""))
        return
    if name == "rounds":
        if not result:
            print("尚未加载任何年度（先运行 bangfu init）")
        for r in result:
            print(f"{r['label']}（{r['policy']}）  额度截止 {r['quota_deadline']:%Y年%m月%d日}  "
                  f"报送单位报送截止 {r['report_deadline_reporting_unit']:%Y年%m月%d日}  "
                  f"下级默认报送截止 {r['report_deadline_default']:%Y年%m月%d日}  "
                  f"补录截止 {r['entry_cutoff']:%Y年%m月%d日}")
        return
    print(json.dumps(_to_jsonable(result), ensure_ascii=False, indent=2))


def _print_record(v: Any) -> None:
    print(f"{v.org_name}（{v.org_code}）  {v.round_label}  状态：{v.state_label}  版本 {v.version}")
    if v.is_grassroots:
        per = rules.yuan(v.amount_per_member_fen) if v.amount_per_member_fen is not None else "未填"
        print(f"  每人额度 {per} 元 × 会员 {v.members if v.members is not None else '未填'} 人 = 额度 {rules.yuan(v.quota_fen)} 元")
        print(f"  已用 {rules.yuan(min(v.extra_spent_fen, v.quota_fen))} 元，剩余 {rules.yuan(v.quota_left_fen)} 元"
              + (f"，超出额度 {rules.yuan(v.over_quota_fen)} 元计入普通慰问品限额" if v.over_quota_fen else ""))
        print(f"  额度截止 {clock.deadline_last_day(v.quota_deadline):%Y年%m月%d日}（{days_text(v.days_left_quota)}）")
    print(f"  采购合计 {rules.yuan(v.spent_total_fen)} 元")
    print(f"  报送截止 {clock.deadline_last_day(v.report_deadline):%Y年%m月%d日}（{days_text(v.days_left_report)}）"
          + ("  【已逾期】" if v.is_overdue else "") + ("  【迟报】" if v.is_late else ""))
    if v.last_reason:
        print(f"  退回/撤销原因：{v.last_reason}")
    print("  可执行操作：")
    for a in v.actions:
        if a.allowed:
            print(f"    ✓ {a.trigger}（{a.label}）" + ("  需填写原因 --reason" if a.needs_reason else ""))
    for a in v.actions:
        if not a.allowed and a.refusal and a.refusal.code != "transition.not_allowed":
            print(f"    ✗ {a.label}：{a.refusal.message}（{a.refusal.code}）")


# --- parser ---------------------------------------------------------------------------------


class _Discarded:
    """What a command's parser is built on when another command was named: accepts the same
    calls as an ``ArgumentParser`` (arguments, groups, nested commands) and keeps nothing."""

    def __getattr__(self, _name: str) -> Callable[..., _Discarded]:
        return lambda *_args, **_kwargs: self


class _OneCommand:
    """The ``add_subparsers`` action, building the parser of the named command only (start-up
    time: the others' arguments are never built). Every other call goes to the action."""

    def __init__(self, sub: Any, only: str) -> None:
        self._sub, self._only = sub, only
        self.found = False

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if name != self._only:
            return _Discarded()
        self.found = True
        return self._sub.add_parser(name, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sub, name)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; with ``only`` (the first word of a command line), the parser of
    that command alone, which parses its command lines as the whole parser does. Without it, or
    when ``only`` names no command, the whole parser (``bangfu --help``, the list of commands in
    the error for a wrong one)."""
    if only is not None:
        found, parser = _build_parser(only)
        if found:
            return parser
    return _build_parser(None)[1]


def _build_parser(only: str | None) -> tuple[bool, argparse.ArgumentParser]:
    common = ChineseParser(add_help=False)
    common.add_argument("--json", action="store_true",
                        help="输出 JSON（出错时也输出 JSON：code、message、exit）")
    common.add_argument("--as", dest="as_user", metavar="用户名", help="以该用户身份操作（或设置环境变量 BANGFU_USER）")
    common.add_argument("--round", metavar="年度", help="年度名称或年份，如 2021（默认最新年度）")
    common.add_argument("--version", metavar="版本号", help="你看到的记录版本号（默认当前版本）")

    parser = ChineseParser(prog="bangfu", description="消费帮扶记录工作流（粤工总〔2021〕17号）",
                           epilog="退出码：0 完成，2 输入有误或找不到，3 规则或权限不允许，4 版本冲突（请重读后重试），1 程序错误。")
    sub: Any = parser.add_subparsers(dest="command", required=True, metavar="命令", title="可用命令")
    if only is not None:
        sub = _OneCommand(sub, only)

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_, parents=[common])  # type: ignore[no-any-return]

    p = add("init", "创建或升级数据库，并加载 17号文政策")
    p.add_argument("--no-policy", action="store_true", help="不加载政策")
    add("db-upgrade", "把数据库结构升级到最新版本")
    add("policy-check", "检查政策文件").add_argument("file", metavar="文件", help="政策文件（TOML）或内置政策代码")
    add("policy-load", "加载政策文件（或内置政策代码）").add_argument("file", metavar="文件", help="政策文件（TOML）或内置政策代码")
    add("org-import", "从 CSV 导入单位树（code,name,kind,parent_code[,phone]）").add_argument("file", metavar="文件")
    add("user-import", "从 CSV 导入用户和任职（username,display_name,org_code,role[,email,phone,password]）"
        ).add_argument("file", metavar="文件")
    add("members-import", "导入 --round 年度各单位会员人数（org_code,members）").add_argument("file", metavar="文件")
    add("rounds", "列出已加载的年度及其截止日期")
    add("rollup-rebuild", "按记录重算概况用的汇总表（--round 指定年度，不指定则全部年度）")
    p = add("plan", "填写每人额外额度和会员人数")
    p.add_argument("org", metavar="单位代码")
    p.add_argument("--amount", required=True, metavar="元", help="每人额外额度（元），0–600")
    p.add_argument("--members", metavar="人数", help="会员人数（默认用本年度导入的人数）")
    p = add("report-info", "填写填报人、联系电话、填表时间和工作报告内容")
    p.add_argument("org", metavar="单位代码")
    p.add_argument("--reporter", metavar="姓名", help="填报人")
    p.add_argument("--phone", metavar="电话", help="联系电话")
    p.add_argument("--fill-date", metavar="日期", help="填表时间，如 2021-12-20；不填则导出时留空")
    p.add_argument("--experience", metavar="文字", help="先进经验")
    p.add_argument("--highlights", metavar="文字", help="工作亮点")
    p = add("purchase-add", "录入一笔采购")
    budgets: dict[str, str] = {}
    if only in (None, "purchase-add"):
        # lazy: the ledger module only for this command's parser (start-up time)
        from workflow.formats.ledger import BUDGET_LABELS as budgets
    p.add_argument("org", metavar="单位代码")
    p.add_argument("--paid-at", required=True, metavar="时间", help="支付时间，如 2021-12-20T10:30（北京时间，可带时区）；不能晚于录入时刻")
    p.add_argument("--channel", required=True, metavar="渠道", help="采购渠道：名称（如 粤工惠购）或代码（如 ygh）")
    p.add_argument("--amount", required=True, metavar="元", help="金额（元）；退款填负数")
    p.add_argument("--people", required=True, metavar="人次", help="领取慰问品的人次")
    p.add_argument("--order", required=True, metavar="订单号")
    p.add_argument("--line", default="1", metavar="行号", help="订单行号（默认 1）")
    p.add_argument("--product", metavar="商品", help="商品名称")
    p.add_argument("--form", metavar="形态", help="商品形态（现金、购物卡、代金券等不允许）")
    p.add_argument("--holiday", metavar="节日", help="慰问节日，如 春节")
    p.add_argument("--origin", metavar="产地", help="产地或帮扶地区")
    p.add_argument("--budget", default="extra_quota", choices=sorted(budgets), metavar="经费来源",
                   help="经费来源：" + "，".join(f"{k}={v}" for k, v in budgets.items()) + "（默认 extra_quota）")
    p.add_argument("--refund-of", metavar="订单号", help="退款对应的原订单号")
    p = add("purchase-void", "作废一笔采购并说明原因（提交前；作废的行仍列出，但不计入任何数字）")
    p.add_argument("org", metavar="单位代码")
    p.add_argument("--id", required=True, metavar="编号", help="采购行编号（purchase-list 显示）")
    p.add_argument("--reason", required=True, metavar="原因", help="作废原因")
    add("purchase-list", "列出一个单位的采购").add_argument("org", metavar="单位代码")
    p = add("fire", "执行一步流程操作（提交、通过、退回……）")
    p.add_argument("org", metavar="单位代码")
    p.add_argument("trigger", choices=list(states.TRIGGERS), metavar="操作",
                   help="，".join(f"{t}={states.TRIGGER_LABELS.get(t, t)}" for t in states.TRIGGERS))
    p.add_argument("--reason", metavar="原因", help="原因（退回修改、撤销通过时必填）")
    add("show", "查看记录：额度、截止日期、可执行操作").add_argument("org", metavar="单位代码")
    add("history", "查看记录的历史").add_argument("org", metavar="单位代码")
    add("lifecycle", "以 Mermaid 图输出流程")
    p = add("demo", "加载演示省份和本年度演示年度")
    p.add_argument("--reset", action="store_true", help="先清空再加载")
    if only is None or only not in COMMANDS:  # a command of this module needs no other module
        for extra in _extensions():
            extra(sub, common)
    return (sub.found if only is not None else True), parser


def _extensions() -> list[Callable[[Any, argparse.ArgumentParser], None]]:
    """Command groups contributed by other modules (reports, scheduler, web)."""
    found = []
    for module in ("workflow.entrypoints.cli.reports", "workflow.entrypoints.cli.notify", "workflow.entrypoints.cli.web"):
        try:
            mod = __import__(module, fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name == module:
                continue
            raise
        found.append(mod.register)
    return found


def _schema_not_current(ctx: Context, exc: Exception) -> str | None:
    """A database error from a database bangfu has not set up, or one whose schema is older
    than this release: the step to take, in Chinese, instead of the driver's English and SQL."""
    if ctx.opened_db is None or not isinstance(exc, StoreError):
        return None
    try:
        current, head = ctx.opened_db.schema_revisions()
    except Exception:  # the database does not answer at all: the error as it came
        log.debug("schema check failed", exc_info=True)
        return None
    if current == head:
        return None
    if current is None:
        return "数据库尚未建立：请先运行 bangfu db-upgrade（或 make run），再执行此命令"
    return "数据库结构不是本版本所需的最新版本：请先运行 bangfu db-upgrade，再执行此命令"


def _refuse(json_out: bool, code: str, message: str, exit_code: int) -> int:
    if json_out:
        print(json_refusal(code, message, exit_code))
    else:
        print(f"错误 [{code}]：{message}", file=sys.stderr)
    return exit_code


def run() -> NoReturn:
    """The ``bangfu`` console script: :func:`main`, then a quick exit.

    A command's work is done when :func:`main` returns (its transaction committed, its database
    connections closed by ``ctx.close``); what is left is the interpreter tearing down every
    module's objects, about 0.07 s of CPU for SQLAlchemy alone, paid by every call of a clerk's
    script. So the exit handlers run and the streams are flushed here, then the process ends
    without that teardown. With another thread still running, the normal exit waits for it.
    """
    code = main(process_ends=True)
    if threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()  # noqa: SLF001 - what interpreter exit would run (logging.shutdown included)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError):  # piped into `head`, or closed
            stream.flush()
    os._exit(code)


@contextlib.contextmanager
def _collector_paused(paused: bool, *, resume: bool = True) -> Iterator[None]:
    """Pause the cyclic garbage collector while a short command runs (``paused``), then resume it
    (unless not ``resume``: the process ends right after).

    A short command's CPU is mostly imports: SQLAlchemy and psycopg build some 90,000 objects, and
    with the collector on, Python scans the growing heap about 140 times on the way (a tenth of
    the command's CPU). Reference counting still frees everything that is not in a cycle; what a
    short command leaves in cycles is small and freed at exit. Long commands (imports, sweeps,
    ``serve``) keep the collector on.
    """
    if not paused or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if resume:
            gc.enable()


def main(argv: Sequence[str] | None = None, *, process_ends: bool = False) -> int:
    """Run one command line; its exit code. ``process_ends``: the process ends right after (the
    console script, :func:`run`), so a short command leaves the garbage collector paused."""
    logging.basicConfig(level=os.environ.get("BANGFU_LOG_LEVEL", "WARNING"), format="%(levelname)s %(name)s: %(message)s")
    json_out = wants_json(argv)
    ChineseParser.json_errors = json_out
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(words[0] if words and not words[0].startswith("-") else None)
    args = parser.parse_args(words)
    # The output and the closing too: resuming the collector scans every object made since.
    with _collector_paused(args.command in SHORT_COMMANDS, resume=not process_ends):
        return _dispatch(args, json_out)


def _dispatch(args: argparse.Namespace, json_out: bool) -> int:
    ctx = Context(args)
    try:
        handler = COMMANDS[args.command]
        result = handler(args, ctx)
        if args.json:
            print(json.dumps(_to_jsonable(result), ensure_ascii=False, indent=2))
        else:
            _print_human(args.command, result)
        return 0
    except BangfuError as exc:
        missing = _schema_not_current(ctx, exc)
        if missing is not None:
            return _refuse(json_out, "db.schema", missing, 3)
        return _refuse(json_out, exc.code, exc.message, exit_code_for(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # output piped into `head`: not an error
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - silence the interpreter's flush at exit
        return 0
    except Exception as exc:  # a bug: one line, the traceback only in debug mode
        if os.environ.get("BANGFU_DEBUG"):
            raise
        # The traceback goes to the log at DEBUG only: stderr gets one line, never a traceback.
        log.debug("unexpected error", exc_info=True)
        missing = _schema_not_current(ctx, exc)
        if missing is not None:
            return _refuse(json_out, "db.schema", missing, 3)
        message = f"内部错误（{type(exc).__name__}）：{exc}。设置 BANGFU_DEBUG=1 查看详情"
        if json_out:
            print(json_refusal("internal", message, 1))
            return 1
        print(message, file=sys.stderr)
        return 1
    finally:
        ctx.close()
