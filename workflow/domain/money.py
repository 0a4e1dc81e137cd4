"""Money and payment times as people type them: the one parser and the one formatter.

Every entry point (CLI, JSON API, pages, purchase import) turns yuan text into integer fen here,
and every screen and download formats fen here. Pure: stdlib only.

What a clerk may type as an amount (``parse_yuan``)
---------------------------------------------------
* ASCII digits, or full-width digits and punctuation from a Chinese IME (``１２３．４``, ``，``,
  ``（15.00）``): full-width forms U+FF01..U+FF5E are mapped to ASCII first. No other digits:
  Arabic-Indic (``١٢``), Devanagari and other Unicode decimal digits are refused, even though
  Python's ``int()`` and ``Decimal()`` would read them.
* An optional sign (``-`` or ``+``) or parentheses for a refund (``(15.00)``), an optional currency
  mark ``￥``/``¥``/``人民币``/``RMB``/``CNY`` before and ``元`` after, spaces around them.
* Thousands separators only in groups of three and only one kind per number: ``12,345.60`` and
  ``1 234.50`` yes; ``1,,2``, ``1,23``, ``1_000``, ``1'000`` no.
* At most two decimals (``12.340`` is exact and accepted; ``12.345`` is refused, never rounded).
* No exponent (``1e3``, ``1e999999999``), no ``NaN``/``inf``, nothing above :data:`MAX_FEN`
  (10 trillion yuan: far above any line a union can have; the policy's caps on a purchase line,
  :class:`workflow.domain.policy.Caps`, are much lower and checked by the rules).

Spreadsheet cells that are numbers (``int``, ``float``, ``Decimal``) are read exactly too; a float
with spreadsheet noise (``30.000000000000004``) is read at Excel's 15 significant digits.

Every refusal is a :class:`~workflow.domain.errors.MoneyInputError` (a ``BadInput``: HTTP 422,
exit 2) whose Chinese message names the field, e.g. ``金额“1,,2”不是有效的数字``.

Payment times (``parse_paid_at``)
---------------------------------
The one payment-time parser, for typed text and spreadsheet cells alike: ``2021-12-31``,
``2021/12/31``, ``2021年12月31日``, ``2021.12.31`` with an optional ``HH:MM[:SS]``; ISO 8601 with or
without an offset; date cells and Excel serial numbers. A naive time is China time; the year is
from :data:`MIN_YEAR` to :data:`MAX_YEAR`; returned aware, in UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from workflow.domain.errors import MoneyInputError, TimeInputError

CHINA = ZoneInfo("Asia/Shanghai")

#: The largest amount the parser reads, in fen (10 trillion yuan). A purchase line's own cap is
#: policy data and far lower; this bound only keeps every parsed number well inside 64 bits.
MAX_FEN = 10**15
#: The largest count (people, members, a line number, a version) the parser reads; the policy's
#: caps are lower. Below 2^31 so it fits every integer column, 32-bit ones included.
MAX_COUNT = 2**31 - 1
#: Payment times and form dates outside these years are typing mistakes, not purchases.
MIN_YEAR = 2000
MAX_YEAR = 2100

_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_FULLWIDTH[0x3000] = 0x20  # ideographic space
_FULLWIDTH[0xFFE5] = ord("¥")  # full-width yen/yuan sign
_PREFIXES = ("人民币", "RMB", "CNY", "rmb", "cny", "¥", "￥")
_SUFFIXES = ("元",)
# One kind of thousands separator, in groups of exactly three digits, or none.
_AMOUNT_RE = re.compile(
    r"^(?P<int>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,3}(?: [0-9]{3})+|[0-9]+)?"
    r"(?:\.(?P<frac>[0-9]+))?$"
)
_INT_RE = re.compile(r"^[0-9]{1,3}(?:,[0-9]{3})+$|^[0-9]+$")


def ime_text(text: str) -> str:
    """Full-width ASCII forms (a Chinese IME's digits, comma, point, brackets) -> ASCII."""
    return text.translate(_FULLWIDTH)


def _refuse(field: str, shown: str, why: str = "不是有效的数字", code: str = "input.money") -> MoneyInputError:
    shown = shown.replace("\x00", "\\0")
    if len(shown) > 40:
        shown = shown[:40] + "…"
    return MoneyInputError(f"{field}“{shown}”{why}", code=code)


def _from_decimal(dec: Decimal, field: str, shown: str) -> int:
    if not dec.is_finite():
        raise _refuse(field, shown)
    if abs(dec) > Decimal(MAX_FEN) / 100:
        raise _refuse(field, shown, f"超出可记录的范围（最多 {yuan(MAX_FEN)} 元）", "input.money_range")
    fen = dec * 100
    if fen != fen.to_integral_value():
        raise _refuse(field, shown, "超过两位小数", "input.money_precision")
    return int(fen)


def parse_yuan(value: object, field: str = "金额") -> int:
    """Yuan as typed (or a spreadsheet cell) -> integer fen, negative for a refund.

    Args:
        value: ``str`` as typed, or an ``int``/``float``/``Decimal`` cell.
        field: the field's Chinese name, used in the message (``金额``, ``每人增加额度``).

    Raises:
        MoneyInputError: with a Chinese message naming the field (codes ``input.money``,
            ``input.money_precision``, ``input.money_range``).
    """
    if value is None or isinstance(value, bool):
        raise _refuse(field, "", "为空")
    if isinstance(value, int):
        return _from_decimal(Decimal(value), field, str(value))
    if isinstance(value, float):
        dec = Decimal(repr(value))
        if dec.is_finite() and dec.as_tuple().exponent < -2:  # type: ignore[operator]
            # Spreadsheet arithmetic noise (30.000000000000004): Excel keeps 15 digits.
            dec = Decimal(format(value, ".15g"))
        return _from_decimal(dec, field, repr(value))
    if isinstance(value, Decimal):
        return _from_decimal(value, field, str(value))
    raw = str(value)
    if len(raw) > 64:
        raise _refuse(field, raw)
    text = ime_text(raw).strip()
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1].strip()
    if text and text[0] in "-+":
        negative, text = negative or text[0] == "-", text[1:].strip()
    for token in _PREFIXES:
        if text.startswith(token):
            text = text[len(token):].strip()
            break
    for token in _SUFFIXES:
        if text.endswith(token):
            text = text[: -len(token)].strip()
    match = _AMOUNT_RE.match(text)
    if not text or match is None or (match["int"] is None and match["frac"] is None):
        raise _refuse(field, raw)
    digits = re.sub(r"[, ]", "", match["int"] or "0")
    frac = match["frac"] or ""
    if len(frac.rstrip("0")) > 2:
        raise _refuse(field, raw, "超过两位小数", "input.money_precision")
    if len(digits.lstrip("0")) > 16:
        raise _refuse(field, raw, f"超出可记录的范围（最多 {yuan(MAX_FEN)} 元）", "input.money_range")
    fen = int(digits) * 100 + int(frac[:2].ljust(2, "0"))
    if fen > MAX_FEN:
        raise _refuse(field, raw, f"超出可记录的范围（最多 {yuan(MAX_FEN)} 元）", "input.money_range")
    return -fen if negative else fen


def parse_count(value: object, field: str, *, minimum: int = 0, maximum: int = MAX_COUNT) -> int:
    """A whole number as typed (people, members, a line number): ASCII or full-width digits,
    thousands commas in groups of three, nothing else; ``minimum..maximum`` inclusive."""
    if isinstance(value, bool) or value is None:
        raise MoneyInputError(f"{field}不是整数", code="input.int")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise MoneyInputError(f"{field}“{value}”不是整数", code="input.int")
        number = int(value)
    else:
        raw = str(value)
        text = ime_text(raw).strip()
        if len(text) > 32 or not _INT_RE.match(text):
            shown = (raw[:40] + "…") if len(raw) > 40 else raw
            raise MoneyInputError(f"{field}“{shown.replace(chr(0), '')}”不是整数", code="input.int")
        number = int(text.replace(",", ""))
    if number < minimum or number > maximum:
        raise MoneyInputError(f"{field}须在 {minimum:,} 至 {maximum:,} 之间", code="input.int_range")
    return number


_EXCEL_EPOCH = datetime(1899, 12, 30)
_DATE_RE = re.compile(
    r"^(?P<y>\d{4})\s*[-/.年]\s*(?P<m>\d{1,2})\s*[-/.月]\s*(?P<d>\d{1,2})\s*日?"
    r"(?:\s*[T ]?\s*(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.\d+)?)?)?$",
    re.ASCII,  # ASCII digits only (full-width ones are mapped first), as for amounts
)
#: What :func:`parse_paid_at` reads, as the refusal tells the clerk.
PAID_AT_FORMATS = "2021-12-31、2021/12/31、2021年12月31日、2021.12.31，可带 时:分[:秒]，或 2021-12-31T10:30"


def parse_paid_at(value: object, field: str = "支付时间") -> datetime:
    """A payment time as typed, or a spreadsheet cell -> aware UTC. The one payment-time parser:
    the CLI, the web form, the API and the purchase import all read times here.

    Accepted: ``2021-12-31``, ``2021/12/31``, ``2021年12月31日``, ``2021.12.31`` (full-width digits
    too), optionally followed by ``HH:MM`` or ``HH:MM:SS``; ISO 8601 with or without an offset
    (``2021-12-31T10:30``, ``…Z``); a spreadsheet's date cell (``datetime``/``date``) and an Excel
    serial day number (``44561``, in a number cell or as text). Naive values are China time.

    Raises:
        TimeInputError: not a time (``input.time``), or a year outside MIN_YEAR..MAX_YEAR
            (``input.time_range``: ``0001-01-01T00:00``).
    """
    if value is None or isinstance(value, bool):
        raise TimeInputError(f"{field}为空", code="input.time")
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, int | float | Decimal):
        try:
            serial = float(value)
        except (ValueError, OverflowError):  # a signalling NaN, an integer beyond a float
            serial = float("nan")
        parsed = _from_serial(serial, str(value)[:40], field)
    else:
        parsed = _parse_time_text(str(value), field)
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        shown = str(value).replace("\x00", "\\0")[:40]
        raise TimeInputError(f"{field}“{shown}”的年份须在 {MIN_YEAR} 至 {MAX_YEAR} 年之间", code="input.time_range")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=CHINA)
    return parsed.astimezone(UTC)


def _parse_time_text(raw: str, field: str) -> datetime:
    shown = raw.replace("\x00", "\\0")[:40]
    text = ime_text(raw).replace("\u2212", "-").replace("\xa0", " ").strip()
    if not text:
        raise TimeInputError(f"{field}为空", code="input.time")
    if re.fullmatch(r"\d{1,6}(?:\.\d+)?", text, re.ASCII):
        return _from_serial(float(text), shown, field)
    match = _DATE_RE.match(text)
    if match:
        try:
            return datetime(int(match["y"]), int(match["m"]), int(match["d"]),
                            int(match["H"] or 0), int(match["M"] or 0), int(match["S"] or 0))
        except ValueError:
            raise TimeInputError(f"{field}“{shown}”不是有效的日期", code="input.time") from None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise TimeInputError(f"{field}“{shown}”无法识别（支持 {PAID_AT_FORMATS}；北京时间）",
                             code="input.time") from None


def _from_serial(serial: float, shown: str, field: str) -> datetime:
    """An Excel serial day number (1900 system); 61 = 1900-03-01 (below it Excel's fake 1900-02-29
    makes values ambiguous). Float noise is rounded to the second."""
    if not 61 <= serial < 2958466:
        raise TimeInputError(f"{field}“{shown}”不是有效的日期", code="input.time")
    naive = _EXCEL_EPOCH + timedelta(days=serial)
    return (naive + timedelta(microseconds=500_000)).replace(microsecond=0)


def parse_date(text: str, field: str = "日期") -> date:
    """A calendar date as typed (``2021-12-31``, full-width digits too), MIN_YEAR..MAX_YEAR."""
    raw = str(text)
    shown = raw.replace("\x00", "\\0")[:40]
    try:
        value = date.fromisoformat(ime_text(raw).strip())
    except ValueError:
        raise TimeInputError(f"{field}“{shown}”格式应为 YYYY-MM-DD", code="input.date") from None
    check_date_range(value, field)
    return value


def check_date_range(value: date, field: str = "日期") -> None:
    """Refuse a date outside MIN_YEAR..MAX_YEAR (``0001-01-01`` from a date picker's default)."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise TimeInputError(f"{field} {value.isoformat()} 的年份须在 {MIN_YEAR} 至 {MAX_YEAR} 年之间",
                             code="input.date_range")


# --- formatting ---------------------------------------------------------------------------


def yuan(fen: int) -> str:
    """Fen as yuan with thousands separators: 1234560 -> '12,345.60'."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def yuan_plain(fen: int) -> str:
    """Fen as yuan without separators (for files read back by machines): -1500 -> '-15.00'."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


_CENT = Decimal("0.01")


def wan_yuan(fen: int) -> Decimal:
    """Fen in 万元, two decimals, ROUND_HALF_UP (Annex 2)."""
    return (Decimal(fen) / Decimal(1_000_000)).quantize(_CENT, rounding=ROUND_HALF_UP)


def wan_people(n: int) -> Decimal:
    """Person-times in 万, two decimals, ROUND_HALF_UP (Annex 2)."""
    return (Decimal(n) / Decimal(10_000)).quantize(_CENT, rounding=ROUND_HALF_UP)


__all__ = [
    "MAX_COUNT", "MAX_FEN", "MAX_YEAR", "MIN_YEAR", "PAID_AT_FORMATS", "check_date_range", "ime_text", "parse_count",
    "parse_date", "parse_paid_at",
    "parse_yuan", "wan_people", "wan_yuan", "yuan", "yuan_plain",
]
