"""Bounded request parameters shared by the API and the pages: ids, paging, rounds, versions.

Every integer a client sends has a range in the OpenAPI document and is refused with 422 beyond
it (``2^63`` used to reach the database and give 500). Ids and versions are 32-bit columns on
PostgreSQL, so ``MAX_ID`` is 2^31 − 1.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Path, Query

from workflow.app.views import MAX_PAGE, MAX_PER_PAGE
from workflow.domain.money import MAX_COUNT

MAX_ID = 2**31 - 1

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
RoundQ = Annotated[int | None, Query(ge=1, le=MAX_ID)]
PageQ = Annotated[int, Query(ge=1, le=MAX_PAGE)]
PerPageQ = Annotated[int, Query(ge=1, le=MAX_PER_PAGE)]
VersionForm = Annotated[int, Form(ge=1, le=MAX_COUNT)]

__all__ = ["MAX_ID", "Id", "PageQ", "PerPageQ", "RoundQ", "VersionForm"]
