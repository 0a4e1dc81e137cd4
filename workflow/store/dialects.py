"""The one place that picks a dialect's ``INSERT`` (for ``ON CONFLICT``): a SQLite process never
loads SQLAlchemy's PostgreSQL package, which imports every PostgreSQL driver's module (a clerk's
command on the embedded default pays for none of them)."""

from __future__ import annotations

from typing import Any


def upsert_insert(dialect: str, table: Any) -> Any:
    """``INSERT`` for ``table`` with the dialect's ``on_conflict_do_nothing/update``."""
    if dialect == "postgresql":
        # Lazy: loaded only by a PostgreSQL process (start-up time of the embedded default).
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as lite_insert  # lazy, see above

    return lite_insert(table)
