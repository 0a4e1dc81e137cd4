"""The one place where SQLAlchemy's and the drivers' exceptions become the domain's errors (as
httpx maps its transport's exceptions in one place): nothing above the store names them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from workflow.domain.errors import NotFound, StoreError, StoreUnavailable

#: Failures that say nothing about the statement: the database was away, busy or dropped us.
_TRANSIENT = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)


def translate(exc: BaseException) -> None:
    """Raise the domain's error for a database error (chained to it); return for any other."""
    if not isinstance(exc, SQLAlchemyError):
        return
    cause = f"{type(exc).__name__}: {str(getattr(exc, 'orig', None) or exc).strip().splitlines()[0][:300]}"
    if isinstance(exc, _TRANSIENT) or (isinstance(exc, DBAPIError) and exc.connection_invalidated):
        raise StoreUnavailable("数据库暂时无法连接或繁忙，请稍后重试", cause=cause) from exc
    raise StoreError(f"数据库拒绝了这次操作（{type(exc).__name__}）", cause=cause) from exc


@contextmanager
def translated() -> Iterator[None]:
    """Run a block whose database errors leave it as the domain's (for work outside a unit of
    work: the scheduler's batches, the engine's checks)."""
    try:
        yield
    except SQLAlchemyError as exc:
        translate(exc)
        raise


#: The one refusal per lookup: (message template, code) by what was looked up.
_MISSING = {
    "org": ("找不到单位 #{}", "org.not_found"),
    "org_code": ("找不到单位代码“{}”", "org.not_found"),
    "user": ("找不到用户 #{}", "user.not_found"),
    "username": ("找不到用户“{}”", "user.not_found"),
    "round": ("找不到年度 #{}", "round.not_found"),
    "round_label": ("找不到年度“{}”", "round.not_found"),
    "record": ("找不到记录 #{}", "record.not_found"),
}


def not_found(what: str, key: object) -> NotFound:
    """The :class:`NotFound` for a missing ``what`` (a key of :data:`_MISSING`) named ``key``."""
    message, code = _MISSING[what]
    return NotFound(message.format(key), code=code)
