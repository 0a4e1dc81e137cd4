"""Named locks for the scheduler: two beats (or a beat and an operator) run one sweep.

PostgreSQL: a session-level advisory lock on a connection held for the whole run (released by
the server if the process dies). SQLite: a row of ``scheduler_lock`` with an expiry, taken in a
``BEGIN IMMEDIATE`` transaction; a process killed while holding it blocks others until
``until`` (``BANGFU_SWEEP_LOCK_SECONDS``). Both record the holder and the last run's figures in
the row (read by ``bangfu outbox status`` and ``/metrics``). Expiries use the real clock.
"""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, text, update

from workflow.store.tables import Database, SchedulerLock

_T = SchedulerLock.__table__  # type: ignore[attr-defined]


@dataclass
class Lock:
    """The outcome of taking a lock.

    Attributes:
        name: the lock's name.
        held: True if this caller holds it.
        holder: who holds it (this caller or the other one).
    """

    name: str
    held: bool
    holder: str | None
    _database: Database | None = field(default=None, repr=False)
    _info: dict[str, Any] | None = field(default=None, repr=False)

    def finish(self, info: dict[str, Any]) -> None:
        """Record the run's figures in the lock row when the lock is released."""
        self._info = info


@contextmanager
def named_lock(database: Database, name: str, *, holder: str, seconds: int) -> Iterator[Lock]:
    """Take the lock ``name`` for the block, or yield a :class:`Lock` with ``held=False``.

    Args:
        database: the database.
        name: the lock's name (``sweep``).
        holder: who asks (logged and stored).
        seconds: the SQLite lock row's expiry.
    """
    me = f"{holder}:{uuid.uuid4().hex[:8]}"[-120:]
    if database.dialect == "postgresql":
        with database.engine.connect() as conn:
            key = zlib.crc32(f"bangfu:{name}".encode())
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar())
            conn.commit()
            lock = Lock(name, got, me if got else _holder(conn, name), database)
            if got:
                _write(database, name, me, datetime.now(UTC) + timedelta(seconds=seconds), None)
            try:
                yield lock
            finally:
                if got:
                    _release(database, lock, me)
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
        return
    now = datetime.now(UTC)
    with database.engine.begin() as conn:
        row = conn.execute(select(_T.c.holder, _T.c.until).where(_T.c.name == name)).first()
        if row is not None and row[1] > now:
            lock = Lock(name, False, str(row[0]), database)
        else:
            _upsert(conn, database, name, me, now + timedelta(seconds=seconds), None)
            lock = Lock(name, True, me, database)
    try:
        yield lock
    finally:
        if lock.held:
            _release(database, lock, me)


def _holder(conn: Connection, name: str) -> str | None:
    row = conn.execute(select(_T.c.holder).where(_T.c.name == name)).first()
    conn.commit()
    return str(row[0]) if row else None


def _upsert(conn: Connection, database: Database, name: str, holder: str, until: datetime,
            info: str | None) -> None:
    values: dict[str, Any] = {"holder": holder, "until": until}
    if info is not None:
        values["info"] = info
    if not conn.execute(update(_T).where(_T.c.name == name).values(**values)).rowcount:
        conn.execute(insert(_T).values(name=name, **values))


def _write(database: Database, name: str, holder: str, until: datetime, info: str | None) -> None:
    with database.engine.begin() as conn:
        _upsert(conn, database, name, holder, until, info)


def _release(database: Database, lock: Lock, me: str) -> None:
    now = datetime.now(UTC)
    values: dict[str, Any] = {"until": now}
    if lock._info is not None:
        values["info"] = json.dumps({**lock._info, "at": now.isoformat(), "holder": me},
                                    ensure_ascii=False)
    with database.engine.begin() as conn:
        conn.execute(update(_T).where(_T.c.name == lock.name, _T.c.holder == me).values(**values))


def last_run(database: Database, name: str) -> dict[str, Any] | None:
    """The figures the last holder of ``name`` recorded (``None`` if it never finished)."""
    with database.engine.connect() as conn:
        row = conn.execute(select(_T.c.info).where(_T.c.name == name)).first()
    return json.loads(row[0]) if row and row[0] else None
