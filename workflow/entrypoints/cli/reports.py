"""Report commands for the ``bangfu`` CLI: statistics, exports, import, limits, completeness.

Every command acts as ``--as USER`` and checks membership like the services: a reviewer (or an
observer) sees its organisation's subtree, a clerk only its own unit. Files are written only
after the numbers are read, so a refused command leaves no file behind.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from workflow.app import purchase_import, reporting
from workflow.domain import figures, limits, money
from workflow.domain.errors import BadInput
from workflow.entrypoints.cli import Context, command
from workflow.formats import exports
from workflow.store import aggregates


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    def add(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, parents=[common])  # type: ignore[no-any-return]

    p = add("stats", "Annex 2 statistics of an organisation (snapshot, live or subtree)")
    p.add_argument("org")
    p.add_argument("--live", action="store_true", help="live sums for a draft even when summarized")
    p.add_argument("--xlsx", help="write the Annex 2 form as XLSX")
    p.add_argument("--csv", help="write it as CSV (UTF-8 with BOM)")
    p.add_argument("--html", help="write an HTML print view")
    add("province-workbook", "the province workbook: overview + one sheet per reporting unit").add_argument("file")
    p = add("import-purchases", "import a purchase file (CSV/XLSX) into an organisation's record")
    p.add_argument("org")
    p.add_argument("file")
    p.add_argument("--mapping", help="column mapping: ygh, p832, gdg, dxb or generic (default)")
    p = add("limits", "check the ordinary holiday-gift limits of a grassroots record")
    p.add_argument("org")
    p.add_argument("--ordinary", required=True, help="the year's ordinary holiday-gift spending, yuan")
    p.add_argument("--budget", required=True, help="the year's budgeted expenditure, yuan")
    p.add_argument("--retained", default="0", help="retained funds, yuan")
    p.add_argument("--basis", required=True, choices=sorted(limits.BASES))
    p = add("completeness", "per federation: subordinates by state, overdue, late, snapshot check")
    p.add_argument("--under", help="only federations in this organisation's subtree (subtree scope: "
                                   "the organisations directly under it)")
    p.add_argument("--scope", choices=aggregates.SCOPES, default="children",
                   help="children: direct subordinates per federation (default); subtree: every record "
                        "below each reporting unit")
    p = add("chase-list", "the subordinates not yet submitted, with clerks' phones, as XLSX (催报)")
    p.add_argument("org")
    p.add_argument("file")
    p = add("work-report", "render a reporting unit's work report (工作报告)")
    p.add_argument("org")
    p.add_argument("--md", help="write Markdown here")
    p.add_argument("--html", help="write HTML here")
    p = add("aggregate-add", "a federation enters an aggregate line (channel, people, amount, source)")
    p.add_argument("org")
    p.add_argument("--channel", required=True)
    p.add_argument("--people", required=True)
    p.add_argument("--amount", required=True, help="yuan")
    p.add_argument("--note", required=True, help="where the numbers come from")
    p = add("compare", "compare the subordinates' figures between two rounds")
    p.add_argument("org")
    p.add_argument("--before", required=True, help="round label or year, e.g. 2021")
    p.add_argument("--after", required=True, help="round label or year, e.g. 2022")


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
    data = reporting.province_workbook(ctx.uow(readonly=True), user_id=ctx.user_id(), round_label=args.round)
    return {"written": _write(args.file, data)}


@command("import-purchases")
def cmd_import_purchases(args: argparse.Namespace, ctx: Context) -> Any:
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise BadInput(f"无法读取文件 {args.file}：{exc.strerror}", code="input.file") from None
    rid = ctx.record_id(args.org)
    result = purchase_import.import_purchases(ctx.uow(), record_id=rid, user_id=ctx.user_id(), data=data,
                                         filename=Path(args.file).name, mapping=args.mapping)
    if args.json:
        return result
    return f"{result.summary(limit=len(result.voided_notes))}（表头在第 {result.header_row} 行，列映射 {result.mapping}）"


@command("limits")
def cmd_limits(args: argparse.Namespace, ctx: Context) -> Any:
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
    rows, data = reporting.chase(ctx.uow(readonly=True), user_id=ctx.user_id(), org_code=args.org,
                               round_label=args.round)
    written = _write(args.file, data)
    if args.json:
        return {"written": written, "rows": [dict(zip(aggregates.CHASE_HEADERS, r, strict=True)) for r in rows]}
    return "\n".join([*("  ".join(str(c) for c in r) for r in rows), f"共 {len(rows)} 个单位未报送，已写入 {written}"])


@command("work-report")
def cmd_work_report(args: argparse.Namespace, ctx: Context) -> Any:
    report = reporting.work_report(ctx.uow(readonly=True), org_code=args.org, user_id=ctx.user_id(),
                                 round_label=args.round)
    written = []
    if args.md:
        written.append(_write(args.md, report.markdown))
    if args.html:
        written.append(_write(args.html, report.html))
    if args.json:
        return {"markdown": report.markdown, "written": written}
    return report.markdown if not written else "".join(f"已写入 {w}\n" for w in written)


@command("aggregate-add")
def cmd_aggregate_add(args: argparse.Namespace, ctx: Context) -> Any:
    rid = ctx.record_id(args.org)
    line_id = reporting.add_aggregate_line(
        ctx.uow(), record_id=rid, user_id=ctx.user_id(), channel=args.channel,
        people=_int(args.people, "人次"), amount_fen=money.parse_yuan(args.amount, "金额"), note=args.note,
    )
    return {"aggregate_line_id": line_id, "record_id": rid}


@command("compare")
def cmd_compare(args: argparse.Namespace, ctx: Context) -> Any:
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
