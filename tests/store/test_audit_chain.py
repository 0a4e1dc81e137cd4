"""The history chain (issue 20.7): an operator who can write the database but has no key rewrites
history unseen no more. Each tamper below succeeds at the database (as the tables' owner: the
append-only triggers lifted, foreign keys off) and ``audit-verify`` names the row it broke; a
clean world verifies; SHA-256 and SM3 both work; SQLite runs with foreign keys on."""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import World
from workflow.app import audit
from workflow.domain.errors import BadInput
from workflow.scheduler.sweeps import run_sweep
from workflow.settings import Settings, get_settings
from workflow.store import chain
from workflow.store.tables import Database
from workflow.store.uow import UnitOfWork


@pytest.fixture(params=["sha256", "sm3"])
def algorithm(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("BANGFU_AUDIT_HASH", request.param)
    get_settings.cache_clear()
    chain.sealer.cache_clear()
    yield request.param
    get_settings.cache_clear()
    chain.sealer.cache_clear()


def _rows(w: World, org: str) -> list[tuple[int, int, str]]:
    with w.db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(  # type: ignore[misc]
            "SELECT id, seq, trigger FROM history WHERE record_id = :r ORDER BY seq"), {"r": w.rid(org)})]


def _as_owner(db: Database, *statements: str) -> None:
    """Run ``statements`` as the tables' owner would to rewrite history: on PostgreSQL with the
    user triggers disabled (and enabled again: they look intact), on SQLite with the triggers
    dropped (and put back)."""
    with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            conn.execute(text("ALTER TABLE history DISABLE TRIGGER USER"))
        else:
            conn.execute(text("DROP TRIGGER history_no_update"))
            conn.execute(text("DROP TRIGGER history_no_delete"))
        for s in statements:
            conn.execute(text(s))
        if db.dialect == "postgresql":
            conn.execute(text("ALTER TABLE history ENABLE TRIGGER USER"))
        else:
            from workflow.store.tables import history_guard_statements
            for stmt in history_guard_statements("sqlite"):
                conn.execute(stmt)


def _verify(w: World, tmp_path: Path) -> audit.VerifyReport:
    return audit.verify(UnitOfWork(w.db, readonly=True), var_dir=tmp_path)


def _two_records(w: World) -> None:
    w.to_submitted("G1")  # finish_purchasing, summarize, submit: 3 rows
    w.fire("G1", "return_for_revision", "d1-reviewer", reason="请补充发票")
    w.fire("G1", "reopen", "g1-clerk")  # 5 rows
    w.to_submitted("G2")


def test_a_clean_world_verifies(any_world: World, algorithm: str, tmp_path: Path) -> None:
    w = any_world
    _two_records(w)
    report = _verify(w, tmp_path)
    assert report.ok and report.algorithm == algorithm
    assert (report.records, report.rows) == (2, 8)
    assert [s for _i, s, _t in _rows(w, "G1")] == [1, 2, 3, 4, 5]
    assert "历史记录链完整" in audit.verify_text(report)
    with w.db.engine.connect() as conn:
        hashes = conn.execute(text("SELECT row_hash FROM history")).scalars().all()
    assert all(len(h) == 64 for h in hashes) and len(set(hashes)) == 8


def test_the_sweeps_rows_are_chained(any_world: World, tmp_path: Path) -> None:
    """Overdue, late and lapse rows are written set-based, and chained all the same."""
    w = any_world
    w.to_submitted("G1")
    w.plan("G2")
    run_sweep(w.db, now=datetime(2022, 1, 5, 2, 0, tzinfo=UTC))  # overdue
    w.fire("G2", "finish_purchasing", "g2-clerk", now=datetime(2022, 1, 6, 2, 0, tzinfo=UTC))
    run_sweep(w.db, now=datetime(2022, 2, 5, 2, 0, tzinfo=UTC))  # lapse
    triggers = {t for org in ("G1", "G2", "G3") for _i, _s, t in _rows(w, org)}
    assert {"overdue", "lapse"} <= triggers
    report = _verify(w, tmp_path)
    assert report.ok, audit.verify_text(report)


def _break_of(report: audit.VerifyReport, w: World, org: str) -> audit.Break:
    found = [b for b in report.breaks if b.record_id == w.rid(org)]
    assert len(found) == 1, audit.verify_text(report)
    return found[0]


def test_an_updated_reason_is_named(any_world: World, algorithm: str, tmp_path: Path) -> None:
    w = any_world
    _two_records(w)
    row_id, seq, _t = _rows(w, "G1")[3]  # the return, with its reason
    _as_owner(w.db, f"UPDATE history SET reason = '同意' WHERE id = {row_id}")
    report = _verify(w, tmp_path)
    assert not report.ok
    b = _break_of(report, w, "G1")
    assert (b.history_id, b.seq, b.trigger, b.org_name) == (row_id, 4, "return_for_revision", "天河一中工会")
    assert "被改写" in b.problem and "天河一中工会" in b.line() and "退回修改" in b.line()
    assert len(report.breaks) == 1  # G2 is intact


def test_a_deleted_middle_row_is_named(any_world: World, tmp_path: Path) -> None:
    w = any_world
    _two_records(w)
    rows = _rows(w, "G1")
    _as_owner(w.db, f"DELETE FROM history WHERE id = {rows[1][0]}")  # the summarize
    b = _break_of(_verify(w, tmp_path), w, "G1")
    assert (b.history_id, b.seq) == (rows[2][0], 3)
    assert "第 2 条历史已被删除" in b.problem


def test_a_forged_back_dated_insert_is_named(any_world: World, tmp_path: Path) -> None:
    w = any_world
    _two_records(w)
    rid = w.rid("G2")
    # Without the chain's columns, and with them (the next seq, a made-up hash).
    with w.db.engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO history (record_id, at, actor_role, on_behalf, from_state, to_state, trigger)"
            " VALUES (:r, :at, 'reviewer', FALSE, 'submitted', 'accepted', 'accept')"),
            {"r": w.rid("G1"), "at": "2021-10-01 00:00:00.000000"})
        head = conn.execute(text("SELECT seq, row_hash FROM history WHERE record_id = :r"
                                 " ORDER BY seq DESC LIMIT 1"), {"r": rid}).one()
        conn.execute(text(
            "INSERT INTO history (record_id, at, actor_role, on_behalf, from_state, to_state, trigger,"
            " seq, prev_hash, row_hash) VALUES (:r, :at, 'reviewer', FALSE, 'submitted', 'accepted', 'accept',"
            " :seq, :prev, :fake)"),
            {"r": rid, "at": "2021-10-01 00:00:00.000000", "seq": head[0] + 1, "prev": head[1], "fake": "0" * 64})
    report = _verify(w, tmp_path)
    g1, g2 = _break_of(report, w, "G1"), _break_of(report, w, "G2")
    assert g1.trigger == "accept" and g1.seq is None and "没有链哈希" in g1.problem
    assert g2.trigger == "accept" and g2.seq == 4 and "内容与链哈希不符" in g2.problem
    assert g2.at is not None and g2.at.year == 2021 and g2.at.month == 10


def test_a_deleted_record_orphans_its_history_and_is_named(any_world: World, tmp_path: Path) -> None:
    """SQLite: ``PRAGMA foreign_keys=OFF`` then ``DELETE FROM record``; PostgreSQL (as a
    superuser): the same with ``session_replication_role = replica`` (no FK or user triggers)."""
    w = any_world
    _two_records(w)
    rid, first = w.rid("G2"), _rows(w, "G2")[0][0]
    raw = w.db.engine.raw_connection()  # the driver's connection: the PRAGMA outside a transaction
    try:
        cur = raw.cursor()
        if w.db.dialect == "sqlite":
            cur.execute("PRAGMA foreign_keys=OFF")
            cur.execute("DELETE FROM record WHERE id = ?", (rid,))
        else:
            cur.execute("SET session_replication_role = replica")
            cur.execute("DELETE FROM record WHERE id = %s", (rid,))
        raw.commit()
        cur.execute("PRAGMA foreign_keys=ON" if w.db.dialect == "sqlite" else "SET session_replication_role = DEFAULT")
        raw.commit()
    finally:
        raw.close()
    report = _verify(w, tmp_path)
    b = next(b for b in report.breaks if b.record_id == rid)
    assert b.history_id == first and b.org_name is None and "孤立" in b.problem
    assert f"记录 #{rid}（记录已不存在）" in b.line()


def test_sqlite_runs_with_foreign_keys_on(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    with UnitOfWork(sqlite_db) as uow:
        assert uow.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_a_rewritten_tail_is_caught_against_the_last_export(any_world: World, tmp_path: Path) -> None:
    w = any_world
    _two_records(w)
    entry = audit.export_head(UnitOfWork(w.db), var_dir=tmp_path)
    assert (entry["records"], entry["rows"]) == (2, 8)
    assert entry["notified"] == 0  # the world has no admin at the province
    log = (tmp_path / "audit" / "heads.log").read_text(encoding="utf-8").splitlines()
    assert json.loads(log[-1])["digest"] == entry["digest"]
    assert _verify(w, tmp_path).ok
    # The last row of G1 deleted, and every row of G2: both chains still hang together.
    g1, g2 = _rows(w, "G1"), _rows(w, "G2")
    _as_owner(w.db, f"DELETE FROM history WHERE id = {g1[-1][0]}",
              f"DELETE FROM history WHERE record_id = {w.rid('G2')}")
    report = _verify(w, tmp_path)
    assert report.export_at == entry["at"]
    assert "链尾被删除" in _break_of(report, w, "G1").problem
    assert "整条链被删除" in _break_of(report, w, "G2").problem
    assert len(g2) == 3
    # A second export records the new state; the log only grows.
    audit.export_head(UnitOfWork(w.db), var_dir=tmp_path)
    assert len((tmp_path / "audit" / "heads.log").read_text(encoding="utf-8").splitlines()) == 2


def test_an_export_e_mails_the_provinces_admins_and_its_file_is_checked(world: World, tmp_path: Path) -> None:
    w = world
    with w.db.engine.begin() as conn:
        gd = conn.execute(text("SELECT id FROM organisation WHERE code = 'GD'")).scalar()
        uid = conn.execute(text("SELECT id FROM app_user WHERE username = 'gd-reviewer'")).scalar()
        conn.execute(text("INSERT INTO membership (user_id, org_id, role) VALUES (:u, :o, 'admin')"),
                     {"u": uid, "o": gd})
    w.to_submitted("G1")
    entry = audit.export_head(UnitOfWork(w.db), var_dir=tmp_path)
    assert entry["notified"] == 2  # inbox and e-mail
    with w.db.engine.connect() as conn:
        rows = conn.execute(text("SELECT channel, kind, payload FROM notification WHERE kind = 'audit_head'")).all()
    assert {r[0] for r in rows} == {"inbox", "email"}
    assert json.loads(rows[0][2])["digest"] == entry["digest"]
    heads = tmp_path / "audit" / entry["heads_file"]
    heads.chmod(0o640)
    heads.write_text(heads.read_text() + "999\t1\t" + "0" * 64 + "\n")
    report = _verify(w, tmp_path)
    assert not report.ok and "摘要不符" in (report.export_problem or "")


def test_a_stale_head_is_read_again(any_db: Database, any_world: World) -> None:
    """Two writers that read the same head: the second's insert conflicts on (record, seq) and
    it chains after the first instead (no fork)."""
    w = any_world
    w.plan("G1")
    w.fire("G1", "finish_purchasing", "g1-clerk")
    rid = w.rid("G1")
    values = {"record_id": rid, "at": datetime(2021, 11, 2, tzinfo=UTC), "actor_user_id": None,
              "actor_role": "system", "actor_org_id": None, "on_behalf": False, "from_state": "purchased",
              "to_state": "purchased", "trigger": "note", "reason": None, "detail": None}
    with UnitOfWork(any_db) as uow:
        chain.append(uow.connection(), values, seen=None, seen_read=True)  # stale: there is row 1
        uow.commit()
    assert [s for _i, s, _t in _rows(w, "G1")] == [1, 2]
    assert audit.verify(UnitOfWork(any_db, readonly=True), var_dir=Path("/nonexistent")).ok


def test_sm3_matches_the_standard_and_gmssl() -> None:
    sm3 = chain.Sealer("sm3", b"k")
    assert chain.Sealer("sm3", b"").digest(b"abc") == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")  # GB/T 32905 A.1
    for key in (b"k", b"x" * 100):
        assert chain._hmac_sm3_gmssl(key, b"message").hex() == hmac.digest(key, b"message", "sm3").hex()
    assert sm3.mac(b"m") != chain.Sealer("sha256", b"k").mac(b"m")


def test_canonical_form_is_fixed() -> None:
    row = {"record_id": 7, "seq": 2, "at": datetime(2021, 11, 1, 10, 0, tzinfo=UTC) + timedelta(microseconds=5),
           "actor_user_id": None, "actor_role": "clerk", "actor_org_id": 3, "on_behalf": 0,
           "from_state": "planned", "to_state": "purchased", "trigger": "finish_purchasing", "reason": "说明",
           "detail": None, "prev_hash": "ab"}
    assert chain.canonical(row).decode() == (
        '["bangfu-history-v1",7,2,"2021-11-01T10:00:00.000005Z",null,"clerk",3,false,"planned","purchased",'
        '"finish_purchasing","说明",null,"ab"]')


def test_production_refuses_a_missing_or_short_audit_key() -> None:
    good = "s" * 40
    with pytest.raises(BadInput) as exc:
        Settings(env="production", secret_key=good).check()
    assert exc.value.code == "settings.audit_key_missing"
    with pytest.raises(BadInput) as exc:
        Settings(env="production", secret_key=good, audit_key="short").check()
    assert exc.value.code == "settings.audit_key_weak"
    with pytest.raises(BadInput) as exc:
        Settings(audit_hash="md5").check()
    assert exc.value.code == "settings.audit_hash"
    assert Settings(env="production", secret_key=good, audit_key="k" * 32, audit_hash="sm3").check()
