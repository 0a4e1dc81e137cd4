"""Importing the organisation tree and users: all-or-nothing, and a re-import that moves an
organisation moves its whole subtree (paths, depths, record parents)."""

from __future__ import annotations

import pytest

from tests.conftest import NOW_2021, World
from workflow.app import directory, records
from workflow.domain.errors import BadInput, NotFound, PermissionDenied


def _org(w: World, code: str) -> tuple[str, int, int | None]:
    with w.uow(True) as uow:
        o = uow.org_by_code(code)
        return o.path, o.depth, o.parent_id


def _record_parent(w: World, code: str, label: str = "2021年度") -> str | None:
    rid = records.find_record(w.uow(True), org_code=code, round_label=label)
    with w.uow(True) as uow:
        rec = uow.record(rid)
        if rec.parent_id is None:
            return None
        return uow.org(uow.record(rec.parent_id).org_id).code


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
        records.record_view(w.uow(True), record_id=w.rid("G1"), user_id=w.uid("c1-reviewer"), now=NOW_2021)
    records.record_view(w.uow(True), record_id=w.rid("G1"), user_id=w.uid("c2-reviewer"), now=NOW_2021)
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
