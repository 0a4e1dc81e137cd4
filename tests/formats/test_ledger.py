"""Tests for workflow.formats.ledger: purchase file parsing (pure, no database)."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow.domain import channels
from workflow.domain.money import parse_paid_at, parse_yuan
from workflow.domain.policy import Channel, builtin
from workflow.formats.ledger import (
    CHINA_TZ,
    MAPPINGS,
    ColumnMapping,
    ImportUsageError,
    ParseResult,
    parse_purchases,
)

# The parser decides nothing (year, forms, known channels and budgets, refund links): those rules
# are tested where they are decided, for a hand-entered line and an imported row alike
# (tests/app/test_purchase_import.py, tests/app/test_import_parity.py).
HEADER = [
    "订单号",
    "商品行号",
    "支付时间",
    "实付金额",
    "领取人数",
    "节日",
    "商品名称",
    "商品形态",
    "产地",
    "经费来源",
    "渠道",
]


def row(
    order: str = "A001",
    line: object = 1,
    paid: object = "2021-12-20 10:00",
    amount: object = "100.00",
    people: object = 2,
    holiday: str = "元旦",
    product: str = "梅州金柚",
    form: str = "实物",
    origin: str = "梅州",
    budget: str = "额外额度",
    channel: str = "粤工惠购",
) -> list[object]:
    return [order, line, paid, amount, people, holiday, product, form, origin, budget, channel]


def to_csv(
    rows: Sequence[Sequence[object]],
    *,
    encoding: str = "utf-8",
    header: list[str] | None = None,
    titles: tuple[str, ...] = (),
) -> bytes:  # type: ignore[assignment]
    lines = [*titles, ",".join(header or HEADER)]
    for r in rows:
        lines.append(",".join(_csv_cell(c) for c in r))
    return ("\r\n".join(lines) + "\r\n").encode(encoding)


def _csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    if any(ch in text for ch in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def parse(data: bytes, filename: str = "采购.csv", **kwargs: object) -> ParseResult:
    return parse_purchases(data, filename, **kwargs)  # type: ignore[arg-type]


def reasons(result: ParseResult) -> list[str]:
    return [e.reason for e in result.errors]


# ------------------------------------------------------------------ encodings and header search


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_each_encoding_round_trips_chinese(encoding: str) -> None:
    result = parse(
        to_csv(
            [row(product="连州菜心·礼盒"), row(order="A002", channel="832平台")], encoding=encoding
        )
    )
    assert result.errors == []
    assert result.header_row == 1
    assert [r.product for r in result.rows] == ["连州菜心·礼盒", "梅州金柚"]
    assert [r.channel for r in result.rows] == ["ygh", "p832"]
    assert result.rows[0].holiday == "元旦"
    assert result.rows[0].origin_region == "梅州"
    assert result.mapping_name == "generic"


def test_header_on_row_four_under_title_rows() -> None:
    data = to_csv([row()], titles=("2021年消费帮扶采购台账", "单位：某区总工会,,,", ""))
    result = parse(data)
    assert result.errors == []
    assert result.header_row == 4
    assert result.rows[0].row_number == 5


def test_garbage_file_gives_one_clear_error() -> None:
    result = parse(b"\x00\xff\xfe garbage \x00")
    assert len(result.errors) == 1 and result.rows == []


def test_no_header_in_first_ten_rows() -> None:
    data = "\n".join(["说明"] * 12 + [",".join(HEADER), ",".join(map(str, row()))]).encode()
    result = parse(data)
    assert len(result.errors) == 1
    assert result.errors[0].row_number == 0
    assert result.errors[0].reason.startswith("未在前 10 行找到表头：需要")
    assert "订单号" in result.errors[0].reason


def test_missing_required_column_is_one_header_error() -> None:
    header = [h for h in HEADER if h != "实付金额"]
    rows = [[c for i, c in enumerate(row()) if i != 3]]
    result = parse(to_csv(rows, header=header))
    assert len(result.errors) == 1 and "实付金额" in result.errors[0].reason


def test_xls_refused_with_hint() -> None:
    result = parse(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100, "old.xls")
    assert "xls" in result.errors[0].reason


def test_broken_xlsx_does_not_raise() -> None:
    result = parse(b"PK\x03\x04 not really a zip", "a.xlsx")
    assert len(result.errors) == 1 and "XLSX" in result.errors[0].reason


def _zip_without_workbook() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("readme.txt", "not a workbook")
    return buf.getvalue()


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n" + b"\0" * 200,  # a picture renamed .xlsx
    b"PK\x03\x04 not really a zip",
    _zip_without_workbook(),
], ids=["png", "truncated-zip", "zip-not-workbook"])
def test_a_file_that_is_not_a_workbook_says_what_to_do_in_chinese(data: bytes) -> None:
    result = parse(data, "采购明细.xlsx")
    assert result.rows == [] and len(result.errors) == 1
    reason = result.errors[0].reason
    assert "另存为 .xlsx" in reason
    # No library exception name (BadZipFile, KeyError ...) reaches the clerk: the only Latin
    # words are the file type and the programs' names.
    assert set(re.findall(r"[A-Za-z]+", reason)) <= {"XLSX", "Excel", "WPS", "xlsx"}


# ------------------------------------------------------------------ dates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-12-31", datetime(2021, 12, 31)),
        ("2021/12/31", datetime(2021, 12, 31)),
        ("2021年12月31日", datetime(2021, 12, 31)),
        ("2021.12.31", datetime(2021, 12, 31)),
        ("2021-12-31 08:05", datetime(2021, 12, 31, 8, 5)),
        ("2021/1/5 8:05:09", datetime(2021, 1, 5, 8, 5, 9)),
        ("2021年12月31日 23:59:59", datetime(2021, 12, 31, 23, 59, 59)),
        ("2021.12.31 23:50", datetime(2021, 12, 31, 23, 50)),
        ("２０２１－１２－３１", datetime(2021, 12, 31)),
        ("44561", datetime(2021, 12, 31)),  # Excel serial number in a CSV
        ("44561.5", datetime(2021, 12, 31, 12)),
    ],
)
def test_date_formats(text: str, expected: datetime) -> None:
    result = parse(to_csv([row(paid=text)]))
    assert result.errors == [], reasons(result)
    paid = result.rows[0].paid_at
    assert paid.tzinfo is not None
    assert paid == expected.replace(tzinfo=CHINA_TZ)


def test_parse_paid_at_values() -> None:
    assert parse_paid_at(date(2021, 5, 1)) == datetime(2021, 5, 1, tzinfo=CHINA_TZ)
    assert parse_paid_at(44561) == datetime(2021, 12, 31, tzinfo=CHINA_TZ)
    utc = parse_paid_at("2021-12-31T16:10:00Z").astimezone(CHINA_TZ)
    assert utc.tzinfo is not None and (utc.year, utc.month, utc.day, utc.hour) == (2022, 1, 1, 0)
    for bad in ("2021-02-30", "明天", "", "12"):
        with pytest.raises(ValueError):
            parse_paid_at(bad)


@pytest.mark.parametrize(
    ("paid", "ok"),
    [
        ("2021-12-31 23:50", True),
        ("2022-01-01 00:10", False),
        ("2021-12-31T15:50:00+00:00", True),  # 23:50 China time
        ("2021-12-31T16:10:00+00:00", False),  # 2022-01-01 00:10 China time
        ("2021-01-01 00:00", True),
        ("2020-12-31 23:59:59", False),
    ],
)
def test_year_boundary_in_china_time(paid: str, ok: bool) -> None:
    """The parser reads the instant in China time; the round-year rule itself is decided by the
    import (tests/app/test_import_parity.py::test_year_boundary_in_china_time_is_decided_by_the_rule)."""
    result = parse(to_csv([row(paid=paid)]))
    assert result.ok
    assert (result.rows[0].paid_at.astimezone(CHINA_TZ).year == 2021) is ok


# ------------------------------------------------------------------ amounts and people


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("￥1,234.50", 123450),
        ("¥1,234.5", 123450),
        ("１２３.４", 12340),
        ("1 234.50 元", 123450),
        ("100元", 10000),
        ("(15.00)", -1500),
        ("（15.00）", -1500),
        ("-15", -1500),
        ("-￥15.00", -1500),
        ("12.340", 1234),
        ("0.01", 1),
    ],
)
def test_amounts(text: str, fen: int) -> None:
    result = parse(to_csv([row(amount=text)]))
    assert result.errors == [], reasons(result)
    assert result.rows[0].amount_fen == fen


def test_more_than_two_decimals_refused_not_rounded() -> None:
    result = parse(to_csv([row(), row(), row(), row(), row(), row(order="X7", amount="12.345")]))
    assert reasons(result) == ["第 7 行：金额“12.345”超过两位小数"]
    assert result.errors[0].row_number == 7
    assert result.errors[0].field == "amount"


@pytest.mark.parametrize("bad", ["abc", "1,23.00", "1.2.3", "--5", ""])
def test_bad_amounts_refused(bad: str) -> None:
    result = parse(to_csv([row(amount=bad)]))
    assert not result.ok and result.errors[0].field == "amount"


def test_parse_amount_numeric_cells() -> None:
    assert parse_yuan(12) == 1200
    assert parse_yuan(12.5) == 1250
    assert parse_yuan(0.1 + 0.2) == 30  # float noise from a spreadsheet formula
    assert parse_yuan(Decimal("-3.10")) == -310
    with pytest.raises(ValueError, match="超过两位小数"):
        parse_yuan(12.345)


@given(
    yuan=st.integers(min_value=0, max_value=10**12),
    cents=st.integers(min_value=0, max_value=99),
    decimals=st.sampled_from([0, 1, 2]),
    prefix=st.sampled_from(["", "￥", "¥"]),
    suffix=st.sampled_from(["", "元"]),
    negative=st.booleans(),
)
def test_property_amount_with_commas_is_exact(
    yuan: int, cents: int, decimals: int, prefix: str, suffix: str, negative: bool
) -> None:
    if decimals == 0:
        cents = 0
    elif decimals == 1:
        cents -= cents % 10
    body = f"{yuan:,}" + ("" if decimals == 0 else "." + f"{cents:02d}"[:decimals])
    text = f"-{prefix}{body}{suffix}" if negative else f"{prefix}{body}{suffix}"
    expected = yuan * 100 + cents
    assert parse_yuan(text) == (-expected if negative else expected)


def test_a_missing_people_column_refuses_the_file_once_at_the_header() -> None:
    """Issue 9, point 10: the missing column is named once (with the names accepted for it),
    not once per row; nothing is imported."""
    header = [h for h in HEADER if h != "领取人数"]
    rows = [[c for i, c in enumerate(row(order=f"A{n}")) if i != 4] for n in range(3)]
    result = parse(to_csv(rows, header=header))
    assert result.rows == []
    assert len(result.errors) == 1
    (error,) = result.errors
    assert error.row_number == 1 and error.field == "header"
    assert "领取人数" in error.reason and "人次" in error.reason and "受益人数" in error.reason


@pytest.mark.parametrize("people_header", ["人数", "人次", "受益人数", "领取人次", "发放人数", "慰问人次",
                                           "受益人数（人）", "领取人数(人)", "惠及职工人数"])
def test_the_people_column_is_found_under_the_names_clerks_use(people_header: str) -> None:
    header = [people_header if h == "领取人数" else h for h in HEADER]
    result = parse(to_csv([row(people="12")], header=header))
    assert result.errors == [] and result.rows[0].people == 12


@pytest.mark.parametrize(("column", "alias"), [("支付时间", "成交时间"), ("实付金额", "支付金额（元）"),
                                               ("订单号", "交易单号"), ("商品名称", "商品标题")])
def test_platform_export_headers_are_recognised(column: str, alias: str) -> None:
    header = [alias if h == column else h for h in HEADER]
    result = parse(to_csv([row()], header=header))
    assert result.errors == [], result.errors


@pytest.mark.parametrize(
    ("people", "expected"), [("12", 12), ("1,200", 1200), ("30人", 30), ("0", 0)]
)
def test_people_counts(people: str, expected: int) -> None:
    result = parse(to_csv([row(people=people)]))
    assert result.rows[0].people == expected


@pytest.mark.parametrize("people", ["-1", "2.5", "", "许多"])
def test_bad_people_refused(people: str) -> None:
    result = parse(to_csv([row(people=people)]))
    assert not result.ok and result.errors[0].field == "people"


# ------------------------------------------------------------------ policy checks


@pytest.mark.parametrize(
    ("form", "product"), [("购物卡", "超市卡"), ("实物", "大闸蟹提货券"), ("现金", "慰问金")]
)
def test_forbidden_form_is_read_not_decided(form: str, product: str) -> None:
    """Refused by the rule at import (test_import_parity.py::test_forbidden_forms_...)."""
    result = parse(to_csv([row(form=form, product=product)]))
    assert result.ok
    assert (result.rows[0].product_form, result.rows[0].product) == (form, product)


def test_unknown_channel_kept_as_written_and_code_accepted() -> None:
    """An unknown channel is refused by the rule at import, quoting it
    (test_import_parity.py::test_an_unknown_channel_...)."""
    result = parse(to_csv([row(channel="淘宝"), row(order="B", channel="dxb")]))
    assert result.ok
    assert [r.channel for r in result.rows] == ["淘宝", "dxb"]


def test_channel_names_resolve_only_to_the_rounds_channels() -> None:
    ygh_only = channels.alias_table([c for c in _policy_channels() if c.code == "ygh"])
    result = parse(to_csv([row(channel="gdg"), row(order="B", channel="广东馆"), row(order="C")]),
                   channel_aliases=ygh_only)
    assert [r.channel for r in result.rows] == ["gdg", "广东馆", "ygh"]


def _policy_channels() -> tuple[Channel, ...]:
    return builtin().channels


def test_default_channel_and_budget() -> None:
    result = parse(to_csv([row(channel="", budget="")]), default_channel="other")
    assert result.rows[0].channel == "other"
    assert result.rows[0].budget == "extra_quota"
    result = parse(to_csv([row(budget="集体福利"), row(order="B", budget="hardship")]))
    assert [r.budget for r in result.rows] == ["collective_welfare", "hardship"]


def test_empty_channel_without_default_refused() -> None:
    result = parse(to_csv([row(channel="")]))
    assert result.errors[0].field == "channel"


def test_refund_of_only_on_negative_lines() -> None:
    header = [*HEADER, "原订单号"]
    result = parse(
        to_csv(
            [
                [*row(order="R1", amount="(15.00)"), "A001"],
                [*row(order="R2", amount="15.00"), "A001"],
            ],
            header=header,
        )
    )
    assert result.rows[0].refund_of == "A001" and result.rows[0].amount_fen == -1500
    # The link on a positive line is refused by the rule (purchase.refund_of_not_refund) at import:
    # test_import_parity.py::test_a_refund_link_on_a_positive_line_...
    assert result.ok and result.rows[1].refund_of == "A001" and result.rows[1].amount_fen == 1500


# ------------------------------------------------------------------ contract and duplicates


def test_one_bad_row_reports_row_and_reason() -> None:
    result = parse(to_csv([row(order="A1"), row(order="A2", paid="某天"), row(order="A3")]))
    # Contract: callers import nothing when errors is non-empty; rows only shows progress.
    assert not result.ok
    assert [r.order_no for r in result.rows] == ["A1", "A3"]
    assert len(result.errors) == 1
    error = result.errors[0]
    assert error.row_number == 3 and error.field == "paid_at"
    assert error.reason.startswith("第 3 行：支付时间“某天”无法识别")
    assert str(error) == error.reason


def test_within_file_conflict_names_both_rows() -> None:
    result = parse(to_csv([row(order="A1"), row(order="A2"), row(order="A1", amount="99.00")]))
    assert len(result.errors) == 1
    reason = result.errors[0].reason
    assert "第 4 行" in reason and "第 2 行" in reason and "A1" in reason


def test_same_content_twice_is_a_repeat() -> None:
    result = parse(to_csv([row(order="A1"), row(order="A1"), row(order="A1", line=2)]))
    assert result.ok
    assert result.repeats == 1
    assert [(r.order_no, r.line_no) for r in result.rows] == [("A1", 1), ("A1", 2)]


def test_blank_and_total_lines_skipped() -> None:
    data = to_csv([row(), [""] * len(HEADER), ["合计", "", "", "100.00", "2"] + [""] * 6])
    assert parse(data).ok


def test_usage_errors_raise() -> None:
    # A mapping's channel the round does not have: test_import_parity.py::test_a_mapping_for_...
    with pytest.raises(ImportUsageError):
        ColumnMapping(name="bad", columns={"order_no": ("订单号",)})


# ------------------------------------------------------------------ XLSX and platform mappings


def _xlsx(rows: Sequence[Sequence[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for r in rows:
        sheet.append(r)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_xlsx_with_excel_date_cell_and_platform_mapping() -> None:
    data = _xlsx(
        [
            ["粤工惠购订单导出", None],
            ["导出时间：2022-01-05", None],
            ["订单编号", "支付时间", "商品名称", "实付金额（元）", "领取人数", "节日"],
            [20211231001, datetime(2021, 12, 31, 23, 50), "英德红茶", 1234.5, 25, "春节"],
            ["20211220002", date(2021, 12, 20), "徐闻菠萝", "￥88.00", 4.0, None],
            ["20211220003", 44550, "新会陈皮", 10, 1, None],  # serial number in a number cell
        ]
    )
    result = parse(data, "导出.xlsx", mapping=MAPPINGS["ygh"])
    assert result.errors == [], reasons(result)
    assert result.header_row == 3
    assert result.mapping_name == "ygh"
    first, second, third = result.rows
    assert first.order_no == "20211231001"
    assert first.paid_at == datetime(2021, 12, 31, 23, 50, tzinfo=CHINA_TZ)
    assert first.amount_fen == 123450 and first.people == 25 and first.channel == "ygh"
    assert second.paid_at == datetime(2021, 12, 20, tzinfo=CHINA_TZ) and second.people == 4
    assert third.paid_at == datetime(2021, 12, 20, tzinfo=CHINA_TZ)
    assert third.amount_fen == 1000


def test_xlsx_detected_by_content_whatever_the_name() -> None:
    data = _xlsx([HEADER, row()])
    assert parse(data, "upload.bin").ok


@pytest.mark.parametrize("code", ["ygh", "p832", "gdg", "dxb"])
def test_platform_mappings_fix_channel(code: str) -> None:
    mapping = MAPPINGS[code]
    header = [mapping.columns[f][0] for f in ("order_no", "paid_at", "amount", "people", "product")]
    data = to_csv([["X1", "2021-06-01", "50", "1", "荔枝"]], header=header, encoding="gbk")
    result = parse(data, mapping=mapping)
    assert result.ok, reasons(result)
    assert result.rows[0].channel == code


def test_preferred_alias_wins_payment_time_over_order_time() -> None:
    header = ["订单号", "下单时间", "支付时间", "实付金额", "领取人数", "商品名称", "渠道"]
    data = to_csv(
        [["A", "2021-12-31 23:00", "2022-01-01 01:00", "1", "1", "茶", "ygh"]], header=header
    )
    result = parse(data)
    # Counted by payment date (2022, refused by the round-year rule at import), not order date.
    assert result.rows[0].paid_at == datetime(2022, 1, 1, 1, 0, tzinfo=CHINA_TZ)


def test_tab_separated_text_export() -> None:
    data = ("\t".join(HEADER) + "\n" + "\t".join(map(str, row(amount="1,234.00"))) + "\n").encode(
        "gb18030"
    )
    result = parse(data, "export.txt")
    assert result.ok, reasons(result)
    assert result.rows[0].amount_fen == 123400


def test_xlsx_skips_leading_notes_sheet() -> None:
    workbook = openpyxl.Workbook()
    notes = workbook.active
    assert notes is not None
    notes.title = "说明"
    notes.append(["本表由832平台导出"])
    orders = workbook.create_sheet("订单")
    orders.append(["采购订单号", "付款时间", "订单金额", "人次", "商品名称"])
    orders.append(["P1", "2021-09-20 08:00:00", "300", "6", "百色芒果"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    result = parse(buffer.getvalue(), "832.xlsx", mapping=MAPPINGS["p832"])
    assert result.ok, reasons(result)
    assert (result.rows[0].order_no, result.rows[0].channel, result.rows[0].people) == (
        "P1",
        "p832",
        6,
    )
