"""What every web module shares: the unit of work for a request, the page renderer, the logged-in
user of a page, downloads, and the exceptions the application turns into responses.

The web package's modules import this one and never each other in a circle: ``app`` wires the
routers of ``api``, ``pages`` and ``reports_pages``; ``pages`` may use ``api``'s input parsing and
``reports_pages``' helpers; ``reports_pages`` asks for the record page to be shown again by
raising :class:`ShowRecordPage`, which ``app`` renders through ``pages``.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, Response

import states
from workflow.app import views
from workflow.app.accounts import UserInfo
from workflow.domain import access
from workflow.domain.errors import BangfuError
from workflow.entrypoints.web import auth
from workflow.store.uow import UnitOfWork

OVERVIEW_ROLES = views.OVERVIEW_ROLES


class LoginRedirect(Exception):
    """A page needs a logged-in user: send the browser to the login page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class ShowRecordPage(Exception):
    """Show the record page again: after a refused form (the message beside the form, the values
    the user typed kept) or with a form's result (the gift-limit check)."""

    def __init__(self, record_id: int, *, typed: dict[str, dict[str, str]] | None = None,
                 errors: dict[str, str] | None = None, status: int = 200,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(record_id)
        self.record_id, self.typed, self.errors, self.status, self.extra = record_id, typed, errors, status, extra


def uow_for(request: Request, readonly: bool = False) -> UnitOfWork:
    return UnitOfWork(request.app.state.database, readonly=readonly)


def is_wechat(request: Request) -> bool:
    """WeChat's in-app browser blocks downloads: the pages say 请在浏览器中打开 there."""
    return "micromessenger" in request.headers.get("user-agent", "").lower()


def render(request: Request, template: str, ctx: dict[str, Any], status: int = 200) -> HTMLResponse:
    try:
        user = auth.current_user(request)
    except BangfuError:
        user = None
    roles = user.roles() if user else set()
    base: dict[str, Any] = {
        "user": user,
        "csrf": auth.csrf_token(request),
        "wechat": is_wechat(request),
        "flash": auth.pop_flash(request),
        "is_reviewer": states.REVIEWER in roles,
        "can_overview": bool(roles & OVERVIEW_ROLES),
        "unread": views.unread_count(uow_for(request, True), user_id=user.id) if user else 0,
        # 三员分立: the system administrator's organisations and accounts (a reviewer's own
        # units too), the auditor's log, the province admin's outbox.
        "can_administer": bool(roles & {access.SYSTEM_ADMIN, states.REVIEWER}),
        "is_auditor": access.AUDITOR in roles,
        "is_security_admin": access.SECURITY_ADMIN in roles,
        "is_outbox_admin": bool(user and any(m.org_depth == 0 and m.role in (states.ADMIN, access.SYSTEM_ADMIN)
                                             for m in user.memberships)),
        "path": request.url.path,
        "title": "",
    }
    base.update(ctx)
    html = request.app.state.templates.get_template(template).render(base)
    return HTMLResponse(html, status_code=status)


def page_user(request: Request) -> UserInfo:
    user = auth.current_user(request)
    if user is None:
        raise LoginRedirect(request.url.path)
    return user


def file_response(data: bytes | str, filename: str, media_type: str, *, inline: bool = False) -> Response:
    """A download with a Chinese file name (RFC 5987 ``filename*``, ASCII fallback); ``inline``:
    a page the browser opens (a print view: a phone cannot print a downloaded .html file), with
    the same name should the user save it."""
    body = data.encode("utf-8") if isinstance(data, str) else data
    # Printable ASCII only (no control character, quote or backslash reaches the header).
    ascii_name = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in filename)
    disposition = f"{'inline' if inline else 'attachment'}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, errors='replace')}"
    return Response(body, media_type=media_type,
                    headers={"Content-Disposition": disposition, "Cache-Control": "private, no-store"})


def download_response(stored: Any) -> Response:
    """A stored attachment (``filename``, ``content_type``, ``data``) as a download."""
    return file_response(stored.data, stored.filename, stored.content_type)


class ApiJSON(JSONResponse):
    """A JSON body written in one pass by the C encoder, the same text as FastAPI's
    ``jsonable_encoder`` then ``JSONResponse``: dates and times in ISO 8601, ``Decimal`` as a
    number, anything else through ``jsonable_encoder``. Returning a plain dict made FastAPI walk
    the whole tree in Python (twice where the route had already called ``jsonable_encoder``):
    two thirds of the province overview's CPU."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None,
                          separators=(",", ":"), default=_json_default).encode("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, date | datetime | time):
        return value.isoformat()
    if isinstance(value, Decimal):  # as jsonable_encoder: an int when it has no fraction
        return int(value) if value.as_tuple().exponent >= 0 else float(value)  # type: ignore[operator]
    return jsonable_encoder(value)


def api_json(content: Any, status_code: int = 200) -> ApiJSON:
    """An API route's JSON answer (see :class:`ApiJSON`)."""
    return ApiJSON(content, status_code=status_code)
