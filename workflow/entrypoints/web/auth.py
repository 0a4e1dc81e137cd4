"""Sessions, CSRF and who is asking.

The session is a cookie signed with ``settings.secret_key`` (itsdangerous): the user id, a
fingerprint of the password hash (so a password reset or an account handover ends old sessions),
the user's session generation (logout moves it on, so a copied cookie dies with the logout),
the CSRF token and at most one flash message. It is HttpOnly, SameSite=Lax, and Secure when
``settings.secure_cookies``. Anonymous visitors get a session too, holding only the CSRF token,
so the login form is protected like every other form.

CSRF: every form carries ``csrf_token``; cookie-authenticated JSON calls that change something
send the header ``X-CSRF-Token``. Bearer-token calls (machine clients) carry no cookie, so they
need none.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from workflow.app import accounts
from workflow.app.accounts import UserInfo
from workflow.domain.errors import AuthRequired, BangfuError, CsrfFailed
from workflow.store.uow import UnitOfWork

COOKIE = "bangfu_session"
SESSION_MAX_AGE = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="bangfu-session")


def load_session(request: Request) -> dict[str, Any]:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return {}
    try:
        data = serializer(request.app.state.settings.secret_key).loads(raw, max_age=SESSION_MAX_AGE)
    except BadSignature:
        return {}
    return data if isinstance(data, dict) else {}


def session(request: Request) -> dict[str, Any]:
    return request.state.session  # type: ignore[no-any-return]


def mark_dirty(request: Request) -> None:
    request.state.session_dirty = True


def csrf_token(request: Request) -> str:
    sess = session(request)
    if "csrf" not in sess:
        sess["csrf"] = secrets.token_urlsafe(24)
        mark_dirty(request)
    return str(sess["csrf"])


def check_csrf(request: Request, supplied: str | None) -> None:
    expected = session(request).get("csrf")
    if not expected or not supplied or not hmac.compare_digest(str(expected), str(supplied)):
        raise CsrfFailed("缺少或错误的安全令牌（CSRF），请刷新页面后重试")


def login(request: Request, user: UserInfo) -> None:
    """Start a fresh session for ``user`` (a new CSRF token: no fixation across a login)."""
    request.state.session = {"uid": user.id, "fp": user.fingerprint, "gen": user.session_gen,
                             "csrf": secrets.token_urlsafe(24)}
    mark_dirty(request)


def logout(request: Request) -> None:
    """Forget the session in this browser only (see :func:`end_session` for a real logout)."""
    request.state.session = {"csrf": secrets.token_urlsafe(24)}
    mark_dirty(request)


def end_session(request: Request) -> None:
    """Log out: the user's sessions end on the server too, so a copied cookie no longer works."""
    uid = session(request).get("uid")
    if isinstance(uid, int):
        accounts.end_sessions(UnitOfWork(request.app.state.database), user_id=uid)
    logout(request)


def flash(request: Request, message: str, kind: str = "ok") -> None:
    session(request)["flash"] = [kind, message]
    mark_dirty(request)


def pop_flash(request: Request) -> tuple[str, str] | None:
    sess = session(request)
    value = sess.pop("flash", None)
    if value:
        mark_dirty(request)
        return (str(value[0]), str(value[1]))
    return None


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def current_user(request: Request) -> UserInfo | None:
    """The user behind a bearer token or the session cookie, or None. Cached per request."""
    if hasattr(request.state, "user"):
        return request.state.user  # type: ignore[no-any-return]
    database = request.app.state.database
    user: UserInfo | None = None
    request.state.via_token = False
    token = _bearer(request)
    if token is not None:
        user = accounts.user_for_token(UnitOfWork(database, readonly=True), token=token)
        if user is None:
            raise AuthRequired("API 令牌无效或已撤销")
        request.state.via_token = True
    else:
        uid = session(request).get("uid")
        if isinstance(uid, int):
            try:
                info = accounts.user_info(UnitOfWork(database, readonly=True), user_id=uid)
            except BangfuError:
                info = None
            if (info is not None and hmac.compare_digest(info.fingerprint, str(session(request).get("fp", "")))
                    and session(request).get("gen", 0) == info.session_gen):
                user = info
            else:  # logged out, password changed, account handed over or deactivated: it ends
                logout(request)
    request.state.user = user
    return user


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


def api_user(request: Request) -> UserInfo:
    """For the JSON API: the user, or 401; CSRF header checked on cookie-authenticated writes."""
    user = current_user(request)
    if user is None:
        raise AuthRequired("请先登录，或在 Authorization 头中提供 Bearer 令牌")
    if request.method not in SAFE_METHODS and not request.state.via_token:
        check_csrf(request, request.headers.get("x-csrf-token"))
    return user
