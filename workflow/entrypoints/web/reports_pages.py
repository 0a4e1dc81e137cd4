"""Report pages, downloads and JSON endpoints: the Annex 2 form (XLSX, CSV, HTML print view),
the 催报 list, the province workbook, the work report, purchase import and the gift-limit check.

Thin over :mod:`workflow.app.reporting`, :mod:`workflow.formats.exports` and :mod:`workflow.app.purchase_import`: the
membership checks are theirs. On top, an organisation outside the user's view does not exist for
them (404, like a record), while one in view but not permitted is refused (403).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from workflow.app import attachments, purchase_import, record_views, reporting, views
from workflow.app import review_times as times
from workflow.app.accounts import UserInfo
from workflow.domain import limits, money
from workflow.domain.errors import BadInput, BangfuError, ImportRefused, NotFound
from workflow.entrypoints.web import auth
from workflow.entrypoints.web.diagram import bars_svg
from workflow.entrypoints.web.errors import http_status
from workflow.entrypoints.web.fields import LIMITS
from workflow.entrypoints.web.params import MAX_ID, Id, RoundQ
from workflow.entrypoints.web.rendering import (
    ApiJSON,
    ShowRecordPage,
    api_json,
    file_response,
    page_user,
    render,
)
from workflow.entrypoints.web.rendering import uow_for as _uow
from workflow.formats import exports, ledger
from workflow.store.reports import CHASE_HEADERS

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api", tags=["reports"])
ApiUser = Annotated[UserInfo, Depends(auth.api_user)]
OrgQ = Annotated[str | None, Query(max_length=64, description="the organisation's code (default: the user's highest reviewing seat)")]

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: An API download's success answer as the OpenAPI document states it: a workbook's bytes.
XLSX_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"description": "the workbook", "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}}}}
CSV = "text/csv; charset=utf-8"
HTML = "text/html; charset=utf-8"
MARKDOWN = "text/markdown; charset=utf-8"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ANNEX2_FORMATS = {"xlsx": XLSX, "csv": CSV, "html": HTML}
MAX_IMPORT_BYTES = attachments.MAX_BYTES


# --- helpers --------------------------------------------------------------------------------


def _round_label(request: Request, round_id: int | None) -> str:
    return views.current_round(_uow(request, True), round_id=round_id).label


def _record_org(request: Request, user_id: int, record_id: Id) -> tuple[record_views.RecordView, str]:
    """The record as the user may see it (404 outside their view) and its round's label."""
    view = record_views.record_view(_uow(request, True), record_id=record_id, user_id=user_id)
    return view, _round_label(request, view.round_id)


def org_stats(request: Request, user_id: int, org_code: str, round_id: int | None) -> reporting.StatsView:
    return reporting.stats(_uow(request, True), org_code=org_code, user_id=user_id,
                         round_label=_round_label(request, round_id))


def record_stats(request: Request, user_id: int, record_id: Id) -> reporting.StatsView:
    view, label = _record_org(request, user_id, record_id)
    return reporting.stats(_uow(request, True), org_code=view.org_code, user_id=user_id, round_label=label)


def annex2_file(stats: reporting.StatsView, fmt: str, *, page: bool = False) -> Response:
    """The Annex 2 form as a file; on the pages (``page``) the HTML print view opens in the
    browser instead of downloading."""
    if fmt not in ANNEX2_FORMATS:
        raise NotFound(f"不支持的格式“{fmt}”，可选：xlsx、csv、html", code="export.format")
    name = f"{stats.org_name}{stats.round_label}附件2.{fmt}"
    data: bytes | str
    if fmt == "xlsx":
        data = exports.write_xlsx([stats.table])
    elif fmt == "csv":
        data = exports.write_csv(stats.table)
    else:
        data = exports.render_html(stats.table)
    return file_response(data, name, ANNEX2_FORMATS[fmt], inline=page and fmt == "html")


def chase_file(request: Request, user_id: int, org_code: str, round_id: int | None) -> tuple[list[Any], Response]:
    label = _round_label(request, round_id)
    rows, data = reporting.chase(_uow(request, True), user_id=user_id, org_code=org_code, round_label=label)
    with _uow(request, True) as uow:
        org_name = uow.directory.org_by_code(org_code).name
    return rows, file_response(data, f"{org_name}{label}催报名单.xlsx", XLSX)


def province_file(request: Request, user_id: int, round_id: int | None) -> Response:
    label = _round_label(request, round_id)
    data = reporting.province_workbook(_uow(request, True), user_id=user_id, round_label=label)
    return file_response(data, f"{label}工会消费帮扶情况汇总表.xlsx", XLSX)


def review_times_of(request: Request, user_id: int, org: str | None, round_id: int | None) -> times.ReviewTimesReport:
    return times.review_times(_uow(request, True), user_id=user_id, org_code=org or None,
                              round_label=_round_label(request, round_id))


def review_times_file(report: times.ReviewTimesReport) -> Response:
    return file_response(report.xlsx(), f"{report.title}.xlsx", XLSX)


def work_report_of(request: Request, user_id: int, record_id: Id) -> tuple[record_views.RecordView, reporting.WorkReport]:
    view, label = _record_org(request, user_id, record_id)
    return view, reporting.work_report(_uow(request, True), org_code=view.org_code, user_id=user_id,
                                     round_label=label)


def mapping_choices(channels: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The column mappings with Chinese labels (a platform mapping is named after its channel);
    ``channels`` as in :func:`workflow.app.views.entry_options`."""
    names = {c["code"]: c["name"] for c in channels}
    codes = ["generic", *(code for code in ledger.MAPPINGS if code != "generic")]
    return [(code, ledger.mapping_label(code, names)) for code in codes]


def import_help() -> dict[str, list[ledger.HeaderHelp]]:
    """Per mapping, the columns its template has and the names accepted for each."""
    return {code: ledger.header_help(m) for code, m in ledger.MAPPINGS.items()}


def how_to_fill(options: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Per template field: how a clerk fills it in (the format, the allowed values of the round's
    policy) and an example value."""
    channels = [c["name"] for c in options["channels"]]
    budgets = [b["name"] for b in options["budgets"]]
    year = options["year"]
    return {
        "order_no": ("平台的订单号，照抄；本表按文本保存，开头的 0 不会丢", f"YGH{year}1020001"),
        "line_no": ("同一订单的第几件商品（整数）；只有一件可不填，默认 1", "1"),
        "paid_at": ("支付时间（北京时间），格式 2021-10-20 10:30；也可写 2021/10/20、2021年10月20日，"
                    f"只写日期也可以；须在 {year} 年内", f"{year}-10-20 10:30"),
        "amount": ("实付金额（元），最多两位小数，不写“元”也可以；退款写负数，如 -15.00", "1234.50"),
        "people": ("领取慰问品的人次（整数）", "30"),
        "product": ("商品名称", "梅州金柚礼盒"),
        "channel": ("可填：" + "、".join(channels) + "（写名称即可）", channels[0] if channels else ""),
        "holiday": ("可填：" + "、".join(options["holidays"]) + "；可不填", (options["holidays"] or [""])[0]),
        "product_form": ("如 实物礼盒；不得为 " + "、".join(options["forbidden_forms"]), "实物礼盒"),
        "origin_region": ("产地或帮扶地区", "梅州市"),
        "budget": ("可填：" + "、".join(budgets) + "；不填为 " + budgets[0], budgets[0]),
        "refund_of": ("只在退款行填写：对应的原订单号", ""),
    }


def import_template(mapping: str, fmt: str, label: str, options: dict[str, Any]) -> Response:
    if mapping not in ledger.MAPPINGS or fmt not in ("csv", "xlsx"):
        raise NotFound(f"没有“{mapping}.{fmt}”这种导入模板", code="import.template")
    columns = ledger.header_help(ledger.MAPPINGS[mapping])
    name = f"采购导入模板（{label}）.{fmt}"
    if fmt == "csv":
        return file_response(ledger.template_csv(ledger.MAPPINGS[mapping]), name, CSV)
    how = how_to_fill(options)
    rows = [(c.header, "必填" if c.required else "选填", how.get(c.field, (c.label, ""))[0],
             "、".join(c.aliases[1:]) or "—", how.get(c.field, ("", ""))[1]) for c in columns]
    data = exports.write_import_template([c.header for c in columns], rows, title=f"采购导入模板：{label}",
                                         example=[r[4] for r in rows])
    return file_response(data, name, XLSX)


def read_upload(file: UploadFile) -> bytes:
    data = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise BadInput(f"导入文件超过 {MAX_IMPORT_BYTES // 1024 // 1024} MB 上限", code="import.too_large")
    if not data:
        raise BadInput("导入文件是空的", code="import.empty")
    return data


def limit_check(request: Request, user_id: int, record_id: Id, *, ordinary: str, budget: str,
                retained: str, basis: str) -> limits.LimitCheck:
    view, label = _record_org(request, user_id, record_id)
    result: limits.LimitCheck = reporting.limits_for(
        _uow(request, True), org_code=view.org_code, user_id=user_id, round_label=label,
        ordinary_fen=money.parse_yuan(ordinary or "0", "普通节日慰问品支出"),
        budget_fen=money.parse_yuan(budget or "0", "年度预算支出"),
        retained_fen=money.parse_yuan(retained or "0", "留成经费"), basis=basis)
    return result


# --- pages ----------------------------------------------------------------------------------


@pages.get("/records/{record_id}/annex2.{fmt}")
def record_annex2_download(request: Request, record_id: Id, fmt: str) -> Response:
    user = page_user(request)
    return annex2_file(record_stats(request, user.id, record_id), fmt, page=True)


@pages.get("/orgs/{org_code}/annex2.{fmt}")
def org_annex2_download(request: Request, org_code: str, fmt: str, round: RoundQ = None) -> Response:
    user = page_user(request)
    return annex2_file(org_stats(request, user.id, org_code, round), fmt, page=True)


@pages.get("/orgs/{org_code}/chase.xlsx")
def chase_download(request: Request, org_code: str, round: RoundQ = None) -> Response:
    user = page_user(request)
    return chase_file(request, user.id, org_code, round)[1]


@pages.get("/province-workbook.xlsx")
def province_download(request: Request, round: RoundQ = None) -> Response:
    user = page_user(request)
    return province_file(request, user.id, round)


@pages.get("/reports/review-times", response_class=HTMLResponse)
def review_times_page(request: Request, round: RoundQ = None, org: OrgQ = None) -> HTMLResponse:
    user = page_user(request)
    report = review_times_of(request, user.id, org, round)
    chart = bars_svg([(g.label, g.median_days, g.p90_days) for g in report.by_federation[:30]],
                     caption="各审核单位审核用时（天）")
    return render(request, "pages/review_times.html", {
        "title": "审核用时", "r": report, "chart": chart,
        "round": views.current_round(_uow(request, True), round_id=round), "rounds": views.rounds(_uow(request, True)),
    })


@pages.get("/reports/review-times.xlsx")
def review_times_download(request: Request, round: RoundQ = None, org: OrgQ = None) -> Response:
    user = page_user(request)
    return review_times_file(review_times_of(request, user.id, org, round))


@pages.get("/records/{record_id}/work-report", response_class=HTMLResponse)
def work_report_page(request: Request, record_id: Id) -> HTMLResponse:
    user = page_user(request)
    view, report = work_report_of(request, user.id, record_id)
    return render(request, "pages/work_report.html", {
        "title": f"{view.org_name} 工作报告", "v": view, "report_html": _body_of(report.html)})


def _body_of(html: str) -> str:
    """The inside of a standalone document's <body> (the report's own print styles stay out of
    the page; the page styles the table)."""
    start, end = html.find("<body>"), html.rfind("</body>")
    return html[start + len("<body>"):end] if start >= 0 and end > start else html


@pages.get("/records/{record_id}/import-template/{mapping}.{fmt}")
def import_template_download(request: Request, record_id: Id, mapping: str, fmt: str) -> Response:
    user = page_user(request)
    view, _label = _record_org(request, user.id, record_id)
    options = views.entry_options(_uow(request, True), round_id=view.round_id)
    labels = dict(mapping_choices(options["channels"]))
    return import_template(mapping, fmt, labels.get(mapping, mapping), options)


@pages.get("/records/{record_id}/work-report/print", response_class=HTMLResponse)
def work_report_print(request: Request, record_id: Id) -> HTMLResponse:
    """The A4 print view: the standalone report, opened in the browser (not a download)."""
    user = page_user(request)
    _view, report = work_report_of(request, user.id, record_id)
    return HTMLResponse(report.html, headers={"Cache-Control": "private, no-store"})


@pages.get("/records/{record_id}/work-report.docx")
def work_report_docx(request: Request, record_id: Id) -> Response:
    user = page_user(request)
    view, report = work_report_of(request, user.id, record_id)
    return file_response(report.docx(), f"{view.org_name}{view.year}年度工作报告.docx", DOCX)


@pages.get("/records/{record_id}/work-report.md")
def work_report_markdown(request: Request, record_id: Id) -> Response:
    user = page_user(request)
    view, report = work_report_of(request, user.id, record_id)
    return file_response(report.markdown, f"{view.org_name}{view.year}年度工作报告.md", MARKDOWN)


@pages.post("/records/{record_id}/purchases/import", response_class=HTMLResponse)
def import_submit(
    request: Request, record_id: Id, file: Annotated[UploadFile, File()],
    mapping: Annotated[str, Form(max_length=32)] = "generic", csrf_token: Annotated[str, Form()] = "",
) -> Response:
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    try:
        result = purchase_import.import_purchases(_uow(request), record_id=record_id, user_id=user.id,
                                             data=read_upload(file), filename=file.filename or "file",
                                             mapping=mapping or None)
    except BangfuError as exc:
        if isinstance(exc, NotFound):
            raise
        problems = list(getattr(exc, "errors", None) or [])
        if getattr(exc, "more", 0):
            problems.append(f"……另有 {exc.more:,} 处错误未列出（只列出前 {len(problems)} 处）")  # type: ignore[attr-defined]
        head = exc.message.split("\n", 1)[0] if problems else exc.message
        raise ShowRecordPage(record_id, typed={"import": {"mapping": mapping}},
                             errors={"import": head}, status=http_status(exc),
                             extra={"import_problems": problems}) from None
    auth.flash(request, result.summary(), form="import")
    return RedirectResponse(f"/records/{record_id}", status_code=303)


_LIMITS = LIMITS["limits"]


@pages.post("/records/{record_id}/limits", response_class=HTMLResponse)
def limits_submit(
    request: Request, record_id: Id, ordinary: Annotated[str, Form(max_length=_LIMITS["ordinary"])] = "",
    budget: Annotated[str, Form(max_length=_LIMITS["budget"])] = "",
    retained: Annotated[str, Form(max_length=_LIMITS["retained"])] = "",
    basis: Annotated[str, Form(max_length=_LIMITS["basis"])] = "budget", csrf_token: Annotated[str, Form()] = "",
) -> Response:
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    typed = {"ordinary": ordinary, "budget": budget, "retained": retained, "basis": basis}
    try:
        result = limit_check(request, user.id, record_id, ordinary=ordinary, budget=budget,
                             retained=retained, basis=basis)
    except BangfuError as exc:
        if isinstance(exc, NotFound):
            raise
        raise ShowRecordPage(record_id, typed={"limits": typed}, errors={"limits": exc.message},
                             status=http_status(exc)) from None
    raise ShowRecordPage(record_id, typed={"limits": typed},
                         extra={"limit_result": result, "level_labels": limits.LEVEL_LABELS})


# --- JSON API -------------------------------------------------------------------------------


@api.get("/records/{record_id}/annex2", summary="a record's Annex 2 statistics (snapshot or live)",
         response_model=dict[str, Any])
def api_record_annex2(record_id: Id, request: Request, user: ApiUser) -> ApiJSON:
    return api_json(record_stats(request, user.id, record_id).to_dict())


@api.get("/records/{record_id}/annex2.{fmt}", summary="a record's Annex 2 form as xlsx, csv or html")
def api_record_annex2_file(record_id: Id, fmt: str, request: Request, user: ApiUser) -> Response:
    return annex2_file(record_stats(request, user.id, record_id), fmt)


@api.get("/orgs/{org_code}/annex2", summary="an organisation's Annex 2 statistics (its record or subtree)",
         response_model=dict[str, Any])
def api_org_annex2(org_code: str, request: Request, user: ApiUser, round: RoundQ = None) -> ApiJSON:
    return api_json(org_stats(request, user.id, org_code, round).to_dict())


@api.get("/orgs/{org_code}/annex2.{fmt}", summary="an organisation's Annex 2 form as xlsx, csv or html")
def api_org_annex2_file(org_code: str, fmt: str, request: Request, user: ApiUser,
                        round: RoundQ = None) -> Response:
    return annex2_file(org_stats(request, user.id, org_code, round), fmt)


@api.get("/orgs/{org_code}/chase", summary="the subordinates not yet submitted (催报), as JSON",
         response_model=list[dict[str, Any]])
def api_chase(org_code: str, request: Request, user: ApiUser, round: RoundQ = None) -> ApiJSON:
    rows, _file = chase_file(request, user.id, org_code, round)
    return api_json([dict(zip(CHASE_HEADERS, r, strict=True)) for r in rows])


@api.get("/orgs/{org_code}/duplicates",
         summary="orders (channel + order number) held by two or more unions of the subtree, and their explanations",
         response_model=dict[str, Any])
def api_duplicates(org_code: str, request: Request, user: ApiUser, round: RoundQ = None) -> ApiJSON:
    found = reporting.duplicate_orders(_uow(request, True), user_id=user.id, org_code=org_code,
                                       round_label=_round_label(request, round))
    return api_json(found.to_dict())


class ExplainBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    round: int | None = Field(default=None, ge=1, le=MAX_ID, description="the round's id (default: the current round)")
    channel: str = Field(max_length=64, description="the channel: code or name (e.g. ygh, 粤工惠购)")
    order_no: str = Field(max_length=100, description="the platform's order number")
    reason: str = Field(max_length=reporting.EXPLAIN_REASON_MAX, description="why two unions hold it (required)")


@api.post("/duplicates/explain",
          summary="a reviewer covering every union holding an order explains it (audited on each record)")
def api_explain_duplicate(body: ExplainBody, request: Request, user: ApiUser) -> ApiJSON:
    done = reporting.explain_duplicate(_uow(request), user_id=user.id, round_label=_round_label(request, body.round),
                                       channel=body.channel, order_no=body.order_no, reason=body.reason)
    return api_json(done.to_dict())


@api.get("/orgs/{org_code}/chase.xlsx", summary="the 催报 list as XLSX", responses=XLSX_ANSWER)
def api_chase_file(org_code: str, request: Request, user: ApiUser, round: RoundQ = None) -> Response:
    return chase_file(request, user.id, org_code, round)[1]


@api.get("/province-workbook.xlsx", summary="the province workbook: overview + one sheet per reporting unit", responses=XLSX_ANSWER)
def api_province_workbook(request: Request, user: ApiUser, round: RoundQ = None) -> Response:
    return province_file(request, user.id, round)


@api.get("/reports/review-times", response_model=dict[str, Any],
         summary="days from submit to the parent's decision per level, federation and reviewer; returns; slowest units")
def api_review_times(request: Request, user: ApiUser, round: RoundQ = None, org: OrgQ = None) -> ApiJSON:
    return api_json(review_times_of(request, user.id, org, round).to_dict())


@api.get("/reports/review-times.xlsx", summary="the review-times report as XLSX", responses=XLSX_ANSWER)
def api_review_times_file(request: Request, user: ApiUser, round: RoundQ = None, org: OrgQ = None) -> Response:
    return review_times_file(review_times_of(request, user.id, org, round))


@api.get("/records/{record_id}/work-report", summary="a reporting unit's work report (Markdown and HTML)")
def api_work_report(record_id: Id, request: Request, user: ApiUser) -> dict[str, Any]:
    _view, report = work_report_of(request, user.id, record_id)
    return {"markdown": report.markdown, "html": report.html}


@api.post("/records/{record_id}/purchases/import",
          summary="import a purchase file (CSV/XLSX, at most 10 MB), all or nothing")
def api_import(
    record_id: Id, request: Request, user: ApiUser, file: Annotated[UploadFile, File()],
    mapping: Annotated[str, Form(max_length=32)] = "generic",
) -> Response:
    try:
        result = purchase_import.import_purchases(_uow(request), record_id=record_id, user_id=user.id,
                                             data=read_upload(file), filename=file.filename or "file",
                                             mapping=mapping or None)
    except ImportRefused as exc:
        return JSONResponse({"code": exc.code, "message": exc.message, "errors": exc.errors,
                             "total_errors": exc.total, "more_errors": exc.more},
                            status_code=http_status(exc))
    return JSONResponse({"new": result.new, "repeated": result.repeated, "header_row": result.header_row,
                         "mapping": result.mapping, "record_id": record_id,
                         "voided_skipped": result.voided_skipped, "voided_notes": list(result.voided_notes),
                         "duplicate_warnings": [d.to_dict() for d in result.duplicates]})


@api.get("/records/{record_id}/limits", summary="the gift-limit check of a grassroots record")
def api_limits(
    record_id: Id, request: Request, user: ApiUser, ordinary: str, budget: str, retained: str = "0",
    basis: str = "budget",
) -> dict[str, Any]:
    r = limit_check(request, user.id, record_id, ordinary=ordinary, budget=budget, retained=retained, basis=basis)
    return {"level": r.level, "level_label": limits.LEVEL_LABELS[r.level], "exempt_fen": r.exempt_fen,
            "moved_fen": r.moved_fen, "counted_fen": r.counted_fen, "lines": r.lines(),
            "verdicts": [{"code": v.code, "level": v.level, "message": v.message} for v in r.verdicts]}
