"""The purchase ledger: one line entered by hand (or through the API), a file's lines in one
batch, voiding, the record's ledger, and the one balance of an order that every entry path checks
a refund against."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from workflow.domain.errors import Refusal, RuleViolation
from workflow.store.dialects import upsert_insert
from workflow.store.tables import AggregateLine, Purchase, Record
from workflow.store.transaction import Transaction

PURCHASE = Purchase.__table__  # type: ignore[attr-defined]
#: Built once (an alias builds a proxy per column when first used; per call it cost every entry).
_REFUNDED = PURCHASE.alias("refunded")


class OrderBalance(NamedTuple):
    """An order's live positive lines and the live refunds linked to it (refunds are negative)."""

    order_fen: int
    order_people: int
    refunds_fen: int
    refunds_people: int


def duplicate_order(order_no: str, line_no: int, channel: str) -> RuleViolation:
    return RuleViolation(Refusal(
        "purchase.duplicate", f"订单 {order_no} 第 {line_no} 行（渠道 {channel}）已经录入过",
    ))



class Purchases:
    """The purchase ledger: one set of statements for hand entry, the API and imports."""

    def __init__(self, uow: Transaction) -> None:
        self._uow = uow

    def lock_record(self, record_id: int) -> None:
        """Serialise the ledger's writes into one record with its transitions (a PostgreSQL row
        lock, the one a transition takes: ``FOR NO KEY UPDATE``; SQLite writers already queue
        behind BEGIN IMMEDIATE): two imports of one file cannot both count rows as new, two
        refunds of one order are checked one after the other, and no line lands under a snapshot
        a concurrent summarize is freezing."""
        self._uow.execute(select(Record.id).where(Record.id == record_id).with_for_update(key_share=True))

    def ledger_lines(self, record_id: int) -> list[Any]:
        """Every line of the record's ledger (live and voided) with what decides "identical"."""
        return list(self._uow.session.execute(
            select(Purchase.id, Purchase.channel, Purchase.order_no, Purchase.line_no, Purchase.amount_fen,
                   Purchase.people, Purchase.paid_at, Purchase.paid_on, Purchase.voided_at, Purchase.void_reason)
            .where(Purchase.record_id == record_id)
            .order_by(Purchase.id)
        ).all())

    def count(self, record_id: int) -> int:
        return int(self._uow.session.execute(
            select(func.count()).select_from(Purchase).where(Purchase.record_id == record_id)
        ).scalar_one())

    def insert_new(self, values: list[dict[str, Any]]) -> None:
        """One INSERT … ON CONFLICT DO NOTHING on the live key, executed as a batch (executemany)."""
        table = Purchase.__table__
        keys = ["record_id", "channel", "order_no", "line_no"]
        live = table.c.voided_at.is_(None)  # the key is unique among live lines (a partial index)
        stmt = upsert_insert(self._uow.dialect, table).on_conflict_do_nothing(index_elements=keys, index_where=live)
        self._uow.session.execute(stmt, values)

    def link_refunds(self, record_id: int, refunds: list[dict[str, Any]]) -> None:
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
        self._uow.connection().execute(
            stmt, [{"b_channel": r["channel"], "b_ref": r["refund_of"], "b_order": r["order_no"], "b_line": r["line_no"]}
                   for r in refunds],
        )

    def insert(self, values: dict[str, Any]) -> int:
        """Insert one purchase line (a savepoint around it); its id. A live line with the same
        (channel, order, line) is refused as ``purchase.duplicate``."""
        conn = self._uow.connection()
        try:
            with conn.begin_nested():
                return int(conn.execute(insert(PURCHASE).values(values).returning(PURCHASE.c.id)).scalar_one())
        except IntegrityError:
            raise duplicate_order(values["order_no"], values["line_no"], values["channel"]) from None

    def find_live(self, record_id: int, channel: str, order_no: str, line_no: int) -> Any:
        """The live line (a row) of an order, or None."""
        p = PURCHASE
        return self._first(select(p).where(p.c.record_id == record_id, p.c.channel == channel,
                                           p.c.order_no == order_no, p.c.line_no == line_no,
                                           p.c.voided_at.is_(None)))

    def get(self, purchase_id: int) -> Purchase | None:
        return self._uow.session.get(Purchase, purchase_id)

    def of_record(self, record_id: int) -> list[Purchase]:
        return list(
            self._uow.session.execute(
                select(Purchase).where(Purchase.record_id == record_id).order_by(Purchase.paid_at, Purchase.id)
            ).scalars()
        )

    def live_refunds_of(self, purchase_id: int) -> list[int]:
        return list(self._uow.session.execute(
            select(Purchase.id).where(Purchase.refund_of_id == purchase_id,
                                      Purchase.voided_at.is_(None))  # type: ignore[union-attr]
        ).scalars())

    def void(self, purchase_id: int, *, user_id: int, reason: str, on_behalf: bool, now: datetime) -> bool:
        """Mark a live line voided; False if it was voided meanwhile."""
        result = self._uow.session.execute(
            update(Purchase)
            .where(Purchase.id == purchase_id, Purchase.voided_at.is_(None))  # type: ignore[arg-type, union-attr]
            .values(voided_at=now, voided_by_user_id=user_id, void_reason=reason, void_on_behalf=on_behalf)
            .execution_options(synchronize_session=False)
        )
        return (result.rowcount or 0) == 1

    def spent_by_budget(self, record_id: int) -> dict[str, int]:
        p = PURCHASE
        rows = self._uow.execute(
            select(p.c.budget, func.coalesce(func.sum(p.c.amount_fen), 0))
            .where(p.c.record_id == record_id, p.c.voided_at.is_(None))
            .group_by(p.c.budget)
        ).all()
        return {b: int(s) for b, s in rows}

    def changed_since(self, record_id: int, at: datetime) -> tuple[list[Purchase], list[Purchase]]:
        """The record's lines entered after ``at``, and its lines voided after ``at``."""
        rows = list(self._uow.session.execute(
            select(Purchase).where(Purchase.record_id == record_id,
                                   (Purchase.entered_at > at) | (Purchase.voided_at > at))  # type: ignore[operator]
            .order_by(Purchase.id)
        ).scalars())
        added = [p for p in rows if p.entered_at is not None and p.entered_at > at]
        voided = [p for p in rows if p.voided_at is not None and p.voided_at > at]
        return added, voided

    def aggregate_lines_since(self, record_id: int, at: datetime) -> list[AggregateLine]:
        return list(self._uow.session.execute(
            select(AggregateLine).where(AggregateLine.record_id == record_id,
                                               AggregateLine.entered_at > at)  # type: ignore[operator]
            .order_by(AggregateLine.id)
        ).scalars())

    def _first(self, statement: Any) -> Any:
        return self._uow.execute(statement).first()

    def order_balances(self, record_id: int, order: tuple[str, str] | None = None) -> dict[tuple[str, str], OrderBalance]:
        """What each order of the record's live ledger holds, by (channel, order number): its
        positive live lines, and the live refund lines linked to it (voided lines count nowhere).
        The one balance every entry path checks a refund against; ``order`` narrows it to one.
        Call :meth:`lock_record` first so two refunds of one order are checked one after the other."""
        p, orig = PURCHASE, _REFUNDED
        live = [p.c.record_id == record_id, p.c.voided_at.is_(None)]
        positive = select(p.c.channel, p.c.order_no, func.sum(p.c.amount_fen), func.sum(p.c.people)).where(
            *live, p.c.amount_fen > 0)
        refunds = (select(orig.c.channel, orig.c.order_no, func.sum(p.c.amount_fen), func.sum(p.c.people))
                   .join(orig, orig.c.id == p.c.refund_of_id).where(*live))
        if order is not None:
            positive = positive.where(p.c.channel == order[0], p.c.order_no == order[1])
            refunds = refunds.where(orig.c.channel == order[0], orig.c.order_no == order[1])
        out: dict[tuple[str, str], list[int]] = {}
        for channel, order_no, amount, people in self._uow.execute(positive.group_by(p.c.channel, p.c.order_no)):
            out[(channel, order_no)] = [int(amount or 0), int(people or 0), 0, 0]
        for channel, order_no, amount, people in self._uow.execute(
                refunds.group_by(orig.c.channel, orig.c.order_no)):
            row = out.setdefault((channel, order_no), [0, 0, 0, 0])
            row[2], row[3] = int(amount or 0), int(people or 0)
        return {k: OrderBalance(*v) for k, v in out.items()}
