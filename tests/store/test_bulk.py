"""Values as the driver takes them: SQLite's stored instant text, remembered for the instant a
transition writes into several columns, never confused with another instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from workflow.store.bulk import driver_value

CHINA = timezone(timedelta(hours=8))


def test_instants_alternating_each_get_their_own_text() -> None:
    a = datetime(2021, 12, 1, 9, 0, tzinfo=CHINA)
    b = datetime(2021, 12, 1, 1, 0, 0, 1, tzinfo=UTC)
    same_as_a = datetime(2021, 12, 1, 1, 0, tzinfo=UTC)  # equal to a, another object
    seen = [driver_value("sqlite", v) for v in (a, a, b, a, same_as_a, b, b)]
    assert seen == ["2021-12-01 01:00:00.000000", "2021-12-01 01:00:00.000000",
                    "2021-12-01 01:00:00.000001", "2021-12-01 01:00:00.000000",
                    "2021-12-01 01:00:00.000000", "2021-12-01 01:00:00.000001",
                    "2021-12-01 01:00:00.000001"]


def test_a_naive_instant_is_refused_even_right_after_an_aware_one() -> None:
    aware = datetime(2021, 12, 1, 9, 0, tzinfo=CHINA)
    driver_value("sqlite", aware)
    with pytest.raises(ValueError):
        driver_value("sqlite", datetime(2021, 12, 1, 9, 0))
    with pytest.raises(ValueError):
        driver_value("postgresql", datetime(2021, 12, 1, 9, 0))
    assert driver_value("postgresql", aware) is aware
