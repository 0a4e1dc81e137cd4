"""Engines, sessions and migrations.

On SQLite (the embedded default, shared by a web server, a worker and the CLI) every connection
runs in WAL mode with a busy timeout, and write transactions begin IMMEDIATE, so two writers
queue instead of failing half-way with "database is locked". The names are importable from
:mod:`workflow.store.tables` as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool

if TYPE_CHECKING:
    from sqlalchemy.orm import sessionmaker
    from sqlmodel import Session

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


#: PostgreSQL connections older than this are replaced at checkout.
POOL_RECYCLE_SECONDS = 1800


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    """Create an engine with bangfu's connection settings.

    Args:
        url: a SQLAlchemy URL; ``postgresql://`` is mapped to psycopg 3.
        pool_size: connections kept open on PostgreSQL.
        echo: log SQL.

    Returns:
        The engine. On SQLite, WAL + busy timeout on connect; ``BEGIN IMMEDIATE`` for sessions
        made by :func:`sessions` (writes), plain ``BEGIN`` for ``readonly=True``.
    """
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if is_sqlite(url):
        path = url.split("///", 1)[1] if "///" in url else ""
        memory = path in ("", ":memory:")
        if not memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if memory else None,
        )
        _configure_sqlite(engine)
        return engine
    # No pre-ping round trip per checkout (W1 paid one per transition): connections are
    # recycled after half an hour instead, below any server or proxy idle timeout we know of.
    options: dict[str, Any] = {}
    if url.startswith("postgresql+psycopg"):  # psycopg 3 or psycopg2: both take the option
        # No column is HSTORE: the dialect's first connect then skips looking the type up (a
        # savepoint and a catalogue query, and their client CPU, in every CLI process).
        options["use_native_hstore"] = False
    return create_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size,
                         pool_recycle=POOL_RECYCLE_SECONDS, **options)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        # On the driver's cursor (listeners still called), not exec_driver_sql's execution
        # context: a transaction's BEGIN cost W1 a tenth of its client CPU that way.
        driver_execute(conn, "BEGIN" if mode == "DEFERRED" else "BEGIN IMMEDIATE", ())


def driver_execute(conn: Connection, sql: str, args: Any) -> tuple[list[Any], int]:
    """Execute driver SQL on the connection's driver cursor, inside its transaction: engine
    cursor listeners called, driver errors raised as ``DBAPIError`` (see :class:`Prepared`)."""
    dialect = conn.dialect
    raw = conn.connection.driver_connection
    assert raw is not None
    cur = raw.cursor()
    try:
        events = conn.dispatch
        if events.before_cursor_execute:
            events.before_cursor_execute(conn, cur, sql, args, None, False)
        try:
            cur.execute(sql, args)
            rows = cur.fetchall() if cur.description is not None else []
        except dialect.loaded_dbapi.Error as e:
            if dialect.is_disconnect(e, conn.connection.dbapi_connection, cur):
                conn.invalidate(e)
            raise DBAPIError.instance(sql, args, e, dialect.loaded_dbapi.Error) from e
        if events.after_cursor_execute:
            events.after_cursor_execute(conn, cur, sql, args, None, False)
        return rows, cur.rowcount
    finally:
        cur.close()


class Database:
    """An engine and two session factories: writes (IMMEDIATE on SQLite) and reads."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size, echo=echo)
        self.dialect = self.engine.dialect.name
        self.read_engine = self.engine.execution_options(sqlite_begin="DEFERRED")
        self._makers: tuple[sessionmaker[Session], sessionmaker[Session]] | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def shown_url(self) -> str:
        """The URL to print or log: a password in it is masked (``***``)."""
        return self.engine.url.render_as_string(hide_password=True)

    def session(self, *, readonly: bool = False) -> Session:
        if self._makers is None:
            # Lazy: the ORM loads with the first session (Core-only commands never build one).
            from sqlalchemy.orm import sessionmaker
            from sqlmodel import Session  # lazy, see above

            self._makers = (sessionmaker(bind=self.engine, class_=Session, expire_on_commit=False),
                            sessionmaker(bind=self.read_engine, class_=Session, expire_on_commit=False))
        write, read = self._makers
        return (read if readonly else write)()

    @contextmanager
    def begin(self, *, readonly: bool = False) -> Iterator[Session]:
        """A session in a transaction that commits on success and rolls back on error."""
        with self.session(readonly=readonly) as s, s.begin():
            yield s

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (``alembic upgrade head``)."""
        upgrade(self.engine)

    def schema_revisions(self) -> tuple[str | None, str | None]:
        """(the database's migration revision, the newest one shipped): equal when current.
        Raises the driver's error when the database does not answer."""
        # Lazy: Alembic loads only for this check and for upgrades (start-up time).
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory  # lazy, see above

        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            current = MigrationContext.configure(conn).get_current_revision()
        head = ScriptDirectory.from_config(alembic_config(self.engine)).get_current_head()
        return current, head

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(engine: Engine) -> Any:
    # Lazy: Alembic loads only when a schema is upgraded (start-up time of every other command).
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command  # lazy, see alembic_config

    command.upgrade(alembic_config(engine), revision)

