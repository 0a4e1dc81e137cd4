"""Purchase import into the ledger: all or nothing, repeats, conflicts, encodings, on behalf."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select

from tests.conftest import NOW_2021, World
from workflow.app import purchase_import
from workflow.domain.errors import ImportRefused, PermissionDenied, RuleViolation
from workflow.entrypoints.cli import exit_code_for
from workflow.store.tables import Purchase, Record

HEADER = "订单号,商品行号,支付时间,实付金额,领取人数,商品名称,商品形态,经费来源,渠道,原订单号"


def csv(rows: Sequence[str], *, encoding: str = "utf-8", title: str | None = None) -> bytes:
    lines = ([title] if title else []) + [HEADER, *rows]
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


GOOD = [
    "A001,1,2021-10-20 10:00,\"1,200.00\",20,梅州金柚,实物,额外额度,粤工惠购,",
    "A001,2,2021/10/20,￥300元,5,清远鸡,实物,额外额度,粤工惠购,",
    "B001,1,2021年10月21日,88.8,2,韶关香菇,实物,普通节日慰问品,832平台,",
]


def run(w: World, data: bytes, *, org: str = "G1", user: str = "g1-clerk", filename: str = "采购.csv",
        mapping: str | None = None) -> purchase_import.ImportResult:
    return purchase_import.import_purchases(w.uow(), record_id=w.rid(org), user_id=w.uid(user), data=data,
                                       filename=filename, mapping=mapping, now=NOW_2021)


def ledger(w: World, org: str = "G1") -> list[Any]:
    t = Purchase.__table__
    with w.uow(True) as uow:
        return list(uow.session.execute(select(t).where(t.c.record_id == w.rid(org)).order_by(t.c.id)).all())


def test_import_then_same_file_again_adds_nothing(any_world: World) -> None:
    w = any_world
    result = run(w, csv(GOOD))
    assert (result.new, result.repeated) == (3, 0)
    rows = sorted((p.order_no, p.line_no, p.channel, p.amount_fen, p.people, p.budget) for p in ledger(w))
    assert rows == [("A001", 1, "ygh", 120000, 20, "extra_quota"), ("A001", 2, "ygh", 30000, 5, "extra_quota"),
                    ("B001", 1, "p832", 8880, 2, "ordinary_gift")]
    again = run(w, csv(GOOD))
    assert (again.new, again.repeated) == (0, 3)
    assert len(ledger(w)) == 3
    # A file with one more line: one new, the rest repeated.
    more = run(w, csv([*GOOD, "B002,1,2021-10-22,10.00,1,茶叶,实物,额外额度,832平台,"]))
    assert (more.new, more.repeated) == (1, 3)


def test_one_bad_row_imports_nothing_and_every_bad_row_is_named(any_world: World) -> None:
    w = any_world
    bad = [
        *GOOD,
        "C001,1,2021-10-20,12.345,2,茶叶,实物,额外额度,粤工惠购,",  # three decimals
        "C002,1,2021-10-20,50.00,2,超市购物卡,购物卡,额外额度,粤工惠购,",  # forbidden form
        "C003,1,2020-12-31,50.00,2,茶叶,实物,额外额度,粤工惠购,",  # outside the round's year
    ]
    with pytest.raises(ImportRefused) as caught:
        run(w, csv(bad))
    err = caught.value
    assert exit_code_for(err) == 2
    assert len(err.errors) == 3
    assert "第 5 行" in err.errors[0] and "两位小数" in err.message
    assert any("第 6 行" in e for e in err.errors) and any("第 7 行" in e for e in err.errors)
    assert "未导入任何数据" in err.message
    assert ledger(w) == []


def test_same_key_with_another_amount_is_a_conflict_naming_both_rows(any_world: World) -> None:
    w = any_world
    run(w, csv(GOOD))
    existing = next(p for p in ledger(w) if (p.order_no, p.line_no) == ("A001", 2))
    changed = [GOOD[0], "A001,2,2021/10/20,310.00,5,清远鸡,实物,额外额度,粤工惠购,"]
    with pytest.raises(ImportRefused) as caught:
        run(w, csv(changed))
    (message,) = caught.value.errors
    assert "第 3 行" in message and f"#{existing.id}" in message
    assert "300.00" in message and "310.00" in message
    assert len(ledger(w)) == 3


def test_gbk_file_with_a_title_row_and_a_platform_mapping(any_world: World) -> None:
    w = any_world
    data = ("粤工惠购订单导出\r\n订单编号,支付时间,实付金额(元),领取人数,商品名称\r\n"
            "YG-1,2021-10-01 09:30:00,\"2,000.00\",40,潮汕牛肉丸\r\n"
            "YG-2,2021-10-02,500,10,英德红茶\r\n").encode("gbk")
    result = run(w, data, filename="orders.csv", mapping="ygh")
    assert (result.new, result.header_row, result.mapping) == (2, 2, "ygh")
    assert sorted((p.order_no, p.channel, p.amount_fen) for p in ledger(w)) == [
        ("YG-1", "ygh", 200000), ("YG-2", "ygh", 50000)]


def test_xlsx_import_by_parent_reviewer_on_behalf_with_a_refund(any_world: World) -> None:
    w = any_world
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEADER.split(","))
    ws.append(["R1", 1, "2021-10-05", 500, 10, "荔枝干", "实物", "额外额度", "832平台", None])
    ws.append(["R1-退", 1, "2021-10-06", -100, 0, "荔枝干退款", "实物", "额外额度", "832平台", "R1"])
    buf = io.BytesIO()
    wb.save(buf)
    result = run(w, buf.getvalue(), user="d1-reviewer", filename="采购.xlsx")
    assert result.new == 2
    rows = {p.order_no: p for p in ledger(w)}
    assert all(p.on_behalf for p in rows.values())
    assert rows["R1-退"].refund_of_id == rows["R1"].id and rows["R1-退"].amount_fen == -10000


def test_refund_of_an_unknown_order_is_refused(any_world: World) -> None:
    w = any_world
    with pytest.raises(ImportRefused, match="原订单 NOPE"):
        run(w, csv(["X1,1,2021-10-06,-1.00,0,退款,实物,额外额度,粤工惠购,NOPE"]))


def test_membership_and_record_state(any_world: World) -> None:
    w = any_world
    with pytest.raises(PermissionDenied):
        run(w, csv(GOOD), user="c1-clerk")
    w.plan("G1")
    run(w, csv(GOOD))
    w.fire("G1", "finish_purchasing", "g1-clerk")
    w.info("G1")
    w.fire("G1", "summarize", "g1-clerk")
    # Importing into a summarized record marks its snapshot stale.
    run(w, csv(["Z1,1,2021-10-07,1.00,1,茶叶,实物,额外额度,粤工惠购,"]))
    with w.uow(True) as uow:
        assert uow.session.execute(select(Record.snapshot_stale).where(Record.id == w.rid("G1"))).scalar_one()
    w.fire("G1", "reopen", "g1-clerk")
    w.fire("G1", "summarize", "g1-clerk")
    w.fire("G1", "submit", "g1-clerk")
    with pytest.raises(RuleViolation, match="已提交"):
        run(w, csv(["Z2,1,2021-10-07,1.00,1,茶叶,实物,额外额度,粤工惠购,"]))
