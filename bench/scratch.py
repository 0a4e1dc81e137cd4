"""Throw-away databases for one benchmark run: a SQLite file under ``bench/out/`` or a PostgreSQL
database on the server named by ``BANGFU_BENCH_PG_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``), removed afterwards unless ``keep``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text

from workflow.store.tables import Database

OUT = Path(__file__).parent / "out"
PG_URL = os.environ.get("BANGFU_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def kinds(choice: str) -> tuple[str, ...]:
    """``--db sqlite|postgres|both`` as the database kinds to run, in order."""
    return ("sqlite", "postgres") if choice == "both" else (choice,)


@contextmanager
def bench_database(kind: str, *, keep: bool = False, prefix: str = "bangfu_bench") -> Iterator[Database]:
    """A dedicated database for one run, removed afterwards unless ``keep``."""
    name = f"{prefix}_{os.getpid()}"
    if kind == "sqlite":
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / f"{name}.db"
        for p in OUT.glob(f"{name}.db*"):
            p.unlink()
        database = Database(f"sqlite:///{path}")
        try:
            yield database
        finally:
            database.dispose()
            if not keep:
                for p in OUT.glob(f"{name}.db*"):
                    p.unlink()
        return
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(PG_URL.rsplit("/", 1)[0] + "/" + name)
    try:
        yield database
    finally:
        database.dispose()
        if not keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
