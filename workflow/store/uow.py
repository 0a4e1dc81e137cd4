"""The unit of work: one connection, one transaction, the repositories as attributes.

Usage::

    with UnitOfWork(database) as uow:
        rec = uow.records.get(record_id)
        uow.purchases.insert({...})
        uow.commit()        # without this, everything rolls back

A unit opens one connection from the pool at its first statement and begins one transaction on
it (``BEGIN IMMEDIATE`` on SQLite for writes, a plain ``BEGIN`` with ``readonly=True``). Every
repository runs its statements in that transaction: the transition's hot path as prepared Core
statements on the driver's cursor, reads that return mapped objects through an ORM session bound
to the same connection (built at its first use, so a unit that needs no mapped object never
builds one). The tables are defined once, in :mod:`workflow.store.tables`.

Nothing above the store sees SQLAlchemy: a failed statement leaves the unit as one of the
domain's errors (:func:`workflow.store.errors.translate`), a lost or busy database as
:class:`~workflow.domain.errors.StoreUnavailable`, any other as :class:`~workflow.domain.errors.StoreError`.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, Self

from sqlalchemy.engine import Connection, RootTransaction
from sqlmodel import Session

from workflow.store.accounts import Accounts
from workflow.store.bulk import Bulk
from workflow.store.chain import Audit
from workflow.store.checks import Checks
from workflow.store.delegations import Delegations
from workflow.store.directory import Directory
from workflow.store.engine import Database
from workflow.store.errors import translate
from workflow.store.lists import RecordLists
from workflow.store.notifications import Notifications
from workflow.store.oplog import OpLogRepo
from workflow.store.order_claims import OrderClaims
from workflow.store.purchases import Purchases
from workflow.store.records import Records
from workflow.store.reports import Reports
from workflow.store.review_times import ReviewTimes
from workflow.store.supplements import Supplements

log = logging.getLogger("bangfu.store")

#: Rows a bulk load writes before it refreshes the planner's statistics (ANALYZE).
ANALYZE_MIN_ROWS = 1_000


class UnitOfWork:
    """One transaction and the repositories that work inside it.

    Attributes:
        records: records, their history, snapshots, the transition's statements, the rollup.
        purchases: the purchase ledger (hand entry, the API and imports alike).
        order_claims: orders held by more than one union's record, and reviewers' explanations.
        directory: organisations, users, memberships, policies, rounds, member counts.
        accounts: tokens, the login throttle, account events.
        notifications: the outbox rows and the in-app inbox.
        reports: the read side's sums (Annex 2, completeness, comparisons).
        lists: pages of records (a reviewer's inbox, subordinates), a user's own, the overview's units.
        bulk: set-based loads (COPY / executemany, deferred indexes, ANALYZE).
        checks: the stored figures recomputed from the ledger (``bangfu verify``).
        audit: the history chain (walking it, its heads) and the export's recipients.
        oplog: the operation audit log (:mod:`workflow.store.oplog`): an entry left pending by a
            use case is written by :meth:`commit`, in the same transaction.
        supplements: 补报, figures accepted below a record after it sent its report up.
        delegations: 代理, reviewers' stand-ins for a date range.
        review_times: time in state, the waits from submit to the parent's decision.
    """

    def __init__(self, database: Database, *, readonly: bool = False) -> None:
        self.database = database
        self.readonly = readonly
        self._conn: Connection | None = None
        self._tx: RootTransaction | None = None
        self._session: Session | None = None
        self._committed = False
        self.records = Records(self)
        self.purchases = Purchases(self)
        self.order_claims = OrderClaims(self)
        self.directory = Directory(self)
        self.accounts = Accounts(self)
        self.notifications = Notifications(self)
        self.reports = Reports(self)
        self.lists = RecordLists(self)
        self.checks = Checks(self)
        self.bulk = Bulk(self)
        self.audit = Audit(self)
        self.oplog = OpLogRepo(self)
        self.supplements = Supplements(self)
        self.delegations = Delegations(self)
        self.review_times = ReviewTimes(self)

    # --- the transaction ---------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._committed = False
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if not self._committed and self._tx is not None and self._tx.is_active:
                self._tx.rollback()
        except Exception as failed:  # a dead connection cannot roll back: the server already did
            if exc is None:
                translate(failed)
                raise
            log.warning("rollback failed after %s", type(exc).__name__, exc_info=True)
        finally:
            self._close()
        if exc is not None:
            translate(exc)  # raises the domain's error for a database's; returns for any other

    def _close(self) -> None:
        if self._session is not None:
            self._session.close()
        if self._conn is not None:
            self._conn.close()
        self._session, self._conn, self._tx = None, None, None

    def commit(self) -> None:
        """Make everything done in the unit permanent (pending mapped objects flushed first)."""
        try:
            if self.oplog.pending is not None:
                self.oplog.flush_pending()  # the change's audit row, in the change's transaction
            if self._session is not None:
                self._session.flush()
            if self._tx is not None:
                self._tx.commit()
        except Exception as exc:
            translate(exc)
            raise
        self._committed = True

    @property
    def dialect(self) -> str:
        return self.database.dialect

    # --- for the repositories (inside workflow.store only) -----------------------------------

    def connection(self) -> Connection:
        """The transaction's connection, begun at first use (the session's pending objects flushed
        first, so a statement on it sees them)."""
        if self._session is not None:
            self._session.flush()
        if self._conn is None:
            engine = self.database.read_engine if self.readonly else self.database.engine
            self._conn = engine.connect()
            self._tx = self._conn.begin()
        return self._conn

    @property
    def session(self) -> Session:
        """The ORM session on the unit's connection (built at first use). It flushes into the
        unit's transaction and never commits it: :meth:`commit` does."""
        if self._session is None:
            self._session = Session(bind=self.connection(), expire_on_commit=False, autoflush=True,
                                    join_transaction_mode="rollback_only")
        return self._session

    def execute(self, statement: Any, params: Any = None) -> Any:
        """A Core statement in the unit's transaction (through the session once there is one,
        so its pending objects are flushed first)."""
        if self._session is not None:
            return self._session.execute(statement, params)
        return self.connection().execute(statement, params)

    # --- mapped objects ----------------------------------------------------------------------

    def add(self, *objs: Any) -> None:
        """Insert mapped objects (their ids are set on return)."""
        self.session.add_all(objs)
        self.session.flush()

    def refresh(self, obj: Any) -> None:
        self.session.refresh(obj)

    def detach(self, obj: Any) -> None:
        """Keep ``obj`` usable after the unit ends (its loaded attributes stay as read)."""
        self.session.expunge(obj)
