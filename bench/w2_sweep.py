"""W2: the daily sweep over the generated province, beside a naive per-record ORM loop and a
raw-SQL floor that writes the same rows.

    python -m bench.w2_sweep [--scale province] [--naive 2000] [--db sqlite|postgres|both]

(``python -m bench`` runs it on the province it generated for the other workloads.) On the
province of :func:`bench.generate.generate` it times

- ``sweep``: :func:`workflow.scheduler.sweeps.run_sweep` at 1 December 2021 09:00 China time
  (30 days before the quota deadline: every kind of reminder is due): finding what is due and
  writing the outbox (quota reminders, report reminders, reviewer digests) and the round checks;
- ``sweep again``: the same sweep a second time (it must write nothing: the idempotency cost);
- ``raw floor``: the same rows written the least way SQL can: per kind one
  ``INSERT … SELECT … ON CONFLICT DO NOTHING`` on the driver — the quota reminders with the
  spending per record pre-aggregated by one ``GROUP BY`` (the same "quota left" check), the report
  reminders per due deadline, one digest per parent — to the same users and channels, but with an
  empty payload, a ``floor:`` source, no reminder bookkeeping, no round lock, no channel
  preference parsing (every generated user chose inbox and e-mail). It runs first, twice, each
  time in a transaction timed with its commit, its rows deleted after the timing (the first run
  also warms the caches; the better run counts), so the sweep then writes into the same empty
  outbox. On PostgreSQL each
  timed run (floor, sweep, sweep again) starts after a ``CHECKPOINT`` (untimed), so none pays
  for another's dirty pages or falls on the server's checkpoint cycle by chance. The row counts per
  kind are checked against the sweep's (``same_rows``), so the two are comparable;
- ``naive ORM``: the quota reminders written the way an ORM loop would, one record at a time
  (load, sum its purchases, load its clerks, add rows), over ``--naive`` records, extrapolated to
  the round's grassroots records.

Figures go to stdout and ``bench/out/w2.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from sqlalchemy import bindparam, func, select, text

from bench.generate import SCALES, GeneratedInfo, generate
from bench.scratch import OUT, bench_database, checkpoint, kinds
from workflow.domain import clock
from workflow.scheduler.sweeps import due_offsets, run_sweep
from workflow.store.tables import (
    Database,
    Membership,
    Notification,
    Organisation,
    Purchase,
    Record,
    User,
    UTCDateTime,
)
from workflow.store.uow import UnitOfWork

AS_OF = clock.parse_instant("2021-12-01T09:00")
_CH = "(SELECT 'inbox' AS ch UNION ALL SELECT 'email') c"
_INSERT = ("INSERT INTO notification (user_id, channel, source, kind, record_id, payload, status,"
           " attempts, created_at)")
_ON_CONFLICT = " ON CONFLICT (user_id, channel, source) DO NOTHING"
FLOOR_QUOTA = (
    f"{_INSERT} SELECT m.user_id, c.ch, 'floor:q:' || CAST(r.org_id AS VARCHAR(20)), 'quota_reminder',"
    " r.id, '{}', 'pending', 0, :now"
    " FROM record r LEFT JOIN (SELECT record_id, SUM(amount_fen) AS used FROM purchase"
    "   WHERE budget = 'extra_quota' AND voided_at IS NULL GROUP BY record_id) p ON p.record_id = r.id"
    " JOIN membership m ON m.org_id = r.org_id AND m.role = 'clerk'"
    f" CROSS JOIN {_CH}"
    " WHERE r.round_id = :rid AND r.is_grassroots AND r.amount_per_member_fen > 0"
    " AND r.quota_fen > COALESCE(p.used, 0)" + _ON_CONFLICT
)
FLOOR_REPORT = (
    f"{_INSERT} SELECT m.user_id, c.ch, 'floor:r:' || CAST(:k AS VARCHAR(20)) || ':'"
    " || CAST(r.org_id AS VARCHAR(20)), 'report_reminder', r.id, '{}', 'pending', 0, :now"
    " FROM record r JOIN membership m ON m.org_id = r.org_id AND m.role = 'clerk'"
    f" CROSS JOIN {_CH}"
    " WHERE r.round_id = :rid AND r.report_deadline = :deadline"
    " AND r.state IN ('planned', 'purchased', 'summarized')" + _ON_CONFLICT
)
FLOOR_DIGEST = (
    f"{_INSERT} SELECT m.user_id, c.ch, 'floor:d:' || CAST(:k AS VARCHAR(20)) || ':'"
    " || CAST(k.porg AS VARCHAR(20)), 'reviewer_digest', NULL, '{}', 'pending', 0, :now"
    " FROM (SELECT DISTINCT o.parent_id AS porg FROM record r JOIN organisation o ON o.id = r.org_id"
    "   WHERE r.round_id = :rid AND r.report_deadline = :deadline AND r.state <> 'accepted'"
    "   AND o.parent_id IS NOT NULL) k"
    " JOIN membership m ON m.org_id = k.porg AND m.role = 'reviewer'"
    f" CROSS JOIN {_CH} WHERE 1 = 1" + _ON_CONFLICT  # (SQLite: no ON CONFLICT straight after a join)
)


def naive_loop(db: Database, round_id: int, limit: int) -> tuple[int, int, float]:
    """Quota reminders, one record per iteration: the shape the sweep avoids."""
    started = time.perf_counter()
    written = 0
    with db.session() as s:
        ids = s.execute(select(Record.id).where(Record.round_id == round_id, Record.is_grassroots)
                        .order_by(Record.id).limit(limit)).scalars().all()
        for rid in ids:
            rec = s.get(Record, rid)
            assert rec is not None
            if not rec.amount_per_member_fen:
                continue
            used = int(s.execute(select(func.coalesce(func.sum(Purchase.amount_fen), 0)).where(
                Purchase.record_id == rid, Purchase.budget == "extra_quota",
                Purchase.voided_at.is_(None))).scalar_one())
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


def due_now(db: Database) -> dict[int, dict[str, Any]]:
    """Per round, what the sweep will find due at :data:`AS_OF` (by the sweep's own pure rule,
    :func:`~workflow.scheduler.sweeps.due_offsets`): the quota reminder, and the report deadlines."""
    due: dict[int, dict[str, Any]] = {}
    with UnitOfWork(db, readonly=True) as uow:
        for rnd in uow.directory.rounds():
            policy = uow.directory.policy(rnd.policy_code)
            offsets, hour = policy.reminder_offsets, policy.reminder_hour

            def is_due(last_day: Any, offsets: Any = offsets, hour: int = hour) -> bool:
                return due_offsets(last_day, offsets, hour, AS_OF).latest is not None

            deadlines = uow.session.execute(select(Record.report_deadline).distinct()
                                            .where(Record.round_id == rnd.id)).scalars().all()
            due[rnd.id or 0] = {"quota": is_due(clock.deadline_last_day(rnd.quota_deadline)),
                                "reports": sorted(d for d in deadlines if is_due(clock.deadline_last_day(d)))}
    return due


def raw_floor(db: Database, due: dict[int, dict[str, Any]]) -> tuple[dict[str, int], float]:
    """The sweep's rows (by kind, user, channel and record) the least way (see the module doc),
    in one transaction timed up to and including its commit, as the sweep's own commits are;
    the rows are then deleted (untimed), so the sweep after it finds the same empty outbox.
    Returns rows by kind and seconds.

    (A floor rolled back instead skipped the commit's work: nothing on PostgreSQL, whose rows
    are in the WAL already, but on SQLite writing the cached pages to the WAL, 1.35 s of a
    4.7 s floor at province scale, which the sweep pays.)"""
    rows = {"quota_reminder": 0, "report_reminder": 0, "reviewer_digest": 0}
    now = bindparam("now", type_=UTCDateTime)
    deadline = bindparam("deadline", type_=UTCDateTime)
    with db.engine.connect() as conn:  # Core, no ORM
        started = time.perf_counter()
        tx = conn.begin()
        for rid, what in due.items():
            if what["quota"]:
                rows["quota_reminder"] += conn.execute(
                    text(FLOOR_QUOTA).bindparams(now), {"rid": rid, "now": AS_OF}).rowcount or 0
            for k, d in enumerate(what["reports"]):
                p = {"rid": rid, "now": AS_OF, "deadline": d, "k": k}
                rows["report_reminder"] += conn.execute(
                    text(FLOOR_REPORT).bindparams(now, deadline), p).rowcount or 0
                rows["reviewer_digest"] += conn.execute(
                    text(FLOOR_DIGEST).bindparams(now, deadline), p).rowcount or 0
        tx.commit()
        seconds = time.perf_counter() - started
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM notification WHERE source LIKE 'floor:%'"))
    return rows, seconds


def _vacuum(db: Database) -> None:
    """After a floor: PostgreSQL's dead outbox rows cleared, as a live database's autovacuum
    would (SQLite's delete leaves free pages in the file, which the sweep's rows reuse)."""
    if db.dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE notification"))


def run(db: Database, info: GeneratedInfo, *, naive: int, log: Any = print) -> dict[str, Any]:
    """W2 on a generated province (see the module doc): the floor twice (committed, then deleted; the
    first run also warms the caches), then the sweep, the sweep again, the naive loop."""
    out: dict[str, Any] = {"as_of": AS_OF.isoformat(), "grassroots": info.grassroots}
    due = due_now(db)
    checkpoint(db)
    floor_rows, first = raw_floor(db, due)
    _vacuum(db)
    checkpoint(db)
    floor_rows, second = raw_floor(db, due)
    _vacuum(db)
    floor_s = min(first, second)
    log(f"  raw floor    {sum(floor_rows.values()):>9,} rows {first:8.2f} / {second:.2f} s  {floor_rows}")
    checkpoint(db)
    t = time.perf_counter()
    report = run_sweep(db, now=AS_OF)
    out["sweep_s"] = round(time.perf_counter() - t, 2)
    out["sweep_rows"] = dict(report.notifications)
    out["sweep_rows_total"] = report.total_notifications
    out["sweep_steps_s"] = {k: round(v, 2) for k, v in report.seconds.items()}
    same = all(n == report.notifications.get(k, 0) for k, n in floor_rows.items())
    out["floor"] = {"rows": floor_rows, "seconds": round(floor_s, 2), "runs_s": [round(first, 2), round(second, 2)],
                    "same_rows": same}
    out["sweep_vs_floor"] = round(out["sweep_s"] / floor_s, 2) if floor_s else None
    log(f"  sweep        {report.total_notifications:>9,} rows {out['sweep_s']:8.2f} s  {out['sweep_rows']}"
        f"  same rows as the floor: {same}  sweep/floor {out['sweep_vs_floor']}×")
    log("               steps: " + ", ".join(f"{k} {v:.2f} s" for k, v in out["sweep_steps_s"].items()))
    checkpoint(db)
    t = time.perf_counter()
    again = run_sweep(db, now=AS_OF)
    out["sweep_again_s"] = round(time.perf_counter() - t, 2)
    out["sweep_again_rows"] = again.total_notifications
    log(f"  sweep again  {again.total_notifications:>9,} rows {out['sweep_again_s']:8.2f} s")
    records, written, seconds = naive_loop(db, info.round_id, naive)
    with db.begin() as s:
        s.execute(text("DELETE FROM notification WHERE source LIKE 'naive:%'"))
    out["naive"] = {"records": records, "rows": written, "seconds": round(seconds, 2),
                    "extrapolated_s": round(seconds * info.grassroots / max(records, 1), 1)}
    log(f"  naive ORM    {written:>9,} rows {seconds:8.2f} s over {records:,} records,"
        f" ≈ {out['naive']['extrapolated_s']:,.0f} s for {info.grassroots:,}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=list(SCALES), default="province")
    parser.add_argument("--naive", type=int, default=2_000)
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    results = {}
    for kind in kinds(args.db):
        with bench_database(kind, prefix="bangfu_w2") as db:
            results[kind] = run(db, generate(db, args.scale), naive=args.naive)
    OUT.mkdir(exist_ok=True)
    (OUT / "w2.json").write_text(json.dumps(results, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
