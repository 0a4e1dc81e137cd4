"""Purchase import: a platform's order export (CSV or XLSX) into a record's ledger, all or nothing.

The file is parsed by the pure :mod:`workflow.formats.ledger`; every row then passes the same rules as a
manual entry (:func:`workflow.app.records.check_purchase`). Any bad row refuses the whole file with
one :class:`ImportRefused` naming every bad row (row number and reason), and nothing is stored.

The key of a purchase line is (record, channel, order number, line). A row whose key is already
in the ledger with the same content counts as *repeated* (importing the same file twice adds
nothing); the same key with another amount (or date, or people) is a conflict naming the file row
and the existing entry. New rows go in with one bulk INSERT … ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as lite_insert

import states
from workflow.app import records
from workflow.domain import clock, rules
from workflow.domain.errors import BadInput, RuleViolation
from workflow.formats import ledger
from workflow.store.tables import Purchase, Record
from workflow.store.uow import UnitOfWork


class ImportRefused(BadInput):
    """A file with bad rows; ``errors`` holds one Chinese sentence per bad row."""

    code = "import.refused"

    def __init__(self, errors: list[str], *, filename: str) -> None:
        head = f"文件“{filename}”有 {len(errors)} 处错误，未导入任何数据："
        super().__init__("\n".join([head, *errors]))
        self.errors = errors


@dataclass(frozen=True)
class ImportResult:
    new: int
    repeated: int
    header_row: int | None
    mapping: str
    record_id: int


def _mapping(mapping: str | ledger.ColumnMapping | None) -> ledger.ColumnMapping | None:
    if mapping is None or isinstance(mapping, ledger.ColumnMapping):
        return mapping
    found = ledger.MAPPINGS.get(mapping)
    if found is None:
        raise BadInput(f"未知的列映射“{mapping}”，可选：{'、'.join(ledger.MAPPINGS)}", code="import.mapping")
    return found


def _yuan(fen: int) -> str:
    return rules.yuan(fen)


def import_purchases(
    uow: UnitOfWork,
    *,
    record_id: int,
    user_id: int,
    data: bytes,
    filename: str,
    mapping: str | ledger.ColumnMapping | None = None,
    now: datetime | None = None,
) -> ImportResult:
    """Import a purchase file into a record, all or nothing.

    Args:
        uow: a fresh unit of work.
        record_id: the record the purchases belong to.
        user_id: the record's clerk, or the parent's reviewer entering on its behalf (代填报).
        data: the file's bytes.
        filename: its name (a hint; the content decides CSV or XLSX).
        mapping: a column mapping or its name (``ygh``, ``p832``, ``gdg``, ``dxb``, ``generic``).
        now: the instant (defaults to :func:`workflow.domain.clock.now`).

    Returns:
        How many rows were new and how many repeated rows already in the ledger (or in the file).

    Raises:
        ImportRefused: any bad row or conflict (nothing imported).
        NotFound, PermissionDenied, RuleViolation: membership, or a record closed for purchases.
    """
    now = now or clock.now()
    column_mapping = _mapping(mapping)
    with uow:
        # Serialise imports into one record (PostgreSQL row lock; SQLite writers already queue
        # behind BEGIN IMMEDIATE), so two imports of one file cannot both count rows as new.
        uow.session.execute(select(Record.id).where(Record.id == record_id).with_for_update())
        rec = uow.record(record_id)
        actor = records.actor_for(uow, user_id, rec)
        _role, on_behalf = records.entry_role(actor, "导入采购")
        if refusal := rules.check_record_open_for_purchases(rec.state):
            raise RuleViolation(refusal)
        rnd, policy = records.policy_for(uow, rec)
        try:
            parsed = ledger.parse_purchases(
                data, filename, mapping=column_mapping, year=rnd.year,
                forbidden_forms=policy.forbidden_forms, channel_codes=[c.code for c in policy.channels],
            )
        except ledger.ImportUsageError as exc:
            raise BadInput(f"导入设置有误：{exc}", code="import.usage") from None
        errors = [e.reason for e in parsed.errors]
        rows = parsed.rows
        # The same rules as a manual entry.
        for row in rows:
            refusal = records.check_purchase(policy, rnd, _as_input(row), now=now)
            if refusal:
                errors.append(f"第 {row.row_number} 行：{refusal.message}")
        existing = _existing(uow, record_id)
        new_rows: list[ledger.PurchaseRow] = []
        repeated = parsed.repeats
        for row in rows:
            found = existing.get((row.channel, row.order_no, row.line_no))
            if found is None:
                new_rows.append(row)
            elif (found["amount_fen"], found["people"], found["paid_at"]) == (row.amount_fen, row.people, row.paid_at):
                repeated += 1
            else:
                errors.append(
                    f"第 {row.row_number} 行：订单 {row.order_no}（行号 {row.line_no}，渠道 {row.channel}）"
                    f"已录入为第 #{found['id']} 条（金额 {_yuan(found['amount_fen'])} 元，{found['people']} 人次，"
                    f"支付日期 {found['paid_on']:%Y-%m-%d}），文件中为金额 {_yuan(row.amount_fen)} 元，"
                    f"{row.people} 人次，支付日期 {clock.china_date(row.paid_at):%Y-%m-%d}，两者不一致"
                )
        errors.extend(_unknown_refunds(rows, existing))
        if errors:
            raise ImportRefused(errors, filename=filename)
        before = _count(uow, record_id)
        if new_rows:
            _bulk_insert(uow, record_id, new_rows, user_id=actor.user.id, on_behalf=on_behalf, now=now,
                         source=f"import:{filename}"[:200])
            _link_refunds(uow, record_id, [r for r in new_rows if r.refund_of])
            uow.mark_snapshot_stale(record_id, only_state=states.SUMMARIZED)
        inserted = _count(uow, record_id) - before
        uow.commit()
    return ImportResult(new=inserted, repeated=repeated + len(new_rows) - inserted, header_row=parsed.header_row,
                        mapping=parsed.mapping_name, record_id=record_id)


def _as_input(row: ledger.PurchaseRow) -> records.PurchaseInput:
    return records.PurchaseInput(
        paid_at=row.paid_at, channel=row.channel, amount_fen=row.amount_fen, people=row.people,
        order_no=row.order_no, line_no=row.line_no, product=row.product, product_form=row.product_form,
        holiday=row.holiday, origin_region=row.origin_region, budget=row.budget, refund_of=row.refund_of,
    )


def _existing(uow: UnitOfWork, record_id: int) -> dict[tuple[str, str, int], dict[str, Any]]:
    """The record's ledger keys with what decides "identical" (one query)."""
    rows = uow.session.execute(
        select(Purchase.id, Purchase.channel, Purchase.order_no, Purchase.line_no, Purchase.amount_fen,
               Purchase.people, Purchase.paid_at, Purchase.paid_on)
        .where(Purchase.record_id == record_id)
    ).all()
    return {
        (r.channel, r.order_no, r.line_no): {
            "id": r.id, "amount_fen": r.amount_fen, "people": r.people, "paid_at": r.paid_at, "paid_on": r.paid_on,
        }
        for r in rows
    }


def _unknown_refunds(rows: list[ledger.PurchaseRow], existing: dict[tuple[str, str, int], Any]) -> list[str]:
    """A refund line must name an order that is in the ledger or in the file (line 1)."""
    in_file = {(r.channel, r.order_no) for r in rows if r.amount_fen > 0}
    in_ledger = {(c, o) for (c, o, _line) in existing}
    return [
        f"第 {r.row_number} 行：找不到退款对应的原订单 {r.refund_of}（渠道 {r.channel}）"
        for r in rows
        if r.refund_of and (r.channel, r.refund_of) not in in_file | in_ledger
    ]


def _count(uow: UnitOfWork, record_id: int) -> int:
    return int(uow.session.execute(
        select(func.count()).select_from(Purchase).where(Purchase.record_id == record_id)
    ).scalar_one())


def _bulk_insert(
    uow: UnitOfWork, record_id: int, rows: list[ledger.PurchaseRow], *, user_id: int | None, on_behalf: bool,
    now: datetime, source: str,
) -> None:
    """One INSERT … ON CONFLICT DO NOTHING, executed as a batch (executemany)."""
    table = Purchase.__table__
    values = [
        {
            "record_id": record_id, "paid_at": r.paid_at, "paid_on": clock.china_date(r.paid_at),
            "channel": r.channel, "amount_fen": r.amount_fen, "people": r.people, "holiday": r.holiday,
            "product": r.product, "product_form": r.product_form, "origin_region": r.origin_region,
            "order_no": r.order_no, "line_no": r.line_no, "budget": r.budget, "refund_of_id": None,
            "entered_by_user_id": user_id, "entered_at": now, "on_behalf": on_behalf, "source": source,
        }
        for r in rows
    ]
    keys = ["record_id", "channel", "order_no", "line_no"]
    if uow.dialect == "postgresql":
        stmt: Any = pg_insert(table).on_conflict_do_nothing(index_elements=keys)
    elif uow.dialect == "sqlite":
        stmt = lite_insert(table).on_conflict_do_nothing(index_elements=keys)
    else:  # pragma: no cover - other databases are not supported deployments
        stmt = insert(table)
    uow.session.execute(stmt, values)


def _link_refunds(uow: UnitOfWork, record_id: int, refunds: list[ledger.PurchaseRow]) -> None:
    """Point each imported refund line at its order's line 1 (one executemany UPDATE)."""
    if not refunds:
        return
    orig = Purchase.__table__.alias("orig")
    table = Purchase.__table__
    original_id = (
        select(orig.c.id)
        .where(orig.c.record_id == record_id, orig.c.channel == bindparam("b_channel"),
               orig.c.order_no == bindparam("b_ref"), orig.c.line_no == 1)
        .scalar_subquery()
    )
    stmt = (
        update(table)
        .where(table.c.record_id == record_id, table.c.channel == bindparam("b_channel"),
               table.c.order_no == bindparam("b_order"), table.c.line_no == bindparam("b_line"))
        .values(refund_of_id=original_id)
    )
    uow.session.connection().execute(
        stmt, [{"b_channel": r.channel, "b_ref": r.refund_of, "b_order": r.order_no, "b_line": r.line_no}
               for r in refunds],
    )


__all__ = ["ImportRefused", "ImportResult", "import_purchases"]
