"""Importing the organisation tree and users: all-or-nothing, and a re-import that moves an
organisation moves its whole subtree (paths, depths, record parents)."""

from __future__ import annotations

import pytest

from tests.conftest import NOW_2021, WORLD_ORGS, World, world_users_csv
from workflow.app import directory, record_views
from workflow.domain.errors import BadInput, NotFound, PermissionDenied
from workflow.domain.policy import builtin
from workflow.store.tables import Database
from workflow.store.uow import UnitOfWork


def _org(w: World, code: str) -> tuple[str, int, int | None]:
    with w.uow(True) as uow:
        o = uow.directory.org_by_code(code)
        return o.path, o.depth, o.parent_id


def _record_parent(w: World, code: str, label: str = "2021年度") -> str | None:
    rid = record_views.find_record(w.uow(True), org_code=code, round_label=label)
    with w.uow(True) as uow:
        rec = uow.records.get(rid)
        if rec.parent_id is None:
            return None
        return uow.directory.org(uow.records.get(rec.parent_id).org_id).code


def test_moving_a_district_to_another_city_moves_its_subtree(any_world: World) -> None:
    w = any_world
    directory.import_organisations(
        w.uow(), data="code,name,kind,parent_code\nD1,天河区总工会,district_federation,C2\n".encode(),
        now=NOW_2021,
    )
    c2_path, _, _ = _org(w, "C2")
    d1_path, d1_depth, _ = _org(w, "D1")
    g1_path, g1_depth, _ = _org(w, "G1")
    assert d1_path.startswith(c2_path) and d1_depth == 2
    assert g1_path.startswith(d1_path) and g1_depth == 3
    for label in ("2021年度", "2022年度"):
        assert _record_parent(w, "D1", label) == "C2"
        assert _record_parent(w, "G1", label) == "D1"
    # Who may see and decide follows the move.
    with pytest.raises(NotFound):
        record_views.record_view(w.uow(True), record_id=w.rid("G1"), user_id=w.uid("c1-reviewer"), now=NOW_2021)
    record_views.record_view(w.uow(True), record_id=w.rid("G1"), user_id=w.uid("c2-reviewer"), now=NOW_2021)
    w.fire("D1", "finish_purchasing", "d1-clerk")
    w.info("D1")
    w.fire("D1", "summarize", "d1-clerk")
    w.fire("D1", "submit", "d1-clerk")
    with pytest.raises(NotFound):
        w.fire("D1", "accept", "c1-reviewer")
    w.fire("D1", "accept", "c2-reviewer")
    assert w.state("D1") == "accepted"


def test_moving_a_subtree_one_level_down_updates_depths(any_world: World) -> None:
    w = any_world
    directory.import_organisations(
        w.uow(), data="code,name,kind,parent_code\nD2,越秀区总工会,district_federation,D1\n".encode(),
        now=NOW_2021,
    )
    d1_path, _, _ = _org(w, "D1")
    d2_path, d2_depth, _ = _org(w, "D2")
    g3_path, g3_depth, _ = _org(w, "G3")
    assert d2_path.startswith(d1_path) and d2_depth == 3
    assert g3_path.startswith(d2_path) and g3_depth == 4
    assert _record_parent(w, "D2") == "D1"
    with pytest.raises(PermissionDenied):  # C1's reviewer is now D2's grandparent
        w.fire("D2", "finish_purchasing", "c1-reviewer")


def test_an_import_with_a_bad_row_changes_nothing(any_world: World) -> None:
    w = any_world
    before = _org(w, "D1")
    with pytest.raises(BadInput) as exc:
        directory.import_organisations(
            w.uow(),
            data="code,name,kind,parent_code\nD1,天河区总工会,district_federation,C2\nX9,坏,grassroots,NOPE\n"
            .encode(),
            now=NOW_2021,
        )
    assert "第 3 行" in exc.value.message and "NOPE" in exc.value.message
    assert _org(w, "D1") == before


def test_a_cycle_is_refused(any_world: World) -> None:
    w = any_world
    with pytest.raises(BadInput) as exc:
        directory.import_organisations(
            w.uow(),
            data="code,name,kind,parent_code\nA1,甲,district_federation,B1\nB1,乙,district_federation,A1\n"
            .encode(),
            now=NOW_2021,
        )
    assert "循环" in exc.value.message


def test_users_import_refuses_unknown_roles_and_orgs(any_world: World) -> None:
    w = any_world
    with pytest.raises(BadInput) as exc:
        directory.import_users(
            w.uow(),
            data="username,display_name,org_code,role\nu1,用户一,G1,boss\nu2,用户二,ZZ,clerk\n".encode(),
            now=NOW_2021,
        )
    assert "boss" in exc.value.message and "ZZ" in exc.value.message
    with pytest.raises(NotFound):
        w.uid("u1")


def test_moving_an_organisation_below_its_own_descendant_is_refused(any_world: World) -> None:
    w = any_world
    before = [_org(w, c) for c in ("C1", "D1", "G1")]
    with pytest.raises(BadInput) as exc:
        directory.import_organisations(
            w.uow(), data="code,name,kind,parent_code\nC1,广州市总工会,city_federation,G1\n".encode(),
            now=NOW_2021,
        )
    assert "C1" in exc.value.message
    assert [_org(w, c) for c in ("C1", "D1", "G1")] == before


def test_a_bulk_import_refreshes_the_planner_statistics(any_world: World) -> None:
    """After an import of 1,200 organisations the planner knows the tables' sizes (ANALYZE):
    PostgreSQL planned the sweep as nested loops over "empty" tables without it."""
    from sqlalchemy import text

    w = any_world
    lines = ["code,name,kind,parent_code"] + [f"B{i:04d},基层工会{i},grassroots,D1" for i in range(1200)]
    directory.import_organisations(w.uow(), data="\n".join(lines).encode(), now=NOW_2021)
    with w.db.engine.connect() as conn:
        if w.db.dialect == "postgresql":
            tuples = conn.execute(text(
                "SELECT reltuples FROM pg_class WHERE relname = 'organisation'")).scalar()
            assert tuples is not None and tuples >= 1200
            assert conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'record'")).scalar() >= 2400
        else:
            stats = dict(conn.execute(text("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'organisation'")).all())
            assert stats and all(int(s.split()[0]) >= 1200 for s in stats.values())


def _catalogue(db: Database) -> list[str]:
    """The definitions of every index and constraint the schema has, sorted."""
    from sqlalchemy import text

    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            rows = conn.execute(text(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'"
                " UNION ALL SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)"
                " FROM pg_constraint WHERE connamespace = 'public'::regnamespace")).scalars()
        else:
            rows = conn.execute(text("SELECT tbl_name || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_master"
                                     " WHERE type = 'index'")).scalars()
        return sorted(rows)


def _record_links(db: Database) -> tuple[int, set[tuple[str, int, str | None]]]:
    """(records, {(organisation code, round id, the parent record's organisation code)})."""
    from sqlalchemy import text

    with db.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT o.code, r.round_id, po.code FROM record r JOIN organisation o ON o.id = r.org_id"
            " LEFT JOIN record p ON p.id = r.parent_id LEFT JOIN organisation po ON po.id = p.org_id")).all()
    return len(rows), {(c, rid, p) for c, rid, p in rows}


def test_a_first_load_links_every_record_to_its_parent_and_keeps_the_schema(any_db: Database) -> None:
    """Into empty tables the imports load without the secondary indexes and constraints and
    build them once: afterwards the catalogue is the migrations' one, every record is linked to
    its parent organisation's record of the same round, users and memberships are all there."""
    before = _catalogue(any_db)
    directory.install_policy(UnitOfWork(any_db), policy=builtin(), now=NOW_2021)
    # Children before their parents: the file's order does not matter.
    lines = [ln for ln in WORLD_ORGS.strip().splitlines()[1:]]
    extra = [f"B{i:03d},基层工会{i},grassroots,{'D3' if i % 2 else 'G1'}" for i in range(40)]
    orgs_csv = "\n".join(["code,name,kind,parent_code", *extra, *reversed(lines)]) + "\n"
    report = directory.import_organisations(UnitOfWork(any_db), data=orgs_csv.encode(), now=NOW_2021)
    n_orgs = len(lines) + len(extra)
    assert report.created == n_orgs
    with UnitOfWork(any_db, readonly=True) as uow:
        rounds = [r.id for r in uow.directory.rounds()]
        parent = {o.code: o.parent_id for o in uow.directory.org_rows()}
        code_of = {o.id: o.code for o in uow.directory.org_rows()}
    assert len(rounds) == 2
    count, links = _record_links(any_db)
    assert report.records_opened == count == 2 * (n_orgs - 1)  # every organisation but the province
    expected = {(c, rid, None if code_of[parent[c]] == "GD" else code_of[parent[c]])
                for c in parent if c != "GD" for rid in rounds}
    assert links == expected
    users = directory.import_users(UnitOfWork(any_db), data=world_users_csv().encode(), now=NOW_2021)
    assert _catalogue(any_db) == before
    from sqlalchemy import text

    with any_db.engine.connect() as conn:
        n_users = conn.execute(text("SELECT count(*) FROM app_user")).scalar()
        n_members = conn.execute(text("SELECT count(*) FROM membership m JOIN app_user u ON u.id = m.user_id"
                                      " JOIN organisation o ON o.id = m.org_id")).scalar()
    assert users.created == n_users
    assert n_members == len(world_users_csv().strip().splitlines()) - 1
    # A second load goes through the maintained indexes and finds nothing to add.
    again = directory.import_organisations(UnitOfWork(any_db), data=orgs_csv.encode(), now=NOW_2021)
    assert (again.created, again.records_opened) == (0, 0)
    assert _record_links(any_db) == (count, links)


def test_moving_an_organisation_under_a_new_one_links_its_records_to_the_new_records(any_world: World) -> None:
    """D1 moves below C3, created by the same file: D1's records report to C3's new records,
    C3's to C1's; the grassroots below D1 stay below D1."""
    w = any_world
    report = directory.import_organisations(
        w.uow(), data=("code,name,kind,parent_code\nD1,天河区总工会,district_federation,C3\n"
                       "C3,广州开发区总工会,district_federation,C1\n").encode(), now=NOW_2021)
    assert (report.created, report.records_opened) == (1, 2)
    for label in ("2021年度", "2022年度"):
        assert _record_parent(w, "D1", label) == "C3"
        assert _record_parent(w, "C3", label) == "C1"
        assert _record_parent(w, "G1", label) == "D1"
    c3_path, c3_depth, _ = _org(w, "C3")
    g1_path, g1_depth, _ = _org(w, "G1")
    assert g1_path.startswith(c3_path) and (c3_depth, g1_depth) == (2, 4)
