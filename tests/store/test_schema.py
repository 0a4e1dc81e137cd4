"""The Core view of the tables (:mod:`workflow.store.schema`) is the SQLModel schema's: every
table there has exactly the columns of its SQLModel class, in order, with the same types."""

from __future__ import annotations

import pytest
from sqlalchemy.sql import TableClause

from workflow.store import schema, tables
from workflow.store.tables import SQLModel

CORE_TABLES = {name: value for name, value in vars(schema).items() if isinstance(value, TableClause)}


def test_the_core_view_covers_the_tables_the_core_statements_use() -> None:
    assert {t.name for t in CORE_TABLES.values()} == {
        "organisation", "app_user", "membership", "policy", "round", "member_count", "record", "rollup",
        "purchase", "history", "snapshot", "snapshot_line", "aggregate_line"}


@pytest.mark.parametrize("name", sorted(CORE_TABLES))
def test_a_core_table_has_the_columns_and_types_of_its_sqlmodel_class(name: str) -> None:
    core = CORE_TABLES[name]
    orm = SQLModel.metadata.tables[core.name]
    assert [c.name for c in core.columns] == [c.name for c in orm.columns]
    for c in core.columns:
        # The type's class decides how values are bound and read (Boolean, Date, UTC instants).
        assert type(c.type) is type(orm.columns[c.name].type), (core.name, c.name)


def test_the_orm_and_the_core_view_share_one_utc_type() -> None:
    assert tables.UTCDateTime is schema.UTCDateTime
