"""Purchase import: a platform's order export (CSV or XLSX) into a record's ledger, all or nothing.

The file is parsed by the pure :mod:`workflow.formats.ledger`; every row then passes the same rules as a
manual entry (:func:`workflow.app.lifecycle.check_purchase`). Any bad row refuses the whole file with
one :class:`ImportRefused` naming every bad row (row number and reason), and nothing is stored.

The key of a purchase line is (record, channel, order number, line). A row whose key is already
in the ledger with the same content counts as *repeated* (importing the same file twice adds
nothing); the same key with another amount (or date, or people) is a conflict naming the file row
and the existing entry. A key whose line was *voided* is not a repeat: a row identical to the voided
line is left out and the result says so (re-importing the platform's export does not bring back a
line the clerk voided); a row with other figures goes in as the correction, and the result says
which voided line it corrects. New rows go in with one bulk INSERT … ON CONFLICT DO NOTHING.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NoReturn

import states
from workflow.app import actors, purchases
from workflow.app.oplog import audited
from workflow.app.order_claims import DuplicateWarning, flag_claims
from workflow.domain import channels, clock, money, rules
from workflow.domain.errors import (
    BadInput,
    ImportRefused,
    ImportUsageError,
    LimitExceeded,
    Refusal,
    RuleViolation,
)
from workflow.formats import ledger, sandbox
from workflow.store.purchases import OrderBalance
from workflow.store.uow import ANALYZE_MIN_ROWS, UnitOfWork


@dataclass(frozen=True)
class ImportResult:
    new: int
    repeated: int
    header_row: int | None
    mapping: str
    record_id: int
    #: One Chinese sentence per row whose key matches a voided line (left out, or its correction).
    voided_notes: tuple[str, ...] = ()
    voided_skipped: int = 0
    #: The new lines' orders also held by other unions of the round (a warning: they are stored).
    duplicates: tuple[DuplicateWarning, ...] = ()

    def summary(self, *, limit: int = 3) -> str:
        """One Chinese paragraph for a flash message or the CLI: counts, then the voided keys,
        then the orders other unions also entered."""
        text = f"导入完成：新增 {self.new} 条，重复 {self.repeated} 条"
        if self.voided_notes:
            text += f"；{len(self.voided_notes)} 行对应已作废的采购行：" + "；".join(self.voided_notes[:limit])
            if len(self.voided_notes) > limit:
                text += f"；等 {len(self.voided_notes)} 行"
        if self.duplicates:
            text += (f"。注意：{len(self.duplicates)} 张订单其他单位也录入了："
                     + "；".join(d.message for d in self.duplicates[:limit]))
            if len(self.duplicates) > limit:
                text += f"；等 {len(self.duplicates)} 张"
        return text


def _mapping(mapping: str | ledger.ColumnMapping | None) -> ledger.ColumnMapping | None:
    if mapping is None or isinstance(mapping, ledger.ColumnMapping):
        return mapping
    found = ledger.MAPPINGS.get(mapping)
    if found is None:
        raise BadInput(f"未知的列映射“{mapping}”，可选：{'、'.join(ledger.MAPPINGS)}", code="import.mapping")
    return found


def _yuan(fen: int) -> str:
    return money.yuan(fen)


@audited('purchase.import', keep=('filename', 'mapping'))
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
    # 1. Who and where, in a short read-only transaction.
    with UnitOfWork(uow.database, readonly=True) as read:
        rec = read.records.get(record_id)
        actor = actors.actor_for(read, user_id, rec)
        actors.entry_role(actor, "导入采购")
        if refusal := rules.check_record_open_for_purchases(rec.state):
            raise RuleViolation(refusal)
        rnd, policy = actors.policy_for(read, rec)
        read.detach(rnd)  # the rules read it after this transaction ends
    caps = policy.caps
    shown = caps.import_errors_shown
    # 2. Parse and check every row with no transaction open: a big or hostile file costs its
    #    own request time, never other users' writes.
    if len(data) > caps.import_bytes:
        raise LimitExceeded(f"导入文件超过 {caps.import_bytes // 1024 // 1024} MB 上限", code="import.too_large")
    if column_mapping is not None and column_mapping.channel is not None \
            and policy.channel(column_mapping.channel) is None:
        raise BadInput(f"导入设置有误：列映射“{column_mapping.name}”的渠道 {column_mapping.channel} 不是本轮的采购渠道",
                       code="import.usage")
    bounds = ledger.Bounds(
        max_rows=caps.import_rows, max_unzipped_bytes=caps.import_unzipped_bytes, max_seconds=caps.import_seconds,
        max_cells=caps.import_cells, max_strings=caps.import_strings, max_members=caps.import_zip_members,
        max_ratio=caps.import_zip_ratio)
    options: dict[str, Any] = {"mapping": column_mapping, "bounds": bounds,
                               "channel_aliases": channels.alias_table(policy.channels)}
    try:
        if ledger.is_xlsx(data, filename):
            # A workbook is measured, then read, in a child process with a memory limit and a
            # hard timeout (issue 20 point 5): this process never loads it.
            parsed = sandbox.run_bounded(ledger.parse_purchases, data, filename, **options,
                                         memory_bytes=caps.import_memory_bytes, seconds=caps.import_seconds,
                                         timeout_message=ledger.seconds_refusal(caps.import_seconds))
        else:  # text costs what its bytes say: read here, under the row and time bounds
            parsed = ledger.parse_purchases(data, filename, **options)
    except ImportUsageError as exc:
        raise BadInput(f"导入设置有误：{exc}", code="import.usage") from None
    except sandbox.SandboxRefused as exc:
        _refuse([Refusal(exc.code, exc.message)], filename, shown)
    # (row number, refusal): the file's and the cells' problems, then the rules'.
    found: list[tuple[int, Refusal]] = [(e.row_number, Refusal(e.code, e.reason)) for e in parsed.errors]
    rows = parsed.rows
    if len(rows) > caps.import_rows:
        found.append((0, Refusal("import.too_many_rows", f"文件超过 {caps.import_rows:,} 行上限：请拆分为多个文件后分别导入")))
    # Exactly what a line entered by hand goes through (purchases.add_purchase): the same
    # normalisation, the same rules, the same refusal (code and sentence).
    checked: list[ledger.PurchaseRow] = []
    for row in rows:
        line = purchases.normalise_purchase(policy, _as_input(row))
        if refusal := purchases.check_purchase(policy, rnd, line, now=now):
            found.append((row.row_number, Refusal(refusal.code, f"第 {row.row_number} 行：{refusal.message}")))
        checked.append(replace(row, channel=line.channel, budget=line.budget))
    rows = checked
    if found:
        found.sort(key=lambda f: f[0])
        _refuse([f[1] for f in found], filename, shown)
    errors: list[Refusal] = []
    # 3. One short write transaction: what the ledger already holds, then one bulk insert.
    with uow:
        uow.purchases.lock_record(record_id)
        rec = uow.records.get(record_id)
        actor = actors.actor_for(uow, user_id, rec)
        _role, on_behalf = actors.entry_role(actor, "导入采购")
        if refusal := rules.check_record_open_for_purchases(rec.state):  # it may have moved on
            raise RuleViolation(refusal)
        existing, voided = _existing(uow, record_id)
        new_rows: list[ledger.PurchaseRow] = []
        repeated = parsed.repeats
        notes: list[str] = []
        skipped_voided = 0
        for row in rows:
            key = (row.channel, row.order_no, row.line_no)
            found = existing.get(key)
            if found is None and key in voided:
                same = [v for v in voided[key]
                        if (v["amount_fen"], v["people"], v["paid_at"]) == (row.amount_fen, row.people, row.paid_at)]
                v = (same or voided[key])[-1]
                what = (f"第 {row.row_number} 行：订单 {row.order_no}（行号 {row.line_no}）的原记录"
                        f"（{_yuan(v['amount_fen'])} 元，{v['people']} 人次）已于 {clock.china_date(v['voided_at']):%Y-%m-%d}"
                        f" 作废，原因：{v['void_reason']}")
                if same:
                    skipped_voided += 1
                    notes.append(what + "；本行与作废的记录相同，未导入")
                else:
                    new_rows.append(row)
                    notes.append(what + f"；本行作为更正导入（{_yuan(row.amount_fen)} 元，{row.people} 人次）")
            elif found is None:
                new_rows.append(row)
            elif (found["amount_fen"], found["people"], found["paid_at"]) == (row.amount_fen, row.people, row.paid_at):
                repeated += 1
            else:
                errors.append(Refusal(
                    "import.conflict",
                    f"第 {row.row_number} 行：订单 {row.order_no}（行号 {row.line_no}，渠道 {row.channel}）"
                    f"已录入为第 #{found['id']} 条（金额 {_yuan(found['amount_fen'])} 元，{found['people']} 人次，"
                    f"支付日期 {found['paid_on']:%Y-%m-%d}），文件中为金额 {_yuan(row.amount_fen)} 元，"
                    f"{row.people} 人次，支付日期 {clock.china_date(row.paid_at):%Y-%m-%d}，两者不一致"))
        unknown = _unknown_refunds(rows, existing)
        errors.extend(unknown)
        if not unknown:  # like a line by hand: an unknown order is refused as such, not as exceeded
            errors.extend(_refunds_beyond_orders(uow.purchases.order_balances(record_id), new_rows))
        if errors:
            _refuse(errors, filename, shown)
        before = uow.purchases.count(record_id)
        if new_rows:
            _bulk_insert(uow, record_id, new_rows, user_id=actor.user.id, on_behalf=on_behalf, now=now,
                         source=f"import:{filename}"[:200])
            _link_refunds(uow, record_id, [r for r in new_rows if r.refund_of])
            uow.records.mark_snapshot_stale(record_id, only_state=states.SUMMARIZED)
        inserted = uow.purchases.count(record_id) - before
        duplicates = flag_claims(uow, record_id=record_id, round_id=rec.round_id, round_label=rnd.label,
                                 policy=policy, orders={(r.channel, r.order_no) for r in new_rows if r.amount_fen > 0},
                                 actor_user_id=actor.user.id, now=now)
        if inserted >= ANALYZE_MIN_ROWS:  # a bulk load: fresh planner statistics
            uow.bulk.analyze("purchase")
        uow.commit()
    return ImportResult(new=inserted, repeated=repeated + len(new_rows) - inserted, header_row=parsed.header_row,
                        mapping=parsed.mapping_name, record_id=record_id, voided_notes=tuple(notes),
                        voided_skipped=skipped_voided, duplicates=tuple(duplicates))


def _refuse(refusals: list[Refusal], filename: str, shown: int) -> NoReturn:
    """All or nothing: one ImportRefused listing every bad row (sentence and code)."""
    raise ImportRefused([r.message for r in refusals], filename=filename, shown=shown,
                        codes=[r.code for r in refusals])


def _as_input(row: ledger.PurchaseRow) -> purchases.PurchaseInput:
    return purchases.PurchaseInput(
        paid_at=row.paid_at, channel=row.channel, amount_fen=row.amount_fen, people=row.people,
        order_no=row.order_no, line_no=row.line_no, product=row.product, product_form=row.product_form,
        holiday=row.holiday, origin_region=row.origin_region, budget=row.budget, refund_of=row.refund_of,
    )


Key = tuple[str, str, int]


def _existing(uow: UnitOfWork, record_id: int) -> tuple[dict[Key, dict[str, Any]], dict[Key, list[dict[str, Any]]]]:
    """The record's live ledger keys with what decides "identical", and its voided lines per key
    (one query)."""
    rows = uow.purchases.ledger_lines(record_id)
    live: dict[Key, dict[str, Any]] = {}
    voided: dict[Key, list[dict[str, Any]]] = {}
    for r in rows:
        item = {"id": r.id, "amount_fen": r.amount_fen, "people": r.people, "paid_at": r.paid_at,
                "paid_on": r.paid_on, "voided_at": r.voided_at, "void_reason": r.void_reason}
        key = (r.channel, r.order_no, r.line_no)
        if r.voided_at is None:
            live[key] = item
        else:
            voided.setdefault(key, []).append(item)
    return live, voided


def _unknown_refunds(
    rows: list[ledger.PurchaseRow], existing: dict[tuple[str, str, int], Any]
) -> list[Refusal]:
    """A refund line must name an order that is in the ledger or in the file (line 1)."""
    in_file = {(r.channel, r.order_no) for r in rows if r.amount_fen > 0}
    in_ledger = {(c, o) for (c, o, _line) in existing}
    out = []
    for r in rows:
        if r.refund_of and (r.channel, r.refund_of) not in in_file | in_ledger:
            refusal = rules.refund_order_unknown(r.refund_of)
            out.append(Refusal(refusal.code, f"第 {r.row_number} 行：{refusal.message}"))
    return out


def _refunds_beyond_orders(
    ledger_orders: dict[tuple[str, str], OrderBalance], new_rows: list[ledger.PurchaseRow]
) -> list[Refusal]:
    """The refunds of an order (in the ledger and in the file) never exceed the order."""
    totals = {key: list(v) for key, v in ledger_orders.items()}
    last_row: dict[tuple[str, str], int] = {}
    for r in new_rows:
        if r.refund_of:
            key = (r.channel, r.refund_of)
            t = totals.setdefault(key, [0, 0, 0, 0])
            t[2] += r.amount_fen
            t[3] += r.people
            last_row[key] = r.row_number
        elif r.amount_fen > 0:
            t = totals.setdefault((r.channel, r.order_no), [0, 0, 0, 0])
            t[0] += r.amount_fen
            t[1] += r.people
    out = []
    for key, row_number in sorted(last_row.items(), key=lambda kv: kv[1]):
        amount, people, r_amount, r_people = totals[key]
        refusal = rules.check_refunds_within_order(key[1], amount, people, r_amount, r_people)
        if refusal:
            out.append(Refusal(refusal.code, f"第 {row_number} 行：{refusal.message}"))
    return out


def _bulk_insert(
    uow: UnitOfWork, record_id: int, rows: list[ledger.PurchaseRow], *, user_id: int | None, on_behalf: bool,
    now: datetime, source: str,
) -> None:
    """The new lines, inserted in one batch (the SQL: :func:`workflow.store.purchases.insert_new`)."""
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
    uow.purchases.insert_new(values)


def _link_refunds(uow: UnitOfWork, record_id: int, refunds: list[ledger.PurchaseRow]) -> None:
    """Point each imported refund line at its order's line 1 (one executemany UPDATE)."""
    uow.purchases.link_refunds(record_id, [
        {"channel": r.channel, "refund_of": r.refund_of, "order_no": r.order_no, "line_no": r.line_no}
        for r in refunds])


__all__ = ["ImportRefused", "ImportResult", "import_purchases"]
