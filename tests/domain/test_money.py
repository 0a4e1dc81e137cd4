"""What a clerk may type as money, counts and payment times (workflow.domain.money): one parser
for the CLI, the API, the pages and the imports."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from workflow.domain import money
from workflow.domain.errors import BadInput
from workflow.entrypoints.cli import exit_code_for
from workflow.entrypoints.web.errors import http_status


@pytest.mark.parametrize(("text", "fen"), [
    ("１２３．４", 12340),          # full-width digits and point from a Chinese IME
    ("１，２３４．５０元", 123450),   # full-width comma
    ("（15.00）", -1500),
    ("￥1,234,567.89", 123456789),
    ("1 234.50 元", 123450),
    ("+8", 800),
])
def test_accepted_amounts(text: str, fen: int) -> None:
    assert money.parse_yuan(text) == fen


@pytest.mark.parametrize("text", [
    "1,,2", "1_000", "1,23", "12,34,567", "١٢٣", "१२३", "1e3", "1e999999999", "NaN", "nan", "inf",
    "-inf", "0x10", "1'000", "1.2.3", "--5", "1,000 000", "\x00", "1\x002",
])
def test_refused_amounts_name_the_field(text: str) -> None:
    with pytest.raises(BadInput) as exc:
        money.parse_yuan(text, "每人增加额度")
    assert exc.value.code.startswith("input.money")
    assert exc.value.message.startswith("每人增加额度“")
    assert http_status(exc.value) == 422 and exit_code_for(exc.value) == 2


def test_amounts_beyond_the_parser_cap_are_refused() -> None:
    assert money.parse_yuan("10,000,000,000,000.00") == money.MAX_FEN
    for text in ("10,000,000,000,000.01", "92233720368547758.07", "9" * 40):
        with pytest.raises(BadInput) as exc:
            money.parse_yuan(text)
        assert exc.value.code == "input.money_range", text
        assert "超出可记录的范围" in exc.value.message


@pytest.mark.parametrize("text", ["9223372036854775808", "١٢", "1_0", "1e3", "-1", "99999999999"])
def test_counts(text: str) -> None:
    with pytest.raises(BadInput) as exc:
        money.parse_count(text, "领取人数")
    assert exc.value.code.startswith("input.int") and "领取人数" in exc.value.message


def test_count_accepts_ime_digits_and_commas() -> None:
    assert money.parse_count("１２", "人数") == 12
    assert money.parse_count("12,000", "人数") == 12000


def test_paid_at() -> None:
    assert money.parse_paid_at("2021-12-31T10:30") == datetime(2021, 12, 31, 2, 30, tzinfo=UTC)
    for bad in ("0001-01-01T00:00", "9999-12-31T23:59", "明天", "2021-02-30T10:00"):
        with pytest.raises(BadInput) as exc:
            money.parse_paid_at(bad)
        assert exc.value.code.startswith("input.time") and "支付时间" in exc.value.message


@pytest.mark.parametrize("value", [
    "2021-12-31 10:30", "2021/12/31 10:30", "2021年12月31日 10:30", "2021.12.31 10:30", "２０２１－１２－３１ １０:３０",
    "2021-12-31T10:30", "2021-12-31T02:30:00Z", "2021-12-31T10:30:00+08:00", "44561.4375",
    datetime(2021, 12, 31, 10, 30),
])
def test_paid_at_reads_every_accepted_format_as_the_same_instant(value: object) -> None:
    """The one payment-time parser: typed text and spreadsheet cells alike (issue 19 point 3)."""
    assert money.parse_paid_at(value) == datetime(2021, 12, 31, 2, 30, tzinfo=UTC)


def test_paid_at_date_cells_and_serials_are_china_midnight() -> None:
    assert money.parse_paid_at(date(2021, 12, 31)) == money.parse_paid_at("2021-12-31") == money.parse_paid_at(44561)
    with pytest.raises(BadInput) as exc:
        money.parse_paid_at("12")  # an Excel serial before 1900-03-01: not a date
    assert exc.value.code == "input.time"


def test_dates() -> None:
    assert money.parse_date("２０２１-１２-３１") == date(2021, 12, 31)
    with pytest.raises(BadInput, match="年份须在"):
        money.parse_date("0001-01-01", "填表时间")


def test_formatting() -> None:
    assert money.yuan(-123456789) == "-1,234,567.89"
    assert money.yuan_plain(-1500) == "-15.00"
    assert str(money.wan_yuan(5_000)) == "0.01" and str(money.wan_people(49)) == "0.00"
