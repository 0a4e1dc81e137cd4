"""`make run`: set up the embedded default (SQLite + filesystem broker under var/), load the
demo province and start the system, printing what to try next."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from workflow.domain import clock
from workflow.entrypoints import demo
from workflow.scheduler.sweeps import run_sweep
from workflow.settings import get_settings
from workflow.store.tables import Database

NEXT_STEPS = """
bangfu is set up on {db}.

The web pages and the JSON API: {web}  (OpenAPI: {web}/docs)
Demo accounts (password {password}), each with its part of the round to do now:
{accounts}

Or on the command line, as a clerk and as a reviewer:
  .venv/bin/bangfu show GZ-D1-G1 --as gz-d1-g1-clerk
  .venv/bin/bangfu fire GZ-D1-G1 finish_purchasing --as gz-d1-g1-clerk
  .venv/bin/bangfu show GZ-D1-G4 --as gz-d1-reviewer        # a submitted record
  .venv/bin/bangfu fire GZ-D1-G4 return_for_revision --reason "请补充发放名单" --as gz-d1-reviewer
  .venv/bin/bangfu history GZ-D1-G4 --as gz-d1-reviewer
  .venv/bin/bangfu lifecycle
"""


START_OVER = ("To start over with a fresh demo: make clean && make run "
              "(or: make run RUN_ARGS=--reset, which rebuilds the demo database only).")


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    settings = get_settings()
    if problem := _port_taken(settings.web_host, settings.web_port):
        print(f"make run: cannot serve on {settings.web_host}:{settings.web_port}: {problem}.\n"
              f"Another bangfu (or another program) is using it: stop it, or choose another port: "
              f"BANGFU_PORT=8001 make run", file=sys.stderr)
        return 1
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    if "--reset" in args and not _reset(settings.database_url, settings.var_dir):
        return 2
    database = Database(settings.database_url)
    result = demo.build(database)
    fresh = result.get("demo") == "loaded"
    print(f"demo: {result.get('demo')} {result.get('round', '')}")
    # One sweep now, so today's due reminders are in the inboxes before the first beat.
    swept = run_sweep(database, now=clock.now())
    print(f"sweep: {swept.total_notifications} notifications written")
    database.dispose()
    web = f"http://{settings.web_host}:{settings.web_port}"
    if fresh:
        accounts = "\n".join(f"  {name:<15}  {who}\n  {'':<15}  {what}" for name, who, what in demo.ACCOUNTS)
        print(NEXT_STEPS.format(db=settings.database_url, password=demo.DEMO_PASSWORD, accounts=accounts, web=web))
    else:
        names = ", ".join(name for name, _who, _what in demo.ACCOUNTS)
        print(AGAIN.format(db=settings.database_url, web=web, password=demo.DEMO_PASSWORD, names=names,
                           start_over=START_OVER))
    procs = []
    for argv_ in _services():
        procs.append(subprocess.Popen(argv_, cwd=Path(__file__).resolve().parents[2]))
    if not procs:
        return 0
    print("Running; press Ctrl+C to stop.")
    code = 0
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        code = next(p.returncode for p in procs if p.returncode is not None)
        if code:
            print(f"make run: a process stopped with exit code {code}; stopping the others.", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    return code


AGAIN = """
bangfu is set up on {db}: the demo was loaded by an earlier make run, and what you did since is kept.

The web pages and the JSON API: {web}  (OpenAPI: {web}/docs)
Demo accounts (password {password}): {names}
{start_over}
"""


def _port_taken(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (in use, not allowed, no such address), or None.
    Checked before anything starts, so a taken port stops ``make run`` with an error."""
    if os.environ.get("BANGFU_NO_WEB") == "1":
        return None
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds it
            sock.bind((host, port))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _reset(database_url: str, var_dir: Path) -> bool:
    """``--reset``: remove the embedded SQLite database (and its WAL files) so the demo is built
    afresh. Another database is never dropped from here."""
    db_file = Path(database_url.removeprefix("sqlite:///")) if database_url.startswith("sqlite:///") else None
    if db_file is None or var_dir.resolve() not in db_file.resolve().parents:
        print(f"make run --reset rebuilds only the embedded SQLite database under {var_dir}; "
              f"{database_url.split('@')[-1]} is left alone. Drop and recreate it yourself.", file=sys.stderr)
        return False
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    print(f"reset: removed {db_file}")
    return True


def _services() -> list[list[str]]:
    """The long-running processes of the embedded default: the web server, and the worker with
    its beat scheduler."""
    root = Path(__file__).resolve().parents[2]
    settings = get_settings()
    out: list[list[str]] = []
    if os.environ.get("BANGFU_NO_WEB") != "1":
        out.append([sys.executable, "-m", "uvicorn", "--factory", "workflow.entrypoints.web.app:create_app",
                    "--host", settings.web_host, "--port", str(settings.web_port)])
    if (root / "worker.py").exists() and os.environ.get("BANGFU_NO_WORKER") != "1":
        out.append([sys.executable, "-m", "celery", "-A", "worker", "worker", "-B", "--loglevel=INFO",
                    "--concurrency=2"])
    return out


if __name__ == "__main__":
    sys.exit(main())
