"""The API's JSON bodies (``rendering.api_json``) are the text FastAPI's own path would write
(``jsonable_encoder`` then ``JSONResponse``), for every kind of value our views return."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from enum import Enum

import pytest
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from workflow.entrypoints.web.rendering import api_json


class Colour(Enum):
    RED = "red"


@dataclass
class Point:
    x: int
    when: date


CASES = [
    {"a": 1, "b": [1, 2.5, None, True], "c": "中文 \u2028 \x00", "d": {"e": (1, 2)}},
    {"day": date(2021, 12, 31), "at": datetime(2021, 12, 31, 16, 0, tzinfo=UTC),
     "china": datetime(2022, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=8))),
     "naive": datetime(2021, 1, 1, 8, 30), "t": time(9, 15)},
    {"whole": Decimal("600"), "frac": Decimal("0.35"), "big": Decimal("12345678901234567890"),
     "neg": Decimal("-1.5"), "exp": Decimal("1E+3")},
    {"enum": Colour.RED, "point": Point(3, date(2021, 6, 1)), "set": [{1}], 7: "int key"},
    [{"completeness": 0.1 + 0.2, "people": 2**63, "fen": -(2**70)}],
    None,
]


@pytest.mark.parametrize("content", CASES)
def test_api_json_writes_what_fastapi_would(content: object) -> None:
    ours = api_json(content).body
    theirs = JSONResponse(jsonable_encoder(content)).body
    assert ours == theirs
    json.loads(ours)


def test_api_json_refuses_nan_like_fastapi() -> None:
    with pytest.raises(ValueError):
        JSONResponse(float("nan"))
    with pytest.raises(ValueError):
        api_json({"x": float("nan")})
