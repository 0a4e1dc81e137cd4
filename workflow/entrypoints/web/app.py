"""The FastAPI application: the JSON API (:mod:`workflow.entrypoints.web.api`) and the server-rendered pages
(:mod:`workflow.entrypoints.web.pages`), both thin over the use cases of :mod:`workflow.app`.

``create_app(database=None, settings=None)`` builds one; with no arguments it reads the
settings from the environment (refusing the default secret outside development) and opens the
configured database. ``uvicorn --factory workflow.entrypoints.web.app:create_app`` serves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from notifications.templates import make_environment
from workflow.domain.errors import BangfuError
from workflow.domain.figures import wan_people, wan_yuan
from workflow.entrypoints.web import api, auth, fields, health, pages, reports_pages
from workflow.entrypoints.web.errors import http_status
from workflow.entrypoints.web.guard import InputGuard
from workflow.entrypoints.web.openapi import describe as describe_errors
from workflow.entrypoints.web.rendering import LoginRedirect, ShowRecordPage, page_user, render
from workflow.formats.exports import sanitising
from workflow.settings import Settings, get_settings
from workflow.store.tables import Database

WEB_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"


#: The pages run no script at all; styles come from /static (the print views and the quota bar
#: carry inline styles); nothing is framed, posted elsewhere or loaded from another origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


#: Headers every answer carries (unless the route set its own).
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
)


class SessionMiddleware:
    """The session (:mod:`.auth`): loaded before the route, its cookie written on the answer when
    it changed (never for a bearer-token call), and the security headers added. A plain ASGI
    middleware: Starlette's ``BaseHTTPMiddleware`` ran every request through a task and a memory
    stream (a measurable share of a small API call's time)."""

    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        request.state.session = auth.load_session(request)
        request.state.session_dirty = False
        auth.csrf_token(request)  # every visitor, anonymous too, has a CSRF token

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if request.state.session_dirty and not getattr(request.state, "via_token", False):
                    cookie = Response()
                    cookie.set_cookie(
                        auth.COOKIE, auth.serializer(self.settings.secret_key).dumps(request.state.session),
                        max_age=auth.SESSION_MAX_AGE, httponly=True, samesite="lax",
                        secure=self.settings.secure_cookies, path="/",
                    )
                    headers.append("set-cookie", cookie.headers["set-cookie"])
                for name, value in SECURITY_HEADERS:
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(database: Database | None = None, settings: Settings | None = None) -> FastAPI:
    """Build the web application.

    Args:
        database: the database to use (default: ``settings.database_url``).
        settings: the settings (default: from the environment); checked, so production refuses
            the default secret.

    Returns:
        The FastAPI app; ``app.state`` holds ``database``, ``settings`` and ``templates`` (the
        notifications' configured Jinja2 environment plus this package's templates).
    """
    settings = (settings or get_settings()).check()
    if database is None:
        database = Database(settings.database_url)
    # Swagger UI and ReDoc load their scripts from a CDN; the machines may have no internet, so
    # /docs is a server-rendered page over the same OpenAPI document (/openapi.json).
    app = FastAPI(title="bangfu 消费帮扶", version="0.1.0", docs_url=None, redoc_url=None,
                  description="消费帮扶记录工作流（粤工总〔2021〕17号）的 JSON 接口与页面")
    app.state.database = database
    app.state.settings = settings
    app.state.templates = sanitising(make_environment(TEMPLATE_DIR))
    # The notice's table unit (万人次, 万元, two decimals) for federations' figures.
    app.state.templates.filters["wan_people"] = lambda n: str(wan_people(int(n or 0)))
    app.state.templates.filters["wan_yuan"] = lambda fen: str(wan_yuan(int(fen or 0)))

    app.add_middleware(SessionMiddleware, settings=settings)

    @app.exception_handler(BangfuError)
    async def bangfu_error(request: Request, exc: BangfuError) -> Response:
        if http_status(exc) == 401 and not _wants_json(request):
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return _problem(request, http_status(exc), exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def framework_error(request: Request, exc: StarletteHTTPException) -> Response:
        # The framework's own refusals (no such route, wrong method, a body it cannot read):
        # the same Chinese answer as the project's errors, status and headers (Allow) kept.
        code, title, message = _http_problem(exc)
        return _problem(request, exc.status_code, code, message, title=title, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        form = fields.form_of(request.url.path)
        problems = "；".join(dict.fromkeys(_describe(e, form) for e in exc.errors()[:5]))
        message = f"输入有误：{problems}"
        if _wants_json(request):
            return JSONResponse({"code": "input.invalid", "message": message,
                                 "detail": [_plain(e) for e in exc.errors()]}, status_code=422)
        return render(request, "pages/error.html", {"title": "输入有误", "status": 422,
                                                    "code": "input.invalid", "message": message},
                      status=422)

    # Outermost: body size counted as it streams, NUL characters refused (web/guard.py).
    app.add_middleware(InputGuard)

    @app.exception_handler(LoginRedirect)
    async def login_redirect(request: Request, exc: LoginRedirect) -> Response:
        return RedirectResponse(f"/login?next={exc.next_path}", status_code=303)

    @app.exception_handler(ShowRecordPage)
    async def show_record_page(request: Request, exc: ShowRecordPage) -> Response:
        return pages._record_page(request, page_user(request), exc.record_id, typed=exc.typed,
                                  errors=exc.errors, status=exc.status, extra=exc.extra)

    app.include_router(api.router)
    app.include_router(reports_pages.api)
    app.include_router(pages.router)
    app.include_router(reports_pages.pages)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe_errors(get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs(request: Request) -> HTMLResponse:
        spec = app.openapi()
        operations = [
            {"method": method.upper(), "path": path, "summary": op.get("summary", ""),
             "params": [p["name"] for p in op.get("parameters", [])], "body": _body_schema(op)}
            for path, methods in spec["paths"].items() for method, op in methods.items()
        ]
        return render(request, "pages/docs.html", {"title": "接口文档", "spec": spec, "operations": operations})

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> HTMLResponse:
        return HTMLResponse("ok")

    health.install(app)  # /readyz, /metrics, request latency

    return app


def _body_schema(operation: dict[str, Any]) -> str:
    """The name of an operation's request-body schema, or ''."""
    content: dict[str, Any] = operation.get("requestBody", {}).get("content", {})
    for media in content.values():
        return str(media.get("schema", {}).get("$ref", "")).rsplit("/", 1)[-1]
    return ""


def _problem(request: Request, status: int, code: str, message: str, *, title: str = "无法完成",
             headers: Mapping[str, str] | None = None) -> Response:
    """An error's answer: ``{"code", "message"}`` under /api, the Chinese error page elsewhere."""
    if _wants_json(request):
        return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)
    page = render(request, "pages/error.html", {"title": title, "status": status, "code": code,
                                                "message": message}, status=status)
    page.headers.update(headers or {})
    return page


#: Starlette's default limit on one form field (``Request.form(max_part_size=...)``), in MB.
FORM_FIELD_MAX_MB = 1

#: The framework's refusals by status: code, page title, message.
HTTP_PROBLEMS: dict[int, tuple[str, str, str]] = {
    404: ("http.not_found", "页面不存在", "页面不存在：请检查网址，或回到首页重新进入"),
    405: ("http.method_not_allowed", "不支持此操作", "不支持此操作：该地址不接受这种提交方式"),
    413: ("input.too_large", "提交的内容过大", "提交的内容过大，未保存任何内容"),
}


def _http_problem(exc: StarletteHTTPException) -> tuple[str, str, str]:
    """Code, title and Chinese message of a framework HTTP error (its ``detail`` is English)."""
    if exc.status_code == 400:
        detail = str(exc.detail)
        # Starlette's form parser says only this, in English: "Field exceeded maximum size of
        # 1024KB.", "Part exceeded ...", "Too many fields. ...", "Too many files. ...".
        if "exceeded maximum size" in detail:
            return ("input.too_large", "提交的内容过大",
                    f"提交的内容过大（单项不得超过 {FORM_FIELD_MAX_MB} MB），未保存任何内容")
        if detail.startswith("Too many"):
            return "input.too_many_fields", "提交的项目过多", "提交的项目过多，未保存任何内容"
        return ("input.unparseable", "提交的内容无法解析",
                "提交的内容无法解析（格式不正确，或其中的数字位数过多），未保存任何内容")
    return HTTP_PROBLEMS.get(exc.status_code, ("http.error", "无法完成", "请求无法完成，请返回上一页重试"))


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


#: Where pydantic says a value came from: not a field name.
_SOURCES = ("body", "query", "path", "form", "header", "cookie")


def _describe(error: dict[str, Any], form: str = "") -> str:
    """One validation error in Chinese, the field named by its label (:mod:`.fields`), never by
    its internal name; ``form`` is the request path's last segment."""
    kind = str(error.get("type", ""))
    loc = tuple(error.get("loc", ()))
    ctx = error.get("ctx") or {}
    if kind == "json_invalid":  # its loc holds the character offset, not a field
        offset = next((p for p in loc if isinstance(p, int)), None)
        return "提交的 JSON 格式不正确" + (f"（第 {offset + 1} 个字符附近）" if offset is not None else "")
    if kind == "extra_forbidden":
        return "提交了不接受的项目"
    names = [p for p in loc if isinstance(p, str) and p not in _SOURCES]
    name = names[-1] if names else ""
    what = fields.label(name, form) if name else "提交的内容"
    index = next((p for p in loc if isinstance(p, int)), None)
    if index is not None:  # an item of a list (bulk accept's items)
        what = f"第 {index + 1} 项的{what}"
    if kind == "string_too_long" and name:
        message = fields.too_long(name, int(ctx.get("max_length", 0)), form)
        return message if index is None else f"第 {index + 1} 项的{message}"
    what_is = {
        "missing": "为必填项",
        "int_parsing": "须为整数",
        "int_from_float": "须为整数",
        "int_type": "须为整数",
        "float_parsing": "须为数字",
        "bool_parsing": "须为是或否",
        "date_from_datetime_parsing": "须为日期（年-月-日，如 2021-11-01）",
        "date_parsing": "须为日期（年-月-日，如 2021-11-01）",
        "string_too_long": f"太长（最多 {ctx.get('max_length', '')} 个字符）",
        "string_too_short": f"太短（至少 {ctx.get('min_length', '')} 个字符）",
        "too_long": f"条目太多（最多 {ctx.get('max_length', '')} 条）",
        "too_short": f"条目太少（至少 {ctx.get('min_length', '')} 条）",
        "greater_than_equal": f"不能小于 {_number(ctx.get('ge', ''))}",
        "less_than_equal": f"不能大于 {_number(ctx.get('le', ''))}",
        "greater_than": f"须大于 {_number(ctx.get('gt', ''))}",
        "less_than": f"须小于 {_number(ctx.get('lt', ''))}",
        "string_type": "须为文字",
        "list_type": "须为列表",
        "dict_type": "须为 JSON 对象",
        "model_attributes_type": "须为 JSON 对象",
        "model_type": "须为 JSON 对象",
        "literal_error": "不在可选范围内",
        "enum": "不在可选范围内",
    }.get(kind, "格式不正确")
    return f"{what}{what_is}"


def _number(value: object) -> str:
    """A bound as the money messages write numbers: 2,147,483,647."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _plain(error: dict[str, Any]) -> dict[str, Any]:
    return {"loc": [str(p) for p in error.get("loc", ())], "type": str(error.get("type", ""))}
