"""W2: the daily sweep over a province, beside a naive per-record ORM loop and the raw-SQL floor.

    python -m bench.w2_sweep [--grassroots 215000] [--purchases 3] [--naive 5000]
                             [--db sqlite|postgres|both]

For each database: generate the province (``bench.sched_data``), then time

- ``sweep``: :func:`workflow.scheduler.sweeps.run_sweep` at 1 December 09:00 China time (30 days before the
  quota deadline; every kind of reminder is due): finding what is due and writing the outbox;
- ``sweep again``: the same sweep a second time (writes nothing: the idempotency cost);
- ``naive ORM``: the quota reminders written the way an ORM loop would, one record at a time
  (load, sum its purchases, load its clerks, add rows), over ``--naive`` records, extrapolated to
  all of them;
- ``raw floor``: one ``INSERT … SELECT … ON CONFLICT DO NOTHING`` writing the same number of
  quota-reminder rows with no spending check and an empty payload: the least any design can do.

Figures go to stdout and ``bench/out/w2.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

from bench.sched_data import generate
from bench.scratch import bench_database, kinds
from workflow.domain import clock
from workflow.scheduler.sweeps import run_sweep
from workflow.store.tables import (
    Database,
    Membership,
    Notification,
    Organisation,
    Purchase,
    Record,
    User,
)

AS_OF = clock.parse_instant("2021-12-01T09:00")


def _count(db: Database, where: str = "1=1") -> int:
    with db.session(readonly=True) as s:
        return int(s.execute(text(f"SELECT COUNT(*) FROM notification WHERE {where}")).scalar_one())


def _clear(db: Database, where: str) -> None:
    with db.begin() as s:
        s.execute(text(f"DELETE FROM notification WHERE {where}"))


def naive_loop(db: Database, limit: int) -> tuple[int, int, float]:
    """Quota reminders, one record per iteration: the shape the sweep avoids."""
    started = time.perf_counter()
    written = 0
    with db.session() as s:
        ids = s.execute(select(Record.id).where(Record.is_grassroots).order_by(Record.id)
                        .limit(limit)).scalars().all()
        for rid in ids:
            rec = s.get(Record, rid)
            assert rec is not None
            if not rec.amount_per_member_fen:
                continue
            used = s.execute(select(func.coalesce(func.sum(Purchase.amount_fen), 0)).where(
                Purchase.record_id == rid, Purchase.budget == "extra_quota")).scalar_one()
            used = int(used)
            if used >= rec.quota_fen:
                continue
            org = s.get(Organisation, rec.org_id)
            assert org is not None
            clerks = s.execute(select(User).join(Membership, Membership.user_id == User.id)
                               .where(Membership.org_id == rec.org_id,
                                      Membership.role == "clerk")).scalars().all()
            payload = json.dumps({"union_name": org.name, "left_fen": rec.quota_fen - used})
            for user in clerks:
                for channel in ("inbox", "email") if user.email else ("inbox",):
                    s.add(Notification(user_id=user.id, channel=channel, kind="quota_reminder",
                                       source=f"naive:{rec.org_id}", record_id=rid,
                                       payload=payload, created_at=AS_OF))
                    written += 1
            s.flush()
        s.commit()
    return len(ids), written, time.perf_counter() - started


def raw_floor(db: Database) -> tuple[int, float]:
    started = time.perf_counter()
    with db.begin() as s:
        n = s.execute(text(
            "INSERT INTO notification (user_id, channel, source, kind, record_id, payload, status,"
            " attempts) SELECT m.user_id, c.ch, 'floor:' || CAST(r.org_id AS TEXT),"
            " 'quota_reminder', r.id, '{}', 'pending', 0"
            " FROM record r JOIN membership m ON m.org_id = r.org_id AND m.role = 'clerk'"
            " CROSS JOIN (SELECT 'inbox' AS ch UNION ALL SELECT 'email') c"
            " WHERE r.is_grassroots AND r.amount_per_member_fen > 0"
            " ON CONFLICT (user_id, channel, source) DO NOTHING")).rowcount
    return n, time.perf_counter() - started


def run_one(db: Database, args: argparse.Namespace) -> dict[str, Any]:
    db.upgrade()
    out: dict[str, Any] = {"database": db.dialect, "data": generate(
        db, grassroots=args.grassroots, purchases=args.purchases)}
    t = time.perf_counter()
    report = run_sweep(db, now=AS_OF)
    out["sweep_s"] = round(time.perf_counter() - t, 2)
    out["sweep_rows"] = report.notifications
    out["sweep_rows_total"] = report.total_notifications
    out["sweep_steps_s"] = {k: round(v, 2) for k, v in report.seconds.items()}
    t = time.perf_counter()
    again = run_sweep(db, now=AS_OF)
    out["sweep_again_s"] = round(time.perf_counter() - t, 2)
    assert again.total_notifications == 0
    quota_rows = report.notifications.get("quota_reminder", 0)
    records, written, seconds = naive_loop(db, args.naive)
    grassroots = out["data"]["record"] - 1 - 21 - 21 * 5
    out["naive"] = {"records": records, "rows": written, "seconds": round(seconds, 2),
                    "extrapolated_s": round(seconds * grassroots / max(records, 1), 1)}
    _clear(db, "source LIKE 'naive:%'")
    n, seconds = raw_floor(db)
    out["floor"] = {"rows": n, "seconds": round(seconds, 2)}
    out["quota_rows"] = quota_rows
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grassroots", type=int, default=215_000)
    parser.add_argument("--purchases", type=int, default=3)
    parser.add_argument("--naive", type=int, default=5_000)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    results = []
    for kind in kinds(args.db):
        with bench_database(kind, prefix="bangfu_w2") as db:
            results.append(run_one(db, args))
            print(json.dumps(results[-1], ensure_ascii=False), flush=True)
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "w2.json").write_text(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
