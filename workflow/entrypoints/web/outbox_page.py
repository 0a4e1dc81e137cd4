"""The admins' outbox page: notifications that failed for good, with a retry button.

Only an admin seat at the top of the tree (the province) sees it; a retry puts the rows back
to pending with their attempts reset and writes an ``outbox_event`` audit row, like
``bangfu outbox retry``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import states
from workflow.app.accounts import UserInfo
from workflow.app.views import KIND_LABELS
from workflow.domain import access
from workflow.domain.errors import PermissionDenied
from workflow.entrypoints.web import auth
from workflow.entrypoints.web.rendering import page_user, render
from workflow.scheduler import operations

router = APIRouter(include_in_schema=False)

CHANNEL_LABELS = {"email": "邮件", "sms": "短信", "wecom": "企业微信", "dingtalk": "钉钉"}


def _province_admin(request: Request) -> UserInfo:
    user = page_user(request)
    if not any(m.role in (states.ADMIN, access.SYSTEM_ADMIN) and m.org_depth == 0 for m in user.memberships):
        raise PermissionDenied("只有省总工会的管理员可以查看发送队列")
    return user


@router.get("/admin/outbox", response_class=HTMLResponse)
def outbox_page(request: Request) -> HTMLResponse:
    _province_admin(request)
    database = request.app.state.database
    return render(request, "pages/outbox.html", {
        "title": "发送队列", "status": operations.outbox_status(database),
        "failed": operations.failed_rows(database, limit=200),
        "channel_labels": CHANNEL_LABELS, "kind_labels": KIND_LABELS,
    })


@router.post("/admin/outbox/retry")
def outbox_retry(request: Request, csrf_token: Annotated[str, Form()] = "",
                 ids: Annotated[list[int] | None, Form()] = None,
                 all_failed: Annotated[str, Form()] = "") -> Response:
    user = _province_admin(request)
    auth.check_csrf(request, csrf_token)
    if not ids and all_failed != "1":
        auth.flash(request, "请勾选要重发的通知", "error")
        return RedirectResponse("/admin/outbox", status_code=303)
    n = operations.retry(request.app.state.database, actor=f"web:{user.username}",
                         ids=ids or None, all_failed=all_failed == "1")
    auth.flash(request, f"已将 {n} 条失败的通知重新排队（尝试次数清零）")
    return RedirectResponse("/admin/outbox", status_code=303)
