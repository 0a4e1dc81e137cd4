"""W8: the December rush — many clerks and a few reviewers at once through the HTTP API.

Usage::

    python -m bench --scale province --db postgres --only w8
    python -m bench.w8_rush [--scale small] [--db postgres] [--clerks 8,32,64] [--workers 2,4]
                            [--reviewers 4] [--seconds 30]

On the generated province, per web-worker count (``bangfu serve --workers N``, as deployed) and per
clerk count, one *run*: ``--reviewers`` parent organisations (districts or provincial unions not
used by an earlier run) are chosen with their grassroots unions whose record is still *planned*;
each union's clerk and each parent's reviewer gets an API token. The load generator runs in its
own processes (:data:`LOAD_PROCESSES`, ``multiprocessing``), each a pool of threads with one
keep-alive ``http.client`` connection per thread. A clerk thread takes the unions dealt to it one
after another and per union sends, with the version it was answered: ``PUT report-info`` →
``POST purchases`` → ``fire finish_purchasing`` → ``fire summarize`` → ``fire submit``; it starts
no new union after ``--seconds``. A reviewer thread reads its inbox (``GET /api/review/inbox``)
and accepts every submission in it, until the clerks are done and the inbox is empty.

Reported per run: transitions per second (finish, summarize, submit and accept answered 200,
counted while the clerks were working; the reviewers also accept the backlog the generator left in
their inboxes, so the clerks' own finish/summarize/submit per second is given beside it), p50 / p95 per kind of request, errors by status, the
machine's load (cores busy from ``/proc/stat``, the web workers' CPU, the load generator's CPU,
the load average) and, on PostgreSQL, the database's wait events: a side thread samples
``pg_stat_activity`` every 100 ms and the run reports the share of active backends per
``wait_event_type:wait_event`` (``CPU`` when an active backend waits on nothing) with the most
frequent statement behind each lock wait.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.generate import SCALES, GeneratedInfo, generate
from bench.scratch import OUT, bench_database, kinds
from bench.w6_web import serve
from workflow.app import accounts
from workflow.store.tables import Database
from workflow.store.uow import UnitOfWork

#: Sizes per scale: clerk counts, web-worker counts, reviewers, seconds a run's clerks keep
#: starting unions, at most this many unions per clerk.
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"clerks": (2,), "workers": (2,), "reviewers": 2, "seconds": 10.0, "per_clerk": 3},
    "small": {"clerks": (4, 8), "workers": (2,), "reviewers": 2, "seconds": 15.0, "per_clerk": 8},
    "province": {"clerks": (8, 32, 64), "workers": (2, 4), "reviewers": 4, "seconds": 30.0, "per_clerk": 40},
}
#: Load-generator processes (the clerk and reviewer threads dealt over them).
LOAD_PROCESSES = 2
#: After the clerks stop, how long the reviewers may take to empty their inboxes.
DRAIN_SECONDS = 60.0
KINDS = ("report_info", "purchase", "finish", "summarize", "submit", "inbox", "accept")
TRANSITIONS = frozenset({"finish", "summarize", "submit", "accept"})
FILL_DATE = "2021-11-01"


@dataclass
class Union:
    record_id: int
    version: int
    token: str


@dataclass
class Plan:
    """One run's unions (dealt to the clerks) and reviewer tokens."""

    clerks: list[list[Union]]
    reviewers: list[str]
    parents: list[str] = field(default_factory=list)


# --- choosing the unions ------------------------------------------------------------------


def plan_run(database: Database, info: GeneratedInfo, *, clerks: int, reviewers: int, per_clerk: int,
             used: set[int]) -> Plan:
    """Choose ``reviewers`` parent organisations (not in ``used``) with the most planned grassroots
    records whose own parent record is open, deal those records to ``clerks`` clerks (at most
    ``per_clerk`` each) and give every clerk and reviewer involved a token."""
    params = {"r": info.round_id, "t": True}
    with database.engine.connect() as conn:
        parents = conn.execute(text(
            "SELECT o.parent_id, count(*) AS n FROM record r JOIN organisation o ON o.id = r.org_id"
            " JOIN record p ON p.id = r.parent_id"
            " WHERE r.round_id = :r AND r.is_grassroots = :t AND r.state = 'planned'"
            " AND p.state NOT IN ('submitted', 'accepted')"
            " GROUP BY o.parent_id ORDER BY n DESC, o.parent_id"), params).all()
        chosen = [int(p) for p, _n in parents if int(p) not in used][:reviewers]
        used.update(chosen)
        if not chosen:
            raise RuntimeError("W8: no parent organisation with planned grassroots records left")
        marks = ", ".join(str(p) for p in chosen)
        reviewer_names = [str(u) for (u,) in conn.execute(text(
            "SELECT min(u.username) FROM membership m JOIN app_user u ON u.id = m.user_id"
            f" WHERE m.role = 'reviewer' AND u.is_active = :t AND m.org_id IN ({marks}) GROUP BY m.org_id"
            " ORDER BY m.org_id"), {"t": True})]
        parent_codes = [str(c) for (c,) in conn.execute(text(
            f"SELECT code FROM organisation WHERE id IN ({marks}) ORDER BY id"))]
        rows = conn.execute(text(
            "SELECT r.id, r.version, min(u.username) FROM record r JOIN organisation o ON o.id = r.org_id"
            " JOIN record p ON p.id = r.parent_id"
            " JOIN membership m ON m.org_id = r.org_id AND m.role = 'clerk'"
            " JOIN app_user u ON u.id = m.user_id AND u.is_active = :t"
            f" WHERE r.round_id = :r AND r.is_grassroots = :t AND r.state = 'planned' AND o.parent_id IN ({marks})"
            " AND p.state NOT IN ('submitted', 'accepted')"
            " GROUP BY r.id, r.version ORDER BY r.id"), params).all()
    rows = rows[: clerks * per_clerk]
    tokens = accounts.create_tokens(UnitOfWork(database), usernames=[u for _r, _v, u in rows] + reviewer_names,
                                    name="bench-w8")
    dealt: list[list[Union]] = [[] for _ in range(clerks)]
    for n, (rid, version, username) in enumerate(rows):
        dealt[n % clerks].append(Union(int(rid), int(version), tokens[username]))
    return Plan(dealt, [tokens[u] for u in reviewer_names], parent_codes)


# --- the load generator (its own processes) -----------------------------------------------


class _Client:
    """One keep-alive HTTP/1.1 connection, JSON in and out, each request timed."""

    def __init__(self, host: str, port: int, token: str, log: list[tuple[str, float, float, int]]) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=120)
        self.token, self.log = token, log

    def call(self, kind: str, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        t = time.perf_counter()
        try:
            self.conn.request(method, path, body=data, headers=headers)
            resp = self.conn.getresponse()
            raw = resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException):
            self.conn.close()
            status, raw = 599, b""
        done = time.perf_counter()
        self.log.append((kind, t, done, status))
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None

    def close(self) -> None:
        self.conn.close()


_PURCHASE = {"paid_at": "2021-10-15T10:30", "channel": "ygh", "amount": "1200.00", "people": 12,
             "product": "梅州金柚", "product_form": "实物", "holiday": "国庆", "origin_region": "广东梅州",
             "budget": "extra_quota"}


def _clerk(client: _Client, unions: list[Union], stop_at: float) -> None:
    for u in unions:
        if time.perf_counter() >= stop_at:
            return
        base = f"/api/records/{u.record_id}"
        status, body = client.call("report_info", "PUT", base + "/report-info", {
            "seen_version": u.version, "reporter": "张三", "phone": "13812345678", "fill_date": FILL_DATE})
        if status != 200:
            continue
        version = int(body["version"])
        status, _ = client.call("purchase", "POST", base + "/purchases",
                                {**_PURCHASE, "order_no": f"W8-{u.record_id}"})
        if status != 201:
            continue
        for kind, trigger in (("finish", "finish_purchasing"), ("summarize", "summarize"), ("submit", "submit")):
            status, body = client.call(kind, "POST", base + "/fire", {"trigger": trigger, "seen_version": version})
            if status != 200:
                break
            version = int(body["version"])


def _reviewer(client: _Client, clerks_done: Any, clerks_total: int, give_up_at: float) -> None:
    while time.perf_counter() < give_up_at:
        finished = clerks_done.value >= clerks_total  # read before the inbox: then an empty inbox is final
        status, body = client.call("inbox", "GET", "/api/review/inbox?per_page=20&sort=submitted_at")
        items = (body or {}).get("items", []) if status == 200 else []
        for item in items:
            client.call("accept", "POST", f"/api/records/{item['record_id']}/fire",
                        {"trigger": "accept", "seen_version": item["version"]})
        if not items:
            if finished:
                return
            time.sleep(0.05)


def _load_process(host: str, port: int, clerks: list[list[Union]], reviewers: list[str], start_at: float,
                  seconds: float, clerks_done: Any, clerks_total: int, out: Any) -> None:
    """One load-generator process: a thread per clerk and per reviewer, each with its own
    connection; puts (timings, CPU seconds) on ``out``."""
    cpu0 = time.process_time()
    logs: list[list[tuple[str, float, float, int]]] = []

    def run_clerk(unions: list[Union]) -> None:
        log: list[tuple[str, float, float, int]] = []
        logs.append(log)
        client = _Client(host, port, unions[0].token if unions else "", log)
        try:
            for u in unions:
                client.token = u.token
                _clerk(client, [u], start_at + seconds)
        finally:
            client.close()
            with clerks_done.get_lock():
                clerks_done.value += 1

    def run_reviewer(token: str) -> None:
        log: list[tuple[str, float, float, int]] = []
        logs.append(log)
        client = _Client(host, port, token, log)
        try:
            _reviewer(client, clerks_done, clerks_total, start_at + seconds + DRAIN_SECONDS)
        finally:
            client.close()

    threads = [threading.Thread(target=run_clerk, args=(u,)) for u in clerks]
    threads += [threading.Thread(target=run_reviewer, args=(t,)) for t in reviewers]
    while time.perf_counter() < start_at:  # all processes start together
        time.sleep(0.005)
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    out.put(([x for log in logs for x in log], time.process_time() - cpu0))


# --- what the machine and the database do meanwhile ---------------------------------------


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return sum(parts) - idle, sum(parts)


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its descendants, read from ``/proc``."""
    total, todo, tick = 0.0, [pid], os.sysconf("SC_CLK_TCK")
    while todo:
        p = todo.pop()
        try:
            stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(stat[11]) + int(stat[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total


class WaitSampler(threading.Thread):
    """Samples PostgreSQL's active backends of this database every ``interval`` seconds."""

    SQL = ("SELECT coalesce(wait_event_type, 'CPU'), coalesce(wait_event, 'CPU'), left(query, 70)"
           " FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'"
           " AND pid <> pg_backend_pid() AND backend_type = 'client backend'")

    def __init__(self, database: Database, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.database, self.interval = database, interval
        self.stop = threading.Event()
        self.samples = 0
        self.active = 0
        self.events: Counter[str] = Counter()
        self.queries: dict[str, Counter[str]] = {}

    def run(self) -> None:
        with self.database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            while not self.stop.wait(self.interval):
                rows = conn.execute(text(self.SQL)).all()
                self.samples += 1
                self.active += len(rows)
                for kind, event, query in rows:
                    name = "CPU" if kind == "CPU" else f"{kind}:{event}"
                    self.events[name] += 1
                    if kind == "Lock":
                        self.queries.setdefault(name, Counter())[" ".join(str(query).split())] += 1

    def summary(self) -> dict[str, Any]:
        total = max(self.active, 1)
        return {
            "samples": self.samples,
            "mean_active_backends": round(self.active / max(self.samples, 1), 2),
            "share": {k: round(100 * n / total, 1) for k, n in self.events.most_common(8)},
            "lock_queries": {k: c.most_common(1)[0][0] for k, c in self.queries.items()},
        }


# --- one run ------------------------------------------------------------------------------


def _quantile(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1]


def run_one(database: Database, base: str, server_pid: int, plan: Plan, *, seconds: float,
            processes: int = LOAD_PROCESSES) -> dict[str, Any]:
    """Load the served ``base`` with ``plan``'s clerks and reviewers; the figures of the run."""
    host, port = base.removeprefix("http://").split(":")
    ctx = mp.get_context("fork")
    clerks_done = ctx.Value("i", 0)
    out = ctx.Queue()
    n_proc = max(1, min(processes, len(plan.clerks) + len(plan.reviewers)))
    start_at = time.perf_counter() + 0.5
    procs = [ctx.Process(target=_load_process, args=(
        host, int(port), plan.clerks[i::n_proc], plan.reviewers[i::n_proc], start_at, seconds, clerks_done,
        len(plan.clerks), out)) for i in range(n_proc)]
    sampler = WaitSampler(database) if database.dialect == "postgresql" else None
    for p in procs:
        p.start()
    busy0, total0 = _cpu_ticks()
    web0, load0 = _tree_cpu(server_pid), os.getloadavg()[0]
    if sampler:
        sampler.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    if sampler:
        sampler.stop.set()
        sampler.join()
    busy1, total1 = _cpu_ticks()
    web_cpu = _tree_cpu(server_pid) - web0
    log = sorted((x for entries, _cpu in results for x in entries), key=lambda x: x[2])
    clerk_end = max((done for kind, _t, done, _s in log if kind not in ("inbox", "accept")), default=start_at)
    end = max((done for _k, _t, done, _s in log), default=start_at)
    wall, clerk_wall = end - start_at, max(clerk_end - start_at, 1e-6)
    kinds_out: dict[str, Any] = {}
    for kind in KINDS:
        ms = [(done - t) * 1000 for k, t, done, s in log if k == kind and s < 400]
        errors = Counter(str(s) for k, _t, _d, s in log if k == kind and s >= 400)
        if ms or errors:
            kinds_out[kind] = {"n": len(ms), "p50_ms": round(_quantile(ms, 0.5), 1) if ms else None,
                               "p95_ms": round(_quantile(ms, 0.95), 1) if ms else None, "errors": dict(errors)}
    ok = [(k, done) for k, _t, done, s in log if k in TRANSITIONS and s == 200]
    in_window = sum(1 for _k, done in ok if done <= clerk_end)
    all_ms = [(done - t) * 1000 for _k, t, done, s in log if s < 400]
    machine_s = max(wall, 1e-6)
    unions = sum(len(c) for c in plan.clerks)
    return {
        "clerks": len(plan.clerks), "reviewers": len(plan.reviewers), "parents": plan.parents,
        "unions_dealt": unions,
        "submitted": sum(1 for k, _d in ok if k == "submit"), "accepted": sum(1 for k, _d in ok if k == "accept"),
        "transitions": len(ok), "clerk_seconds": round(clerk_wall, 2), "seconds": round(wall, 2),
        "transitions_per_s": round(in_window / clerk_wall, 1),
        # The clerks' own (finish, summarize, submit): the reviewers also accept the backlog
        # the generator left in their inboxes, which the figure above counts.
        "clerk_transitions_per_s": round(sum(1 for k, _d in ok if k != "accept") / clerk_wall, 1),
        "requests": len(log), "requests_per_s": round(len(log) / max(wall, 1e-6), 1),
        "p50_ms": round(_quantile(all_ms, 0.5), 1) if all_ms else None,
        "p95_ms": round(_quantile(all_ms, 0.95), 1) if all_ms else None,
        "kinds": kinds_out,
        "load": {
            "cores_busy": round((busy1 - busy0) / max(total1 - total0, 1) * (os.cpu_count() or 1), 2),
            "web_cores": round(web_cpu / machine_s, 2),
            "loadgen_cores": round(sum(cpu for _r, cpu in results) / machine_s, 2),
            "loadavg_start": round(load0, 2), "loadavg_end": round(os.getloadavg()[0], 2),
        },
        "waits": sampler.summary() if sampler else None,
    }


def run(database: Database, info: GeneratedInfo, *, clerks: tuple[int, ...], workers: tuple[int, ...],
        reviewers: int, seconds: float, per_clerk: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every (workers, clerks) run on the generated province, each on unions of its own."""
    used: set[int] = set()
    runs = []
    for w in workers:
        proc, base = serve(database.url, workers=w)
        try:
            for n in clerks:
                plan = plan_run(database, info, clerks=n, reviewers=reviewers, per_clerk=per_clerk, used=used)
                r = run_one(database, base, proc.pid, plan, seconds=seconds)
                r["workers"] = w
                runs.append(r)
                log(line(r))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {"reviewers": reviewers, "seconds": seconds, "runs": runs}


def line(r: dict[str, Any]) -> str:
    """One run as a line of the console."""
    kinds_text = "  ".join(f"{k} {v['p50_ms']}/{v['p95_ms']}" for k, v in r["kinds"].items() if v["p50_ms"])
    waits = r.get("waits") or {}
    top = ", ".join(f"{k} {v}%" for k, v in list(waits.get("share", {}).items())[:3])
    errors = sum(sum(v["errors"].values()) for v in r["kinds"].values())
    return (f"  workers {r['workers']} clerks {r['clerks']:>3}: {r['transitions_per_s']:>6.1f} tx/s"
            f" (clerks' own {r['clerk_transitions_per_s']:.1f})"
            f" (p50/p95 ms: {kinds_text}) errors {errors}; cores busy {r['load']['cores_busy']}"
            f" web {r['load']['web_cores']} loadgen {r['load']['loadgen_cores']}" + (f"; waits {top}" if top else ""))


def table(runs: list[dict[str, Any]]) -> str:
    """The runs as a Markdown table (docs/benchmarks.md)."""
    head = ["workers", "clerks", "tx/s (clerks' own)", *[f"{k} p50 / p95" for k in KINDS], "errors", "cores busy (web / loadgen)",
            "top waits (share of active backends)"]
    lines = ["| " + " | ".join(head) + " |", "| --- |" + " ---: |" * (len(head) - 2) + " --- |"]
    for r in runs:
        own = r.get("clerk_transitions_per_s")
        cells = [str(r["workers"]), str(r["clerks"]),
                 f"{r['transitions_per_s']:.1f}" + (f" ({own:.1f})" if own is not None else "")]
        for k in KINDS:
            v = r["kinds"].get(k)
            cells.append(f"{v['p50_ms']:.0f} / {v['p95_ms']:.0f}" if v and v["p50_ms"] is not None else "–")
        cells.append(str(sum(sum(v["errors"].values()) for v in r["kinds"].values())))
        ld = r["load"]
        cells.append(f"{ld['cores_busy']} ({ld['web_cores']} / {ld['loadgen_cores']})")
        waits = r.get("waits") or {}
        cells.append(", ".join(f"{k} {v}%" for k, v in list(waits.get("share", {}).items())[:3]) or "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--scale", choices=list(SCALES), default="small")
    ap.add_argument("--db", choices=("sqlite", "postgres", "both"), default="postgres")
    ap.add_argument("--clerks", default=None, help="comma-separated clerk counts")
    ap.add_argument("--workers", default=None, help="comma-separated web-worker counts")
    ap.add_argument("--reviewers", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=None)
    args = ap.parse_args(argv)
    size = SIZES[args.scale]
    clerks = tuple(int(c) for c in args.clerks.split(",")) if args.clerks else size["clerks"]
    workers = tuple(int(c) for c in args.workers.split(",")) if args.workers else size["workers"]
    out = {}
    for kind in kinds(args.db):
        with bench_database(kind, prefix="bangfu_w8") as database:
            info = generate(database, args.scale, log=print)
            out[kind] = run(database, info, clerks=clerks, workers=workers,
                            reviewers=args.reviewers or size["reviewers"], seconds=args.seconds or size["seconds"],
                            per_clerk=size["per_clerk"])
            print(table(out[kind]["runs"]))
    OUT.mkdir(exist_ok=True)
    (OUT / "w8.json").write_text(json.dumps({"scale": args.scale, "results": out}, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
