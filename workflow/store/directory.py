"""The SQL of the directory imports beside the unit of work's bulk helpers: organisations by
code, users as plain rows, their updates in one executemany, and memberships."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select, update

from workflow.store.tables import Membership, Organisation, User
from workflow.store.uow import UnitOfWork

#: The user fields an import may change.
USER_FIELDS = ("display_name", "email", "phone", "channels", "password_hash")


def org_ids_by_code(uow: UnitOfWork) -> dict[str, int]:
    o = Organisation.__table__
    return {code: int(i) for code, i in uow.session.execute(select(o.c.code, o.c.id)).all()}


def user_rows(uow: UnitOfWork) -> dict[str, Any]:
    """Every user by name: (username, id, email, phone, channels, password_hash)."""
    u = User.__table__
    return {r.username: r for r in uow.session.execute(
        select(u.c.username, u.c.id, u.c.email, u.c.phone, u.c.channels, u.c.password_hash)).all()}


def update_users(uow: UnitOfWork, changed: list[dict[str, Any]]) -> None:
    """``changed``: dicts with ``b_username`` and every field of :data:`USER_FIELDS`."""
    if not changed:
        return
    table = User.__table__
    uow.session.execute(
        update(table).where(table.c.username == bindparam("b_username"))
        .values({k: bindparam(k) for k in USER_FIELDS})
        .execution_options(synchronize_session=False),
        changed,
    )


def memberships(uow: UnitOfWork) -> set[tuple[int, int, str]]:
    return {(u, o, r) for u, o, r in uow.session.execute(
        select(Membership.user_id, Membership.org_id, Membership.role))}
