"""W3 (province roll-up) and W4 (purchase import) on SQLite and PostgreSQL, in one run.

W3a  every district's figure from its accepted grassroots unions' snapshots (215,000 snapshots,
     ~3 lines each): ``reporting.unit_lines`` beside Python aggregation of the same rows and the raw
     GROUP BY floor (the bare join + GROUP BY, no UNION of live parts).
W3b  the province's live progress per reporting unit from every purchase below it (2 million
     rows, drafts): ``reporting.live_rollup_by_path`` beside Python aggregation and the floor (one
     GROUP BY over the purchase table, no join).
W3c  the province view itself (``reporting.stats`` for the receiver: one snapshot per unit).
W4   importing 100,000 purchase rows (``purchase_import.import_purchases``, CSV) beside a bare bulk
     insert of the same rows, and the parse alone.

Data are generated set-based (INSERT … SELECT); sizes are flags. Run from the repository root::

    python bench/reports_bench.py --grassroots 215000 --per 10 --import-rows 100000

Not a test: it prints figures and ratios, nothing asserts a time.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import case, create_engine, func, insert, literal, select, text, union_all, update  # noqa: E402

from workflow.app import (
    directory,
    purchase_import,
    reporting,  # noqa: E402
)
from workflow.domain.policy import builtin  # noqa: E402
from workflow.formats import ledger
from workflow.store import (  # noqa: E402
    reports as aggregates,
)
from workflow.store.tables import (  # noqa: E402
    Membership,
    Organisation,
    Purchase,
    Record,
    Snapshot,
    SnapshotLine,
    User,
)
from workflow.store.uow import (
    UnitOfWork,  # noqa: E402
    tables,
)

NOW = datetime(2021, 11, 1, 2, 0, tzinfo=UTC)
PAID = datetime(2021, 10, 1, 2, 0, tzinfo=UTC)
CHANNELS = ["ygh", "gdg", "dxb", "p832", "dxyx", "local_hall", "other"]


def timed(fn: Callable[[], Any], repeat: int = 3) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def build(database: tables.Database, *, units: int, districts: int, grassroots: int, per: int) -> dict[str, int]:
    """A province: receiver → ``units`` reporting units → ``districts`` each → grassroots;
    grassroots records accepted with snapshots; ``per`` purchases per grassroots record."""
    policy = builtin()
    directory.install_policy(UnitOfWork(database), policy=policy, now=NOW)
    org_rows: list[dict[str, Any]] = [dict(id=1, code="GD", name="广东省总工会", kind="province", parent_id=None,
                                           path="/1/", depth=0, is_observer=False)]
    next_id = 2
    district_ids: list[tuple[int, str]] = []
    for u in range(units):
        uid = next_id
        next_id += 1
        org_rows.append(dict(id=uid, code=f"U{u}", name=f"报送单位{u}", kind="city_federation", parent_id=1,
                             path=f"/1/{uid}/", depth=1, is_observer=False))
        for d in range(districts):
            did = next_id
            next_id += 1
            path = f"/1/{uid}/{did}/"
            org_rows.append(dict(id=did, code=f"U{u}D{d}", name=f"区{u}-{d}", kind="district_federation",
                                 parent_id=uid, path=path, depth=2, is_observer=False))
            district_ids.append((did, path))
    for g in range(grassroots):
        did, dpath = district_ids[g % len(district_ids)]
        gid = next_id
        next_id += 1
        org_rows.append(dict(id=gid, code=f"G{g}", name=f"基层工会{g}", kind="grassroots", parent_id=did,
                             path=f"{dpath}{gid}/", depth=3, is_observer=False))
    with database.begin() as s:
        for i in range(0, len(org_rows), 20_000):
            s.execute(insert(Organisation.__table__), org_rows[i:i + 20_000])
        s.execute(insert(User.__table__), [dict(id=1, username="gd-reviewer", display_name="省审核人",
                                                is_active=True, channels="inbox")])
        s.execute(insert(Membership.__table__), [dict(user_id=1, org_id=1, role="reviewer")])
        if database.dialect == "postgresql":
            for table in ("organisation", "app_user"):
                s.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    with UnitOfWork(database) as uow:
        rnd = uow.directory.round_by_label("2021年度")
        uow.records.open_records(rnd, policy, now=NOW)
        uow.commit()
    rec, pur = Record.__table__, Purchase.__table__
    nums = union_all(select(literal(1).label("n")), *(select(literal(k)) for k in range(2, per + 1))).subquery("k")
    # Spread channels by (record id + k) % 7 with a CASE; amounts and people vary with ids.
    chan = case(*[((rec.c.id + nums.c.n) % len(CHANNELS) == i, literal(c)) for i, c in enumerate(CHANNELS)])
    with database.begin() as s:
        s.execute(insert(pur).from_select(
            ["record_id", "paid_at", "paid_on", "channel", "amount_fen", "people", "product", "order_no", "line_no",
             "budget", "on_behalf", "source"],
            select(rec.c.id, literal(PAID, tables.UTCDateTime), literal(date(2021, 10, 1)), chan,
                   (rec.c.id * 7919 + nums.c.n * 104729) % 200_000 + 100, (rec.c.id + nums.c.n) % 30 + 1,
                   literal(""), literal("o") + func.cast(rec.c.id, tables.String) + literal("-")
                   + func.cast(nums.c.n, tables.String), literal(1), literal("extra_quota"), literal(False),
                   literal("bench"))
            .select_from(rec.join(nums, literal(True)))
            .where(rec.c.is_grassroots.is_(True)),
        ))
        snap, sl = Snapshot.__table__, SnapshotLine.__table__
        s.execute(insert(snap).from_select(
            ["record_id", "taken_at", "as_of", "people_total", "amount_total_fen", "missing_children"],
            select(rec.c.id, literal(NOW, tables.UTCDateTime), literal(date(2021, 11, 1)), literal(0), literal(0),
                   literal("[]")).where(rec.c.is_grassroots.is_(True)),
        ))
        s.execute(insert(sl).from_select(
            ["snapshot_id", "channel", "people", "amount_fen"],
            select(snap.c.id, pur.c.channel, func.sum(pur.c.people), func.sum(pur.c.amount_fen))
            .select_from(pur.join(snap, snap.c.record_id == pur.c.record_id))
            .group_by(snap.c.id, pur.c.channel),
        ))
        s.execute(update(rec).where(rec.c.is_grassroots.is_(True)).values(
            state="accepted", snapshot_id=select(snap.c.id).where(snap.c.record_id == rec.c.id).scalar_subquery()))
        if database.dialect == "postgresql":
            s.execute(text("ANALYZE"))
    with database.begin() as s:
        counts = {t: s.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                  for t in ("organisation", "record", "purchase", "snapshot", "snapshot_line")}
    return {**counts, "round_id": rnd.id}


def w3(database: tables.Database, round_id: int) -> list[tuple[str, float]]:
    rec = Record.__table__
    out: list[tuple[str, float]] = []
    with database.session(readonly=True) as s:
        district_ids = s.execute(
            select(rec.c.id).select_from(rec.join(Organisation.__table__, Organisation.__table__.c.id == rec.c.org_id))
            .where(rec.c.round_id == round_id, Organisation.__table__.c.kind == "district_federation")
        ).scalars().all()
        t_ours, ours = timed(lambda: aggregates.unit_lines(s, round_id, record_ids=district_ids, live=True))

        def python_agg() -> dict[int, dict[str, list[int]]]:
            child, sl = rec.alias("c"), SnapshotLine.__table__
            acc: dict[int, dict[str, list[int]]] = {}
            for parent, channel, people, amount in s.execute(
                select(child.c.parent_id, sl.c.channel, sl.c.people, sl.c.amount_fen)
                .select_from(child.join(sl, sl.c.snapshot_id == child.c.snapshot_id))
                .where(child.c.round_id == round_id, child.c.state == "accepted")
            ):
                slot = acc.setdefault(parent, {}).setdefault(channel, [0, 0])
                slot[0] += people
                slot[1] += amount
            return acc

        t_py, py = timed(python_agg)
        floor_sql = text(
            "SELECT c.parent_id, sl.channel, SUM(sl.people), SUM(sl.amount_fen) FROM record c"
            " JOIN snapshot_line sl ON sl.snapshot_id = c.snapshot_id"
            " WHERE c.round_id = :r AND c.state = 'accepted' GROUP BY c.parent_id, sl.channel")
        t_floor, _ = timed(lambda: s.execute(floor_sql, {"r": round_id}).all())
        assert sum(a for lines in ours.values() for _p, a in lines.values()) == sum(
            v[1] for d in py.values() for v in d.values())
        out += [("W3a districts from snapshots: reporting.unit_lines", t_ours),
                ("W3a Python aggregation", t_py), ("W3a raw GROUP BY floor", t_floor)]

        t_path, live = timed(lambda: aggregates.live_rollup_by_path(s, 1, round_id), repeat=1)

        def python_path() -> dict[str, int]:
            acc: dict[str, int] = {}
            org, pur = Organisation.__table__, Purchase.__table__
            for path, amount in s.execute(
                select(org.c.path, pur.c.amount_fen).select_from(
                    pur.join(rec, rec.c.id == pur.c.record_id).join(org, org.c.id == rec.c.org_id))
                .where(rec.c.round_id == round_id)
            ):
                unit = path[: path.index("/", 3) + 1]
                acc[unit] = acc.get(unit, 0) + amount
            return acc

        t_pypath, pyl = timed(python_path, repeat=1)
        t_pfloor, _ = timed(lambda: s.execute(text(
            "SELECT channel, SUM(people), SUM(amount_fen) FROM purchase GROUP BY channel")).all(), repeat=1)
        assert sum(a for lines in live.values() for _p, a in lines.values()) == sum(pyl.values())
        out += [("W3b province live progress by path prefix (2M purchases)", t_path),
                ("W3b Python aggregation", t_pypath), ("W3b GROUP BY floor (no join)", t_pfloor)]
        t_view, _ = timed(lambda: reporting.stats(UnitOfWork(database, readonly=True), org_code="GD", user_id=1))
        out.append(("W3c province view (one snapshot per unit)", t_view))
    return out


def w4(database: tables.Database, rows: int, round_id: int) -> list[tuple[str, float]]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["订单号", "商品行号", "支付时间", "实付金额", "领取人数", "商品名称", "渠道"])
    for i in range(rows):
        writer.writerow([f"IMP{i}", 1, "2021-10-01 10:00", f"{(i % 5000) + 1}.{i % 100:02d}", i % 30 + 1,
                         "荔枝", "粤工惠购"])
    data = buf.getvalue().encode("utf-8")
    with database.session(readonly=True) as s:
        g0, g1 = s.execute(
            select(Record.id).where(Record.round_id == round_id, Record.is_grassroots.is_(True))
            .order_by(Record.id).limit(2)).scalars().all()
    with database.begin() as s:
        s.execute(update(Record.__table__).where(Record.__table__.c.id.in_([g0, g1])).values(
            state="planned", snapshot_id=None))
        s.execute(insert(Membership.__table__), [dict(user_id=1, org_id=s.execute(
            select(Record.org_id).where(Record.id == g0)).scalar_one(), role="clerk")])
    t0 = time.perf_counter()
    parsed = ledger.parse_purchases(data, "bench.csv")
    t_parse = time.perf_counter() - t0
    assert not parsed.errors
    t0 = time.perf_counter()
    result = purchase_import.import_purchases(UnitOfWork(database), record_id=g0, user_id=1, data=data,
                                         filename="bench.csv", now=NOW)
    t_import = time.perf_counter() - t0
    assert result.new == rows
    t0 = time.perf_counter()
    again = purchase_import.import_purchases(UnitOfWork(database), record_id=g0, user_id=1, data=data,
                                        filename="bench.csv", now=NOW)
    t_again = time.perf_counter() - t0
    assert (again.new, again.repeated) == (0, rows)
    values = [dict(record_id=g1, paid_at=r.paid_at, paid_on=date(2021, 10, 1), channel=r.channel,
                   amount_fen=r.amount_fen, people=r.people, product=r.product, order_no=r.order_no,
                   line_no=r.line_no, budget=r.budget, on_behalf=False, source="bare") for r in parsed.rows]
    t0 = time.perf_counter()
    with database.begin() as s:
        s.execute(insert(Purchase.__table__), values)
    t_bare = time.perf_counter() - t0
    return [("W4 parse only (CSV)", t_parse), ("W4 import_purchases (parse+rules+insert)", t_import),
            ("W4 same file again (0 new)", t_again), ("W4 bare bulk insert", t_bare)]


def run(url: str, args: argparse.Namespace) -> None:
    database = tables.Database(url, pool_size=2)
    database.upgrade()
    t0 = time.perf_counter()
    info = build(database, units=args.units, districts=args.districts, grassroots=args.grassroots, per=args.per)
    print(f"\n== {database.dialect}: built in {time.perf_counter() - t0:.1f} s: "
          + ", ".join(f"{k} {v:,}" for k, v in info.items() if k != "round_id"))
    results = w3(database, info["round_id"]) + w4(database, args.import_rows, info["round_id"])
    base: dict[str, float] = {}
    for name, seconds in results:
        key = name.split()[0]
        base.setdefault(key, seconds)
        print(f"{name:<62} {seconds * 1000:>10.1f} ms   × {seconds / base[key]:.2f} of first {key} line")
    database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grassroots", type=int, default=215_000)
    parser.add_argument("--per", type=int, default=10, help="purchases per grassroots record")
    parser.add_argument("--units", type=int, default=40)
    parser.add_argument("--districts", type=int, default=10, help="districts per unit")
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/test", help="admin URL ('' to skip)")
    parser.add_argument("--sqlite-dir", default="var/bench")
    args = parser.parse_args()
    os.makedirs(args.sqlite_dir, exist_ok=True)
    path = os.path.join(args.sqlite_dir, f"reports_{uuid.uuid4().hex[:6]}.db")
    try:
        run(f"sqlite:///{path}", args)
    finally:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
    if args.pg:
        admin = create_engine(args.pg.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
        name = f"bangfu_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            run(args.pg.rsplit("/", 1)[0] + "/" + name, args)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
