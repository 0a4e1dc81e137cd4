"""Report commands for the ``bangfu`` CLI: statistics, exports, import, limits, completeness.

Every command acts as ``--as USER`` and checks membership like the services: a reviewer (or an
observer) sees its organisation's subtree, a clerk only its own unit. Files are written only
after the numbers are read, so a refused command leaves no file behind.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflow.domain import figures, limits, money
from workflow.domain.errors import BadInput
from workflow.entrypoints.cli import Context, command

if TYPE_CHECKING:
    from workflow.app import reporting

# The services and writers (SQLAlchemy, openpyxl) are imported inside each command: lazy, for
# start-up time. The choices below mirror aggregates.SCOPES and ledger.MAPPINGS (tests check).
SCOPE_CHOICES = ("children", "subtree")
MAPPING_CHOICES = ("ygh", "p832", "gdg", "dxb", "generic")


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    def add(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, description=help_, parents=[common])  # type: ignore[no-any-return]

    p = add("stats", "单位的附件2统计（快照、实时或下级汇总）")
    p.add_argument("org", metavar="单位代码")
    p.add_argument("--live", action="store_true", help="草稿即使已汇总也按实时采购统计")
    p.add_argument("--xlsx", metavar="文件", help="把附件2写成 XLSX")
    p.add_argument("--csv", metavar="文件", help="写成 CSV（UTF-8，带 BOM）")
    p.add_argument("--html", metavar="文件", help="写成可打印的 HTML")
    add("province-workbook", "全省汇总工作簿：汇总表 + 每个报送单位一张附件2").add_argument("file", metavar="文件")
    p = add("import-purchases", "把采购文件（CSV/XLSX）导入单位的记录")
    p.add_argument("org", metavar="单位代码")
    p.add_argument("file", metavar="文件")
    p.add_argument("--mapping", choices=MAPPING_CHOICES, metavar="格式",
                   help="文件格式：ygh=粤工惠购订单，p832=832平台，gdg=广东馆，dxb=东西部交易网，generic=通用模板（默认）")
    p = add("limits", "检查基层工会的普通节日慰问品限额")
    p.add_argument("org", metavar="单位代码")
    p.add_argument("--ordinary", required=True, metavar="元", help="本年度普通节日慰问品支出（元）")
    p.add_argument("--budget", required=True, metavar="元", help="本年度预算支出（元）")
    p.add_argument("--retained", default="0", metavar="元", help="留成经费（元）")
    p.add_argument("--basis", required=True, choices=sorted(limits.BASES), metavar="基数",
                   help="计算基数：" + "，".join(f"{k}={v}" for k, v in limits.BASES.items()))
    p = add("completeness", "各级工会：下级各状态数量、逾期、迟报、快照核对")
    p.add_argument("--under", metavar="单位代码", help="只看该单位之下的工会（subtree 范围时为其直属单位）")
    p.add_argument("--scope", choices=SCOPE_CHOICES, default="children", metavar="范围",
                   help="children=每个工会的直属下级（默认）；subtree=每个报送单位之下的全部记录")
    p = add("chase-list", "未提交的下级单位及填报员电话，写成 XLSX（催报名单）")
    p.add_argument("org", metavar="单位代码")
    p.add_argument("file", metavar="文件")
    p = add("work-report", "生成报送单位的工作报告")
    p.add_argument("org", metavar="单位代码")
    p.add_argument("--md", metavar="文件", help="写成 Markdown")
    p.add_argument("--html", metavar="文件", help="写成可打印的 HTML（A4）")
    p.add_argument("--docx", metavar="文件", help="写成 Word 文档（DOCX，可编辑、盖章）")
    p = add("aggregate-add", "上级工会录入一条汇总数据（渠道、人次、金额、来源）")
    p.add_argument("org", metavar="单位代码")
    p.add_argument("--channel", required=True, metavar="渠道", help="采购渠道代码")
    p.add_argument("--people", required=True, metavar="人次")
    p.add_argument("--amount", required=True, metavar="元", help="金额（元）")
    p.add_argument("--note", required=True, metavar="说明", help="数据来源")
    p = add("compare", "比较下级单位两个年度的数字")
    p.add_argument("org", metavar="单位代码")
    p.add_argument("--before", required=True, metavar="年度", help="年度名称或年份，如 2021")
    p.add_argument("--after", required=True, metavar="年度", help="年度名称或年份，如 2022")


def _write(path: str, data: bytes | str) -> str:
    target = Path(path)
    try:
        if isinstance(data, str):
            target.write_text(data, encoding="utf-8")
        else:
            target.write_bytes(data)
    except OSError as exc:
        raise BadInput(f"无法写入文件 {path}：{exc.strerror}", code="output.file") from None
    return str(target)


def _int(text: str, what: str) -> int:
    return money.parse_count(text, what, minimum=0)


@command("stats")
def cmd_stats(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import reporting  # lazy: start-up time
    from workflow.formats import exports  # lazy: start-up time

    view = reporting.stats(ctx.uow(readonly=True), org_code=args.org, user_id=ctx.user_id(),
                         round_label=args.round, live=args.live)
    written = []
    if args.xlsx:
        written.append(_write(args.xlsx, exports.write_xlsx([view.table])))
    if args.csv:
        written.append(_write(args.csv, exports.write_csv(view.table)))
    if args.html:
        written.append(_write(args.html, exports.render_html(view.table)))
    if args.json:
        return {**view.to_dict(), "written": written}
    return _stats_text(view) + "".join(f"已写入 {w}\n" for w in written)


def _stats_text(view: reporting.StatsView) -> str:
    from workflow.formats import exports  # lazy: start-up time

    t = view.table
    lines = [f"{view.org_name}（{view.org_code}）  {view.round_label}  {t.status_note or ''}",
             f"{'采购平台':<24}{'人次(万)':>10}{'金额(万元)':>14}"]
    for r in t.rows:
        lines.append(f"{r.label:<24}{exports.wan_people(r.people):>12}{exports.wan_yuan(r.amount_fen):>16}")
    lines.append(f"{'合计':<24}{exports.wan_people(t.total_people):>12}{exports.wan_yuan(t.total_amount_fen):>16}")
    lines.append(view.official.text())
    if view.pending:
        people = sum(p for p, _a in view.pending.values())
        amount = sum(a for _p, a in view.pending.values())
        lines.append(f"{figures.STATUS_PENDING}（未计入合计）：人次 {exports.wan_people(people)} 万，"
                     f"金额 {exports.wan_yuan(amount)} 万元")
    if view.units:
        lines.append("下级单位：")
        for u in view.units:
            lines.append(f"  {u.org_code:<8} {u.org_name:<16} {u.status_note:<18} 人次 {exports.wan_people(u.people)} 万"
                         f"  金额 {exports.wan_yuan(u.amount_fen)} 万元")
    return "\n".join(lines) + "\n"


@command("province-workbook")
def cmd_province_workbook(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import reporting  # lazy: start-up time

    data = reporting.province_workbook(ctx.uow(readonly=True), user_id=ctx.user_id(), round_label=args.round)
    return {"written": _write(args.file, data)}


@command("import-purchases")
def cmd_import_purchases(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import purchase_import  # lazy: start-up time

    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise BadInput(f"无法读取文件 {args.file}：{exc.strerror}", code="input.file") from None
    rid = ctx.record_id(args.org)
    result = purchase_import.import_purchases(ctx.uow(), record_id=rid, user_id=ctx.user_id(), data=data,
                                         filename=Path(args.file).name, mapping=args.mapping)
    if args.json:
        return result
    from workflow.formats import ledger  # lazy: start-up time

    with ctx.uow(readonly=True) as uow:
        rnd = uow.directory.round(uow.records.get(rid).round_id)
        names = {c.code: c.name for c in uow.directory.policy(rnd.policy_code).channels}
    return (f"{result.summary(limit=len(result.voided_notes))}（表头在第 {result.header_row} 行，"
            f"按“{ledger.mapping_label(result.mapping, names)}”识别列）")


@command("limits")
def cmd_limits(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import reporting  # lazy: start-up time

    result = reporting.limits_for(
        ctx.uow(readonly=True), org_code=args.org, user_id=ctx.user_id(), round_label=args.round,
        ordinary_fen=money.parse_yuan(args.ordinary, "普通节日慰问品"),
        budget_fen=money.parse_yuan(args.budget, "年度预算支出"),
        retained_fen=money.parse_yuan(args.retained, "留成经费"), basis=args.basis,
    )
    if args.json:
        return {"level": result.level, "exempt_fen": result.exempt_fen, "moved_fen": result.moved_fen,
                "counted_fen": result.counted_fen, "lines": result.lines(),
                "verdicts": [{"code": v.code, "level": v.level, "message": v.message} for v in result.verdicts]}
    return "\n".join([*result.lines(), f"结论：{limits.LEVEL_LABELS[result.level]}"])


@command("completeness")
def cmd_completeness(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import reporting  # lazy: start-up time

    rows = reporting.completeness_for(ctx.uow(readonly=True), user_id=ctx.user_id(), round_label=args.round,
                                    under_code=args.under, scope=args.scope)
    if args.json:
        return [r.to_dict() for r in rows]
    out = [f"{'单位':<20}{'下级':>5}{'计划中':>6}{'已采购':>6}{'已汇总':>6}{'已提交':>6}{'已通过':>6}"
           f"{'逾期':>5}{'迟报':>5}{'报送率':>8}{'快照不符':>6}"]
    for r in rows:
        out.append(f"{(r.org_name or r.org_code):<20}{r.total:>6}{r.planned:>8}{r.purchased:>8}{r.summarized:>8}"
                   f"{r.submitted:>8}{r.accepted:>8}{r.overdue:>7}{r.late:>7}{r.submitted_percent:>9}%"
                   f"{r.mismatched:>8}")
    return "\n".join(out)


@command("chase-list")
def cmd_chase_list(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import reporting  # lazy: start-up time
    from workflow.store.reports import CHASE_HEADERS  # lazy: start-up time

    rows, data = reporting.chase(ctx.uow(readonly=True), user_id=ctx.user_id(), org_code=args.org,
                               round_label=args.round)
    written = _write(args.file, data)
    if args.json:
        return {"written": written, "rows": [dict(zip(CHASE_HEADERS, r, strict=True)) for r in rows]}
    return "\n".join([*("  ".join(str(c) for c in r) for r in rows), f"共 {len(rows)} 个单位未报送，已写入 {written}"])


@command("work-report")
def cmd_work_report(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import reporting  # lazy: start-up time

    report = reporting.work_report(ctx.uow(readonly=True), org_code=args.org, user_id=ctx.user_id(),
                                 round_label=args.round)
    written = []
    if args.md:
        written.append(_write(args.md, report.markdown))
    if args.html:
        written.append(_write(args.html, report.html))
    if args.docx:
        written.append(_write(args.docx, report.docx()))
    if args.json:
        return {"markdown": report.markdown, "written": written}
    return report.markdown if not written else "".join(f"已写入 {w}\n" for w in written)


@command("aggregate-add")
def cmd_aggregate_add(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import reporting  # lazy: start-up time

    rid = ctx.record_id(args.org)
    line_id = reporting.add_aggregate_line(
        ctx.uow(), record_id=rid, user_id=ctx.user_id(), channel=args.channel,
        people=_int(args.people, "人次"), amount_fen=money.parse_yuan(args.amount, "金额"), note=args.note,
    )
    return {"aggregate_line_id": line_id, "record_id": rid}


@command("compare")
def cmd_compare(args: argparse.Namespace, ctx: Context) -> Any:
    from workflow.app import reporting  # lazy: start-up time
    from workflow.formats import exports  # lazy: start-up time

    rows = reporting.compare_rounds(ctx.uow(readonly=True), org_code=args.org, user_id=ctx.user_id(),
                                  before=args.before, after=args.after)
    if args.json:
        return [{**r.__dict__, "change_fen": r.change_fen,
                 "change_percent": str(r.change_percent) if r.change_percent is not None else None} for r in rows]
    out = []
    for r in rows:
        pct = f"{r.change_percent:+}%" if r.change_percent is not None else "—"
        out.append(f"{r.org_code:<8}{r.org_name:<16} {r.before_label} {exports.wan_yuan(r.before_fen)} 万元 → "
                   f"{r.after_label} {exports.wan_yuan(r.after_fen)} 万元  变化 {pct}")
    return "\n".join(out) or "没有下级单位"
