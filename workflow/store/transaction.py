"""What a repository needs of its unit of work: the one transaction's connection and session.

The repositories (:mod:`.records`, :mod:`.purchases`, …) are typed with this protocol, not with
:class:`workflow.store.uow.UnitOfWork` itself, so the unit imports them and none imports it back.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.engine import Connection
from sqlmodel import Session


class Transaction(Protocol):
    """One connection and one transaction (see :class:`workflow.store.uow.UnitOfWork`)."""

    @property
    def dialect(self) -> str: ...

    @property
    def session(self) -> Session: ...

    def connection(self) -> Connection: ...

    def execute(self, statement: Any, params: Any = None) -> Any: ...
