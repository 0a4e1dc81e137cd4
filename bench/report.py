"""``python -m bench.report RUN.json [RUN.json ...]``: the one bench run's figures as Markdown.

Reads the JSON files ``python -m bench`` writes and prints one table per workload, a column per
run and database (run A SQLite, run B SQLite, run A PostgreSQL, ...), with each workload's floor
or peer and the ratio, so the README's Benchmarks section shows the runs' own numbers.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

KINDS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
Cell = Callable[[dict[str, Any]], str]


def _md(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 1)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _table(title: str, runs: list[dict[str, Any]], workload: str, rows: list[tuple[str, Cell]]) -> str:
    cols = [(kind, n, run["results"][kind].get(workload)) for kind in KINDS
            for n, run in enumerate(runs) if kind in run["results"]]
    head = [title, *[f"{KINDS[k]} run {chr(65 + n)}" for k, n, _ in cols]]
    body = [[label, *[cell(r) if r else "–" for _, _, r in cols]] for label, cell in rows]
    return _md(head, body)


def _w6_rows(runs: list[dict[str, Any]]) -> list[tuple[str, Cell]]:
    first = next(iter(runs[0]["results"].values()))["w6"]["results"]
    rows: list[tuple[str, Cell]] = []
    for i, r in enumerate(first):
        def cell(w: dict[str, Any], i: int = i) -> str:
            x = w["results"][i]
            return f"{x['median_ms']:.0f} / {x['p95_ms']:.0f}"
        rows.append((f"{r['label']}, {r['concurrency']} client{'s' if r['concurrency'] > 1 else ''}", cell))
    return rows


def _cpu(name: str) -> Cell:
    def cell(c: dict[str, Any]) -> str:
        m = c["baseline"].get(name) or c["commands"].get(name)
        return f"{m['min']:.2f} / {m['median']:.2f}" if m else "–"
    return cell


def report(runs: list[dict[str, Any]]) -> str:
    w1: list[tuple[str, Cell]] = [
        ("bangfu tx/s", lambda r: f"{r['engine_tps']:,.0f}"),
        ("raw floor tx/s", lambda r: f"{r['floor_tps']:,.0f}"),
        ("Django peer tx/s", lambda r: f"{r['peer']['tps']:,.0f}" if r.get("peer") else "–"),
        ("**bangfu ÷ floor, time**", lambda r: f"**{r['ratio']:.1f}×**"),
        ("**bangfu ÷ peer, speed**", lambda r: f"**{r['engine_tps'] / r['peer']['tps']:.1f}×**" if r.get("peer") else "–"),
        ("bangfu client CPU µs/tx", lambda r: f"{r['engine_cpu_us']:,.0f}"),
        ("floor client CPU µs/tx", lambda r: f"{r['floor_cpu_us']:,.0f}"),
        ("**bangfu ÷ floor, CPU**", lambda r: f"**{r['engine_cpu_us'] / r['floor_cpu_us']:.1f}×**"),
        ("peer client CPU µs/tx", lambda r: f"{r['peer']['cpu_us']:,.0f}" if r.get("peer") else "–"),
    ]
    w2: list[tuple[str, Cell]] = [
        ("rows written", lambda r: f"{r['sweep_rows_total']:,}"),
        ("sweep s", lambda r: f"{r['sweep_s']:.2f}"),
        ("raw floor, same rows, s", lambda r: f"{r['floor']['seconds']:.2f}"),
        ("**sweep ÷ floor**", lambda r: f"**{r['sweep_vs_floor']:.2f}×**"),
        ("sweep again (0 rows) s", lambda r: f"{r['sweep_again_s']:.2f}"),
        ("naive ORM loop, extrapolated, s", lambda r: f"{r['naive']['extrapolated_s']:,.0f}"),
    ]
    w5: list[tuple[str, Cell]] = [
        ("bare smtplib mails/s", lambda r: f"{r['bare_smtplib_per_s']:,}"),
        ("channel alone mails/s", lambda r: f"{r['channel_send_many_per_s']:,}"),
        ("outbox mails/s", lambda r: f"{r['outbox_per_s']:,}"),
        ("**outbox ÷ bare**", lambda r: f"**{r['outbox_vs_bare']:.2f}×**"),
    ]
    w7: list[tuple[str, Cell]] = [
        ("organisations (+ records opened) s", lambda r: f"{r['organisations_s']:.1f}"),
        ("users and memberships s", lambda r: f"{r['users_s']:.1f}"),
        ("**total s**", lambda r: f"**{r['organisations_s'] + r['users_s']:.1f}**"),
        ("re-import moving a city s", lambda r: f"{r['reimport_move_s']:.1f}"),
        ("moved paths correct", lambda r: str(r["moved_ok"])),
    ]
    names = list(dict.fromkeys(n for run in runs for res in run["results"].values()
                               for n in [*res["cli"]["baseline"], *res["cli"]["commands"]]))
    gen: list[tuple[str, Cell]] = [("whole province, s", lambda r: f"{r['total_seconds']:.0f}")]
    parts = [
        _table("W1 submit→accept", runs, "w1", w1),
        _table("W6 web, p50 / p95 ms", runs, "w6", _w6_rows(runs)),
        _table("W2 daily sweep", runs, "w2", w2),
        _table("W5 delivery", runs, "w5", w5),
        _table("W7 directory import", runs, "w7", w7),
        _table("CLI start, CPU s min / median", runs, "cli", [(n, _cpu(n)) for n in names]),
        _table("generator", runs, "generate", gen),
    ]
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    paths = argv if argv is not None else sys.argv[1:]
    if not paths:
        print(__doc__)
        return 2
    runs = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    print(report(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
