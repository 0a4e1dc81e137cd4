"""Driver-level helpers shared by the unit of work and the set-based store modules: values as
the driver takes them, and bulk inserts (``COPY`` on PostgreSQL, ``executemany`` on SQLite)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, text, update
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from workflow.store.transaction import Transaction

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
        return _instant_text(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


@lru_cache(maxsize=64)
def _instant_text(value: datetime) -> str:
    """An aware instant as SQLite stores it, memoised: a transition stores its one instant in
    three to five columns (equal instants in any zone give the same UTC text)."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


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


@contextmanager
def deferred_indexes(conn: Connection, *tables: str) -> Iterator[list[str]]:
    """Inside the connection's transaction, load the given tables *that are empty* without their
    secondary indexes and constraints, then build them again once (the names and definitions
    read from the catalogue before dropping them, so the schema after is the migrations' one).
    A bulk load into a table with several indexes and foreign keys otherwise maintains every
    index row by row and, on PostgreSQL, runs a foreign key trigger per row and key; building an
    index over the loaded rows and validating a foreign key in one pass are far cheaper.

    PostgreSQL: the foreign keys, unique constraints and indexes other than the primary key
    (and than any a foreign key of another table depends on); the table is locked until commit.
    SQLite: the explicit indexes (constraints are part of its tables). A table that has rows is
    left as it is. Yields the tables deferred; on an error nothing is rebuilt and the
    transaction's rollback restores them."""
    raw = conn.connection.driver_connection
    assert raw is not None
    cur = raw.cursor()
    rebuild: list[str] = []
    done: list[str] = []
    try:
        for table in tables:
            cur.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")
            row = cur.fetchone()
            if row is None or row[0]:
                continue
            if conn.dialect.name == "postgresql":
                drops, creates = _pg_secondary(cur, table)
            else:
                cur.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?"
                            " AND sql IS NOT NULL ORDER BY name", (table,))
                found = cur.fetchall()
                drops = [f'DROP INDEX "{name}"' for name, _sql in found]
                creates = [sql for _name, sql in found]
            for sql in drops:
                cur.execute(sql)
            rebuild.extend(creates)
            done.append(table)
    finally:
        cur.close()
    yield done
    cur = raw.cursor()
    try:
        for sql in rebuild:
            cur.execute(sql)
    finally:
        cur.close()


def _pg_secondary(cur: Any, table: str) -> tuple[list[str], list[str]]:
    """(drop statements, create statements) of a PostgreSQL table's secondary indexes and
    constraints: unique constraints and plain indexes first, foreign keys last when rebuilding."""
    cur.execute(
        "SELECT c.conname, c.contype, pg_get_constraintdef(c.oid) FROM pg_constraint c"
        " WHERE c.conrelid = %s::regclass AND c.contype IN ('u', 'f')"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint r WHERE r.contype = 'f' AND r.conindid = c.conindid"
        "                 AND r.conrelid <> c.conrelid AND c.contype = 'u')"
        " ORDER BY c.contype DESC, c.conname", (table,))
    constraints = cur.fetchall()
    cur.execute(
        "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        " WHERE x.indrelid = %s::regclass AND NOT x.indisprimary"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"
        " ORDER BY i.relname", (table,))
    indexes = cur.fetchall()
    drops = [f'ALTER TABLE {table} DROP CONSTRAINT "{name}"' for name, _t, _d in constraints]
    drops += [f'DROP INDEX "{name}"' for name, _d in indexes]
    creates = [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {d}' for name, t, d in constraints if t == "u"]
    creates += [d for _name, d in indexes]
    creates += [f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {d}' for name, t, d in constraints if t == "f"]
    return drops, creates


def nextval(tx: Transaction, table: str) -> str:
    """PostgreSQL: ``nextval('<the table's id sequence>'::regclass)``, the sequence looked up
    once (``pg_get_serial_sequence`` in the call itself is a catalogue lookup per row: 6× slower)."""
    seq = str(tx.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table}).scalar())
    return "nextval('" + seq.replace("'", "''") + "'::regclass)"


#: SQLite's ANALYZE reads at most about this many index entries per index.
SQLITE_ANALYSIS_LIMIT = 2_000




class Bulk:
    """Set-based loads inside the unit's transaction: ids reserved in one go, COPY or
    executemany, secondary indexes rebuilt once, fresh planner statistics."""

    def __init__(self, uow: Transaction) -> None:
        self._uow = uow

    def reserve_ids(self, table: str, n: int) -> list[int]:
        """``n`` fresh primary keys for explicit-id bulk inserts: from the table's sequence on
        PostgreSQL (safe beside concurrent inserts), after ``max(id)`` on SQLite (the write
        transaction holds the database's write lock)."""
        if n <= 0:
            return []
        if self._uow.dialect == "postgresql":
            seq = nextval(self._uow, table)
            # One row back when the values drawn are one run (nobody drew between them): the run.
            low, high = self._uow.session.execute(text(
                f"SELECT min(v), max(v) FROM (SELECT {seq} AS v FROM generate_series(1, :n)) s"), {"n": n}).one()
            if int(high) - int(low) + 1 == n:
                return list(range(int(low), int(high) + 1))
            return [int(i) for (i,) in self._uow.session.execute(
                text(f"SELECT {seq} FROM generate_series(1, :n)"), {"n": n})]
        top = int(self._uow.session.execute(text(f"SELECT coalesce(max(id), 0) FROM {table}")).scalar() or 0)
        return list(range(top + 1, top + 1 + n))


    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
                    ready: bool = False) -> int:
        """Insert many rows inside the unit's transaction: ``COPY`` on PostgreSQL, the driver's
        ``executemany`` in batches on SQLite. Values are plain Python (instants aware)."""
        return bulk_insert(self._uow.connection(), table, columns, rows, ready=ready)

    def deferred_indexes(self, *tables: str) -> AbstractContextManager[list[str]]:
        """Bulk-load the given tables that are empty without their secondary indexes (and, on
        PostgreSQL, constraints), rebuilt once at the end: :func:`workflow.store.bulk.deferred_indexes`."""
        return deferred_indexes(self._uow.connection(), *tables)

    def update(self, table: str, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> int:
        """``UPDATE table SET columns… WHERE id = :id`` for many rows in one executemany."""
        if not rows:
            return 0
        t = SQLModel.metadata.tables[table]
        stmt = (update(t).where(t.c.id == bindparam("b_id"))
                .values({c: bindparam(f"b_{c}") for c in columns}))
        self._uow.session.execute(stmt, [{f"b_{k}": v for k, v in r.items()} for r in rows])
        return len(rows)

    def analyze(self, *names: str) -> None:
        """Refresh the planner's statistics after a bulk load (PostgreSQL planned the sweep as
        nested loops without them; SQLite's planner reads ``sqlite_stat1``). On SQLite the
        sample is bounded (``analysis_limit``), so it stays cheap on big tables."""
        if self._uow.dialect == "sqlite":
            self._uow.session.execute(text(f"PRAGMA analysis_limit={SQLITE_ANALYSIS_LIMIT}"))
        for name in names:
            self._uow.session.execute(text(f"ANALYZE {name}"))
