"""The API's per-request overhead: submit, accept and add-purchase in process against the same use
case over HTTP (``bangfu serve --workers 1``, one keep-alive ``http.client`` connection).

Usage::

    python -m bench.api_overhead [--db sqlite|postgres|both] [--scale tiny] [--n 60]

Per kind of request, on equally prepared records (W1's set-based preparation: summarized, fresh
snapshot, contact filled; purchases go to planned records): the median wall time and the CPU per
call of the process doing the work — this process in process, the web worker over HTTP (read
from ``/proc``; on PostgreSQL the database's own CPU is elsewhere in both cases). *Overhead* is
HTTP minus in process; the goal is overhead ≤ 2× the use case's own time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, text

from bench import w1_transitions
from bench.generate import NOW, generate
from bench.scratch import bench_database, kinds
from bench.w6_web import serve
from bench.w8_rush import _tree_cpu as _cpu
from workflow.app import accounts, lifecycle, purchases
from workflow.store.tables import Database
from workflow.store.uow import UnitOfWork

KINDS = ("submit", "accept", "purchase")


def _purchase(record_id: int, n: int) -> dict[str, Any]:
    return {"paid_at": "2021-10-15T10:30", "channel": "ygh", "amount": "100.00", "people": 2,
            "order_no": f"OV-{record_id}-{n}", "product": "梅州金柚", "holiday": "国庆", "origin_region": "广东梅州"}


def _planned(database: Database, round_id: int, n: int) -> list[tuple[int, int, str]]:
    """(record id, clerk id, clerk username) of ``n`` planned grassroots records."""
    with database.engine.connect() as conn:
        return [(int(r), int(u), str(name)) for r, u, name in conn.execute(text(
            "SELECT r.id, min(u.id), min(u.username) FROM record r"
            " JOIN membership m ON m.org_id = r.org_id AND m.role = 'clerk' JOIN app_user u ON u.id = m.user_id"
            " WHERE r.round_id = :r AND r.is_grassroots = :t AND r.state = 'planned' GROUP BY r.id"
            " ORDER BY r.id DESC LIMIT :n"), {"r": round_id, "t": True, "n": n})]


def _usernames(database: Database, ids: set[int]) -> dict[int, str]:
    with database.engine.connect() as conn:
        return {int(i): str(u) for i, u in conn.execute(text("SELECT id, username FROM app_user WHERE id IN :ids")
                                                          .bindparams(bindparam("ids", expanding=True)),
                                                          {"ids": sorted(ids)})}


def _stats(ms: list[float], cpu_s: float) -> dict[str, float]:
    return {"n": len(ms), "median_ms": round(statistics.median(ms), 2),
            "cpu_ms": round(cpu_s / max(len(ms), 1) * 1000, 2)}


def run(database: Database, n: int = 40, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Both sides on one generated province (tiny); the figures per kind."""
    info = generate(database, "tiny")
    planned = _planned(database, info.round_id, 2)  # the last ids: W1's pick takes the first ones
    pairs, _shared = w1_transitions._pick(database, info, n)
    with database.engine.begin() as conn:  # the purchases' records stay planned
        conn.execute(text(f"DELETE FROM {w1_transitions.PICK_TABLE} WHERE record_id IN :ids")
                     .bindparams(bindparam("ids", expanding=True)), {"ids": [r for r, _u, _n in planned]})
    w1_transitions.prepare(database, "engine")
    w1_transitions.prepare(database, "floor")
    inproc_work, http_work = w1_transitions._work(database, "engine"), w1_transitions._work(database, "floor")
    out: dict[str, Any] = {"pairs": pairs, "in_process": {}, "http": {}}

    # In process, as W1 calls the use cases.
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    cpu: dict[str, float] = dict.fromkeys(KINDS, 0.0)
    rid, clerk, _name = planned[0]
    for i, w in enumerate(inproc_work):
        for kind, call in (
            ("submit", lambda w=w: lifecycle.fire(UnitOfWork(database), record_id=w.record_id, trigger="submit",
                                                  user_id=w.clerk[0], seen_version=w.version, now=NOW)),
            ("accept", lambda w=w: lifecycle.fire(UnitOfWork(database), record_id=w.record_id, trigger="accept",
                                                  user_id=w.reviewer[0], seen_version=w.version + 1, now=NOW)),
            ("purchase", lambda i=i: purchases.enter_purchase(
                UnitOfWork(database), record_id=rid, user_id=clerk, now=NOW,
                purchase=_purchase_input(_purchase(rid, i)))),
        ):
            t, c = time.perf_counter(), time.process_time()
            call()
            times[kind].append((time.perf_counter() - t) * 1000)
            cpu[kind] += time.process_time() - c
    out["in_process"] = {k: _stats(times[k], cpu[k]) for k in KINDS}

    # Over HTTP: the web process as deployed, one worker, one keep-alive connection.
    rid2, _clerk2, name2 = planned[1]
    names = _usernames(database, {u for w in http_work for u in (w.clerk[0], w.reviewer[0])})
    tokens = accounts.create_tokens(UnitOfWork(database), usernames=sorted({*names.values(), name2}), name="overhead")
    proc, base = serve(database.url, workers=1)
    try:
        host, port = base.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)

        def call(method: str, path: str, body: dict[str, Any], token: str, expect: int) -> float:
            t = time.perf_counter()
            conn.request(method, path, body=json.dumps(body).encode(),
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != expect:
                raise RuntimeError(f"{path}: {resp.status} {data[:200]!r}")
            return (time.perf_counter() - t) * 1000

        call("POST", f"/api/records/{rid2}/purchases", _purchase(rid2, -1), tokens[name2], 201)  # warm up
        times = {k: [] for k in KINDS}
        cpu = dict.fromkeys(KINDS, 0.0)
        for i, w in enumerate(http_work):
            for kind, args in (
                ("submit", ("POST", f"/api/records/{w.record_id}/fire", {"trigger": "submit", "seen_version": w.version},
                            tokens[names[w.clerk[0]]], 200)),
                ("accept", ("POST", f"/api/records/{w.record_id}/fire",
                            {"trigger": "accept", "seen_version": w.version + 1}, tokens[names[w.reviewer[0]]], 200)),
                ("purchase", ("POST", f"/api/records/{rid2}/purchases", _purchase(rid2, i), tokens[name2], 201)),
            ):
                c = _cpu(proc.pid)
                times[kind].append(call(*args))  # type: ignore[arg-type]
                cpu[kind] += _cpu(proc.pid) - c
        out["http"] = {k: _stats(times[k], cpu[k]) for k in KINDS}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    for k in KINDS:
        a, b = out["in_process"][k], out["http"][k]
        log(f"  {k:<9} in process {a['median_ms']:6.2f} ms (CPU {a['cpu_ms']:5.2f})  HTTP {b['median_ms']:6.2f} ms"
            f" (worker CPU {b['cpu_ms']:5.2f})  overhead ÷ use case: wall"
            f" {(b['median_ms'] - a['median_ms']) / a['median_ms']:.2f}×, CPU {(b['cpu_ms'] - a['cpu_ms']) / max(a['cpu_ms'], 0.01):.2f}×")
    return out


def _purchase_input(body: dict[str, Any]) -> purchases.PurchaseInput:
    from workflow.entrypoints.web.api import purchase_input  # the API's own parsing

    return purchase_input(**body)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    ap.add_argument("--n", type=int, default=40, help="requests per kind and side")
    args = ap.parse_args(argv)
    out = {}
    for kind in kinds(args.db):
        print(f"== {kind} ==")
        with bench_database(kind, prefix="bangfu_overhead") as database:
            out[kind] = run(database, args.n)
    print(json.dumps({"load_average": os.getloadavg(), "results": out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
