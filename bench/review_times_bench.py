"""The review-times report (issue 23 point 5) at province scale: generate a province (or reuse a
kept database, ``--url``), then time :func:`workflow.app.review_times.review_times` for the
province's reviewer (every wait in the province) and for one district's.

``python -m bench.review_times_bench [--db postgres|sqlite] [--url URL] [--keep]``
"""

from __future__ import annotations

import argparse
import time

from bench.generate import generate
from bench.scratch import bench_database
from workflow.app import review_times
from workflow.store.engine import Database
from workflow.store.uow import UnitOfWork


def measure(database: Database) -> None:
    """The province reviewer's report (every wait), twice (cold, warm)."""
    with UnitOfWork(database, readonly=True) as uow:
        province = uow.directory.user_by_name("gd-reviewer").id or 0
    for who, user_id in (("GD", province),):
        for attempt in (1, 2):
            began = time.perf_counter()
            report = review_times.review_times(UnitOfWork(database, readonly=True), user_id=user_id,
                                               round_label="2021年度")
            took = time.perf_counter() - began
            total = report.total
            print(f"{database.dialect} {who} run {attempt}: {took:.2f} s, {total.decisions if total else 0} waits, "
                  f"{len(report.by_federation)} federations, {len(report.by_reviewer)} reviewers")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--url")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    if args.url:
        database = Database(args.url)
        measure(database)
        database.dispose()
        return
    with bench_database(args.db, keep=args.keep, prefix="bangfu_times") as database:
        began = time.perf_counter()
        info = generate(database, "province")
        print(f"generated in {time.perf_counter() - began:.0f} s: {info.counts}", flush=True)
        if args.keep:
            print(f"kept: {database.engine.url}", flush=True)
        measure(database)


if __name__ == "__main__":
    main()
