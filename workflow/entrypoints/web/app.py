"""The FastAPI application: the JSON API (:mod:`workflow.entrypoints.web.api`) and the server-rendered pages
(:mod:`workflow.entrypoints.web.pages`), both thin over :mod:`workflow.app.records`.

``create_app(database=None, settings=None)`` builds one; with no arguments it reads the
settings from the environment (refusing the default secret outside development) and opens the
configured database. ``uvicorn --factory workflow.entrypoints.web.app:create_app`` serves it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from notifications.templates import make_environment
from workflow.domain.errors import BangfuError
from workflow.domain.figures import wan_people, wan_yuan
from workflow.entrypoints.web import api, auth, health, pages, reports_pages
from workflow.entrypoints.web.errors import http_status
from workflow.entrypoints.web.guard import InputGuard
from workflow.entrypoints.web.openapi import describe as describe_errors
from workflow.entrypoints.web.rendering import LoginRedirect, ShowRecordPage, page_user, render
from workflow.settings import Settings, get_settings
from workflow.store.tables import Database

WEB_DIR = Path(__file__).resolve().parent
TEMPLATE_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"


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
    app.state.templates = make_environment(TEMPLATE_DIR)
    # The notice's table unit (万人次, 万元, two decimals) for federations' figures.
    app.state.templates.filters["wan_people"] = lambda n: str(wan_people(int(n or 0)))
    app.state.templates.filters["wan_yuan"] = lambda fen: str(wan_yuan(int(fen or 0)))

    @app.middleware("http")
    async def session_middleware(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request.state.session = auth.load_session(request)
        request.state.session_dirty = False
        auth.csrf_token(request)  # every visitor, anonymous too, has a CSRF token
        response = await call_next(request)
        if request.state.session_dirty and not getattr(request.state, "via_token", False):
            response.set_cookie(
                auth.COOKIE,
                auth.serializer(settings.secret_key).dumps(request.state.session),
                max_age=auth.SESSION_MAX_AGE, httponly=True, samesite="lax",
                secure=settings.secure_cookies, path="/",
            )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.exception_handler(BangfuError)
    async def bangfu_error(request: Request, exc: BangfuError) -> Response:
        if _wants_json(request):
            return JSONResponse({"code": exc.code, "message": exc.message}, status_code=http_status(exc))
        if http_status(exc) == 401:
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        return render(request, "pages/error.html", {"title": "无法完成", "status": http_status(exc),
                                                    "code": exc.code, "message": exc.message},
                      status=http_status(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = "；".join(_describe(e) for e in exc.errors()[:5])
        message = f"请求参数不正确：{problems}"
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


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def _describe(error: dict[str, Any]) -> str:
    where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "form"))
    kind = str(error.get("type", ""))
    what = {
        "missing": "必填",
        "int_parsing": "须为整数",
        "date_from_datetime_parsing": "须为日期 YYYY-MM-DD",
        "date_parsing": "须为日期 YYYY-MM-DD",
        "string_too_long": "太长",
        "too_long": "条目太多",
        "greater_than_equal": f"不能小于 {error.get('ctx', {}).get('ge', '')}",
        "less_than_equal": f"不能大于 {error.get('ctx', {}).get('le', '')}",
        "int_from_float": "须为整数",
        "string_type": "须为文字",
        "int_type": "须为整数",
        "json_invalid": "不是有效的 JSON",
    }.get(kind, "格式不正确")
    return f"{where or '请求'} {what}"


def _plain(error: dict[str, Any]) -> dict[str, Any]:
    return {"loc": [str(p) for p in error.get("loc", ())], "type": str(error.get("type", ""))}
