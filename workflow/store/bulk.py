"""Driver-level helpers shared by the unit of work and the set-based store modules: values as
the driver takes them, and bulk inserts (``COPY`` on PostgreSQL, ``executemany`` on SQLite)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy.engine import Connection

#: Rows per ``executemany`` of a SQLite bulk insert.
BULK_BATCH = 10_000


def driver_value(dialect: str, value: Any) -> Any:
    """A value as the driver takes it, stored exactly as SQLAlchemy's column types store it:
    on SQLite naive-UTC text for instants (refusing naive ones), ISO text for dates, 0/1."""
    if dialect != "sqlite":
        if isinstance(value, datetime) and value.tzinfo is None:
            raise ValueError("naive datetime refused: bangfu stores aware UTC instants only")
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: bangfu stores aware UTC instants only")
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


#: Values SQLite's driver takes as they are.
_PLAIN = frozenset({str, int, float, type(None)})


@lru_cache(maxsize=1024)
def _lite(value: Any) -> Any:
    """:func:`driver_value` on SQLite, memoised (a bulk load repeats the same instant)."""
    return driver_value("sqlite", value)


def driver_value_cached(value: Any) -> Any:
    """:func:`driver_value` on SQLite for a hashable value: plain ones as they are, the rest
    memoised (a transition's rollup rows repeat one deadline)."""
    return value if type(value) in _PLAIN else _lite(value)


def bulk_insert(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
                ready: bool = False) -> int:
    """Insert many rows inside the connection's transaction: ``COPY`` on PostgreSQL, the
    driver's ``executemany`` in batches on SQLite. Values are plain Python (instants aware), or
    with ``ready`` already as the driver takes them (:func:`driver_value`), so no value is
    looked at (a province's 430,000 users)."""
    raw = conn.connection.driver_connection
    assert raw is not None
    cols = ", ".join(columns)
    n = 0
    cur = raw.cursor()
    try:
        if conn.dialect.name == "postgresql":
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    n += 1
        else:
            sql = f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' for _ in columns)})"
            batch: list[Sequence[Any]] = []
            for row in rows:
                batch.append(row if ready else tuple(v if type(v) in _PLAIN else _lite(v) for v in row))
                if len(batch) >= BULK_BATCH:
                    cur.executemany(sql, batch)
                    n += len(batch)
                    batch = []
            if batch:
                cur.executemany(sql, batch)
                n += len(batch)
    finally:
        cur.close()
    return n
