"""The benchmarks, smoke-run at tiny scale: the generator's rows, W1's transitions, W6's pending
district and W2's sweep beside its floor are checked by count (never by time) on SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from bench import bulk_accept, w1_transitions, w2_sweep, w6_web, w8_rush
from bench.__main__ import summary
from bench.generate import SCALES, build_tree, generate
from workflow.app import purchases, record_views, views
from workflow.store.tables import Database
from workflow.store.uow import UnitOfWork


def _scalar(database: Database, sql: str, **params: object) -> int:
    with database.engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar() or 0)


def test_tree_shape_at_province_scale() -> None:
    tree = build_tree(SCALES["province"])
    kinds: dict[str, int] = {}
    for _id, _code, _name, kind, _parent, _path, _depth in tree.orgs:
        kinds[kind] = kinds.get(kind, 0) + 1
    assert kinds["grassroots"] == 215_000
    assert kinds["city_federation"] == 21 and kinds["district_federation"] == 105
    assert tree.reporting_units == 40
    assert len(tree.grassroots) == 215_000  # one clerk each


@pytest.fixture(params=["sqlite", "postgres"])
def bench_db(request: pytest.FixtureRequest) -> Database:
    return request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "pg_db")  # type: ignore[no-any-return]


def test_generator_and_w1_at_tiny_scale(bench_db: Database) -> None:
    info = generate(bench_db, "tiny")
    n = SCALES["tiny"]
    # The tree: materialised paths are the chain of ids, root first.
    assert _scalar(bench_db, "SELECT count(*) FROM organisation WHERE kind = 'grassroots'") == n
    assert _scalar(bench_db, "SELECT count(*) FROM organisation o JOIN organisation p ON p.id = o.parent_id"
                             " WHERE o.path <> p.path || CAST(o.id AS VARCHAR(20)) || '/'") == 0
    assert _scalar(bench_db, "SELECT count(*) FROM organisation WHERE parent_id IS NULL AND path <> '/1/'") == 0
    # Every grassroots union has a clerk, every federation below the province a reviewer.
    assert _scalar(bench_db, "SELECT count(*) FROM organisation o WHERE NOT EXISTS (SELECT 1 FROM membership m"
                             " WHERE m.org_id = o.id AND m.role = 'clerk') AND o.kind <> 'province'") == 0
    assert _scalar(bench_db, "SELECT count(*) FROM organisation o WHERE o.kind <> 'grassroots' AND NOT EXISTS"
                             " (SELECT 1 FROM membership m WHERE m.org_id = o.id AND m.role = 'reviewer')") == 0
    # Records: one per organisation but the province, per round of the 17号 policy (two rounds).
    assert info.counts["record"] == 2 * (len(build_tree(n).orgs) - 1)
    assert _scalar(bench_db, "SELECT count(*) FROM record WHERE round_id = :r AND is_grassroots = :t",
                   r=info.round_id, t=True) == n
    assert info.reporting_units == 40
    assert _scalar(bench_db, "SELECT count(*) FROM record WHERE round_id = :r AND is_reporting_unit = :t",
                   r=info.round_id, t=True) == 40
    # ~10 purchases per grassroots record, all in the round's year.
    lines = _scalar(bench_db, "SELECT count(*) FROM purchase")
    assert 8 * n <= lines <= 12 * n and lines == info.counts["purchase"]
    assert _scalar(bench_db, "SELECT count(*) FROM purchase WHERE paid_on < '2021-01-01' OR paid_on > '2021-12-31'") == 0
    # Every state is reached; summarized and later records have a snapshot equal to their purchases.
    assert set(info.state_counts) == {"planned", "purchased", "summarized", "submitted", "accepted"}
    assert sum(info.state_counts.values()) == n
    later = info.state_counts["summarized"] + info.state_counts["submitted"] + info.state_counts["accepted"]
    assert info.counts["snapshot"] == later
    assert _scalar(bench_db, "SELECT count(*) FROM record r JOIN snapshot s ON s.id = r.snapshot_id"
                             " WHERE s.amount_total_fen <> (SELECT sum(amount_fen) FROM purchase p"
                             " WHERE p.record_id = r.id)") == 0
    assert _scalar(bench_db, "SELECT count(*) FROM snapshot s WHERE s.people_total <> (SELECT sum(l.people)"
                             " FROM snapshot_line l WHERE l.snapshot_id = s.id)") == 0
    # History: one row per transition on the way to each record's state.
    steps = {"planned": 0, "purchased": 1, "summarized": 2, "submitted": 3, "accepted": 4}
    assert info.counts["history"] == sum(steps[s] * c for s, c in info.state_counts.items())
    assert info.members > 0

    # The engine reads the generated rows like its own: a summarized record shows submit allowed.
    rid, clerk = _first_summarized(bench_db, info.round_id)
    view = record_views.record_view(UnitOfWork(bench_db), record_id=rid, user_id=clerk, now=info.now)
    assert view.state == "summarized" and view.snapshot_id is not None
    assert {a.trigger for a in view.actions if a.allowed} >= {"submit"}
    assert len(purchases.list_purchases(UnitOfWork(bench_db), record_id=rid, user_id=clerk)) >= 8

    # W1 at tiny size: 200 pairs through the engine and 200 on the floor.
    history_before = _scalar(bench_db, "SELECT count(*) FROM history")
    result = w1_transitions.run(bench_db, info)
    assert result.pairs == 200
    for side in ("engine", "floor"):
        assert getattr(result, f"{side}_history_rows") == 2 * 200
        assert getattr(result, f"{side}_accepted") == 200
        # submit tells the parent's reviewer; accept the union's clerk and the parent's clerk
        # (who compiles the parent's report, issue 22): inbox + e-mail each.
        assert getattr(result, f"{side}_notifications") == 3 * 2 * 200
    assert _scalar(bench_db, "SELECT count(*) FROM history") == history_before + 2 * 2 * 200
    assert result.engine_tps > 0 and result.floor_tps > 0
    table = summary({bench_db.dialect: {"generate": info.to_dict(), "w1": result.to_dict()}})
    assert "W1 submit→accept" in table and "purchase" in table


def test_w6_pending_district_and_w2_sweep_beside_its_floor_at_tiny_scale(bench_db: Database) -> None:
    info = generate(bench_db, "tiny")
    meta = w6_web.add_pending_district(bench_db, info, 20)
    assert meta["pending"] == 20 and set(meta["tokens"]) == {"gd-reviewer", "bench-reviewer"}
    # The moved unions sit under the new district, paths and record links included.
    assert _scalar(bench_db, "SELECT count(*) FROM organisation o JOIN organisation p ON p.id = o.parent_id"
                             " WHERE o.path <> p.path || CAST(o.id AS VARCHAR(20)) || '/'") == 0
    assert _scalar(bench_db, "SELECT count(*) FROM record r JOIN organisation o ON o.id = r.org_id"
                             " JOIN record p ON p.id = r.parent_id WHERE p.org_id <> o.parent_id") == 0
    reviewer = _scalar(bench_db, "SELECT id FROM app_user WHERE username = 'bench-reviewer'")
    inbox = views.review_inbox(UnitOfWork(bench_db), user_id=reviewer, round_id=info.round_id, now=info.now)
    assert inbox.total == 20

    out = w2_sweep.run(bench_db, info, naive=20, log=lambda _line: None)
    rows = out["sweep_rows"]
    assert rows["quota_reminder"] > 0 and rows["report_reminder"] > 0 and rows["reviewer_digest"] > 0
    # The floor writes the same rows per kind, then rolls back; the sweep again writes nothing.
    assert out["floor"]["same_rows"] and out["floor"]["rows"]["report_reminder"] == rows["report_reminder"]
    assert out["sweep_again_rows"] == 0
    assert _scalar(bench_db, "SELECT count(*) FROM notification WHERE source LIKE 'floor:%'") == 0
    assert _scalar(bench_db, "SELECT count(*) FROM notification") == out["sweep_rows_total"]
    assert out["naive"]["records"] == 20
    table = summary({bench_db.dialect: {"generate": info.to_dict(), "w2": out}})
    assert "W2 sweep" in table and "sweep ÷ floor" in table


def test_w8_rush_takes_every_union_dealt_from_planned_to_accepted_at_tiny_scale(bench_db: Database) -> None:
    """W8 through the HTTP API against ``bangfu serve --workers 2``: each clerk's unions go
    report-info → purchase → finish → summarize → submit, the reviewers accept them all; the
    figures are counted (never timed)."""
    info = generate(bench_db, "tiny")
    out = w8_rush.run(bench_db, info, clerks=(2,), workers=(2,), reviewers=2, seconds=60, per_clerk=3,
                      log=lambda _line: None)
    (r,) = out["runs"]
    assert r["clerks"] == 2 and r["workers"] == 2 and r["unions_dealt"] >= 2
    assert sum(sum(k["errors"].values()) for k in r["kinds"].values()) == 0
    assert r["submitted"] == r["accepted"] == r["unions_dealt"]
    assert r["transitions"] == 4 * r["unions_dealt"]
    assert {k: v["n"] for k, v in r["kinds"].items() if k != "inbox"} == {
        k: r["unions_dealt"] for k in ("report_info", "purchase", "finish", "summarize", "submit", "accept")}
    # What a reviewer would check: the records are accepted, each with its four new history rows.
    assert _scalar(bench_db, "SELECT count(*) FROM history WHERE trigger = 'accept' AND record_id IN"
                             " (SELECT record_id FROM purchase WHERE order_no LIKE 'W8-%')") == r["unions_dealt"]
    assert _scalar(bench_db, "SELECT count(*) FROM record WHERE state = 'accepted' AND id IN"
                             " (SELECT record_id FROM purchase WHERE order_no LIKE 'W8-%')") == r["unions_dealt"]
    if bench_db.dialect == "postgresql":
        assert r["waits"]["samples"] > 0
    table = summary({bench_db.dialect: {"generate": info.to_dict(), "w8": out}})
    assert "W8 December rush" in table and "accept p50 / p95" in table


def _first_summarized(database: Database, round_id: int) -> tuple[int, int]:
    with database.engine.connect() as conn:
        rid, clerk = conn.execute(text(
            "SELECT r.id, m.user_id FROM record r JOIN membership m ON m.org_id = r.org_id AND m.role = 'clerk'"
            " WHERE r.round_id = :r AND r.state = 'summarized' ORDER BY r.id LIMIT 1"), {"r": round_id}).one()
    return int(rid), int(clerk)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_django_peer_runs_the_same_pairs_with_every_row(kind: str) -> None:
    """bench.django_peer: Django + django-fsm-2 + django-fsm-log; each pair leaves two StateLog
    (history) rows, an accepted record and, per transition, inbox + e-mail outbox rows."""
    from bench.__main__ import run_peer

    peer = run_peer("sqlite" if kind == "sqlite" else "postgresql", 15)
    assert peer is not None
    assert peer["pairs"] == 15 and peer["accepted"] == 15
    assert peer["history_rows"] == 30 and peer["notifications"] == 60 == peer["notified"]


def test_bulk_accept_bench_at_tiny_scale(bench_db: Database) -> None:
    res = bulk_accept.run(bench_db, n=30, runs=2, scale="tiny")
    assert res["accepted"] == 60  # every item of every run
    assert res["rollup_equals_recomputed"] and res["chain_ok"]
    assert len(res["seconds"]) == 2
