"""``python -m bench``: generate a province, run the workloads, print figures, write JSON.

Per database, in this order: the generator (``bench.generate``), then on the generated province
W6 (the web: the reviewer's inbox and the overview under uvicorn at 1 and 8 clients, beside a
static file; a set-based step adds the district with the pending submissions), W2 (the daily
sweep beside its raw floor and a naive ORM loop), W1 (transitions beside the raw floor and the
Django peer); then, each on its own fresh store, W5 (outbox delivery beside bare smtplib and the
channel alone) and W7 (the directory import); then CLI start (``bench/cli_start.py``, when it
exists). One summary table per workload, both databases side by side, and one JSON file.

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

from bench import cli_start, w1_transitions, w2_sweep, w5_delivery, w6_web, w7_import, w8_rush
from bench.generate import SCALES, GeneratedInfo, generate
from bench.scratch import OUT, bench_database
from workflow.store.tables import Database

Workload = Callable[[Database, GeneratedInfo, argparse.Namespace], dict[str, Any]]

#: Default sizes per scale: the whole province run on both databases fits in about 15 minutes on
#: an idle 2-core machine.
SIZES: dict[str, dict[str, int]] = {
    "tiny": {"pairs": 200, "pending": 20, "requests": 20, "naive": 100, "messages": 100},
    "small": {"pairs": 1_000, "pending": 500, "requests": 50, "naive": 500, "messages": 500},
    "province": {"pairs": 2_000, "pending": 5_000, "requests": 100, "naive": 2_000, "messages": 2_000},
}


def _kind(database: Database) -> str:
    return "sqlite" if database.dialect == "sqlite" else "postgres"


def _w6(database: Database, info: GeneratedInfo, args: argparse.Namespace) -> dict[str, Any]:
    meta = w6_web.add_pending_district(database, info, args.pending)
    print(f"  {meta['pending']:,} submissions pending under {w6_web.BENCH_DISTRICT} ({meta['seconds']} s)")
    return w6_web.run(database, meta, requests=args.requests)


def _w2(database: Database, info: GeneratedInfo, args: argparse.Namespace) -> dict[str, Any]:
    return w2_sweep.run(database, info, naive=args.naive)


def _w5(database: Database, info: GeneratedInfo, args: argparse.Namespace) -> dict[str, Any]:
    # Its own small store: the outbox filled with quota reminders to as many users.
    with bench_database(_kind(database), prefix="bangfu_w5") as own:
        out = w5_delivery.run(own, args.messages)
    print(f"  bare smtplib {out['bare_smtplib_per_s']:,}/s  channel {out['channel_send_many_per_s']:,}/s"
          f"  outbox {out['outbox_per_s']:,}/s  outbox/bare {out['outbox_vs_bare']}")
    return out


def _w7(database: Database, info: GeneratedInfo, args: argparse.Namespace) -> dict[str, Any]:
    # Its own fresh store: the import builds the directory itself.
    with bench_database(_kind(database), prefix="bangfu_w7") as own:
        out = w7_import.run_one(own, args.scale)
    print(f"  {out['organisations']:,} organisations {out['organisations_s']:.1f} s, {out['user_lines']:,} user"
          f" lines {out['users_s']:.1f} s, re-import moving a city {out['reimport_move_s']:.1f} s,"
          f" moved paths correct: {out['moved_ok']}")
    return out


def _cli(database: Database, info: GeneratedInfo, args: argparse.Namespace) -> dict[str, Any]:
    """CLI start: the CPU of a clerk's everyday commands, each its own process, on a throw-away
    demo database of this kind, beside ``python -c pass`` and ``import sqlalchemy``
    (:mod:`bench.cli_start`)."""
    kind = "sqlite" if database.dialect == "sqlite" else "postgres"
    result = cli_start.run(kinds=(kind,), log=print)
    return {"baseline": result["baseline"], "commands": result[kind] or {}}


def _w1(database: Database, info: GeneratedInfo, args: argparse.Namespace) -> dict[str, Any]:
    result = w1_transitions.run(database, info, args.pairs, profile=args.profile, log=print)
    if result.profile:
        print(result.profile)
    out = result.to_dict()
    if not args.no_peer:
        out["peer"] = run_peer(database.dialect, result.pairs)
    return out


def _w8(database: Database, info: GeneratedInfo, args: argparse.Namespace) -> dict[str, Any]:
    """The December rush (:mod:`bench.w8_rush`): clerks and reviewers through the HTTP API."""
    size = w8_rush.SIZES[args.scale]
    return w8_rush.run(database, info, clerks=tuple(args.clerks or size["clerks"]),
                       workers=tuple(args.workers or size["workers"]), reviewers=size["reviewers"],
                       seconds=size["seconds"], per_clerk=size["per_clerk"], log=print)


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


#: Workloads by name, in the order they run on each database.
WORKLOADS: dict[str, Workload] = {"w6": _w6, "w2": _w2, "w5": _w5, "w1": _w1, "w7": _w7, "cli": _cli, "w8": _w8}


def run_one(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    print(f"\n== {kind}: generating the {args.scale} province ==")
    with bench_database(kind, keep=args.keep) as database:
        info = generate(database, args.scale, seed=args.seed, log=print)
        print(f"  generated in {info.total_seconds:.1f} s; grassroots records by state: {info.state_counts}")
        out: dict[str, Any] = {"generate": info.to_dict()}
        for name in [w for w in WORKLOADS if not args.only or w in args.only]:
            print(f"== {kind}: {name} ==", flush=True)
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
    """The figures as plain tables, one per workload, the databases side by side."""
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
    if all("w8" in results[k] for k in kinds):
        parts += [f"W8 December rush ({k}, p50 / p95 ms per kind)\n" + w8_rush.table(results[k]["w8"]["runs"])
                  for k in kinds]
    for name, table in (("w6", _w6_table), ("w2", _w2_table), ("w5", _w5_table), ("w7", _w7_table),
                        ("cli", _cli_table)):
        if all(name in results[k] for k in kinds):
            parts.append(table([results[k][name] for k in kinds], kinds))
    return "\n\n".join(parts)


def _side_by_side(title: str, kinds: list[str], rows: list[tuple[str, Callable[[dict[str, Any]], str]]],
                  runs: list[dict[str, Any]]) -> str:
    return _table([[title, *kinds], *[[label, *[cell(r) for r in runs]] for label, cell in rows]])


def _w6_table(runs: list[dict[str, Any]], kinds: list[str]) -> str:
    """Per endpoint and concurrency: p50 / p95 and p50 as a multiple of the static file's."""
    head = ["W6 web (p50 / p95 ms)", "clients"]
    for k in kinds:
        head += [f"{k} p50 / p95", f"{k} ÷ static"]
    rows = [head]
    first = runs[0]["results"]
    for i, case in enumerate(first):
        row = [case["label"], str(case["concurrency"])]
        for run in runs:
            r = run["results"][i]
            static = next(x for x in run["results"] if x["concurrency"] == r["concurrency"]
                          and x["path"].startswith("/static/"))
            row += [f"{r['median_ms']:,.1f} / {r['p95_ms']:,.1f}" + (f" ({r['errors']} errors)" if r["errors"] else ""),
                    "floor" if r is static else f"{r['median_ms'] / max(static['median_ms'], 0.1):,.1f}×"]
        rows.append(row)
    return _table(rows) + (f"\n({runs[0]['pending']:,} pending, {runs[0]['requests']} requests per endpoint and clients,"
                          f" {runs[0].get('workers', 1)} uvicorn workers as deployed)")


def _w2_table(runs: list[dict[str, Any]], kinds: list[str]) -> str:
    return _side_by_side("W2 sweep (seconds)", kinds, [
        ("rows written (quota + report + digests)", lambda r: f"{r['sweep_rows_total']:,}"),
        ("sweep", lambda r: f"{r['sweep_s']:.2f}"),
        ("  quota reminders", lambda r: f"{r['sweep_steps_s'].get('quota_reminders', 0):.2f}"),
        ("  report reminders + digests", lambda r: f"{r['sweep_steps_s'].get('report_reminders_and_digests', 0):.2f}"),
        ("sweep again (writes nothing)", lambda r: f"{r['sweep_again_s']:.2f} ({r['sweep_again_rows']} rows)"),
        ("raw floor, same rows (best of 2)", lambda r: f"{r['floor']['seconds']:.2f}"
         + ("" if r["floor"]["same_rows"] else " ROWS DIFFER")),
        ("sweep ÷ floor", lambda r: f"{r['sweep_vs_floor']}×"),
        ("naive ORM loop, extrapolated", lambda r: f"{r['naive']['extrapolated_s']:,.0f}"
         f" ({r['naive']['records']:,} records in {r['naive']['seconds']:.1f})"),
        ("naive ÷ sweep", lambda r: f"{r['naive']['extrapolated_s'] / max(r['sweep_s'], 0.01):,.0f}×"),
    ], runs)


def _w5_table(runs: list[dict[str, Any]], kinds: list[str]) -> str:
    return _side_by_side("W5 delivery (mails/s)", kinds, [
        ("bare smtplib (the server's ceiling)", lambda r: f"{r['bare_smtplib_per_s']:,}"),
        ("channel send_many alone", lambda r: f"{r['channel_send_many_per_s']:,}"),
        ("outbox deliver_all", lambda r: f"{r['outbox_per_s']:,}"),
        ("outbox ÷ bare", lambda r: f"{r['outbox_vs_bare']}×"),
        ("messages (rounds)", lambda r: f"{r['messages']:,} ({r['rounds']})"),
    ], runs)


def _w7_table(runs: list[dict[str, Any]], kinds: list[str]) -> str:
    return _side_by_side("W7 directory import (seconds)", kinds, [
        ("organisations (+ records opened)", lambda r: f"{r['organisations_s']:.1f} ({r['organisations']:,}"
         f" + {r['records_opened']:,})"),
        ("users and memberships", lambda r: f"{r['users_s']:.1f} ({r['user_lines']:,} lines)"),
        ("total (organisations + users)", lambda r: f"{r['organisations_s'] + r['users_s']:.1f}"),
        ("re-import moving a city", lambda r: f"{r['reimport_move_s']:.1f} ({r['moved_subtree']:,} moved)"),
        ("moved paths correct", lambda r: str(r["moved_ok"])),
    ], runs)


def _cli_table(runs: list[dict[str, Any]], kinds: list[str]) -> str:
    def cpu(m: dict[str, float] | None) -> str:
        return f"{m['min']:.2f} / {m['median']:.2f}" if m else "-"
    names = list(dict.fromkeys(n for r in runs for n in [*r["baseline"], *r["commands"]]))
    return _side_by_side("CLI start, CPU s (min / median)", kinds, [
        (name, lambda r, n=name: cpu(r["baseline"].get(n) or r["commands"].get(n))) for name in names
    ], runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=list(SCALES), default="tiny")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--only", action="append", metavar="|".join(WORKLOADS),
                        help="run only these workloads (repeatable or comma-separated: w8,w6); the generator"
                             " always runs")
    for name, help_ in (("pairs", "W1 pairs"), ("pending", "W6 submissions pending for one reviewer"),
                        ("requests", "W6 requests per endpoint and concurrency"),
                        ("naive", "W2 records for the naive ORM loop"), ("messages", "W5 mails")):
        parser.add_argument(f"--{name}", type=int, default=None,
                            help=f"{help_} (default: {', '.join(f'{s} {SIZES[s][name]:,}' for s in SIZES)})")
    parser.add_argument("--clerks", type=lambda v: [int(x) for x in v.split(",")], default=None,
                        help="W8 clerk counts, comma-separated (default: province 8,32,64)")
    parser.add_argument("--workers", type=lambda v: [int(x) for x in v.split(",")], default=None,
                        help="W8 web-worker counts, comma-separated (default: province 2,4)")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--profile", action="store_true", help="profile W1's engine side with cProfile")
    parser.add_argument("--keep", action="store_true", help="keep the generated databases")
    parser.add_argument("--no-peer", action="store_true", help="W1 without the Django peer")
    args = parser.parse_args(argv)
    if args.only:
        args.only = [w.strip() for item in args.only for w in item.split(",") if w.strip()]
        if unknown := [w for w in args.only if w not in WORKLOADS]:
            parser.error(f"--only: unknown workload {', '.join(unknown)} (choose from {', '.join(WORKLOADS)})")
    for name, value in SIZES[args.scale].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    print(f"scale {args.scale}: " + ", ".join(f"{k} {getattr(args, k):,}" for k in SIZES[args.scale])
          + f"; workloads {', '.join(w for w in WORKLOADS if not args.only or w in args.only)}")
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
