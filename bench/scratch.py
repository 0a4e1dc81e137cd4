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


def checkpoint(db: Database) -> None:
    """Before a timed run on PostgreSQL (untimed): a checkpoint, so the run starts with clean
    buffers and a whole checkpoint interval of WAL ahead, and pays neither for the previous
    workload's dirty pages nor for a checkpoint cycle falling on it by chance. W2: a run that
    crossed a checkpoint start wrote the pages it touched again as full-page images (one sweep
    measured 23k of them against a floor run's 11.5k; at ``max_wal_size`` 1 GB one is requested
    every ~540 MB of WAL, a floor run writes ~350 MB, the sweep ~550 MB). W5 follows W2 on the
    same server and gets one too."""
    if db.dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("CHECKPOINT"))


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
