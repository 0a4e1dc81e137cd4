"""Server-rendered pages in Chinese: login, home, the record dashboard and its history, the
reviewer's inbox, the overview, the notification inbox and account management.

Every page calls the same services as the CLI and the JSON API. Forms post back with a CSRF
token; on a refusal the page is shown again with the service's message beside the form and the
values the user typed kept; on success it redirects (post/redirect/get) with a flash message.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import states
from workflow.app import (
    accounts,
    attachments,
    delegations,
    lifecycle,
    oversight,
    planning,
    purchases,
    record_views,
    reporting,
    review_times,
    supplements,
    views,
)
from workflow.app.accounts import UserInfo
from workflow.domain import clock, money, rules
from workflow.domain.errors import (
    BadInput,
    BangfuError,
    LoginFailed,
    NotFound,
    PermissionDenied,
    TooManyAttempts,
)
from workflow.domain.figures import wan_people, wan_yuan
from workflow.entrypoints.web import auth, fields, reports_pages
from workflow.entrypoints.web.api import purchase_input
from workflow.entrypoints.web.diagram import lifecycle_svg
from workflow.entrypoints.web.errors import http_status
from workflow.entrypoints.web.inbox import linked, with_texts
from workflow.entrypoints.web.params import Id, PageQ, RoundQ, VersionForm
from workflow.entrypoints.web.rendering import (
    OVERVIEW_ROLES,
    download_response,
    file_response,
    page_user,
    render,
)
from workflow.entrypoints.web.rendering import uow_for as _uow
from workflow.formats import exports

router = APIRouter(include_in_schema=False)


# --- helpers --------------------------------------------------------------------------------


def _safe_next(value: str | None, default: str = "/") -> str:
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def _redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _round(request: Request, round_id: int | None) -> Any:
    return views.current_round(_uow(request, True), round_id=round_id)


def _int(text: str, what: str, *, minimum: int = 0) -> int:
    return money.parse_count(text, what, minimum=minimum)


#: The longest value each record-page form field takes: the one table the pages' own checks,
#: the inputs' ``maxlength`` and the API's bodies read (:data:`.fields.LIMITS`).
FIELD_LIMITS = fields.LIMITS
FIELD_LINKS = fields.FIELD_LINKS


def _check_lengths(form: str, typed: dict[str, str]) -> None:
    """Refuse (beside ``form``, in its field's words) a value longer than :data:`FIELD_LIMITS`."""
    for name, limit in FIELD_LIMITS[form].items():
        if len(typed.get(name, "")) > limit:
            raise BadInput(fields.too_long(name, limit, form), code="input.too_long")


# --- login ----------------------------------------------------------------------------------


def _login_page(request: Request, *, next: str, username: str = "", error: str | None = None,
                status: int = 200) -> HTMLResponse:
    settings = request.app.state.settings
    return render(request, "pages/login.html", {
        "title": "登录", "next": _safe_next(next), "username": username, "error": error,
        "sso": settings.oidc_label if settings.oidc_issuer else None}, status=status)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> HTMLResponse:
    return _login_page(request, next=next)


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=200)] = "",
    totp: Annotated[str, Form(max_length=8)] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    auth.check_csrf(request, csrf_token)
    policy = request.app.state.settings.security
    try:
        uid = accounts.authenticate(_uow(request), username=username, password=password,
                                    client_ip=auth.client_ip(request), policy=policy, totp=totp)
    except (LoginFailed, TooManyAttempts) as exc:
        return _login_page(request, next=next, username=username, error=exc.message, status=http_status(exc))
    info = accounts.user_info(_uow(request, True), user_id=uid, policy=policy)
    auth.login(request, info)
    request.state.user = info
    if info.must_change_password:
        return _redirect(f"/password?next={quote(_safe_next(next))}")
    return _redirect(_safe_next(next))


def _password_page(request: Request, user: UserInfo, *, next: str, error: str | None = None,
                   status: int = 200) -> HTMLResponse:
    return render(request, "pages/password.html", {
        "title": "修改密码", "next": _safe_next(next), "error": error, "forced": user.must_change_password,
        "rules": request.app.state.settings.security}, status=status)


@router.get("/password", response_class=HTMLResponse)
def password_page(request: Request, next: str = "/") -> HTMLResponse:
    return _password_page(request, page_user(request), next=next)


@router.post("/password", response_class=HTMLResponse)
def password_submit(
    request: Request,
    current_password: Annotated[str, Form(max_length=200)] = "",
    new_password: Annotated[str, Form(max_length=200)] = "",
    repeat_password: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    if new_password != repeat_password:
        return _password_page(request, user, next=next, error="两次输入的新密码不一致", status=422)
    try:
        info = accounts.change_password(_uow(request), user_id=user.id, current_password=current_password,
                                        new_password=new_password, policy=request.app.state.settings.security)
    except (BadInput, PermissionDenied) as exc:
        return _password_page(request, user, next=next, error=exc.message, status=http_status(exc))
    auth.login(request, info)  # the old sessions ended with the old password; this one goes on
    request.state.user = info
    auth.flash(request, "密码已修改")
    return _redirect(_safe_next(next))


@router.post("/logout")
def logout(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    auth.check_csrf(request, csrf_token)
    auth.end_session(request)
    return _redirect("/login")


# --- home -----------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def home(request: Request, round: RoundQ = None) -> Response:
    user = page_user(request)
    rnd = _round(request, round)
    own = views.own_records(_uow(request, True), user_id=user.id, round_id=rnd.id or 0)
    roles = user.roles()
    clerk_records = [r for r in own if r["role"] == states.CLERK]
    if round is None and len(clerk_records) == 1 and not roles & OVERVIEW_ROLES:
        return _redirect(f"/records/{clerk_records[0]['record_id']}")
    waiting = (views.review_inbox(_uow(request, True), user_id=user.id, round_id=rnd.id or 0, per_page=1).total
               if states.REVIEWER in roles else 0)
    return render(request, "pages/home.html", {
        "title": "首页", "round": rnd, "rounds": views.rounds(_uow(request, True)), "own": own,
        "waiting": waiting,
    })


# --- the record -----------------------------------------------------------------------------

FORM_DEFAULTS: dict[str, dict[str, str]] = {
    "plan": {"amount": "", "members": ""},
    "purchase": {"paid_at": "", "channel": "ygh", "amount": "", "people": "", "order_no": "",
                 "line_no": "1", "product": "", "product_form": "", "holiday": "",
                 "budget": "extra_quota", "refund_of": ""},
    "info": {"reporter": "", "phone": "", "fill_date": "", "work_experience": "", "work_highlights": ""},
    "fire": {"trigger": "", "reason": ""},
    "deadline": {"last_day": "", "reason": ""},
    "attachment": {"kind": "annex2_scan"},
    "import": {"mapping": "generic"},
    "limits": {"ordinary": "", "budget": "", "retained": "0", "basis": "budget"},
    "void": {"reason": ""},
    "aggregates": {"channel": "ygh", "people": "", "amount": "", "note": ""},
}


def _record_page(
    request: Request, user: UserInfo, record_id: Id, *, typed: dict[str, dict[str, str]] | None = None,
    errors: dict[str, str] | None = None, status: int = 200, extra: dict[str, Any] | None = None,
) -> HTMLResponse:
    view = record_views.record_view(_uow(request, True), record_id=record_id, user_id=user.id)
    rel = views.record_relation(_uow(request, True), user_id=user.id, record_id=record_id)
    ledger_lines = purchases.list_purchases(_uow(request, True), record_id=record_id, user_id=user.id)
    fed = record_views.federation_view(_uow(request, True), record_id=record_id, user_id=user.id)
    files = attachments.list_attachments(_uow(request, True), record_id=record_id, user_id=user.id)
    options = views.entry_options(_uow(request, True), round_id=view.round_id)
    forms = {k: dict(v) for k, v in FORM_DEFAULTS.items()}
    forms["plan"].update(
        amount=rules.yuan(view.amount_per_member_fen).replace(",", "") if view.amount_per_member_fen is not None else "",
        members=str(view.members) if view.members is not None else "")
    forms["info"].update(reporter=view.reporter or "", phone=view.phone or "",
                         fill_date=view.fill_date.isoformat() if view.fill_date else "",
                         work_experience=view.work_experience or "", work_highlights=view.work_highlights or "")
    forms["deadline"]["last_day"] = clock.deadline_last_day(view.report_deadline).isoformat()
    forms["purchase"]["paid_at"] = clock.now().astimezone(clock.CHINA).strftime("%Y-%m-%dT%H:%M")
    for name, values in (typed or {}).items():
        forms[name].update(values)
    allowed = [a for a in view.actions if a.allowed]
    # Rules that stop an action the user could otherwise take; not "wrong state" (every trigger
    # of other states) nor "not your role" (a clerk is never the one to accept).
    refused = [a for a in view.actions if not a.allowed and a.refusal
               and a.refusal.code not in ("transition.not_allowed", "decision.parent_not_sent")
               and not a.refusal.code.startswith("permission.")]
    # The main action moves the record forward; reopen and withdraw are offered as secondary.
    order = {s: i for i, s in enumerate(states.STATES)}
    forward = {a.trigger for a in allowed if a.dest and order[a.dest] > order[view.state]}
    allowed.sort(key=lambda a: a.trigger not in forward)
    used = min(view.extra_spent_fen, view.quota_fen) if view.quota_fen else 0
    percent = round(100 * used / view.quota_fen) if view.quota_fen else 0
    open_for_entry = view.state not in (states.SUBMITTED, states.ACCEPTED)
    shown = _shown_forms(view, rel, open_for_entry)
    errors = errors or {}
    # A refusal of a form the record's state (or the user's relation) hides now, e.g. a plan
    # posted from a stale tab after 完成采购: shown at the top of the page, never dropped.
    general_errors = [msg for name, msg in errors.items() if msg and not shown.get(name)]
    return render(request, "pages/record.html", {
        "title": view.org_name, "v": view, "rel": rel, "purchases": ledger_lines, "options": options,
        "fed": fed, "state_list": states.STATES,
        "supplements": supplements.for_record(_uow(request, True), record_id=record_id, user_id=user.id),
        "files": files, "attachment_kinds": attachments.KINDS,
        "max_mb": attachments.MAX_BYTES // 1024 // 1024,
        "confirm": confirm_texts(view, fed, ledger_lines),
        "answers": [name for name, on in shown.items() if on], "field_links": FIELD_LINKS,
        "forms": forms, "maxlen": FIELD_LIMITS, "errors": errors, "shown": shown, "general_errors": general_errors, "allowed": allowed, "refused": refused, "forward": forward,
        "quota_used_fen": used, "quota_percent": percent, "open_for_entry": open_for_entry,
        "quota_last_day": clock.deadline_last_day(view.quota_deadline),
        "report_last_day": clock.deadline_last_day(view.report_deadline),
        "state_labels": states.STATE_LABELS,
        "mappings": reports_pages.mapping_choices(options["channels"]),
        "import_help": reports_pages.import_help(),
        "import_max_mb": reports_pages.MAX_IMPORT_BYTES // 1024 // 1024,
        "import_problems": [], "limit_result": None, "error_codes": {}, "limit_bases": reports_pages.limits.BASES,
        **(extra or {}),
    }, status=status)


def _figures_text(people: int, amount_fen: int, *, wan: bool) -> str:
    exact = f"{people:,} 人次，{rules.yuan(amount_fen)} 元"
    return f"{wan_people(people)} 万人次，{wan_yuan(amount_fen)} 万元（{exact}）" if wan else exact


def confirm_texts(view: record_views.RecordView, fed: dict[str, Any] | None,
                  ledger_lines: list[dict[str, Any]]) -> dict[str, str]:
    """The triggers that send something upwards or cannot be undone alone, each with what the
    page says before it (asked once): what will be sent, and who is missing."""
    live = [p for p in ledger_lines if not p["voided"]]
    if fed is None:
        figures = _figures_text(sum(p["people"] for p in live), sum(p["amount_fen"] for p in live), wan=False)
        finish = (f"完成采购后不能再录入或导入采购（如需补录，可退回“计划中”）。现有采购 {len(live)} 条，"
                  f"合计 {figures}。")
        missing = ""
    else:
        snap = fed["snapshot"] or fed["live"]["total"]
        figures = _figures_text(snap["people"], snap["amount_fen"], wan=True)
        finish = "完成本级录入后不能再录入本级采购和汇总数据（如需补录，可退回“计划中”）。"
        names = [m["org_name"] for m in fed["missing"]]
        more = "等" if fed["missing_total"] > len(names) else ""
        missing = (f"尚未通过、不计入本次报送的下级 {fed['missing_total']} 个：{'、'.join(names)}{more}。"
                   if fed["missing_total"] else "下级单位已全部通过。")
    return {
        "finish_purchasing": finish,
        "submit": f"将向上级报送 {view.round_label} 的数据：{figures}。{missing}"
                  "提交后不能修改，除非撤回或被上级退回。",
        "withdraw": "撤回后，上级不再看到这次提交；修改后需要重新汇总、再次提交。",
        "accept": f"通过{view.org_name}的报送（{figures}）？通过后计入本级汇总；如需更改只能撤销通过。",
    }


def _shown_forms(view: record_views.RecordView, rel: dict[str, bool], open_for_entry: bool) -> dict[str, bool]:
    """Which of the record page's forms (the keys of ``FORM_DEFAULTS``) the page shows: the
    template asks this, and an error of a form not shown goes to the page's top instead."""
    enter = rel["can_enter"] and open_for_entry
    return {
        "fire": True,
        "void": True,  # its message sits at the head of the purchase list, always shown
        "plan": rel["can_enter"] and view.state == states.PLANNED and view.is_grassroots,
        "purchase": enter,
        "import": enter,
        "info": enter,
        "attachment": rel["can_enter"] and view.state != states.ACCEPTED,
        "limits": view.is_grassroots,
        "deadline": rel["parent_reviewer"] and view.state != states.ACCEPTED,
        "aggregates": enter and not view.is_grassroots,
    }


@router.get("/records/{record_id}", response_class=HTMLResponse)
def record_page(request: Request, record_id: Id) -> HTMLResponse:
    return _record_page(request, page_user(request), record_id)


def _refused(request: Request, user: UserInfo, record_id: Id, form: str, typed: dict[str, str],
             exc: BangfuError) -> HTMLResponse:
    if isinstance(exc, NotFound):
        raise exc
    return _record_page(request, user, record_id, typed={form: typed}, errors={form: exc.message},
                        status=http_status(exc), extra={"error_codes": {form: exc.code}})


@router.post("/records/{record_id}/plan", response_class=HTMLResponse)
def plan_submit(
    request: Request, record_id: Id, seen_version: VersionForm,
    amount: Annotated[str, Form()] = "", members: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    typed = {"amount": amount, "members": members}
    try:
        _check_lengths("plan", typed)
        planning.plan(_uow(request), record_id=record_id, user_id=user.id, seen_version=seen_version,
                      amount_per_member_fen=money.parse_yuan(amount, "每人增加额度"), members=_int(members, "会员人数"))
    except BangfuError as exc:
        return _refused(request, user, record_id, "plan", typed, exc)
    auth.flash(request, "计划已保存", form="plan")
    return _redirect(f"/records/{record_id}")


@router.post("/records/{record_id}/purchases", response_class=HTMLResponse)
def purchase_submit(
    request: Request, record_id: Id,
    paid_at: Annotated[str, Form()] = "", channel: Annotated[str, Form()] = "",
    amount: Annotated[str, Form()] = "", people: Annotated[str, Form()] = "",
    order_no: Annotated[str, Form()] = "", line_no: Annotated[str, Form()] = "1",
    product: Annotated[str, Form()] = "", product_form: Annotated[str, Form()] = "",
    holiday: Annotated[str, Form()] = "", budget: Annotated[str, Form()] = "extra_quota",
    refund_of: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form()] = "",
) -> Response:
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    typed = {"paid_at": paid_at, "channel": channel, "amount": amount, "people": people,
             "order_no": order_no, "line_no": line_no, "product": product, "product_form": product_form,
             "holiday": holiday, "budget": budget, "refund_of": refund_of}
    try:
        _check_lengths("purchase", typed)
        purchase = purchase_input(
            paid_at=paid_at, channel=channel, amount=amount, people=_int(people, "领取人数"),
            order_no=order_no, line_no=_int(line_no or "1", "订单行号"), product=product,
            product_form=product_form, holiday=holiday, budget=budget, refund_of=refund_of)
        entry = purchases.enter_purchase(_uow(request), record_id=record_id, user_id=user.id, purchase=purchase)
    except BangfuError as exc:
        return _refused(request, user, record_id, "purchase", typed, exc)
    auth.flash(request, "；".join([f"已录入订单 {order_no.strip()}", *(d.message for d in entry.duplicates)]),
               form="purchase")
    return _redirect(f"/records/{record_id}")


@router.post("/records/{record_id}/purchases/{purchase_id}/void", response_class=HTMLResponse)
def purchase_void(
    request: Request, record_id: Id, purchase_id: Id,
    reason: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form()] = "",
) -> Response:
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    try:
        _check_lengths("void", {"reason": reason})
        purchases.void_purchase(_uow(request), record_id=record_id, purchase_id=purchase_id, user_id=user.id,
                              reason=reason)
    except BangfuError as exc:
        return _refused(request, user, record_id, "void", {"reason": reason}, exc)
    auth.flash(request, "已作废该采购行；如需更正，请重新录入正确的数据", form="void")
    return _redirect(f"/records/{record_id}")


@router.post("/records/{record_id}/report-info", response_class=HTMLResponse)
def info_submit(
    request: Request, record_id: Id, seen_version: VersionForm,
    reporter: Annotated[str, Form()] = "", phone: Annotated[str, Form()] = "",
    fill_date: Annotated[str, Form()] = "",
    work_experience: Annotated[str, Form()] = "",
    work_highlights: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    typed = {"reporter": reporter, "phone": phone, "fill_date": fill_date,
             "work_experience": work_experience, "work_highlights": work_highlights}
    try:
        _check_lengths("info", typed)
        parsed: date | None = None
        if fill_date.strip():
            parsed = money.parse_date(fill_date, "日期")
        planning.update_report_info(
            _uow(request), record_id=record_id, user_id=user.id, seen_version=seen_version,
            reporter=reporter or None, phone=phone or None, fill_date=parsed,
            work_experience=work_experience or None, work_highlights=work_highlights or None)
    except BangfuError as exc:
        return _refused(request, user, record_id, "info", typed, exc)
    auth.flash(request, "报表信息已保存", form="info")
    return _redirect(f"/records/{record_id}")


@router.post("/records/{record_id}/supplements/{supplement_id}/accept", response_class=HTMLResponse)
def accept_supplement_submit(request: Request, record_id: Id, supplement_id: Id,
                             csrf_token: Annotated[str, Form()] = "") -> Response:
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    try:
        result = supplements.accept(_uow(request), supplement_id=supplement_id, user_id=user.id)
    except BangfuError as exc:
        return _refused(request, user, record_id, "fire", {}, exc)
    auth.flash(request, result.message)
    return _redirect(f"/records/{record_id}")


@router.post("/records/{record_id}/fire", response_class=HTMLResponse)
def fire_submit(
    request: Request, record_id: Id, seen_version: VersionForm,
    trigger: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form()] = "",
) -> Response:
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    try:
        _check_lengths("fire", {"trigger": trigger, "reason": reason})
        result = lifecycle.fire(_uow(request), record_id=record_id, trigger=trigger, user_id=user.id,
                               seen_version=seen_version, reason=reason or None)
    except BangfuError as exc:
        if next.startswith("/review") and not isinstance(exc, NotFound):
            auth.flash(request, exc.message, "error")
            return _redirect(_safe_next(next))
        return _refused(request, user, record_id, "fire", {"trigger": trigger, "reason": reason}, exc)
    if next.startswith("/review"):  # a reviewer's list: the message names the union it was about
        auth.flash(request, f"{result.message}（{result.org_name}）")
    else:
        auth.flash(request, result.message, form="fire")
    return _redirect(_safe_next(next, f"/records/{record_id}"))


@router.post("/records/{record_id}/aggregates", response_class=HTMLResponse)
def aggregate_submit(
    request: Request, record_id: Id,
    channel: Annotated[str, Form()] = "", people: Annotated[str, Form()] = "",
    amount: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """A federation's own aggregate line (a channel's people and yuan, with their source)."""
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    typed = {"channel": channel, "people": people, "amount": amount, "note": note}
    try:
        _check_lengths("aggregates", typed)
        reporting.add_aggregate_line(_uow(request), record_id=record_id, user_id=user.id, channel=channel,
                                     people=money.parse_count(people, "人次", minimum=0),
                                     amount_fen=money.parse_yuan(amount, "金额"), note=note)
    except BangfuError as exc:
        return _refused(request, user, record_id, "aggregates", typed, exc)
    auth.flash(request, f"已录入汇总数据：{people.strip()} 人次，{amount.strip()} 元（{note.strip()}）",
               form="aggregates")
    return _redirect(f"/records/{record_id}")


@router.post("/records/{record_id}/deadline", response_class=HTMLResponse)
def deadline_submit(
    request: Request, record_id: Id, seen_version: VersionForm,
    last_day: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    typed = {"last_day": last_day, "reason": reason}
    try:
        _check_lengths("deadline", typed)
        try:
            day = date.fromisoformat(last_day.strip())
        except ValueError:
            raise BadInput(f"日期“{last_day}”格式应为 YYYY-MM-DD", code="input.date") from None
        oversight.set_report_deadline(_uow(request), record_id=record_id, user_id=user.id,
                                      seen_version=seen_version, last_day=day, reason=reason or None)
    except BangfuError as exc:
        return _refused(request, user, record_id, "deadline", typed, exc)
    auth.flash(request, f"报送截止日期已调整为 {day:%Y年%m月%d日}", form="deadline")
    return _redirect(f"/records/{record_id}")


@router.post("/records/{record_id}/attachments", response_class=HTMLResponse)
def attachment_submit(
    request: Request, record_id: Id, file: Annotated[UploadFile, File()],
    kind: Annotated[str, Form(max_length=32)] = "annex2_scan", csrf_token: Annotated[str, Form()] = "",
) -> Response:
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    data = file.file.read(attachments.MAX_BYTES + 1)  # never read more than the limit allows
    try:
        attachments.add_attachment(_uow(request), record_id=record_id, user_id=user.id, kind=kind,
                                   filename=file.filename or "file", data=data)
    except BangfuError as exc:
        return _refused(request, user, record_id, "attachment", {"kind": kind}, exc)
    auth.flash(request, f"已上传附件 {file.filename or ''}", form="attachment")
    return _redirect(f"/records/{record_id}")


@router.get("/records/{record_id}/attachments/{attachment_id}")
def attachment_download(request: Request, record_id: Id, attachment_id: Id) -> Response:
    user = page_user(request)
    stored = attachments.get_attachment(_uow(request, True), record_id=record_id,
                                        attachment_id=attachment_id, user_id=user.id)
    return download_response(stored)


@router.get("/records/{record_id}/history", response_class=HTMLResponse)
def history_page(request: Request, record_id: Id) -> HTMLResponse:
    user = page_user(request)
    view = record_views.record_view(_uow(request, True), record_id=record_id, user_id=user.id)
    rows = record_views.history(_uow(request, True), record_id=record_id, user_id=user.id)
    for h in rows:
        if h["trigger"] == oversight.DEADLINE_TRIGGER:
            d = h["detail"] or {}
            h["label"] = f"{oversight.DEADLINE_LABEL}：{d.get('from', '')} → {d.get('to', '')}"
    diff = record_views.changes_since_return(_uow(request, True), record_id=record_id, user_id=user.id)
    return render(request, "pages/history.html", {
        "title": f"{view.org_name} 历史", "v": view, "rows": list(reversed(rows)), "diff": diff,
        "diagram": lifecycle_svg(view.state), "transitions": states.TRANSITIONS,
        "state_labels": states.STATE_LABELS,
    })


@router.get("/records/{record_id}/purchases.csv")
def purchases_csv(request: Request, record_id: Id) -> Response:
    user = page_user(request)
    view = record_views.record_view(_uow(request, True), record_id=record_id, user_id=user.id)
    rows = purchases.list_purchases(_uow(request, True), record_id=record_id, user_id=user.id)
    table: list[list[object]] = [
        ["支付日期", "渠道", "金额（元）", "领取人次", "订单号", "行号", "商品", "节日", "经费来源", "代填报",
         "已作废", "作废人", "作废时间", "作废原因"]]
    for p in rows:
        table.append([p["paid_on"].isoformat(), p["channel_name"], Decimal(money.yuan_plain(p["amount_fen"])),
                      p["people"], p["order_no"], p["line_no"], p["product"], p["holiday"] or "",
                      purchases.BUDGETS.get(p["budget"], p["budget"]), "是" if p["on_behalf"] else "",
                      "是" if p["voided"] else "", p["voided_by"] or "",
                      p["voided_at"].astimezone(clock.CHINA).strftime("%Y-%m-%d %H:%M") if p["voided_at"] else "",
                      p["void_reason"] or ""])
    # A Chinese name like every other download (filename*, ASCII fallback): 天河一中工会2021年度采购明细.csv
    return file_response(exports.csv_bytes(table), f"{view.org_name}{view.year}年度采购明细.csv",
                         "text/csv; charset=utf-8")


# --- reviewing ------------------------------------------------------------------------------


@router.get("/review", response_class=HTMLResponse)
def review_page(
    request: Request, round: RoundQ = None, q: str | None = None, sort: str | None = None,
    page: PageQ = 1, state: str | None = None, overdue: str | None = None, spage: PageQ = 1,
) -> HTMLResponse:
    user = page_user(request)
    return _review(request, user, round_id=round, q=q, sort=sort, page=page, state=state,
                   overdue=overdue, spage=spage, bulk=None)


def _review(request: Request, user: UserInfo, *, round_id: int | None, q: str | None, sort: str | None,
            page: int, state: str | None, overdue: str | None, spage: int,
            bulk: list[oversight.BulkOutcome] | None) -> HTMLResponse:
    rnd = _round(request, round_id)
    inbox = views.review_inbox(_uow(request, True), user_id=user.id, round_id=rnd.id or 0, q=q,
                                 sort=sort, page=page, per_page=20)
    subs = views.subordinates(_uow(request, True), user_id=user.id, round_id=rnd.id or 0, state=state,
                                overdue=overdue, page=spage, per_page=20)
    # Only records returned before carry a last reason: the diff is read for those alone.
    diffs = {r["record_id"]: record_views.changes_since_return(_uow(request, True), record_id=r["record_id"],
                                                          user_id=user.id)
             for r in inbox.items if r["last_reason"]}
    return render(request, "pages/review.html", {
        "diffs": diffs,
        "title": "审核", "round": rnd, "rounds": views.rounds(_uow(request, True)), "inbox": inbox,
        "subs": subs, "bulk": bulk, "standins": delegations.current(_uow(request, True), user_id=user.id), "state_filters": [(s, states.STATE_LABELS[s]) for s in states.STATES],
        "sorts": [("submitted_at", "提交时间"), ("org_code", "单位代码"), ("amount", "金额")],
        "f": {"q": q or "", "sort": sort or "", "state": state or "", "overdue": overdue or ""},
    })


@router.post("/review/remind", response_class=HTMLResponse)
def remind_submit(
    request: Request, record: Annotated[str, Form()] = "", round: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """一键催办: one unit (``record``) or every unit not yet reported (no ``record``)."""
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    round_id = money.parse_count(round, "年度", minimum=1) if round.strip() else None
    rnd = _round(request, round_id)
    ids = [money.parse_count(record, "记录", minimum=1)] if record.strip() else None
    done = oversight.remind(_uow(request), user_id=user.id, round_id=rnd.id or 0, record_ids=ids)
    sent = [r.org_name for r in done if r.sent]
    skipped = [f"{r.org_name}（{r.note}）" for r in done if not r.sent]
    parts = [f"已催办 {len(sent)} 个单位：{'、'.join(sent)}（站内通知和邮件已发给其填报员，已记入历史）" if sent
             else "没有发出催办"]
    if skipped:
        parts.append("未催办：" + "；".join(skipped))
    if not done:
        parts = ["没有尚未报送的下级单位，无需催办"]
    auth.flash(request, "。".join(parts), "ok" if sent or not done else "error")
    return _redirect(f"/review?round={rnd.id}")


@router.post("/review/delegate", response_class=HTMLResponse)
def delegate_submit(
    request: Request, org_code: Annotated[str, Form()] = "", standin: Annotated[str, Form()] = "",
    starts_on: Annotated[str, Form()] = "", ends_on: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """代理: the reviewer names a stand-in for a date range (the refusal, if any, is flashed)."""
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    try:
        named = delegations.name_standin(
            _uow(request), user_id=user.id, org_code=org_code[:64], delegator=user.username, standin=standin[:64].strip(),
            starts_on=money.parse_date(starts_on, "开始日期"), ends_on=money.parse_date(ends_on, "结束日期"))
    except BangfuError as exc:  # a refusal, an unknown user or date: said at the top of the page
        auth.flash(request, exc.message, "error")
        return _redirect("/review")
    auth.flash(request, named.message)
    return _redirect("/review")


@router.post("/review/delegations/{delegation_id}/cancel", response_class=HTMLResponse)
def delegate_cancel(request: Request, delegation_id: Id, csrf_token: Annotated[str, Form()] = "") -> Response:
    """代理: cancel a stand-in early (the refusal, if any, is flashed)."""
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    try:
        done = delegations.cancel(_uow(request), user_id=user.id, delegation_id=delegation_id)
    except BangfuError as exc:
        auth.flash(request, exc.message, "error")
        return _redirect("/review")
    auth.flash(request, done.message)
    return _redirect("/review")


@router.post("/review/bulk-accept", response_class=HTMLResponse)
def bulk_accept_submit(
    request: Request, item: Annotated[list[str] | None, Form()] = None,
    round: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form()] = "",
) -> HTMLResponse:
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    pairs: list[tuple[int, int]] = []
    for raw in item or []:
        rid, _, ver = raw.partition(":")
        try:
            pairs.append((money.parse_count(rid, "记录", minimum=1), money.parse_count(ver, "版本号", minimum=1)))
        except BadInput:
            raise BadInput(f"无效的选择“{raw[:40]}”", code="input.bulk_item") from None
    round_id = money.parse_count(round, "年度", minimum=1) if round.strip() else None
    if not pairs:
        auth.flash(request, "请先勾选要通过的记录", "error")
    out = oversight.bulk_accept(request.app.state.database, user_id=user.id, items=pairs)
    return _review(request, user, round_id=round_id, q=None, sort=None,
                   page=1, state=None, overdue=None, spage=1, bulk=out)


@router.get("/overview", response_class=HTMLResponse)
def overview_page(request: Request, round: RoundQ = None) -> HTMLResponse:
    user = page_user(request)
    rnd = _round(request, round)
    data = views.overview(_uow(request, True), user_id=user.id, round_id=rnd.id or 0)
    return render(request, "pages/overview.html", {
        "title": "汇总概况", "o": data, "round": rnd, "rounds": views.rounds(_uow(request, True)),
        "state_labels": states.STATE_LABELS, "state_list": states.STATES,
        "province_code": _receiver_code(request, rnd.id or 0),
        "can_chase": reporting.may_chase(_uow(request, True), user_id=user.id, org_code=data["org_code"]),
        "can_review_times": review_times.may_see(_uow(request, True), user_id=user.id, org_code=data["org_code"]),
    })


def _receiver_code(request: Request, round_id: int) -> str | None:
    """The code of the organisation receiving the round's reports (the province workbook's)."""
    with _uow(request, True) as uow:
        rnd = uow.directory.round(round_id)
        try:
            return reporting.receiver_org(uow, rnd, uow.directory.policy(rnd.policy_code)).code
        except NotFound:
            return None


# --- notifications and accounts -------------------------------------------------------------


@router.get("/notifications", response_class=HTMLResponse)
def notifications_page(request: Request, page: PageQ = 1) -> HTMLResponse:
    user = page_user(request)
    data = views.notifications(_uow(request, True), user_id=user.id, page=page, per_page=30)
    for item in with_texts(data.items):
        item["body"] = linked(item["text"], item["link"])
    return render(request, "pages/notifications.html", {"title": "通知", "n": data})


@router.post("/notifications/read")
def notifications_read(request: Request, csrf_token: Annotated[str, Form()] = "") -> Response:
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    views.mark_notifications_read(_uow(request), user_id=user.id)
    return _redirect("/notifications")


@router.post("/notifications/{notification_id}/read")
def notification_read(request: Request, notification_id: Id, csrf_token: Annotated[str, Form()] = "") -> Response:
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    views.mark_notifications_read(_uow(request), user_id=user.id, ids=[notification_id])
    return _redirect("/notifications")


@router.post("/notifications/{notification_id}/open")
def notification_open(request: Request, notification_id: Id, csrf_token: Annotated[str, Form()] = "") -> Response:
    """Follow a notification's link: it is marked read and the browser goes to its record. A
    POST with the CSRF token like every other form (a GET changes nothing)."""
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    target = views.notification_target(_uow(request, True), user_id=user.id, notification_id=notification_id)
    views.mark_notifications_read(_uow(request), user_id=user.id, ids=[notification_id])
    return _redirect(target)


def _accounts_page(request: Request, user: UserInfo, *, error: dict[str, str] | None = None,
                   typed: dict[str, dict[str, str]] | None = None, status: int = 200) -> HTMLResponse:
    clerks = accounts.managed_clerks(_uow(request, True), actor_id=user.id)
    return render(request, "pages/accounts.html", {"title": "账号管理", "clerks": clerks,
                                                   "error": error or {}, "typed": typed or {}},
                  status=status)


@router.get("/accounts", response_class=HTMLResponse)
def accounts_page(request: Request) -> HTMLResponse:
    return _accounts_page(request, page_user(request))


@router.post("/accounts/{username}/reset", response_class=HTMLResponse)
def reset_submit(
    request: Request, username: str, new_password: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    try:
        accounts.reset_password(_uow(request), actor_id=user.id, username=username, new_password=new_password,
                                policy=request.app.state.settings.security)
    except BangfuError as exc:
        if isinstance(exc, NotFound):
            raise
        return _accounts_page(request, user, error={username: exc.message}, status=http_status(exc))
    auth.flash(request, f"已重置 {username} 的密码；该账号原有的登录已失效")
    return _redirect("/accounts")


@router.post("/accounts/{username}/handover", response_class=HTMLResponse)
def handover_submit(
    request: Request, username: str, display_name: Annotated[str, Form(max_length=100)] = "",
    new_password: Annotated[str, Form(max_length=200)] = "", email: Annotated[str, Form(max_length=200)] = "",
    phone: Annotated[str, Form(max_length=64)] = "", csrf_token: Annotated[str, Form()] = "",
) -> Response:
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    try:
        accounts.handover(_uow(request), actor_id=user.id, username=username, display_name=display_name,
                          new_password=new_password, email=email, phone=phone,
                          policy=request.app.state.settings.security)
    except BangfuError as exc:
        if isinstance(exc, NotFound):
            raise
        return _accounts_page(request, user, error={username: exc.message},
                              typed={username: {"display_name": display_name, "email": email, "phone": phone}},
                              status=http_status(exc))
    auth.flash(request, f"账号 {username} 已交接给 {display_name.strip()}")
    return _redirect("/accounts")


# --- the security administrator: lockouts ------------------------------------------------------


@router.get("/security/locked", response_class=HTMLResponse)
def locked_page(request: Request) -> HTMLResponse:
    user = page_user(request)
    policy = request.app.state.settings.security
    locked = accounts.locked_accounts(_uow(request, True), actor_id=user.id, policy=policy)
    return render(request, "pages/locked.html", {"title": "被锁定的账号", "locked": locked, "rules": policy})


@router.post("/security/locked/{username}/unlock")
def unlock_submit(request: Request, username: str, csrf_token: Annotated[str, Form()] = "") -> Response:
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    accounts.unlock(_uow(request), username=username, actor_id=user.id)
    auth.flash(request, f"已解除 {username} 的锁定")
    return _redirect("/security/locked")
