"""The schema: migrations match the models, history is append-only, time stays UTC, money is
64-bit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, insert, inspect, select, text
from sqlalchemy.exc import DBAPIError, StatementError
from sqlmodel import SQLModel

from tests.conftest import NOW_2021, PG_ADMIN_URL, RUN_ID, World, need, port_open
from workflow.store.tables import Database, History, Purchase, Round

CN = timezone(timedelta(hours=8))


def _diff(database: Database) -> list[object]:
    with database.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, SQLModel.metadata))


def _assert_schema_matches(database: Database) -> None:
    tables = set(inspect(database.engine).get_table_names())
    assert {t.name for t in SQLModel.metadata.sorted_tables} <= tables
    assert "alembic_version" in tables
    assert _diff(database) == []


# --- migrations -----------------------------------------------------------------------------


def test_upgrade_head_on_fresh_sqlite_matches_the_models(tmp_path) -> None:  # type: ignore[no-untyped-def]
    database = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        database.upgrade()
        _assert_schema_matches(database)
        database.upgrade()  # running it again is a no-op
        _assert_schema_matches(database)
    finally:
        database.dispose()


@pytest.fixture()
def fresh_pg() -> Iterator[Database]:
    """An empty PostgreSQL database of its own (not the run's shared one)."""
    need("PostgreSQL", port_open("127.0.0.1", 5432))
    admin_url = PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    name = f"bangfu_test_{RUN_ID}_migr"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    try:
        yield database
    finally:
        database.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_upgrade_head_on_fresh_postgres_matches_the_models(fresh_pg: Database) -> None:
    with fresh_pg.engine.connect() as conn:
        assert inspect(conn).get_table_names() == []
    fresh_pg.upgrade()
    _assert_schema_matches(fresh_pg)


def test_money_and_people_columns_are_64_bit(any_db: Database) -> None:
    cols = {(t, c["name"]): c["type"] for t in ("purchase", "record", "snapshot", "snapshot_line")
            for c in inspect(any_db.engine).get_columns(t)}
    for key in [("purchase", "amount_fen"), ("purchase", "people"), ("record", "quota_fen"),
                ("record", "members"), ("record", "amount_per_member_fen"),
                ("snapshot", "amount_total_fen"), ("snapshot", "people_total"),
                ("snapshot_line", "amount_fen"), ("snapshot_line", "people")]:
        assert "BIGINT" in str(cols[key]).upper(), key


# --- history is append-only -----------------------------------------------------------------


@pytest.mark.parametrize("statement", [
    "UPDATE history SET reason = 'rewritten'",
    "UPDATE history SET to_state = 'accepted' WHERE trigger = 'submit'",
    "DELETE FROM history",
])
def test_history_refuses_update_and_delete(any_world: World, statement: str) -> None:
    w = any_world
    w.to_submitted("G1")
    before = _history(w)
    assert len(before) == 3
    with pytest.raises(DBAPIError) as exc, w.db.engine.begin() as conn:
        conn.execute(text(statement))
    assert "append-only" in str(exc.value)
    assert _history(w) == before
    # Appending still works.
    w.fire("G1", "accept", "d1-reviewer")
    assert len(_history(w)) == 4


_SQLITE_TAMPER = [
    "INSERT OR REPLACE INTO history (id, record_id, at, actor_role, on_behalf, from_state, to_state, trigger)"
    " SELECT id, record_id, at, actor_role, on_behalf, from_state, 'accepted', trigger FROM history WHERE id = 1",
    "REPLACE INTO history (id, record_id, at, actor_role, on_behalf, from_state, to_state, trigger)"
    " SELECT id, record_id, at, actor_role, on_behalf, from_state, to_state, 'accept' FROM history WHERE id = 2",
    "INSERT INTO history (id, record_id, at, actor_role, on_behalf, from_state, to_state, trigger)"
    " SELECT id, record_id, at, actor_role, on_behalf, from_state, to_state, trigger FROM history WHERE id = 1"
    " ON CONFLICT(id) DO UPDATE SET reason = 'rewritten'",
    "UPDATE OR REPLACE history SET id = 1 WHERE id = 2",
]
_PG_TAMPER = [
    "TRUNCATE history",
    "TRUNCATE history CASCADE",
    "TRUNCATE record, history CASCADE",
    "INSERT INTO history (id, record_id, at, actor_role, on_behalf, from_state, to_state, trigger)"
    " SELECT id, record_id, at, actor_role, on_behalf, from_state, to_state, trigger FROM history WHERE id = 1"
    " ON CONFLICT (id) DO UPDATE SET reason = 'rewritten'",
    "DELETE FROM history WHERE id IN (SELECT id FROM history ORDER BY id DESC LIMIT 1)",
    "WITH gone AS (DELETE FROM history RETURNING id) SELECT count(*) FROM gone",
]


@pytest.mark.parametrize("statement", _SQLITE_TAMPER)
def test_sqlite_history_refuses_replace_and_upsert(world: World, statement: str) -> None:
    w = world
    w.to_submitted("G1")
    before = _history(w)
    with pytest.raises(DBAPIError) as exc, w.db.engine.begin() as conn:
        conn.execute(text(statement))
    assert "append-only" in str(exc.value)
    assert _history(w) == before


@pytest.mark.parametrize("statement", _PG_TAMPER)
def test_postgres_history_refuses_truncate_and_upsert(pg_world: World, statement: str) -> None:
    w = pg_world
    w.to_submitted("G1")
    before = _history(w)
    with pytest.raises(DBAPIError) as exc, w.db.engine.begin() as conn:
        conn.execute(text(statement))
    assert "append-only" in str(exc.value)
    assert _history(w) == before
    w.fire("G1", "accept", "d1-reviewer")
    assert len(_history(w)) == 4


def _history(w: World) -> list[tuple[object, ...]]:
    with w.db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(History.id, History.trigger, History.from_state, History.to_state, History.reason)
            .order_by(History.id)
        )]


# --- UTC instants ---------------------------------------------------------------------------


def test_utc_datetime_round_trips_aware_utc(any_world: World) -> None:
    w = any_world
    paid = datetime(2021, 12, 31, 23, 50, 7, 123456, tzinfo=CN)
    w.buy("G1", "T-1", 100, paid_at=paid, now=datetime(2022, 1, 2, 9, 0, tzinfo=CN))  # entered after payment
    with w.uow(True) as uow:
        p = uow.purchases.of_record(w.rid("G1"))[0]
        assert p.paid_at == paid
        assert p.paid_at.tzinfo is not None and p.paid_at.utcoffset() == timedelta(0)
        assert p.paid_at == datetime(2021, 12, 31, 15, 50, 7, 123456, tzinfo=UTC)
        assert p.paid_on == date(2021, 12, 31)  # the China date beside it
        rnd = uow.directory.rounds()[0]
        assert rnd.quota_deadline.tzinfo is not None
        assert rnd.quota_deadline == datetime(2021, 12, 31, 16, 0, tzinfo=UTC)


def test_utc_datetime_is_stored_as_utc_text_on_sqlite(world: World) -> None:
    w = world
    w.buy("G1", "T-2", 100, paid_at=datetime(2021, 6, 1, 8, 0, tzinfo=CN))
    with w.db.engine.connect() as conn:
        raw = conn.execute(text("SELECT paid_at FROM purchase")).scalar_one()
    assert str(raw).startswith("2021-06-01 00:00:00")  # 08:00 China = 00:00 UTC


def test_utc_datetime_refuses_naive_values(any_world: World) -> None:
    w = any_world
    with pytest.raises((StatementError, ValueError)), w.db.begin() as s:
        rnd = s.execute(select(Round)).scalars().first()
        assert rnd is not None
        rnd.lapsed_at = datetime(2022, 1, 1, 0, 0)  # naive
        s.flush()


# --- money at province scale ----------------------------------------------------------------


def test_province_sized_sum_on_postgres(pg_world: World) -> None:
    """215,000 grassroots unions × ~5,000,000 fen each: a province sum past 10^12 fen."""
    w = pg_world
    rid = w.rid("G1")
    uid = w.uid("g1-clerk")
    with w.db.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO purchase (record_id, paid_at, paid_on, channel, amount_fen, people, product,"
            " order_no, line_no, budget, entered_by_user_id, entered_at, on_behalf, source)"
            " SELECT :rid, :at, :on, 'ygh', 5000000 + (g % 7), 100, '', 'BULK-' || g, 1,"
            " 'extra_quota', :uid, :at, false, 'bulk'"
            " FROM generate_series(1, 215000) AS g"
        ), {"rid": rid, "uid": uid, "at": NOW_2021, "on": date(2021, 11, 1)})
        total, people, n = conn.execute(
            select(func.sum(Purchase.amount_fen), func.sum(Purchase.people), func.count())
        ).one()
    expected = sum(5000000 + (g % 7) for g in range(1, 215001))
    assert n == 215000
    assert int(total) == expected
    assert expected > 10**12
    assert int(people) == 21_500_000
    with w.uow(True) as uow:
        assert uow.purchases.spent_by_budget(rid) == {"extra_quota": expected}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(min_value=-(2**40), max_value=2**56), min_size=1, max_size=40))
def test_big_amounts_sum_exactly_on_postgres(pg_world: World, amounts: list[int]) -> None:
    w = pg_world
    rid = w.rid("G1")
    with w.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM purchase"))
        conn.execute(insert(Purchase.__table__), [
            {"record_id": rid, "paid_at": NOW_2021, "paid_on": date(2021, 11, 1), "channel": "ygh",
             "amount_fen": a, "people": 2**33, "product": "", "order_no": f"H-{i}", "line_no": 1,
             "budget": "extra_quota", "on_behalf": False, "source": "hypothesis"}
            for i, a in enumerate(amounts)
        ])
    with w.uow(True) as uow:
        assert uow.purchases.spent_by_budget(rid) == {"extra_quota": sum(amounts)}
        amounts_back = sorted(p.amount_fen for p in uow.purchases.of_record(rid))
    assert amounts_back == sorted(amounts)


def test_quota_of_a_50000_member_union_is_stored_exactly(any_world: World) -> None:
    w = any_world
    view = w.plan("G1", 60000, 50_000)
    assert view.quota_fen == 3_000_000_000 > 2**31
    with w.uow(True) as uow:
        assert uow.records.get(w.rid("G1")).quota_fen == 3_000_000_000


# --- SQLite connection settings -------------------------------------------------------------


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert int(conn.exec_driver_sql("PRAGMA busy_timeout").scalar()) >= 5000  # type: ignore[arg-type]
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_sqlite_write_transactions_take_the_write_lock_at_their_first_statement(world: World) -> None:
    """A write unit of work holds the write lock from its first read, so it never has to upgrade
    a read lock later (the upgrade is what fails with "database is locked")."""
    import sqlite3

    path = world.db.url.split("///", 1)[1]
    other = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    try:
        with world.uow() as uow:
            uow.records.get(world.rid("G1"))  # a read only
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # released when the unit of work ended
        other.execute("ROLLBACK")
        with world.uow(readonly=True) as uow:  # readers do not block writers
            uow.records.get(world.rid("G1"))
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
    finally:
        other.close()
