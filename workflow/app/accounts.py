"""Accounts: logging in (with a throttle on failures), bearer API tokens, and what a parent's
reviewer may do to a subordinate clerk's account (reset the password, hand the account over to a
new clerk).

Authorization follows the records' rule: a user outside the actor's visible subtree does not
exist for them (:class:`~workflow.domain.errors.NotFound`); a visible user the actor may not manage is
:class:`~workflow.domain.errors.PermissionDenied`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import states
from workflow.app.passwords import hash_password, verify_password
from workflow.domain import access, clock, rules, text
from workflow.domain.errors import (
    BadInput,
    LoginFailed,
    NotFound,
    PermissionDenied,
    TooManyAttempts,
)
from workflow.store.tables import (
    User,
)
from workflow.store.uow import UnitOfWork

#: Failed logins allowed per (username, client address) inside the window before refusing.
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 8
TOKEN_PREFIX = "bf_"


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so both paths cost one argon2
    verification (made on first use, with the hasher's current parameters)."""
    return hash_password("bangfu-dummy-password")



@dataclass(frozen=True)
class Seat:
    org_id: int
    org_code: str
    org_name: str
    org_kind: str
    org_depth: int
    role: str


@dataclass(frozen=True)
class UserInfo:
    """Who is logged in: the pages and ``/api/me`` show this."""

    id: int
    username: str
    display_name: str
    fingerprint: str
    memberships: tuple[Seat, ...]
    session_gen: int = 0

    def roles(self) -> set[str]:
        return {m.role for m in self.memberships}

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "memberships": [
                {"org_code": m.org_code, "org_name": m.org_name, "role": m.role}
                for m in self.memberships
            ],
        }


def fingerprint(password_hash: str | None) -> str:
    """A short digest of the password hash: a session carries it, so a reset or a handover ends
    every session opened with the old password."""
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def user_info(uow: UnitOfWork, *, user_id: int) -> UserInfo:
    with uow:
        return _user_info(uow, user_id)


def _seat_order(seat: Seat) -> tuple[int, str, str]:
    """Seats as a user sees them listed: shallowest organisation first, then by code and role."""
    return (seat.org_depth, seat.org_code, seat.role)


def _user_info(uow: UnitOfWork, user_id: int) -> UserInfo:
    user = uow.directory.user(user_id)
    mems = tuple(sorted((Seat(o.id or 0, o.code, o.name, o.kind, o.depth, r)
                         for o, r in uow.directory.memberships(user_id)), key=_seat_order))
    return UserInfo(user.id or 0, user.username, user.display_name,
                    fingerprint(user.password_hash), mems, user.session_gen or 0)


def end_sessions(uow: UnitOfWork, *, user_id: int) -> None:
    """Logout: every session cookie issued to the user so far stops working (the session
    generation moves on; a copied cookie carries the old one)."""
    with uow:
        uow.accounts.end_sessions(user_id)
        uow.commit()


# --- logging in -----------------------------------------------------------------------------


def authenticate(
    uow: UnitOfWork, *, username: str, password: str, client_ip: str, now: datetime | None = None
) -> int:
    """Check a username and password.

    The attempt is counted first, atomically and in its own short transaction (so the argon2
    check holds no write lock, and 30 simultaneous guesses see 30 different counts); only the
    first MAX_FAILURES attempts of a window reach the password check. A success forgets the
    attempts counted up to it (not those still in flight after it); a failure keeps its count
    and is also logged in ``login_failure``.

    Returns:
        The user id.

    Raises:
        TooManyAttempts: more than MAX_FAILURES attempts for this username from this address
            inside the window (checked before the password, so a correct guess does not get
            through either).
        LoginFailed: wrong username or password (one message for both).
    """
    now = now or clock.now()
    username = username.strip()[:64]
    client_ip = client_ip[:64]
    since = now - FAILURE_WINDOW
    with uow:
        attempts = uow.accounts.count_login_attempt(username, client_ip, now=now, since=since)
        uow.commit()
    if attempts > MAX_FAILURES:
        raise TooManyAttempts(
            f"登录失败次数过多：请 {int(FAILURE_WINDOW.total_seconds() // 60)} 分钟后再试，"
            "或请上级审核人重置密码"
        )
    with UnitOfWork(uow.database, readonly=True) as read:
        user = read.accounts.user_named(username)
        stored_hash = user.password_hash if user else None
        user_id, active = (user.id or 0, user.is_active) if user else (0, False)
    ok = verify_password(stored_hash or _dummy_hash(), password)
    with UnitOfWork(uow.database) as write:
        if user is None or not active or not ok:
            write.accounts.log_login_failure(username, client_ip, now)
            write.accounts.forget_old_login_attempts(since)  # keep the tables small
            write.commit()
            raise LoginFailed("用户名或密码不正确")
        write.accounts.clear_login_failures(username, client_ip)
        write.accounts.clear_login_attempts(username, client_ip, upto=attempts)
        write.commit()
        return user_id


# --- API tokens -----------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(uow: UnitOfWork, *, username: str, name: str = "", now: datetime | None = None) -> str:
    """Create a bearer token for a user; the token is shown once, only its hash is kept."""
    return create_tokens(uow, usernames=[username], name=name, now=now)[username]


def create_tokens(uow: UnitOfWork, *, usernames: list[str], name: str = "",
                  now: datetime | None = None) -> dict[str, str]:
    """A bearer token for each user, in one transaction (provisioning many machine clients at
    once, as the rush benchmark does): username → token, shown once, only the hashes kept."""
    now = now or clock.now()
    tokens: dict[str, str] = {}
    with uow:
        for username in usernames:
            user = uow.directory.user_by_name(username)
            token = TOKEN_PREFIX + secrets.token_urlsafe(32)
            uow.accounts.add_token(user_id=user.id or 0, name=name[:100], token_hash=_token_hash(token),
                                    now=now)
            tokens[username] = token
        uow.commit()
    return tokens


def user_for_token(uow: UnitOfWork, *, token: str) -> UserInfo | None:
    """The user a bearer token belongs to, with their seats, or None (unknown, revoked,
    inactive user). Every API request asks: the token is hashed once and looked up with the
    user and the seats in one statement, never remembered, so a revocation or a deactivation
    committed by any process stops the token on its next request."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    with uow:
        found = uow.accounts.token_user_with_seats(_token_hash(token))
    if found is None:
        return None
    (user_id, username, display_name, password_hash, session_gen), seats = found
    return UserInfo(user_id, username, display_name, fingerprint(password_hash),
                    tuple(sorted((Seat(*seat) for seat in seats), key=_seat_order)), session_gen or 0)


def revoke_tokens(uow: UnitOfWork, user_id: int, now: datetime) -> None:
    """Inside an open unit of work: revoke every token of a user."""
    uow.accounts.revoke_tokens(user_id, now)


# --- a reviewer managing subordinate clerks -------------------------------------------------


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadInput(f"新密码至少 {MIN_PASSWORD_LENGTH} 个字符", code="password.too_short")
    if password.isdigit() and len(set(password)) <= 2:
        raise BadInput("新密码过于简单", code="password.too_simple")


def _managed(uow: UnitOfWork, actor_id: int, username: str) -> User:
    """The clerk account ``username`` if the actor is a reviewer of its organisation's parent."""
    target = uow.accounts.user_named(username.strip())
    if target is None:
        raise NotFound(f"找不到用户“{username}”", code="user.not_found")
    actor_mems = uow.directory.memberships(actor_id)
    target_mems = uow.directory.memberships(target.id or 0)
    if not access.can_view_account(actor_mems, target_mems):
        raise NotFound(f"找不到用户“{username}”", code="user.not_found")
    if refusal := access.account_refusal(actor_mems, target_mems):
        raise PermissionDenied(refusal.message, code=refusal.code)
    return target


def _audit(uow: UnitOfWork, actor_id: int, target_id: int, action: str, detail: dict[str, Any],
           now: datetime) -> None:
    uow.accounts.add_event(at=now, actor_user_id=actor_id, target_user_id=target_id, action=action,
                            detail=json.dumps(detail, ensure_ascii=False))


def reset_password(
    uow: UnitOfWork, *, actor_id: int, username: str, new_password: str, now: datetime | None = None
) -> None:
    """A parent's reviewer sets a subordinate clerk's password; the clerk's sessions end and the
    clerk's API tokens are revoked."""
    now = now or clock.now()
    _check_password(new_password)
    with uow:
        target = _managed(uow, actor_id, username)
        target.password_hash = hash_password(new_password)
        uow.accounts.save_user(target)
        revoke_tokens(uow, target.id or 0, now)
        _audit(uow, actor_id, target.id or 0, "password_reset", {}, now)
        uow.commit()


def handover(
    uow: UnitOfWork,
    *,
    actor_id: int,
    username: str,
    display_name: str,
    new_password: str,
    email: str | None = None,
    phone: str | None = None,
    now: datetime | None = None,
) -> None:
    """Hand a clerk's account over to a new person: same username and membership, new name and
    contact details, a new password; the old holder's sessions and tokens end."""
    now = now or clock.now()
    display_name = text.clean_text(display_name, field="新填报员姓名")
    email = text.clean_text(email or "", field="电子邮箱")
    phone = text.clean_text(phone or "", field="联系电话")
    if not display_name:
        raise BadInput("请填写新填报员姓名", code="handover.name_missing")
    if len(display_name) > 100:
        raise BadInput("姓名不能超过 100 个字符", code="handover.name_too_long")
    for refusal in (rules.check_email(email), rules.check_phone(phone) if phone else None):
        if refusal:
            raise BadInput(refusal.message, code=refusal.code)
    _check_password(new_password)
    with uow:
        target = _managed(uow, actor_id, username)
        before = {"display_name": target.display_name, "email": target.email, "phone": target.phone}
        target.display_name = display_name
        target.email = email or None
        target.phone = phone or None
        target.password_hash = hash_password(new_password)
        uow.accounts.save_user(target)
        revoke_tokens(uow, target.id or 0, now)
        _audit(uow, actor_id, target.id or 0, "handover", {"before": before}, now)
        uow.commit()


def managed_clerks(uow: UnitOfWork, *, actor_id: int) -> list[dict[str, Any]]:
    """The clerk accounts of the organisations directly under the actor's reviewer seats."""
    with uow:
        reviewer_org_ids = [o.id for o, r in uow.directory.memberships(actor_id) if r == states.REVIEWER]
        if not reviewer_org_ids:
            return []
        rows = uow.accounts.clerks_under([i for i in reviewer_org_ids if i is not None])
        return [
            {"username": u, "display_name": d, "email": e, "phone": p, "org_code": c, "org_name": n}
            for u, d, e, p, c, n in rows
        ]


def set_password(uow: UnitOfWork, *, username: str, new_password: str) -> None:
    """Set a password directly (administration and tests; no actor check)."""
    _check_password(new_password)
    with uow:
        user = uow.directory.user_by_name(username)
        user.password_hash = hash_password(new_password)
        uow.accounts.save_user(user)
        uow.commit()
