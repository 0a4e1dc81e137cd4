"""W6: the reviewer's inbox with 5,000 pending submissions and the province overview on the
generated province, served by uvicorn, beside a static file from the same server.

Usage::

    python -m bench.w6_web [--scale province] [--pending 5000] [--requests 100]
                           [--concurrency 1,8] [--db sqlite|postgres|both]

(``python -m bench`` runs it on the province it generated for the other workloads.) The data set
is :func:`bench.generate.generate`'s province plus one set-based step,
:func:`add_pending_district`: a district ``BENCH-D`` under the first city, with its own reviewer
``bench-reviewer``, to which ``--pending`` grassroots unions whose 2021 record is already
submitted are moved (organisation paths, the records' parent links, the rollup rebuilt,
``ANALYZE``). Their submissions then all await ``bench-reviewer``; the province's reviewer
``gd-reviewer`` reads the overview.

The load generator sends a fixed number of requests per endpoint from a fixed number of threads
(one httpx client each) against the web process as deployed (``bangfu serve --workers``
:data:`WORKERS`) and reports median and p95 latency and throughput; the static file is the web stack's own floor.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import bindparam, text

from bench.generate import NOW, SCALES, GeneratedInfo, generate
from bench.scratch import OUT, bench_database, kinds
from workflow.app import accounts
from workflow.store.tables import Database, UTCDateTime
from workflow.store.uow import UnitOfWork

NOW_TEXT = "2021-11-01T10:00"
BENCH_DISTRICT = "BENCH-D"
#: The endpoints, in the order they are loaded: (label, path, whose token).
CASES: list[tuple[str, str, str | None]] = [
    ("static file (floor)", "/static/app.css", None),
    ("inbox JSON (50 of the pending)", "/api/review/inbox?per_page=50", "bench-reviewer"),
    ("inbox page (inbox + subordinates)", "/review", "bench-reviewer"),
    ("overview JSON (whole province)", "/api/overview", "gd-reviewer"),
    ("overview page", "/overview", "gd-reviewer"),
]


def add_pending_district(database: Database, info: GeneratedInfo, pending: int) -> dict[str, Any]:
    """Give a generated province a district whose reviewer has ``pending`` submissions waiting:
    set-based, a few statements. Returns the tokens the load generator uses and the counts."""
    t0 = time.perf_counter()
    params = {"r": info.round_id, "t": True, "n": pending}
    with database.begin() as s:
        city_id, city_path = s.execute(text(
            "SELECT id, path FROM organisation WHERE kind = 'city_federation' ORDER BY id LIMIT 1")).one()
        d_id = int(s.execute(text("SELECT max(id) FROM organisation")).scalar_one()) + 1
        d_path = f"{city_path}{d_id}/"
        s.execute(text(
            "INSERT INTO organisation (id, code, name, kind, parent_id, path, depth, is_observer)"
            " VALUES (:id, :code, :name, 'district_federation', :parent, :path, 2, :f)"),
            {"id": d_id, "code": BENCH_DISTRICT, "name": "基准区总工会", "parent": city_id, "path": d_path,
             "f": False})
        moved = [int(o) for (o,) in s.execute(text(
            "SELECT org_id FROM record WHERE round_id = :r AND is_grassroots = :t AND state = 'submitted'"
            " ORDER BY org_id LIMIT :n"), params)]
        for start in range(0, len(moved), 5_000):
            chunk = moved[start:start + 5_000]
            marks = ", ".join(str(o) for o in chunk)
            s.execute(text(f"UPDATE organisation SET parent_id = :d, depth = 3,"
                           f" path = :p || CAST(id AS VARCHAR(20)) || '/' WHERE id IN ({marks})"),
                      {"d": d_id, "p": d_path})
            # Unlinked here, linked to the new district's records by open_records below.
            s.execute(text(f"UPDATE record SET parent_id = NULL WHERE org_id IN ({marks})"))
        uid = int(s.execute(text("SELECT max(id) FROM app_user")).scalar_one()) + 1
        s.execute(text(
            "INSERT INTO app_user (id, username, display_name, email, is_active, channels, created_at)"
            " VALUES (:id, 'bench-reviewer', '基准区审核人', 'bench-reviewer@example.test', :t,"
            " 'inbox,email', :now)").bindparams(bindparam("now", type_=UTCDateTime)), {"id": uid, "t": True, "now": NOW})
        s.execute(text("INSERT INTO membership (user_id, org_id, role) VALUES (:u, :o, 'reviewer')"),
                  {"u": uid, "o": d_id})
        if database.dialect == "postgresql":
            for t in ("organisation", "app_user"):
                s.execute(text(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))"))
    with UnitOfWork(database) as uow:
        for rnd in uow.directory.rounds():  # the district's records, and the moved records' parent links
            uow.records.open_records(rnd, uow.directory.policy(rnd.policy_code), now=NOW)
        uow.records.rollup_rebuild()
        uow.bulk.analyze("organisation", "record", "rollup", "app_user", "membership")
        uow.commit()
    tokens = {u: accounts.create_token(UnitOfWork(database), username=u, name="bench")
              for u in ("gd-reviewer", "bench-reviewer")}
    return {"tokens": tokens, "pending": len(moved), "district_id": d_id,
            "seconds": round(time.perf_counter() - t0, 2)}



def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: uvicorn worker processes, as deployed (``Procfile`` and ``deploy/bangfu-web.service``).
WORKERS = 2


def serve(database_url: str, workers: int = WORKERS) -> tuple[subprocess.Popen[bytes], str]:
    """The web process as deployed (``bangfu serve --workers N``); its log goes to ``bench/out``."""
    port = _free_port()
    env = dict(os.environ, BANGFU_DATABASE_URL=database_url, BANGFU_NOW=NOW_TEXT, BANGFU_ENV="development")
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / "w6-server.log").open("ab") as server_log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "workflow.entrypoints.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers)],
            env=env, cwd=Path(__file__).resolve().parent.parent, stdout=server_log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("uvicorn did not start")


def load(base: str, path: str, token: str | None, *, requests: int, concurrency: int) -> dict[str, Any]:
    """``requests`` GETs of ``path`` from ``concurrency`` threads; latencies in milliseconds."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            client.get(path)  # warm the connection (not counted)
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                t = time.perf_counter()
                resp = client.get(path)
                ms = (time.perf_counter() - t) * 1000
                with lock:
                    latencies.append(ms)
                    if resp.status_code != 200:
                        errors.append(resp.status_code)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - started
    q = statistics.quantiles(latencies, n=20)
    return {"path": path, "requests": len(latencies), "concurrency": concurrency, "errors": len(errors),
            "median_ms": round(statistics.median(latencies), 1), "p95_ms": round(q[18], 1),
            "max_ms": round(max(latencies), 1), "throughput_rps": round(len(latencies) / wall, 1)}


def run(database: Database, meta: dict[str, Any], *, requests: int,
        concurrency: tuple[int, ...] = (1, 8), log: Any = print) -> dict[str, Any]:
    """Serve ``database`` with uvicorn and load each endpoint of :data:`CASES` at each
    concurrency; the inbox's total is checked against ``meta["pending"]`` first."""
    proc, base = serve(database.url)
    results = []
    try:
        tokens = meta["tokens"]
        check = httpx.get(base + "/api/review/inbox?per_page=1",
                          headers={"Authorization": f"Bearer {tokens['bench-reviewer']}"})
        assert check.json()["total"] == meta["pending"], check.text[:300]
        for c in concurrency:
            for label, path, who in CASES:
                r = load(base, path, tokens[who] if who else None, requests=requests, concurrency=c)
                r["label"] = label
                results.append(r)
                log(f"  c={c:<3} {label:<36} median {r['median_ms']:>8.1f} ms  p95 "
                    f"{r['p95_ms']:>8.1f} ms  {r['throughput_rps']:>7.1f} req/s  errors {r['errors']}")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return {"pending": meta["pending"], "requests": requests, "concurrency": list(concurrency), "workers": WORKERS,
            "data_seconds": meta["seconds"], "results": results}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    ap.add_argument("--scale", choices=list(SCALES), default="province")
    ap.add_argument("--pending", type=int, default=5_000)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--concurrency", default="1,8", help="comma-separated thread counts, each run in turn")
    ap.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    args = ap.parse_args(argv)
    out = {}
    for kind in kinds(args.db):
        with bench_database(kind, prefix="bangfu_w6") as database:
            info = generate(database, args.scale)
            meta = add_pending_district(database, info, args.pending)
            print(f"{kind}: {meta['pending']:,} pending under {BENCH_DISTRICT} in {meta['seconds']} s")
            out[kind] = run(database, meta, requests=args.requests,
                            concurrency=tuple(int(c) for c in args.concurrency.split(",")))
    OUT.mkdir(exist_ok=True)
    (OUT / "w6.json").write_text(json.dumps({"scale": args.scale, "cpus": os.cpu_count(),
                                             "load_average": os.getloadavg(), "results": out},
                                            ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
