"""Core statements compiled once per dialect and run on the driver's cursor: the transition's
hot path (W1 measured SQLAlchemy's per-execution work as a third of a transition's client CPU)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection

from workflow.store.engine import driver_execute


class Prepared:
    """A Core statement compiled once per dialect into the driver's SQL and parameter order,
    executed on the driver's cursor of the unit's connection (inside its transaction).

    The transition's hot path pays neither SQLAlchemy's per-execution cache key nor its result
    metadata and processors (W1 measured them as a third of a transition's client CPU). Engine
    listeners of ``before_cursor_execute`` / ``after_cursor_execute`` are still called for each
    statement (statement counters, logs; a listener's rewritten statement is not applied), and
    driver errors are raised as SQLAlchemy's ``DBAPIError`` subclasses, a lost connection being
    invalidated. Parameters must be driver-ready (:func:`driver_value`); rows come back as the
    driver returns them (tuples in column order).
    """

    def __init__(self, statement: Any = None, *, build: Callable[[], Any] | None = None) -> None:
        """``statement``, or ``build``: a function returning it, called at the first run (a
        process that never runs it never builds it: start-up time)."""
        self._statement, self._build = statement, build
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None]] = {}

    @property
    def statement(self) -> Any:
        if self._statement is None and self._build is not None:
            self._statement = self._build()
        return self._statement

    def run(self, conn: Connection, params: dict[str, Any]) -> tuple[list[Any], int]:
        """Execute; returns (rows, or [] for a statement without any, the row count)."""
        dialect = conn.dialect
        got = self._compiled.get(dialect.name)
        if got is None:
            compiled = self.statement.compile(dialect=dialect)
            order = tuple(compiled.positiontup) if compiled.positional else None
            got = self._compiled[dialect.name] = (compiled.string, order)
        sql, order = got
        args: Any = params if order is None else tuple(params[k] for k in order)
        return driver_execute(conn, sql, args)
