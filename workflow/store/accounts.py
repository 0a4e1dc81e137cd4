"""The SQL of accounts: API tokens (only their hashes), the audit of account changes, users by
name, and the clerk accounts under a reviewer's seats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, delete, select, update

import states
from workflow.store.dialects import upsert_insert
from workflow.store.tables import (
    AccountEvent,
    ApiToken,
    LoginFailure,
    LoginThrottle,
    Membership,
    Organisation,
    User,
)
from workflow.store.transaction import Transaction

_T, _U = ApiToken.__table__, User.__table__  # type: ignore[attr-defined]
_M, _O = Membership.__table__, Organisation.__table__  # type: ignore[attr-defined]
_LIVE_TOKEN = (_T.c.token_hash == bindparam("token_hash"), _T.c.revoked_at.is_(None), _U.c.is_active.is_(True))
#: The live token's active user and each of their seats (none: one row of NULL seat columns).
_TOKEN_USER_SEATS = (
    select(_U.c.id, _U.c.username, _U.c.display_name, _U.c.password_hash, _U.c.session_gen,
           _O.c.id, _O.c.code, _O.c.name, _O.c.kind, _O.c.depth, _M.c.role)
    .select_from(_T.join(_U, _U.c.id == _T.c.user_id)
                 .outerjoin(_M, _M.c.user_id == _U.c.id).outerjoin(_O, _O.c.id == _M.c.org_id))
    .where(*_LIVE_TOKEN)
)



class Accounts:
    """Accounts: API tokens (hashes only), account events, the login throttle, users by name."""

    def __init__(self, uow: Transaction) -> None:
        self._uow = uow

    def add_token(self, *, user_id: int, name: str, token_hash: str, now: datetime) -> None:
        self._uow.session.add(ApiToken(user_id=user_id, name=name, token_hash=token_hash, created_at=now))

    def token_user_with_seats(self, token_hash: str) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]] | None:
        """The active user a live token belongs to — (id, username, display name, password
        hash, session generation) — and their seats as (org id, code, name, kind, depth, role),
        in one statement; None for an unknown, revoked or inactive user's token."""
        rows = self._uow.connection().execute(_TOKEN_USER_SEATS, {"token_hash": token_hash}).all()
        if not rows:
            return None
        return tuple(rows[0][:5]), [tuple(r[5:]) for r in rows if r[5] is not None]

    def revoke_tokens(self, user_id: int, now: datetime) -> None:
        self._uow.session.execute(
            update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    def user_named(self, username: str) -> User | None:
        """A user by name, active or not."""
        return self._uow.session.execute(select(User).where(User.username == username)).scalar_one_or_none()

    def save_user(self, user: User) -> None:
        self._uow.session.add(user)

    def add_event(self, *, at: datetime, actor_user_id: int, target_user_id: int, action: str,
                  detail: str) -> None:
        self._uow.session.add(AccountEvent(at=at, actor_user_id=actor_user_id, target_user_id=target_user_id,
                                     action=action, detail=detail))

    def clerks_under(self, org_ids: list[int]) -> list[Any]:
        """(username, display name, email, phone, org code, org name) of the active clerks of the
        organisations directly under ``org_ids``."""
        return list(self._uow.session.execute(
            select(User.username, User.display_name, User.email, User.phone, Organisation.code, Organisation.name)
            .join(Membership, Membership.user_id == User.id)
            .join(Organisation, Organisation.id == Membership.org_id)
            .where(Organisation.parent_id.in_(org_ids), Membership.role == states.CLERK, User.is_active.is_(True))
            .order_by(Organisation.code, User.username)
        ).all())

    def count_login_attempt(self, username: str, client_ip: str, *, now: datetime, since: datetime) -> int:
        """Count one more login attempt for (username, address) and return the count in the
        current window, in one atomic statement (INSERT … ON CONFLICT DO UPDATE … RETURNING): the
        row lock serialises concurrent attempts, so no two of them read the same count. A window
        older than ``since`` starts again at 1."""
        table = LoginThrottle.__table__
        stmt = upsert_insert(self._uow.dialect, table).values(username=username, client_ip=client_ip, window_start=now, attempts=1)
        stale = table.c.window_start <= since
        stmt = stmt.on_conflict_do_update(
            index_elements=["username", "client_ip"],
            set_={
                "attempts": case((stale, 1), else_=table.c.attempts + 1),
                "window_start": case((stale, now), else_=table.c.window_start),
            },
        ).returning(table.c.attempts)
        return int(self._uow.session.execute(stmt).scalar_one())

    def clear_login_attempts(self, username: str, client_ip: str, *, upto: int) -> None:
        """After a success: forget the attempts counted up to this one (``upto``, the count it
        was given); attempts counted after it, still in flight, keep counting."""
        table = LoginThrottle.__table__
        self._uow.session.execute(
            update(table)
            .where(table.c.username == username, table.c.client_ip == client_ip)
            .values(attempts=case((table.c.attempts > upto, table.c.attempts - upto), else_=0))
        )

    def forget_old_login_attempts(self, since: datetime) -> None:
        table = LoginThrottle.__table__
        self._uow.session.execute(delete(table).where(table.c.window_start <= since))
        failures = LoginFailure.__table__
        self._uow.session.execute(delete(failures).where(failures.c.at <= since))

    def log_login_failure(self, username: str, client_ip: str, at: datetime) -> None:
        self._uow.session.add(LoginFailure(username=username, client_ip=client_ip, at=at))

    def clear_login_failures(self, username: str, client_ip: str) -> None:
        failures = LoginFailure.__table__
        self._uow.session.execute(delete(failures).where(failures.c.username == username,
                                                    failures.c.client_ip == client_ip))

    def end_sessions(self, user_id: int) -> None:
        """Move the user's session generation on: every cookie issued so far stops working."""
        self._uow.session.execute(update(User).where(User.id == user_id).values(session_gen=User.session_gen + 1))
