"""``audit-log``: read the operation audit log (auditors only), with filters, or write it as
CSV; ``audit-log-archive``: archive the new rows to a write-once file (the daily beat task's
job, by hand)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from workflow.app import oplog, oplog_archive
from workflow.domain import money
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.settings import get_settings


def arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--actor", metavar="用户名", help="只看该账号的操作")
    p.add_argument("--action", metavar="操作", help="只看该操作（如 record.plan；以点结尾表示一类，如 user.）")
    p.add_argument("--org", metavar="单位代码", help="只看该单位及其下级单位人员的操作")
    p.add_argument("--from", dest="since", metavar="日期", help="从该日起（含），如 2026-12-01")
    p.add_argument("--to", dest="until", metavar="日期", help="到该日止（含）")
    p.add_argument("--outcome", choices=("ok", "refused", "failed"), help="只看该结果")
    p.add_argument("--csv", metavar="文件", help="全部符合条件的记录写成 CSV 文件")
    p.add_argument("--verify", action="store_true", help="核对审计日志的哈希链（有问题时退出码 1；不需要 --as）")
    p.add_argument("--page", default="1", metavar="页码")
    p.add_argument("--per-page", default="100", metavar="条数")


def _query(args: argparse.Namespace) -> oplog.LogQuery:
    return oplog.LogQuery(actor=args.actor, action=args.action, org_code=args.org,
                          since=money.parse_date(args.since, "起始日期") if args.since else None,
                          until=money.parse_date(args.until, "截止日期") if args.until else None,
                          outcome=args.outcome)


def audit_log(args: argparse.Namespace, ctx: Context) -> Any:
    if args.verify:
        check = oplog.verify_chain(ctx.uow(readonly=True))
        print(check.text(), end="")
        if check.problem is not None:
            raise SystemExit(1)
        return None
    query = _query(args)
    if args.csv:
        data = oplog.export_csv(ctx.uow(readonly=True), user_id=ctx.user_id(), query=query)
        Path(args.csv).write_bytes(data)
        return {"file": args.csv, "rows": data.count(b"\n") - 1}
    page = oplog.read(ctx.uow(readonly=True), user_id=ctx.user_id(), query=query,
                      page=money.parse_count(args.page, "页码", minimum=1),
                      per_page=money.parse_count(args.per_page, "条数", minimum=1))
    return {"total": page.total, "page": page.page, "pages": page.pages, "rows": page.rows}


def audit_log_text(result: dict[str, Any]) -> None:
    if "file" in result:
        print(f"已写入 {result['file']}：{result['rows']} 条审计记录")
        return
    for r in result["rows"]:
        who = f"{r['actor']}（{r['role']}）" if r["role"] else r["actor"]
        where = " ".join(x for x in (r["channel"], r["address"]) if x)
        obj = f" {r['object']}" if r["object"] else ""
        print(f"#{r['seq']}  {r['at']}  {who}  {r['org']}  {r['action_label']}{obj}  {r['outcome_label']}  {where}"
              + (f"  {r['detail']}" if r["detail"] else ""))
    print(f"共 {result['total']} 条，第 {result['page']}/{result['pages']} 页")


def archive(args: argparse.Namespace, ctx: Context) -> Any:
    return oplog_archive.archive(ctx.uow(), var_dir=get_settings().var_dir)


def archive_text(entry: dict[str, Any]) -> None:
    print(oplog_archive.archive_text(entry), end="")


COMMANDS = {
    "audit-log": Command(arguments=arguments, run=audit_log, human=audit_log_text, context=Context),
    "audit-log-archive": Command(run=archive, human=archive_text, context=Context),
}
