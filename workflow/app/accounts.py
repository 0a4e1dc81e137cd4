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
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import states
from workflow.app import oplog
from workflow.app.oplog import audited
from workflow.app.passwords import hash_password, verify_password
from workflow.domain import access, clock, privacy, rules, security, text
from workflow.domain.errors import (
    AccountLocked,
    BadInput,
    LoginFailed,
    NotFound,
    PermissionDenied,
    TooManyAttempts,
)
from workflow.domain.security import DEFAULT_RULES, SecurityRules
from workflow.store.tables import (
    User,
)
from workflow.store.uow import UnitOfWork

#: Failed logins allowed per (username, client address) inside the window before refusing.
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = DEFAULT_RULES.min_length
TOKEN_PREFIX = "bf_"

log = logging.getLogger("bangfu.accounts")


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
    #: The password was set by someone else or has expired: only changing it is allowed.
    must_change_password: bool = False

    def roles(self) -> set[str]:
        return {m.role for m in self.memberships}

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "must_change_password": self.must_change_password,
            "memberships": [
                {"org_code": m.org_code, "org_name": m.org_name, "role": m.role}
                for m in self.memberships
            ],
        }


def fingerprint(password_hash: str | None) -> str:
    """A short digest of the password hash: a session carries it, so a reset or a handover ends
    every session opened with the old password."""
    return hashlib.sha256((password_hash or "").encode()).hexdigest()[:16]


def user_info(uow: UnitOfWork, *, user_id: int, policy: SecurityRules = DEFAULT_RULES,
              now: datetime | None = None) -> UserInfo:
    with uow:
        return _user_info(uow, user_id, policy, now or clock.now())


def _seat_order(seat: Seat) -> tuple[int, str, str]:
    """Seats as a user sees them listed: shallowest organisation first, then by code and role."""
    return (seat.org_depth, seat.org_code, seat.role)


def _must_change(flag: bool | None, changed_at: datetime | None, policy: SecurityRules, now: datetime) -> bool:
    """Set by someone else (a reset, a handover, an import) or expired: only a change is allowed."""
    return bool(flag) or security.password_expired(changed_at, now, policy)


def _user_info(uow: UnitOfWork, user_id: int, policy: SecurityRules = DEFAULT_RULES,
               now: datetime | None = None) -> UserInfo:
    user = uow.directory.user(user_id)
    mems = tuple(sorted((Seat(o.id or 0, o.code, o.name, o.kind, o.depth, r)
                         for o, r in uow.directory.memberships(user_id)), key=_seat_order))
    must_change = _must_change(user.must_change_password, user.password_changed_at, policy, now or clock.now())
    return UserInfo(user.id or 0, user.username, user.display_name,
                    fingerprint(user.password_hash), mems, user.session_gen or 0, must_change)


def security_event(uow: UnitOfWork, action: str, *, user_id: int | None, username: str,
                   actor_id: int | None = None, outcome: str = oplog.OK, client_ip: str = "",
                   **detail: Any) -> None:
    """Inside an open unit of work: the operation-log row of a login, a failed login, a lockout
    or a reveal of contact data (the one place this module writes them; ``oplog.record``)."""
    oplog.record(uow, actor_id if actor_id is not None else user_id, None, None, action, f"user:{username}",
                 outcome, client_ip or None, detail or None,
                 actor_name=username if user_id is None and actor_id is None else None)


@audited('auth.logout')
def end_sessions(uow: UnitOfWork, *, user_id: int) -> None:
    """Logout: every session cookie issued to the user so far stops working (the session
    generation moves on; a copied cookie carries the old one)."""
    with uow:
        uow.accounts.end_sessions(user_id)
        uow.commit()


# --- logging in -----------------------------------------------------------------------------


def authenticate(
    uow: UnitOfWork, *, username: str, password: str, client_ip: str, now: datetime | None = None,
    policy: SecurityRules = DEFAULT_RULES, totp: str | None = None,
) -> int:
    """Check a username and password (and the TOTP code of an account that has a second factor).

    The attempt is counted first, atomically and in its own short transaction (so the argon2
    check holds no write lock, and 30 simultaneous guesses see 30 different counts); only the
    first MAX_FAILURES attempts of a window reach the password check. A success forgets the
    attempts counted up to it (not those still in flight after it); a failure keeps its count
    and is also logged in ``login_failure``.

    Besides that throttle per (username, address), the account counts its failures in a row:
    the ``policy.lockout_failures``-th of them (still answered as a failure) locks it until the security administrator unlocks it
    (:func:`unlock`) or ``policy.lockout_minutes`` pass. Every success, failure and lockout is
    an audit row (:func:`security_event`).

    Returns:
        The user id.

    Raises:
        TooManyAttempts: more than MAX_FAILURES attempts for this username from this address
            inside the window (checked before the password, so a correct guess does not get
            through either).
        AccountLocked: the account is locked (checked before the password too).
        LoginFailed: wrong username or password (one message for both), or a missing or wrong
            TOTP code (code ``login.totp_required`` / ``login.totp_wrong``).
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
        locked_at = user.locked_at if user else None
        totp_secret = user.totp_secret if user else None
    if user is not None and security.locked(locked_at, now, policy):
        with UnitOfWork(uow.database) as write:
            security_event(write, "auth.login_failed", user_id=user_id, username=username, outcome=oplog.REFUSED,
                           client_ip=client_ip, code="login.locked")
            write.commit()
        raise AccountLocked(_locked_message(policy))
    ok = verify_password(stored_hash or _dummy_hash(), password)
    refusal: LoginFailed | None = None
    if not (user is not None and active and ok):
        refusal = LoginFailed("用户名或密码不正确")
    elif totp_secret and not (totp or "").strip():
        refusal = LoginFailed("请填写手机验证器上的 6 位动态口令", code="login.totp_required")
    elif totp_secret and not _totp_ok(totp_secret, totp or "", now):
        refusal = LoginFailed("动态口令不正确或已过期", code="login.totp_wrong")
    with UnitOfWork(uow.database) as write:
        if refusal is not None:
            write.accounts.log_login_failure(username, client_ip, now)
            write.accounts.forget_old_login_attempts(since)  # keep the tables small
            if user is not None and refusal.code != "login.totp_required":
                failures = write.accounts.count_failed_login(user_id, start_over=locked_at is not None)
                security_event(write, "auth.login_failed", user_id=user_id, username=username,
                               outcome=oplog.REFUSED, client_ip=client_ip, code=refusal.code)
                if failures >= policy.lockout_failures:
                    write.accounts.lock(user_id, now)
                    security_event(write, "auth.lockout", user_id=user_id, username=username,
                                   client_ip=client_ip, failures=failures)
            else:  # no such account: the row names what was typed
                security_event(write, "auth.login_failed", user_id=None, username=username,
                               outcome=oplog.REFUSED, client_ip=client_ip, code=refusal.code)
            write.commit()
            raise refusal  # this attempt is answered as a failure; the next ones find the lock
        write.accounts.clear_login_failures(username, client_ip)
        write.accounts.clear_login_attempts(username, client_ip, upto=attempts)
        write.accounts.clear_lockout(user_id)
        security_event(write, "auth.login", user_id=user_id, username=username, client_ip=client_ip)
        write.commit()
        return user_id


def sso_login(uow: UnitOfWork, *, account: str, client_ip: str, provider: str, now: datetime | None = None,
              policy: SecurityRules = DEFAULT_RULES) -> int:
    """Single sign-on: the identity provider vouched for ``account`` (the configured claim of
    its ID token); the bangfu account of that name, if it exists, is active and not locked.

    Raises:
        LoginFailed: no active account of that name (code ``login.sso_unknown``).
        AccountLocked: the account is locked.
    """
    now = now or clock.now()
    account = account.strip()[:64]
    with uow:
        user = uow.accounts.user_named(account) if account else None
        if user is None or not user.is_active:
            security_event(uow, "auth.login_failed", user_id=None, username=account or "-",
                           outcome=oplog.REFUSED, client_ip=client_ip, code="login.sso_unknown", via=provider)
            uow.commit()
            raise LoginFailed("统一身份认证的账号在本系统中没有对应的有效账号，请联系管理员开通",
                              code="login.sso_unknown")
        if security.locked(user.locked_at, now, policy):
            security_event(uow, "auth.login_failed", user_id=user.id or 0, username=account,
                           outcome=oplog.REFUSED, client_ip=client_ip, code="login.locked", via=provider)
            uow.commit()
            raise AccountLocked(_locked_message(policy))
        security_event(uow, "auth.login", user_id=user.id or 0, username=account, client_ip=client_ip,
                       via=provider)
        uow.commit()
        return user.id or 0


def sso_failed(uow: UnitOfWork, *, client_ip: str, provider: str, reason: str) -> None:
    """A sign-on the identity provider did not complete (a refused code, an ID token that does
    not verify): its operation-log row, no account named (none was vouched for)."""
    with uow:
        security_event(uow, "auth.login_failed", user_id=None, username="-", outcome=oplog.REFUSED,
                       client_ip=client_ip, code="login.sso_failed", via=provider, reason=reason[:200])
        uow.commit()


def _locked_message(policy: SecurityRules) -> str:
    after = f"，或 {policy.lockout_minutes} 分钟后再试" if policy.lockout_minutes > 0 else ""
    return f"连续登录失败次数过多，账号已锁定：请联系安全管理员解锁{after}"


def _totp_ok(secret: str, code: str, now: datetime) -> bool:
    import pyotp  # lazy: only accounts with a second factor need it (a clerk's command stays light)

    return bool(pyotp.TOTP(secret).verify(code.strip(), for_time=now, valid_window=1))


@audited('user.unlock')
def unlock(uow: UnitOfWork, *, username: str, actor_id: int | None = None, now: datetime | None = None) -> None:
    """Lift a lockout: the security administrator (a page, or ``bangfu unlock USER --as``), or
    the operator on the command line (``actor_id`` None)."""
    with uow:
        if actor_id is not None and (refusal := access.unlock_refusal(uow.directory.memberships(actor_id))):
            raise PermissionDenied(refusal.message, code=refusal.code)
        user = uow.accounts.user_named(username.strip())
        if user is None:
            raise NotFound(f"找不到用户“{username}”", code="user.not_found")
        uow.accounts.clear_lockout(user.id or 0)
        uow.commit()


def locked_accounts(uow: UnitOfWork, *, actor_id: int, policy: SecurityRules = DEFAULT_RULES,
                    now: datetime | None = None) -> list[dict[str, Any]]:
    """The accounts locked now, for the security administrator's page."""
    now = now or clock.now()
    with uow:
        if refusal := access.unlock_refusal(uow.directory.memberships(actor_id)):
            raise PermissionDenied(refusal.message, code=refusal.code)
        return [{"username": u.username, "display_name": u.display_name, "locked_at": u.locked_at,
                 "failures": u.failed_logins}
                for u in uow.accounts.locked_users() if security.locked(u.locked_at, now, policy)]


@audited('user.totp_enroll')
def enroll_totp(uow: UnitOfWork, *, username: str, now: datetime | None = None) -> str:
    """Give an account (an administrator's) a second factor: a new TOTP secret; returns the
    ``otpauth://`` address to put into an authenticator app (shown once)."""
    import pyotp  # lazy: only accounts with a second factor need it (a clerk's command stays light)

    now = now or clock.now()
    secret = pyotp.random_base32()
    with uow:
        user = uow.directory.user_by_name(username.strip())
        user.totp_secret = secret
        uow.accounts.save_user(user)
        uow.commit()
    return str(pyotp.TOTP(secret).provisioning_uri(name=username.strip(), issuer_name="bangfu"))


@audited('auth.password_change')
def change_password(uow: UnitOfWork, *, user_id: int, current_password: str, new_password: str,
                    policy: SecurityRules = DEFAULT_RULES, now: datetime | None = None) -> UserInfo:
    """The user chooses a new password: the current one must be right, the new one must follow
    the rules and differ from the last ``policy.history`` passwords. The forced change ends here.
    Returns the user's new info (the old sessions end: the fingerprint changed)."""
    now = now or clock.now()
    with uow:
        user = uow.directory.user(user_id)
        if not verify_password(user.password_hash, current_password):
            raise PermissionDenied("原密码不正确", code="password.wrong_current")
        check_password(new_password, policy)
        _set_password(uow, user, new_password, policy, now, must_change=False)
        uow.commit()
        return _user_info(uow, user_id, policy, now)


def _set_password(uow: UnitOfWork, user: User, new_password: str, policy: SecurityRules, now: datetime, *,
                  must_change: bool, dated: bool = True) -> None:
    """Inside an open unit of work: the one place a password is stored. Refuses the last
    ``policy.history`` passwords; keeps the replaced hash in the history. An undated password
    (a seeded demo or test account's) never expires."""
    earlier = ([user.password_hash] if user.password_hash else []) + uow.accounts.password_history(
        user.id or 0, policy.history - 1)
    if any(verify_password(h, new_password) for h in earlier[:policy.history]):
        raise BadInput(f"新密码不能与最近 {policy.history} 次用过的密码相同", code="password.reused")
    if user.password_hash:
        uow.accounts.remember_password(user.id or 0, user.password_hash, now, keep=max(policy.history - 1, 1))
    user.password_hash = hash_password(new_password)
    user.password_changed_at = now if dated else None
    user.must_change_password = must_change
    uow.accounts.save_user(user)


# --- API tokens -----------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@audited('token.create', keep=('name',))
def create_token(uow: UnitOfWork, *, username: str, name: str = "", now: datetime | None = None) -> str:
    """Create a bearer token for a user; the token is shown once, only its hash is kept."""
    return create_tokens(uow, usernames=[username], name=name, now=now)[username]


@audited('token.create', keep=('name',), subject=lambda kw: "user:" + ",".join(kw.get("usernames") or []))
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


def user_for_token(uow: UnitOfWork, *, token: str, policy: SecurityRules = DEFAULT_RULES) -> UserInfo | None:
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
    (user_id, username, display_name, password_hash, session_gen, must_change, changed_at), seats = found
    return UserInfo(user_id, username, display_name, fingerprint(password_hash),
                    tuple(sorted((Seat(*seat) for seat in seats), key=_seat_order)), session_gen or 0,
                    _must_change(must_change, _aware(changed_at), policy, clock.now()))


def _aware(value: Any) -> datetime | None:
    """An instant read by a statement without the column types (SQLite: naive UTC text)."""
    if value is None or isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def revoke_tokens(uow: UnitOfWork, user_id: int, now: datetime) -> None:
    """Inside an open unit of work: revoke every token of a user."""
    uow.accounts.revoke_tokens(user_id, now)


# --- a reviewer managing subordinate clerks -------------------------------------------------


def check_password(password: str, policy: SecurityRules = DEFAULT_RULES) -> None:
    """Refuse a new password the rules do not accept (length, character classes)."""
    if refusal := security.password_refusal(password, policy):
        raise BadInput(refusal.message, code=refusal.code)


def _managed(uow: UnitOfWork, actor_id: int, username: str) -> User:
    """The clerk account ``username`` if the actor is a reviewer of its organisation's parent."""
    target = uow.accounts.user_named(username.strip())
    if target is None:
        raise NotFound(f"找不到用户“{username}”", code="user.not_found")
    actor_mems = uow.directory.memberships(actor_id)
    target_mems = uow.directory.memberships(target.id or 0)
    if access.admin_account_refusal(actor_mems, target_mems) is None:
        return target  # a system administrator covering the account (三员分立)
    if not access.can_view_account(actor_mems, target_mems):
        raise NotFound(f"找不到用户“{username}”", code="user.not_found")
    if refusal := access.account_refusal(actor_mems, target_mems):
        raise PermissionDenied(refusal.message, code=refusal.code)
    return target


def _audit(uow: UnitOfWork, actor_id: int, target_id: int, action: str, detail: dict[str, Any],
           now: datetime) -> None:
    uow.accounts.add_event(at=now, actor_user_id=actor_id, target_user_id=target_id, action=action,
                            detail=json.dumps(detail, ensure_ascii=False))


@audited('user.reset_password')
def reset_password(
    uow: UnitOfWork, *, actor_id: int, username: str, new_password: str, now: datetime | None = None,
    policy: SecurityRules = DEFAULT_RULES,
) -> None:
    """A parent's reviewer sets a subordinate clerk's password; the clerk's sessions end and the
    clerk's API tokens are revoked, and the clerk must choose a new password at the next login."""
    now = now or clock.now()
    check_password(new_password, policy)
    with uow:
        target = _managed(uow, actor_id, username)
        _set_password(uow, target, new_password, policy, now, must_change=True)
        uow.accounts.clear_lockout(target.id or 0)
        revoke_tokens(uow, target.id or 0, now)
        _audit(uow, actor_id, target.id or 0, "password_reset", {}, now)
        uow.commit()


@audited('user.handover', keep=('display_name',))
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
    policy: SecurityRules = DEFAULT_RULES,
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
    check_password(new_password, policy)
    with uow:
        target = _managed(uow, actor_id, username)
        before = {"display_name": target.display_name, "email": target.email, "phone": target.phone}
        target.display_name = display_name
        target.email = email or None
        target.phone = phone or None
        target.totp_secret = None  # the old holder's second factor goes with them
        _set_password(uow, target, new_password, policy, now, must_change=True)
        uow.accounts.clear_lockout(target.id or 0)
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
        # A list to manage accounts by, not to call from: phones and addresses masked.
        return [
            {"username": u, "display_name": d, "email": privacy.mask_email(e), "phone": privacy.mask_phone(p),
             "org_code": c, "org_name": n}
            for u, d, e, p, c, n in rows
        ]


#: Seeding a demonstration or test account: the length rule only (the demo's ``demo1234``).
SEED_RULES = SecurityRules(min_classes=1, history=1)


@audited('user.set_password')
def set_password(uow: UnitOfWork, *, username: str, new_password: str, must_change: bool = False,
                 policy: SecurityRules = SEED_RULES, now: datetime | None = None) -> None:
    """Set a password directly (seeding demo and test accounts; no actor check). With the
    default rules only the length is checked and no change is forced; an operator setting a
    real person's password passes ``must_change=True`` and the deployment's rules."""
    now = now or clock.now()
    check_password(new_password, policy)
    with uow:
        user = uow.directory.user_by_name(username)
        user.password_hash = None  # seeding repeats freely: no history check
        _set_password(uow, user, new_password, policy, now, must_change=must_change, dated=must_change)
        uow.accounts.clear_lockout(user.id or 0)
        uow.commit()
