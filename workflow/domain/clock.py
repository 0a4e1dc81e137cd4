"""The one source of "now".

Everything that asks what time it is (CLI, web, worker, services) asks :func:`now`. Set
``BANGFU_NOW`` (ISO 8601; a naive value is China time) to run the whole system at another moment,
e.g. ``BANGFU_NOW=2021-12-01T09:00 bangfu sweep``. Tests may also pin it with :func:`frozen`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")

_pinned: datetime | None = None


def parse_instant(text: str) -> datetime:
    """Parse an ISO instant; a naive one is read as China time. Returns an aware UTC datetime."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is None:
        value = value.replace(tzinfo=CHINA)
    return value.astimezone(UTC)


def now() -> datetime:
    """The current instant, aware, in UTC."""
    if _pinned is not None:
        return _pinned
    env = os.environ.get("BANGFU_NOW")
    if env:
        return parse_instant(env)
    return datetime.now(UTC)


@contextmanager
def frozen(at: datetime) -> Iterator[datetime]:
    """Pin :func:`now` to ``at`` inside the block (tests and benchmarks)."""
    global _pinned
    previous = _pinned
    _pinned = at.astimezone(UTC)
    try:
        yield _pinned
    finally:
        _pinned = previous


def china_date(instant: datetime) -> date:
    """The calendar date in China of an aware instant."""
    if instant.tzinfo is None:
        raise ValueError("naive datetime: attach a time zone first")
    return instant.astimezone(CHINA).date()


def today() -> date:
    """Today's date in China."""
    return china_date(now())


def deadline_instant(last_day: date) -> datetime:
    """A deadline's last China day, stored as the next day's 00:00 Asia/Shanghai in UTC."""
    return datetime.combine(last_day + timedelta(days=1), time(0, 0), CHINA).astimezone(UTC)


def deadline_last_day(instant: datetime) -> date:
    """The last China day of a deadline stored by :func:`deadline_instant`."""
    return china_date(instant - timedelta(microseconds=1))


def at_china_hour(day: date, hour: int) -> datetime:
    """That China date at ``hour``:00, as an aware UTC instant."""
    return datetime.combine(day, time(hour, 0), CHINA).astimezone(UTC)
