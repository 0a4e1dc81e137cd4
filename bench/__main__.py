"""``python -m bench``: generate a province, run the workloads, print figures, write JSON.

Each database gets a dedicated, throw-away store: a SQLite file ``bench/out/bangfu_bench_<pid>.db``
and a PostgreSQL database ``bangfu_bench_<pid>`` created on the server named by
``BANGFU_BENCH_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``) and dropped at the
end (``--keep`` leaves both behind).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bench import w1_transitions
from bench.generate import SCALES, GeneratedInfo, generate
from bench.scratch import OUT, bench_database
from workflow.store.tables import Database

Workload = Callable[[Database, GeneratedInfo, argparse.Namespace], dict[str, Any]]


def _w1(database: Database, info: GeneratedInfo, args: argparse.Namespace) -> dict[str, Any]:
    result = w1_transitions.run(database, info, args.pairs, profile=args.profile, log=print)
    if result.profile:
        print(result.profile)
    out = result.to_dict()
    if not args.no_peer:
        out["peer"] = run_peer(database.dialect, result.pairs)
    return out


def run_peer(dialect: str, pairs: int) -> dict[str, Any] | None:
    """The Django peer (``bench.django_peer``) in its own process on its own store, the same
    pairs; None when the ``bench`` extra (Django, django-fsm-2, django-fsm-log) is missing."""
    if importlib.util.find_spec("django") is None or importlib.util.find_spec("django_fsm_log") is None:
        print("  peer:   skipped: pip install -e '.[bench]' for Django, django-fsm-2, django-fsm-log")
        return None
    kind = "sqlite" if dialect == "sqlite" else "postgres"
    done = subprocess.run([sys.executable, "-m", "bench.django_peer.run", "--db", kind, "--pairs", str(pairs)],
                          check=True, capture_output=True, text=True)
    peer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  peer:   {2 * peer['pairs']:,} transitions in {peer['seconds']:.2f} s = {peer['tps']:,.0f} tx/s,"
          f" client CPU {peer['cpu_us']:,.0f} µs/tx (Django {peer['django']} + django-fsm-2 + django-fsm-log)")
    return peer


#: Workloads by name; later issues add theirs here.
WORKLOADS: dict[str, Workload] = {"w1": _w1}


def run_one(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    print(f"\n== {kind}: generating the {args.scale} province ==")
    with bench_database(kind, keep=args.keep) as database:
        info = generate(database, args.scale, seed=args.seed, log=print)
        print(f"  generated in {info.total_seconds:.1f} s; grassroots records by state: {info.state_counts}")
        out: dict[str, Any] = {"generate": info.to_dict()}
        for name in args.only or list(WORKLOADS):
            print(f"== {kind}: {name} ==")
            out[name] = WORKLOADS[name](database, info, args)
        if args.keep:
            print(f"  kept: {database.url}")
        return out


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def summary(results: dict[str, dict[str, Any]]) -> str:
    """The figures as plain tables: rows/s per table, then W1."""
    kinds = list(results)
    parts = []
    gen = [["generate: rows/s", *[f"{k} rows" for k in kinds], *[f"{k} rows/s" for k in kinds]]]
    tables = list(results[kinds[0]]["generate"]["counts"])
    for t in tables:
        gen.append([t, *[f"{results[k]['generate']['counts'][t]:,}" for k in kinds],
                    *[f"{results[k]['generate']['rows_per_second'].get(t, 0):,}" for k in kinds]])
    gen.append(["total seconds", *["" for _ in kinds],
                *[f"{results[k]['generate']['total_seconds']:.1f}" for k in kinds]])
    parts.append(_table(gen))
    if all("w1" in results[k] for k in kinds):
        w1 = [["W1 submit→accept", "pairs", "bangfu tx/s", "floor tx/s", "Django peer tx/s", "bangfu/floor time",
               "bangfu/peer speed", "bangfu CPU µs/tx", "floor CPU µs/tx", "peer CPU µs/tx"]]
        for k in kinds:
            r = results[k]["w1"]
            peer = r.get("peer") or {}
            w1.append([k, f"{r['pairs']:,}", f"{r['engine_tps']:,.0f}", f"{r['floor_tps']:,.0f}",
                       f"{peer['tps']:,.0f}" if peer else "-", f"{r['ratio']:.1f}×",
                       f"{r['engine_tps'] / peer['tps']:.1f}×" if peer else "-",
                       f"{r['engine_cpu_us']:,.0f}", f"{r['floor_cpu_us']:,.0f}",
                       f"{peer['cpu_us']:,.0f}" if peer else "-"])
        parts.append(_table(w1))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=list(SCALES), default="tiny")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--only", action="append", choices=list(WORKLOADS),
                        help="run only this workload (repeatable); the generator always runs")
    parser.add_argument("--pairs", type=int, default=None, help="W1 pairs (default: tiny 200, small 1,000, province 10,000)")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--profile", action="store_true", help="profile W1's engine side with cProfile")
    parser.add_argument("--keep", action="store_true", help="keep the generated databases")
    parser.add_argument("--no-peer", action="store_true", help="W1 without the Django peer")
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    started = datetime.now(UTC)
    load_at_start = os.getloadavg()
    results = {k: run_one(k, args) for k in kinds}
    text_summary = summary(results)
    print("\n" + text_summary)
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    path = OUT / f"{stamp}-{args.scale}.json"
    doc = {"started": started.isoformat(), "scale": args.scale, "args": vars(args),
           "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                       "cpus": os.cpu_count(), "load_at_start": load_at_start,
                       "load_at_end": os.getloadavg()},
           "results": results, "finished": datetime.now(UTC).isoformat(),
           "wall_seconds": round(time.time() - started.timestamp(), 1)}
    for r in results.values():
        if "w1" in r:
            r["w1"].pop("profile", None)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
