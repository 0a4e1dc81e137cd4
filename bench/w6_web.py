"""W6: the reviewer's inbox with 5,000 pending submissions and the province overview on a
province-sized round, served by uvicorn, beside a static file from the same server.

Usage::

    python -m bench.w6_web [--grassroots 215000] [--pending 5000] [--requests 200]
                           [--concurrency 8] [--database-url URL] [--reuse]

The data set is generated with set-based SQL (organisations in chunks of executemany, records by
the store's INSERT … SELECT, states and snapshots by UPDATE/INSERT … SELECT): 40 reporting units,
8 districts each, the grassroots unions spread over them, plus one district ``BENCH-D`` whose
``--pending`` grassroots unions are all submitted and await ``bench-reviewer``. Other grassroots
records are spread over the five states; submitted and accepted ones have a snapshot. Purchases
are not generated: neither page reads them.

The load generator sends a fixed number of requests per endpoint from a fixed number of threads
(one httpx client each) against a uvicorn subprocess (one worker) and reports median and p95
latency and throughput. Results go to ``bench/out/w6.json``.
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
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import bindparam, insert, text

from workflow.app import accounts, directory
from workflow.domain.policy import parse_policy
from workflow.entrypoints import demo
from workflow.store.tables import Database, Membership, Organisation, User, UTCDateTime
from workflow.store.uow import UnitOfWork

OUT = Path(__file__).resolve().parent / "out"
NOW = datetime(2021, 11, 1, 2, 0, tzinfo=UTC)
NOW_TEXT = "2021-11-01T10:00"
RU_COUNT, DISTRICTS_PER_RU = 40, 8


def build(database: Database, *, grassroots: int, pending: int) -> dict[str, Any]:
    """Generate the province; returns the tokens of the two users the load generator acts as."""
    t0 = time.perf_counter()
    database.upgrade()
    org = Organisation.__table__  # type: ignore[attr-defined]
    rows: list[dict[str, Any]] = [dict(id=1, code="GD", name="广东省总工会", kind="province", parent_id=None,
                                       path="/1/", depth=0, is_observer=False)]
    next_id = 2
    districts: list[tuple[int, str]] = []
    bench_district: tuple[int, str] | None = None
    for r in range(RU_COUNT):
        ru_id = next_id
        next_id += 1
        kind = "city_federation" if r < 21 else "industry_union"
        rows.append(dict(id=ru_id, code=f"RU{r:02d}", name=f"第{r + 1}报告单位总工会", kind=kind, parent_id=1,
                         path=f"/1/{ru_id}/", depth=1, is_observer=False))
        for d in range(DISTRICTS_PER_RU + (1 if r == 0 else 0)):
            d_id = next_id
            next_id += 1
            code = "BENCH-D" if (r == 0 and d == DISTRICTS_PER_RU) else f"RU{r:02d}-D{d}"
            rows.append(dict(id=d_id, code=code, name=f"{code}区总工会", kind="district_federation",
                             parent_id=ru_id, path=f"/1/{ru_id}/{d_id}/", depth=2, is_observer=False))
            if code == "BENCH-D":
                bench_district = (d_id, f"/1/{ru_id}/{d_id}/")
            else:
                districts.append((d_id, f"/1/{ru_id}/{d_id}/"))
    assert bench_district is not None
    spread = grassroots - pending
    for i in range(grassroots):
        parent_id, parent_path = bench_district if i < pending else districts[(i - pending) % len(districts)]
        g_id = next_id
        next_id += 1
        rows.append(dict(id=g_id, code=f"G{i:06d}", name=f"基层工会{i:06d}", kind="grassroots",
                         parent_id=parent_id, path=f"{parent_path}{g_id}/", depth=3, is_observer=False))
    with database.engine.begin() as conn:
        for start in range(0, len(rows), 20_000):
            conn.execute(insert(org), rows[start:start + 20_000])
        users = [dict(id=1, username="gd-reviewer", display_name="省总审核人", is_active=True, channels="inbox"),
                 dict(id=2, username="bench-reviewer", display_name="基准区审核人", is_active=True, channels="inbox")]
        conn.execute(insert(User.__table__), users)  # type: ignore[attr-defined]
        conn.execute(insert(Membership.__table__), [dict(user_id=1, org_id=1, role="reviewer"),  # type: ignore[attr-defined]
                                                    dict(user_id=2, org_id=bench_district[0], role="reviewer")])
    t_orgs = time.perf_counter()
    policy = parse_policy(demo.demo_policy_text(date(2021, 11, 1)), source="bench")
    directory.install_policy(UnitOfWork(database), policy=policy, now=NOW)
    t_records = time.perf_counter()
    now = bindparam("now", NOW, type_=UTCDateTime)
    bench_like = bench_district[1] + "%"
    with database.engine.begin() as conn:
        conn.execute(text(
            "UPDATE record SET state = CASE id % 5 WHEN 0 THEN 'planned' WHEN 1 THEN 'purchased' "
            "WHEN 2 THEN 'summarized' WHEN 3 THEN 'submitted' ELSE 'accepted' END "
            "WHERE is_grassroots"))
        conn.execute(text(
            "UPDATE record SET state = 'submitted', submitted_at = :now "
            "WHERE is_grassroots AND org_id IN (SELECT id FROM organisation WHERE path LIKE :p)"
        ).bindparams(now, p=bench_like))
        conn.execute(text(
            "UPDATE record SET submitted_at = :now WHERE state IN ('submitted', 'accepted')").bindparams(now))
        conn.execute(text(
            "INSERT INTO snapshot (record_id, taken_at, as_of, people_total, amount_total_fen, missing_children) "
            "SELECT id, :now, :asof, 10 + id % 50, 100000 + (id % 7) * 1000, '[]' FROM record "
            "WHERE is_grassroots AND state IN ('summarized', 'submitted', 'accepted')"
        ).bindparams(now, asof=date(2021, 11, 1)))
        conn.execute(text(
            "UPDATE record SET snapshot_id = (SELECT s.id FROM snapshot s WHERE s.record_id = record.id) "
            "WHERE is_grassroots AND state IN ('summarized', 'submitted', 'accepted')"))
    with UnitOfWork(database) as uow:  # states were set by SQL: recompute the overview's rollup
        uow.rollup_rebuild()
        uow.commit()
    t_states = time.perf_counter()
    if database.dialect == "postgresql":
        with database.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    else:
        with database.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    tokens = {u: accounts.create_token(UnitOfWork(database), username=u, name="bench")
              for u in ("gd-reviewer", "bench-reviewer")}
    return {"tokens": tokens, "organisations": len(rows), "grassroots": grassroots, "pending": pending,
            "spread": spread,
            "seconds": {"organisations": round(t_orgs - t0, 1), "records": round(t_records - t_orgs, 1),
                        "states_and_snapshots": round(t_states - t_records, 1)}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = dict(os.environ, BANGFU_DATABASE_URL=database_url, BANGFU_NOW=NOW_TEXT, BANGFU_ENV="development")
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "workflow.entrypoints.web.app:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"],
        env=env, cwd=Path(__file__).resolve().parent.parent)
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    ap.add_argument("--grassroots", type=int, default=215_000)
    ap.add_argument("--pending", type=int, default=5_000)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", default="1,8", help="comma-separated thread counts, each run in turn")
    ap.add_argument("--database-url", default=f"sqlite:///{OUT / 'w6.db'}")
    ap.add_argument("--reuse", action="store_true", help="reuse a database built by an earlier run")
    args = ap.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    meta_file = OUT / "w6-data.json"
    if args.reuse and meta_file.exists():
        meta = json.loads(meta_file.read_text())
    else:
        if args.database_url.startswith("sqlite:///"):
            for suffix in ("", "-wal", "-shm"):
                Path(args.database_url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
        database = Database(args.database_url)
        meta = build(database, grassroots=args.grassroots, pending=args.pending)
        database.dispose()
        meta_file.write_text(json.dumps(meta))
        print(f"built: {meta['organisations']} organisations, seconds {meta['seconds']}")
    proc, base = serve(args.database_url)
    try:
        reviewer, province = meta["tokens"]["bench-reviewer"], meta["tokens"]["gd-reviewer"]
        check = httpx.get(base + "/api/review/inbox?per_page=1", headers={"Authorization": f"Bearer {reviewer}"})
        assert check.json()["total"] == meta["pending"], check.text[:300]
        cases = [
            ("static page", "/static/app.css", None),
            ("inbox JSON (50 of 5,000 pending)", "/api/review/inbox?per_page=50", reviewer),
            ("inbox page (inbox + subordinates)", "/review", reviewer),
            ("overview JSON (whole province)", "/api/overview", province),
            ("overview page", "/overview", province),
        ]
        results = []
        for concurrency in (int(c) for c in str(args.concurrency).split(",")):
            for label, path, token in cases:
                r = load(base, path, token, requests=args.requests, concurrency=concurrency)
                r["label"] = label
                results.append(r)
                print(f"c={concurrency:<3} {label:<36} median {r['median_ms']:>8.1f} ms  p95 "
                      f"{r['p95_ms']:>8.1f} ms  {r['throughput_rps']:>7.1f} req/s  errors {r['errors']}")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    (OUT / "w6.json").write_text(json.dumps({"data": {k: v for k, v in meta.items() if k != "tokens"},
                                             "database": args.database_url.split("://")[0],
                                             "cpus": os.cpu_count(), "load_average": os.getloadavg(),
                                             "results": results}, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
