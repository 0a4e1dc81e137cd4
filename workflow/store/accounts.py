"""The SQL of accounts: API tokens (only their hashes), the audit of account changes, users by
name, and the clerk accounts under a reviewer's seats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update

import states
from workflow.store.tables import AccountEvent, ApiToken, Membership, Organisation, User
from workflow.store.uow import UnitOfWork


def add_token(uow: UnitOfWork, *, user_id: int, name: str, token_hash: str, now: datetime) -> None:
    uow.session.add(ApiToken(user_id=user_id, name=name, token_hash=token_hash, created_at=now))


def token_user(uow: UnitOfWork, token_hash: str) -> int | None:
    """The active user a live token belongs to, or None. One statement (every API request asks)."""
    return uow.session.execute(_TOKEN_USER, {"token_hash": token_hash}).scalar_one_or_none()


_T, _U = ApiToken.__table__, User.__table__  # type: ignore[attr-defined]
_TOKEN_USER = (select(_T.c.user_id).join(_U, _U.c.id == _T.c.user_id)
               .where(_T.c.token_hash == bindparam("token_hash"), _T.c.revoked_at.is_(None),
                      _U.c.is_active.is_(True)))


def revoke_tokens(uow: UnitOfWork, user_id: int, now: datetime) -> None:
    uow.session.execute(
        update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def user_named(uow: UnitOfWork, username: str) -> User | None:
    """A user by name, active or not."""
    return uow.session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def save_user(uow: UnitOfWork, user: User) -> None:
    uow.session.add(user)


def add_event(uow: UnitOfWork, *, at: datetime, actor_user_id: int, target_user_id: int, action: str,
              detail: str) -> None:
    uow.session.add(AccountEvent(at=at, actor_user_id=actor_user_id, target_user_id=target_user_id,
                                 action=action, detail=detail))


def clerks_under(uow: UnitOfWork, org_ids: list[int]) -> list[Any]:
    """(username, display name, email, phone, org code, org name) of the active clerks of the
    organisations directly under ``org_ids``."""
    return list(uow.session.execute(
        select(User.username, User.display_name, User.email, User.phone, Organisation.code, Organisation.name)
        .join(Membership, Membership.user_id == User.id)
        .join(Organisation, Organisation.id == Membership.org_id)
        .where(Organisation.parent_id.in_(org_ids), Membership.role == states.CLERK, User.is_active.is_(True))
        .order_by(Organisation.code, User.username)
    ).all())
