"""The administrators' pages (issue 21, 三员分立) and their JSON twins.

- ``/admin/orgs``: the system administrator's organisations and accounts (a reviewer's too, for
  its own units: add a clerk or a second reviewer); add, rename, move an organisation; add,
  deactivate, reset an account; the organisation and user CSVs uploaded.
- ``/audit-log``: the auditor's operation audit log, filtered, and its CSV.

Thin over :mod:`workflow.app.administration` and :mod:`workflow.app.oplog`; who may do what
is :mod:`workflow.domain.access`.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from workflow.app import accounts, administration, oplog
from workflow.app.accounts import UserInfo
from workflow.domain import money
from workflow.domain import oplog as catalogue
from workflow.domain.errors import BadInput, BangfuError, NotFound
from workflow.entrypoints.web import api as api_module
from workflow.entrypoints.web import auth
from workflow.entrypoints.web.errors import http_status
from workflow.entrypoints.web.rendering import api_json, file_response, page_user, render
from workflow.entrypoints.web.rendering import uow_for as _uow
from workflow.entrypoints.web.reports_pages import MAX_IMPORT_BYTES

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api", tags=["administration"])


def _back(code: str | None) -> RedirectResponse:
    return RedirectResponse(f"/admin/orgs?code={code}" if code else "/admin/orgs", status_code=303)


def _orgs_page(request: Request, user: UserInfo, code: str | None, *, error: str | None = None,
               typed: dict[str, str] | None = None, status: int = 200) -> HTMLResponse:
    view = administration.admin_orgs(_uow(request, True), user_id=user.id, org_code=code)
    root_admin = any(m.role == "system_admin" and m.org_depth == 0 for m in user.memberships)
    return render(request, "pages/admin_orgs.html", {
        "title": "单位和账号", "view": view, "error": error, "typed": typed or {},
        "kinds": administration.KIND_LABELS, "root_admin": root_admin,
        "addable": [("clerk", "填报员"), ("reviewer", "审核人")]}, status=status)


@pages.get("/admin/orgs", response_class=HTMLResponse)
def orgs_page(request: Request, code: Annotated[str | None, Query(max_length=64)] = None) -> HTMLResponse:
    return _orgs_page(request, page_user(request), code)


def _act(request: Request, csrf_token: str, code: str | None, typed: dict[str, str], done: str,
         call: Any) -> Response:
    """Run one change for the page: the flash and the redirect, or the page again with the refusal."""
    user = page_user(request)
    auth.check_csrf(request, csrf_token)
    try:
        call(user)
    except BangfuError as exc:
        if isinstance(exc, NotFound):  # outside the user's view: it does not exist (404)
            raise
        return _orgs_page(request, user, code, error=exc.message, typed=typed, status=http_status(exc))
    auth.flash(request, done)
    return _back(code)


@pages.post("/admin/orgs/{code}/children", response_class=HTMLResponse)
def org_add(request: Request, code: str, new_code: Annotated[str, Form(max_length=64)] = "",
            name: Annotated[str, Form(max_length=200)] = "", kind: Annotated[str, Form(max_length=64)] = "",
            csrf_token: Annotated[str, Form()] = "") -> Response:
    return _act(request, csrf_token, code, {"new_code": new_code, "name": name}, f"已新增单位 {name.strip()}",
                lambda u: administration.add_org(_uow(request), user_id=u.id, org_code=new_code, name=name,
                                                 kind=kind, parent_code=code))


@pages.post("/admin/orgs/{code}/rename", response_class=HTMLResponse)
def org_rename(request: Request, code: str, name: Annotated[str, Form(max_length=200)] = "",
               csrf_token: Annotated[str, Form()] = "") -> Response:
    return _act(request, csrf_token, code, {"rename": name}, f"单位已改名为 {name.strip()}",
                lambda u: administration.rename_org(_uow(request), user_id=u.id, org_code=code, name=name))


@pages.post("/admin/orgs/{code}/move", response_class=HTMLResponse)
def org_move(request: Request, code: str, parent_code: Annotated[str, Form(max_length=64)] = "",
             csrf_token: Annotated[str, Form()] = "") -> Response:
    return _act(request, csrf_token, code, {"parent_code": parent_code},
                "单位（连同其下级单位）已调整隶属关系，汇总已重建",
                lambda u: administration.move_org(_uow(request), user_id=u.id, org_code=code, parent_code=parent_code))


@pages.post("/admin/orgs/{code}/accounts", response_class=HTMLResponse)
def account_add(request: Request, code: str, username: Annotated[str, Form(max_length=64)] = "",
                display_name: Annotated[str, Form(max_length=100)] = "", role: Annotated[str, Form(max_length=32)] = "",
                new_password: Annotated[str, Form(max_length=200)] = "", phone: Annotated[str, Form(max_length=64)] = "",
                email: Annotated[str, Form(max_length=200)] = "", csrf_token: Annotated[str, Form()] = "") -> Response:
    typed = {"username": username, "display_name": display_name, "phone": phone, "email": email}
    return _act(request, csrf_token, code, typed, f"已新增账号 {username.strip()}",
                lambda u: administration.add_account(
                    _uow(request), user_id=u.id, org_code=code, role=role, new_username=username,
                    display_name=display_name, new_password=new_password, email=email, phone=phone))


@pages.post("/admin/accounts/{username}/deactivate", response_class=HTMLResponse)
def account_deactivate(request: Request, username: str, code: Annotated[str | None, Form(max_length=64)] = None,
                       csrf_token: Annotated[str, Form()] = "") -> Response:
    return _act(request, csrf_token, code, {}, f"账号 {username} 已停用，其登录和接口令牌随即失效",
                lambda u: administration.deactivate_account(_uow(request), user_id=u.id, username=username))


@pages.post("/admin/accounts/{username}/reset", response_class=HTMLResponse)
def account_reset(request: Request, username: str, code: Annotated[str | None, Form(max_length=64)] = None,
                  new_password: Annotated[str, Form(max_length=200)] = "",
                  csrf_token: Annotated[str, Form()] = "") -> Response:
    return _act(request, csrf_token, code, {}, f"已重置 {username} 的密码；该账号原有的登录已失效",
                lambda u: accounts.reset_password(_uow(request), actor_id=u.id, username=username,
                                                  new_password=new_password,
                                                  policy=request.app.state.settings.security))


@pages.post("/admin/import/{kind}", response_class=HTMLResponse)
def import_file(request: Request, kind: str, file: Annotated[UploadFile, File()],
                csrf_token: Annotated[str, Form()] = "") -> Response:
    if kind not in ("orgs", "users"):
        raise NotFound("页面不存在：请检查网址，或回到首页重新进入", code="http.not_found")
    data = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise BadInput(f"文件太大：最多 {MAX_IMPORT_BYTES // 1024 // 1024} MB", code="import.too_large")
    use = administration.import_organisations if kind == "orgs" else administration.import_users
    what = "单位名单" if kind == "orgs" else "用户名单"
    holder: dict[str, Any] = {}

    def run(u: UserInfo) -> None:
        holder["report"] = use(_uow(request), user_id=u.id, data=data)

    response = _act(request, csrf_token, None, {}, f"已导入{what}", run)
    if "report" in holder:
        r = holder["report"]
        auth.flash(request, f"已导入{what}：新增 {r.created} 条，更新 {r.updated} 条")
    return response


# --- the audit log -------------------------------------------------------------------------------


def _query(actor: str | None, action: str | None, org: str | None, since: str | None, until: str | None,
           outcome: str | None) -> oplog.LogQuery:
    def day(text: str | None, what: str) -> date | None:
        return money.parse_date(text, what) if text else None
    return oplog.LogQuery(actor=actor or None, action=action or None, org_code=org or None,
                          since=day(since, "起始日期"), until=day(until, "截止日期"), outcome=outcome or None)


Text = Annotated[str | None, Query(max_length=64)]


@pages.get("/audit-log", response_class=HTMLResponse)
def audit_log_page(request: Request, actor: Text = None, action: Text = None, org: Text = None,
                   since: Text = None, until: Text = None, outcome: Text = None,
                   page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> HTMLResponse:
    user = page_user(request)
    query = _query(actor, action, org, since, until, outcome)
    log = oplog.read(_uow(request, True), user_id=user.id, query=query, page=page)
    filters = {"actor": actor or "", "action": action or "", "org": org or "", "since": since or "",
               "until": until or "", "outcome": outcome or ""}
    qs = "&".join(f"{k}={v}" for k, v in filters.items() if v)
    return render(request, "pages/audit_log.html", {
        "title": "审计日志", "log": log, "filters": filters, "qs": qs, "wide": True,
        "actions": catalogue.ACTIONS, "outcomes": catalogue.OUTCOMES})


@pages.get("/audit-log.csv")
def audit_log_csv(request: Request, actor: Text = None, action: Text = None, org: Text = None,
                  since: Text = None, until: Text = None, outcome: Text = None) -> Response:
    user = page_user(request)
    data = oplog.export_csv(_uow(request, True), user_id=user.id,
                            query=_query(actor, action, org, since, until, outcome))
    return file_response(data, "审计日志.csv", "text/csv; charset=utf-8")


#: The API's filters, described exactly (a code of the catalogue, an outcome, ISO dates).
ACTION_PATTERN = "^(" + "|".join(re.escape(a) for a in catalogue.ACTIONS) + ")$"
OUTCOME_PATTERN = "^(" + "|".join(catalogue.OUTCOMES) + ")$"
#: A username: one line, no blank, no comma.
USERNAME: dict[str, Any] = {"pattern": f"^[^\\s,\\u0000-\\u001f{api_module._FORBIDDEN}]+$"}


@api.get("/audit-log")
def api_audit_log(request: Request, actor: Text = None,
                  action: Annotated[str | None, Query(max_length=64, pattern=ACTION_PATTERN)] = None,
                  org: Text = None, since: date | None = None, until: date | None = None,
                  outcome: Annotated[str | None, Query(max_length=16, pattern=OUTCOME_PATTERN)] = None,
                  page: Annotated[int, Query(ge=1, le=100_000)] = 1,
                  per_page: Annotated[int, Query(ge=1, le=500)] = 100) -> Response:
    """The operation audit log (auditors only), newest first."""
    user = auth.api_user(request)
    query = oplog.LogQuery(actor=actor or None, action=action or None, org_code=org or None, since=since,
                           until=until, outcome=outcome or None)
    log = oplog.read(_uow(request, True), user_id=user.id, query=query, page=page, per_page=per_page)
    return api_json({"total": log.total, "page": log.page, "pages": log.pages, "rows": log.rows})


class AccountBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64, json_schema_extra=USERNAME)
    display_name: str = Field(max_length=100, json_schema_extra=api_module.NAME)
    role: Literal["clerk", "reviewer"]
    new_password: str = Field(min_length=accounts.MIN_PASSWORD_LENGTH, max_length=200)
    email: str | None = Field(default=None, max_length=200, json_schema_extra=api_module.EMAIL)
    phone: str | None = Field(default=None, max_length=64, json_schema_extra=api_module.PHONE)


@api.post("/orgs/{code}/accounts", status_code=201)
def api_account_add(request: Request, code: Annotated[str, Path(max_length=64)], body: AccountBody) -> Response:
    """Add a clerk or a reviewer account to an organisation (a system administrator, or a
    reviewer of it or of its parent)."""
    user = auth.api_user(request)
    administration.add_account(_uow(request), user_id=user.id, org_code=code, role=body.role,
                               new_username=body.username, display_name=body.display_name,
                               new_password=body.new_password, email=body.email or "", phone=body.phone or "")
    return api_json({"username": body.username.strip(), "org_code": code}, status_code=201)
