"""The SQL of a purchase import: lock the record, read its ledger keys, count, bulk-insert new
lines and link refunds to their orders (set-based: one statement each, executemany)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as lite_insert

from workflow.store.tables import Purchase, Record
from workflow.store.uow import UnitOfWork


def lock_record(uow: UnitOfWork, record_id: int) -> None:
    """Serialise imports into one record (a PostgreSQL row lock; SQLite writers already queue
    behind BEGIN IMMEDIATE), so two imports of one file cannot both count rows as new."""
    uow.session.execute(select(Record.id).where(Record.id == record_id).with_for_update())


def ledger_lines(uow: UnitOfWork, record_id: int) -> list[Any]:
    """Every line of the record's ledger (live and voided) with what decides "identical"."""
    return list(uow.session.execute(
        select(Purchase.id, Purchase.channel, Purchase.order_no, Purchase.line_no, Purchase.amount_fen,
               Purchase.people, Purchase.paid_at, Purchase.paid_on, Purchase.voided_at, Purchase.void_reason)
        .where(Purchase.record_id == record_id)
        .order_by(Purchase.id)
    ).all())


def count(uow: UnitOfWork, record_id: int) -> int:
    return int(uow.session.execute(
        select(func.count()).select_from(Purchase).where(Purchase.record_id == record_id)
    ).scalar_one())


def insert_new(uow: UnitOfWork, values: list[dict[str, Any]]) -> None:
    """One INSERT … ON CONFLICT DO NOTHING on the live key, executed as a batch (executemany)."""
    table = Purchase.__table__
    keys = ["record_id", "channel", "order_no", "line_no"]
    live = table.c.voided_at.is_(None)  # the key is unique among live lines (a partial index)
    if uow.dialect == "postgresql":
        stmt: Any = pg_insert(table).on_conflict_do_nothing(index_elements=keys, index_where=live)
    elif uow.dialect == "sqlite":
        stmt = lite_insert(table).on_conflict_do_nothing(index_elements=keys, index_where=live)
    else:  # pragma: no cover - other databases are not supported deployments
        stmt = insert(table)
    uow.session.execute(stmt, values)


def link_refunds(uow: UnitOfWork, record_id: int, refunds: list[dict[str, Any]]) -> None:
    """Point each refund line (``channel``, ``refund_of``, ``order_no``, ``line_no``) at its
    order's live line 1 (one executemany UPDATE)."""
    if not refunds:
        return
    orig = Purchase.__table__.alias("orig")
    table = Purchase.__table__
    original_id = (
        select(orig.c.id)
        .where(orig.c.record_id == record_id, orig.c.channel == bindparam("b_channel"),
               orig.c.order_no == bindparam("b_ref"), orig.c.line_no == 1, orig.c.voided_at.is_(None))
        .scalar_subquery()
    )
    stmt = (
        update(table)
        .where(table.c.record_id == record_id, table.c.channel == bindparam("b_channel"),
               table.c.order_no == bindparam("b_order"), table.c.line_no == bindparam("b_line"),
               table.c.voided_at.is_(None))
        .values(refund_of_id=original_id)
    )
    uow.session.connection().execute(
        stmt, [{"b_channel": r["channel"], "b_ref": r["refund_of"], "b_order": r["order_no"], "b_line": r["line_no"]}
               for r in refunds],
    )
