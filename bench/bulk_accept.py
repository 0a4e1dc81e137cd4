"""Bulk accept (批量通过所选) at province scale: ``python -m bench.bulk_accept --db postgres --n 500``.

A generated province (``bench.generate``, scale ``small`` by default) gets a district whose
reviewer has ``n`` submitted grassroots unions waiting (``bench.w6_web.add_pending_district``,
set-based; the generator's summarized unions are sent up first, so scale ``small`` has enough). Each run then times one call of :func:`workflow.app.oversight.bulk_accept` (what the
page's 批量通过所选 and ``POST /api/records/bulk-accept`` call) on them as that reviewer, the records
sent back to submitted (set-based) between runs; the median of the runs is printed. Afterwards it checks what
every run must leave: every item accepted, the rollup equal to its recomputation and the history
chain verified (``bangfu audit-verify``'s logic).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.generate import NOW, generate
from bench.scratch import bench_database, kinds
from bench.w6_web import add_pending_district
from workflow.app import audit, oversight
from workflow.store import rollup
from workflow.store.tables import Database
from workflow.store.uow import UnitOfWork


def _send_back(database: Database, ids: list[int]) -> list[tuple[int, int]]:
    """The records back to submitted (set-based, the rollup rebuilt), for the next run; their
    (id, version) pairs as a reviewer's page would post them."""
    with database.begin() as s:
        marks = ", ".join(str(i) for i in ids)
        s.execute(text(f"UPDATE record SET state = 'submitted', version = version + 1, decided_at = NULL"
                       f" WHERE id IN ({marks}) AND state <> 'submitted'"))
        pairs = [(int(r), int(v)) for r, v in s.execute(text(f"SELECT id, version FROM record WHERE id IN ({marks})"
                                                             " ORDER BY id"))]
    with UnitOfWork(database) as uow:
        uow.records.rollup_rebuild()
        uow.commit()
    return pairs


def run(database: Database, *, n: int, runs: int, scale: str) -> dict[str, Any]:
    info = generate(database, scale)
    with database.begin() as s:  # more submissions than the generator leaves: summarized ones sent up
        s.execute(text(
            "UPDATE record SET state = 'submitted', version = version + 1, submitted_at = updated_at"
            " WHERE round_id = :r AND is_grassroots = :t AND state = 'summarized'"), {"r": info.round_id, "t": True})
    meta = add_pending_district(database, info, n)
    if meta["pending"] < n:
        raise SystemExit(f"only {meta['pending']} submitted unions at scale {scale}: choose a larger scale")
    with database.begin() as s:
        reviewer = int(s.execute(text("SELECT id FROM app_user WHERE username = 'bench-reviewer'")).scalar_one())
        ids = [int(r) for (r,) in s.execute(text(
            "SELECT r.id FROM record r JOIN organisation o ON o.id = r.org_id"
            " WHERE o.parent_id = :d AND r.state = 'submitted' ORDER BY r.id"), {"d": meta["district_id"]})]
    seconds: list[float] = []
    accepted = 0
    for k in range(runs):
        batch = _send_back(database, ids)  # every run on the same records, sent back up in between
        t0 = time.perf_counter()
        out = oversight.bulk_accept(database, user_id=reviewer, items=batch, now=NOW)
        seconds.append(time.perf_counter() - t0)
        accepted += sum(o.ok for o in out)
        print(f"  run {k + 1}: {len(batch)} items, {sum(o.ok for o in out)} accepted, {seconds[-1]:.3f} s")
    with UnitOfWork(database, readonly=True) as uow:
        rollup_ok = rollup.stored(uow.session, info.round_id) == rollup.computed(uow.session, info.round_id)
    with tempfile.TemporaryDirectory() as var_dir:  # no exported heads: the chains alone
        chain = audit.verify(UnitOfWork(database), var_dir=Path(var_dir))
    return {"dialect": database.dialect, "n": n, "runs": runs, "seconds": [round(s, 3) for s in seconds],
            "median_seconds": round(statistics.median(seconds), 3), "accepted": accepted,
            "rollup_equals_recomputed": rollup_ok, "chain_ok": chain.ok}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.bulk_accept", description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=("sqlite", "postgres", "both"), default="postgres")
    p.add_argument("--n", type=int, default=500, help="items per bulk accept (at most 500)")
    p.add_argument("--runs", type=int, default=3, help="timed calls (median reported)")
    p.add_argument("--scale", default="small", help="generated province (bench.generate's scales)")
    p.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = p.parse_args(argv)
    for kind in kinds(args.db):
        with bench_database(kind, keep=args.keep, prefix="bangfu_bulk") as database:
            print(f"{kind}: generating scale {args.scale} …")
            res = run(database, n=args.n, runs=args.runs, scale=args.scale)
            print(f"{kind}: bulk accept of {res['n']}: median {res['median_seconds']} s "
                  f"(runs {res['seconds']}); accepted {res['accepted']}; rollup == recomputed: "
                  f"{res['rollup_equals_recomputed']}; history chain verified: {res['chain_ok']}")


if __name__ == "__main__":
    main()
