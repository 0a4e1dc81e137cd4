"""The ``bangfu`` command line: a thin entry point over the services.

Exit codes: 0 done, 2 bad input (or not found), 3 refused by a rule or a permission,
4 version conflict (try again), 1 a bug. Errors are one line on stderr, never a traceback
(set ``BANGFU_DEBUG=1`` to see one). ``--json`` prints machine-readable output.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import states
from workflow.app import directory, records
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
    TooManyAttempts,
    VersionConflict,
)
from workflow.domain.policy import POLICY_DIR, load_policy
from workflow.settings import get_settings
from workflow.store.tables import Database
from workflow.store.uow import UnitOfWork

log = logging.getLogger("bangfu.cli")

Handler = Callable[[argparse.Namespace, "Context"], Any]
COMMANDS: dict[str, Handler] = {}

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
}


def exit_code_for(exc: BangfuError) -> int:
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]  # type: ignore[index]
    return 1


class Context:
    """What a command needs: the database and the acting user."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._db: Database | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database(get_settings().database_url)
        return self._db

    def uow(self, *, readonly: bool = False) -> UnitOfWork:
        return UnitOfWork(self.db, readonly=readonly)

    def user_id(self) -> int:
        name = self.args.as_user or os.environ.get("BANGFU_USER")
        if not name:
            raise BadInput("请用 --as 用户名 指定以哪个用户身份操作（或设置 BANGFU_USER）", code="cli.no_user")
        with self.uow(readonly=True) as uow:
            return uow.user_by_name(name).id or 0

    def record_id(self, org: str) -> int:
        return records.find_record(self.uow(readonly=True), org_code=org, round_label=self.args.round)

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = fn
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
    with ctx.uow(readonly=True) as uow:
        return uow.record(record_id).version


# --- commands -------------------------------------------------------------------------------


@command("init")
def cmd_init(args: argparse.Namespace, ctx: Context) -> Any:
    ctx.db.upgrade()
    out: dict[str, Any] = {"database": ctx.db.url, "schema": "head"}
    if not args.no_policy:
        out["policy"] = directory.install_policy(ctx.uow(), policy=load_policy(POLICY_DIR / "yuegongzong-2021-17.toml"))
    return out


@command("db-upgrade")
def cmd_db_upgrade(args: argparse.Namespace, ctx: Context) -> Any:
    ctx.db.upgrade()
    return {"database": ctx.db.url, "schema": "head"}


def _policy_path(arg: str) -> Path:
    path = Path(arg)
    if not path.exists() and (POLICY_DIR / f"{arg}.toml").exists():
        path = POLICY_DIR / f"{arg}.toml"
    return path


@command("policy-check")
def cmd_policy_check(args: argparse.Namespace, ctx: Context) -> Any:
    p = load_policy(_policy_path(args.file))
    return {"policy": p.code, "rounds": [r.label for r in p.rounds], "channels": len(p.channels)}


@command("policy-load")
def cmd_policy_load(args: argparse.Namespace, ctx: Context) -> Any:
    return directory.install_policy(ctx.uow(), policy=load_policy(_policy_path(args.file)))


def _read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise BadInput(f"无法读取文件 {path}：{exc.strerror}", code="input.file") from None


@command("org-import")
def cmd_org_import(args: argparse.Namespace, ctx: Context) -> Any:
    return directory.import_organisations(ctx.uow(), data=_read_file(args.file))


@command("user-import")
def cmd_user_import(args: argparse.Namespace, ctx: Context) -> Any:
    # Lazy: loaded only by this command, keeping `bangfu --help` and other commands quick to start.
    from workflow.app.passwords import hash_password

    return directory.import_users(ctx.uow(), data=_read_file(args.file), hash_password=hash_password)


@command("members-import")
def cmd_members_import(args: argparse.Namespace, ctx: Context) -> Any:
    if not args.round:
        raise BadInput("请用 --round 指定年度", code="cli.no_round")
    return directory.import_member_counts(ctx.uow(), data=_read_file(args.file), round_label=args.round)


@command("rollup-rebuild")
def cmd_rollup_rebuild(args: argparse.Namespace, ctx: Context) -> Any:
    return directory.rebuild_rollup(ctx.uow(), round_label=args.round)


@command("rounds")
def cmd_rounds(args: argparse.Namespace, ctx: Context) -> Any:
    with ctx.uow(readonly=True) as uow:
        return [
            {"id": r.id, "policy": r.policy_code, "year": r.year, "label": r.label,
             "quota_deadline": clock.deadline_last_day(r.quota_deadline),
             "report_deadline_reporting_unit": clock.deadline_last_day(r.report_deadline_reporting_unit),
             "report_deadline_default": clock.deadline_last_day(r.report_deadline_default),
             "entry_cutoff": clock.deadline_last_day(r.entry_cutoff)}
            for r in uow.rounds()
        ]


@command("plan")
def cmd_plan(args: argparse.Namespace, ctx: Context) -> Any:
    rid = ctx.record_id(args.org)
    return records.plan(
        ctx.uow(), record_id=rid, user_id=ctx.user_id(), seen_version=_version(ctx, rid),
        amount_per_member_fen=money.parse_yuan(args.amount, "每人增加额度"),
        members=_parse_int(args.members, "会员人数") if args.members is not None else None,
    )


@command("report-info")
def cmd_report_info(args: argparse.Namespace, ctx: Context) -> Any:
    rid = ctx.record_id(args.org)
    return records.update_report_info(
        ctx.uow(), record_id=rid, user_id=ctx.user_id(), seen_version=_version(ctx, rid),
        reporter=args.reporter, phone=args.phone,
        fill_date=_parse_date(args.fill_date) if args.fill_date else None,
        work_experience=args.experience, work_highlights=args.highlights,
    )


@command("purchase-add")
def cmd_purchase_add(args: argparse.Namespace, ctx: Context) -> Any:
    rid = ctx.record_id(args.org)
    paid_at = money.parse_paid_at(args.paid_at)
    pid = records.add_purchase(
        ctx.uow(), record_id=rid, user_id=ctx.user_id(),
        purchase=records.PurchaseInput(
            paid_at=paid_at, channel=args.channel, amount_fen=money.parse_yuan(args.amount, "金额"),
            people=_parse_int(args.people, "领取人数"), order_no=args.order,
            line_no=_parse_int(args.line, "商品行号", minimum=1),
            product=args.product or "", product_form=args.form, holiday=args.holiday,
            origin_region=args.origin, budget=args.budget, refund_of=args.refund_of,
        ),
    )
    return {"purchase_id": pid, "record_id": rid}


@command("purchase-void")
def cmd_purchase_void(args: argparse.Namespace, ctx: Context) -> Any:
    rid = ctx.record_id(args.org)
    hid = records.void_purchase(ctx.uow(), record_id=rid, purchase_id=_parse_int(args.id, "采购行编号"),
                                user_id=ctx.user_id(), reason=args.reason or "")
    return {"purchase_id": int(args.id), "record_id": rid, "history_id": hid}


@command("purchase-list")
def cmd_purchase_list(args: argparse.Namespace, ctx: Context) -> Any:
    rid = ctx.record_id(args.org)
    return records.list_purchases(ctx.uow(readonly=True), record_id=rid, user_id=ctx.user_id())


@command("fire")
def cmd_fire(args: argparse.Namespace, ctx: Context) -> Any:
    rid = ctx.record_id(args.org)
    return records.fire(
        ctx.uow(), record_id=rid, trigger=args.trigger, user_id=ctx.user_id(),
        seen_version=_version(ctx, rid), reason=args.reason,
    )


@command("show")
def cmd_show(args: argparse.Namespace, ctx: Context) -> Any:
    rid = ctx.record_id(args.org)
    return records.record_view(ctx.uow(readonly=True), record_id=rid, user_id=ctx.user_id())


@command("history")
def cmd_history(args: argparse.Namespace, ctx: Context) -> Any:
    rid = ctx.record_id(args.org)
    return records.history(ctx.uow(readonly=True), record_id=rid, user_id=ctx.user_id())


@command("lifecycle")
def cmd_lifecycle(args: argparse.Namespace, ctx: Context) -> Any:
    return states.mermaid()


@command("demo")
def cmd_demo(args: argparse.Namespace, ctx: Context) -> Any:
    # Lazy: loaded only by this command, keeping `bangfu --help` and other commands quick to start.
    from workflow.entrypoints import demo

    return demo.build(ctx.db, reset=args.reset)


# --- output ---------------------------------------------------------------------------------


def _print_human(name: str, result: Any) -> None:
    if isinstance(result, str):
        print(result, end="" if result.endswith("\n") else "\n")
        return
    if isinstance(result, records.RecordView):
        _print_record(result)
        return
    if name == "history":
        for h in result:
            who = f"{h['actor']}（{h['role']}{'，代填报' if h['on_behalf'] else ''}）"
            reason = f"  原因：{h['reason']}" if h["reason"] else ""
            at = h["at"].astimezone(clock.CHINA).strftime("%Y-%m-%d %H:%M")
            print(f"{at}  {h['label']}  {h['from']} → {h['to']}  {who}{reason}")
        return
    if name == "purchase-list":
        for p in result:
            print(f"{p['paid_on']}  {p['channel']:<12} {rules.yuan(p['amount_fen']):>14} 元  "
                  f"{p['people']:>6} 人次  订单 {p['order_no']}#{p['line_no']}  {p['product']}")
        print(f"共 {len(result)} 条")
        return
    print(json.dumps(_to_jsonable(result), ensure_ascii=False, indent=2))


def _print_record(v: records.RecordView) -> None:
    print(f"{v.org_name}（{v.org_code}）  {v.round_label}  状态：{v.state_label}  版本 {v.version}")
    if v.is_grassroots:
        per = rules.yuan(v.amount_per_member_fen) if v.amount_per_member_fen is not None else "未填"
        print(f"  每人额度 {per} 元 × 会员 {v.members if v.members is not None else '未填'} 人 = 额度 {rules.yuan(v.quota_fen)} 元")
        print(f"  已用 {rules.yuan(min(v.extra_spent_fen, v.quota_fen))} 元，剩余 {rules.yuan(v.quota_left_fen)} 元"
              + (f"，超出额度 {rules.yuan(v.over_quota_fen)} 元计入普通慰问品限额" if v.over_quota_fen else ""))
        print(f"  额度截止 {clock.deadline_last_day(v.quota_deadline):%Y年%m月%d日}（剩 {v.days_left_quota} 天）")
    print(f"  采购合计 {rules.yuan(v.spent_total_fen)} 元")
    print(f"  报送截止 {clock.deadline_last_day(v.report_deadline):%Y年%m月%d日}（剩 {v.days_left_report} 天）"
          + ("  【已逾期】" if v.is_overdue else "") + ("  【迟报】" if v.is_late else ""))
    if v.last_reason:
        print(f"  退回/撤销原因：{v.last_reason}")
    print("  可执行操作：")
    for a in v.actions:
        if a.allowed:
            print(f"    ✓ {a.trigger}（{a.label}）" + ("  需填写原因 --reason" if a.needs_reason else ""))
    for a in v.actions:
        if not a.allowed and a.refusal and a.refusal.code != "transition.not_allowed":
            print(f"    ✗ {a.trigger}（{a.label}）：{a.refusal.message} [{a.refusal.code}]")


# --- parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("--as", dest="as_user", help="act as this username (or BANGFU_USER)")
    common.add_argument("--round", help="round label or year (default: the newest)")
    common.add_argument("--version", help="the record version you saw (default: current)")

    parser = argparse.ArgumentParser(prog="bangfu", description="消费帮扶记录工作流（粤工总〔2021〕17号）")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, parents=[common])

    p = add("init", "create or upgrade the database and load the 17号 policy")
    p.add_argument("--no-policy", action="store_true")
    add("db-upgrade", "upgrade the schema to the newest migration")
    add("policy-check", "check a policy file").add_argument("file")
    add("policy-load", "load a policy file (or a built-in policy code)").add_argument("file")
    add("org-import", "import the organisation tree from CSV").add_argument("file")
    add("user-import", "import users and memberships from CSV").add_argument("file")
    add("members-import", "import member counts per organisation for --round (org_code,members)").add_argument("file")
    add("rounds", "list the loaded rounds and their deadlines")
    add("rollup-rebuild", "recompute the overview's rollup table from the records (--round, or every round)")
    p = add("plan", "set the chosen amount per member and the member count")
    p.add_argument("org")
    p.add_argument("--amount", required=True, help="yuan per member, 0-600")
    p.add_argument("--members", help="member count (default: the round's imported count)")
    p = add("report-info", "set reporter, phone, fill date and work-report texts")
    p.add_argument("org")
    p.add_argument("--reporter")
    p.add_argument("--phone")
    p.add_argument("--fill-date")
    p.add_argument("--experience", help="先进经验")
    p.add_argument("--highlights", help="工作亮点")
    p = add("purchase-add", "enter one purchase line")
    p.add_argument("org")
    p.add_argument("--paid-at", required=True, help="payment time, China time unless an offset is given")
    p.add_argument("--channel", required=True)
    p.add_argument("--amount", required=True, help="yuan; negative for a refund")
    p.add_argument("--people", required=True)
    p.add_argument("--order", required=True)
    p.add_argument("--line", default="1")
    p.add_argument("--product")
    p.add_argument("--form", help="product form (cash, cards and vouchers are refused)")
    p.add_argument("--holiday")
    p.add_argument("--origin")
    p.add_argument("--budget", default="extra_quota", choices=sorted(records.BUDGETS))
    p.add_argument("--refund-of", help="order number a refund line belongs to")
    p = add("purchase-void", "void a purchase line with a reason (before submit; it stays listed, counts nowhere)")
    p.add_argument("org")
    p.add_argument("--id", required=True, help="the purchase id (purchase-list shows it)")
    p.add_argument("--reason", required=True)
    add("purchase-list", "list a record's purchases").add_argument("org")
    p = add("fire", "fire a lifecycle trigger")
    p.add_argument("org")
    p.add_argument("trigger", choices=list(states.TRIGGERS))
    p.add_argument("--reason")
    add("show", "show a record: quota, deadlines, available actions").add_argument("org")
    add("history", "show a record's history").add_argument("org")
    add("lifecycle", "print the lifecycle as a Mermaid diagram")
    p = add("demo", "load the demo province and a current-year demo round")
    p.add_argument("--reset", action="store_true")
    for extra in _extensions():
        extra(sub, common)
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=os.environ.get("BANGFU_LOG_LEVEL", "WARNING"), format="%(levelname)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
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
        print(f"错误 [{exc.code}]：{exc.message}", file=sys.stderr)
        return exit_code_for(exc)
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
        print(f"内部错误（{type(exc).__name__}）：{exc}。设置 BANGFU_DEBUG=1 查看详情", file=sys.stderr)
        return 1
    finally:
        ctx.close()
