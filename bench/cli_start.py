"""CPU of the ``bangfu`` command line's everyday commands (issue 12 point 5): ``python -m bench.cli_start``

Each command runs as its own process, as a clerk's script runs it; its CPU is the child's
user + sys time (``getrusage(RUSAGE_CHILDREN)``), min and median of ``--runs`` runs after one
warm-up run (bytecode cached: ``PYTHONDONTWRITEBYTECODE`` is removed from the children's
environment). Baselines first: ``python -c pass``, ``python -c "import sqlalchemy"`` (the floor of
a command that opens a database) and, with PostgreSQL, SQLAlchemy plus psycopg and its dialect, also
imported as the console script runs a short command (garbage collector paused, no teardown). The
database commands run against the demo province (``bangfu demo``) in a throw-away SQLite file and,
when the server answers, a throw-away PostgreSQL database (``BANGFU_BENCH_PG_URL``, default
``postgresql://postgres@127.0.0.1:5432/test``). ``purchase-add`` enters a new order each run;
``fire`` alternates ``finish_purchasing`` and ``reopen`` on the same record.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

CLERK, ORG = "gz-d1-g1-clerk", "GZ-D1-G1"
DEFAULT_RUNS = 7


def _bangfu() -> list[str]:
    """The console script a clerk runs (next to this interpreter), else ``-m``."""
    script = Path(sys.executable).parent / "bangfu"
    return [str(script)] if script.exists() else [sys.executable, "-m", "workflow.entrypoints.cli"]


def _env(database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if database_url is not None:
        env["BANGFU_DATABASE_URL"] = database_url
    return env


def cpu_of(argv: list[str], env: dict[str, str]) -> float:
    """The CPU seconds (user + sys) of one run of ``argv``; a failing run raises."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(make_argv: Callable[[int], list[str]], env: dict[str, str], runs: int) -> dict[str, float]:
    """Min and median CPU of ``runs`` runs (run ``i`` is ``make_argv(i)``) after one warm-up."""
    cpu_of(make_argv(-1), env)
    samples = [cpu_of(make_argv(i), env) for i in range(runs)]
    return {"min": min(samples), "median": statistics.median(samples), "runs": runs}


def commands() -> dict[str, Callable[[int], list[str]]]:
    """The commands measured, by name: run ``i`` as argv."""
    bangfu = _bangfu()
    # A payment an hour ago in China time: in the demo round's year except in its first hour.
    paid = (datetime.now(UTC) + timedelta(hours=7)).strftime("%Y-%m-%dT%H:%M")  # naive = China time
    return {
        "bangfu --help": lambda i: [*bangfu, "--help"],
        "show": lambda i: [*bangfu, "show", ORG, "--as", CLERK],
        "purchase-list": lambda i: [*bangfu, "purchase-list", ORG, "--as", CLERK],
        "purchase-add": lambda i: [*bangfu, "purchase-add", ORG, "--as", CLERK, "--paid-at", paid,
                                   "--channel", "ygh", "--amount", "12.50", "--people", "1",
                                   "--order", f"BENCH-{os.getpid()}-{i}"],
        "fire": lambda i: [*bangfu, "fire", ORG, "reopen" if i % 2 else "finish_purchasing", "--as", CLERK],
    }


@contextmanager
def _demo_database(kind: str) -> Iterator[str | None]:
    """The URL of a throw-away database holding the demo province; None if PostgreSQL is down."""
    from bench.scratch import PG_URL, bench_database  # lazy: SQLAlchemy stays out of the baselines

    if kind == "postgres":
        from sqlalchemy import create_engine, text  # lazy: see above

        probe = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1),
                              connect_args={"connect_timeout": 3})
        try:
            with probe.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any failure means: no server, skip
            yield None
            return
        finally:
            probe.dispose()
    with bench_database(kind, prefix="bangfu_cli_start") as database:
        url = database.url
        database.dispose()
        done = subprocess.run([*_bangfu(), "demo"], env=_env(url), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"bangfu demo failed: {done.stderr.strip()}")
        # finish_purchasing first: the alternation starts from the demo's planned record.
        cpu_of([*_bangfu(), "fire", ORG, "finish_purchasing", "--as", CLERK], _env(url))
        yield url


def run(*, runs: int = DEFAULT_RUNS, kinds: tuple[str, ...] = ("sqlite", "postgres"),
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure the baselines and each command on each database kind.

    Returns:
        ``{"baseline": {name: {min, median, runs}}, "sqlite": {name: …}, "postgres": {…} or None}``
        in CPU seconds.
    """
    out: dict[str, Any] = {"baseline": {}}
    env = _env(None)
    baselines = [("python -c pass", "pass"), ("import sqlalchemy", "import sqlalchemy")]
    if "postgres" in kinds:  # the PostgreSQL driver and dialect a command loads on top
        baselines.append(("import sqlalchemy + psycopg", "import sqlalchemy.dialects.postgresql.psycopg, psycopg"))
        # The same imports as the console script runs a short command: the garbage collector
        # paused, no interpreter teardown. What a PostgreSQL command pays before its own code.
        baselines.append(("  same, no GC, quick exit", "import gc, os; gc.disable(); "
                          "import sqlalchemy.dialects.postgresql.psycopg, psycopg; os._exit(0)"))
    for name, code in baselines:
        out["baseline"][name] = measure(lambda i, c=code: [sys.executable, "-c", c], env, runs)  # type: ignore[misc]
        log(_line(name, out["baseline"][name]))
    for kind in kinds:
        with _demo_database(kind) as url:
            if url is None:
                log(f"{kind}: server not reachable, skipped")
                out[kind] = None
                continue
            out[kind] = {}
            for name, make in commands().items():
                if name == "bangfu --help" and kind != kinds[0]:
                    continue  # no database: once is enough
                out[kind][name] = measure(make, _env(url), runs)
                log(_line(f"{kind:8} {name}", out[kind][name]))
    return out


def _line(name: str, m: dict[str, float]) -> str:
    return f"  {name:<28} CPU min {m['min']:.3f} s  median {m['median']:.3f} s  ({m['runs']} runs)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="runs per command (after a warm-up)")
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON at the end")
    args = parser.parse_args(argv)
    kinds = ("sqlite", "postgres") if args.db == "both" else (args.db,)
    result = run(runs=args.runs, kinds=kinds)
    if args.json:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
