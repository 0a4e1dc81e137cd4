"""`make run`: set up the embedded default (SQLite + filesystem broker under var/), load the
demo province and start the system, printing what to try next."""

from __future__ import annotations

import os
import signal
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


def main() -> int:
    settings = get_settings()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    database = Database(settings.database_url)
    result = demo.build(database)
    print(f"demo: {result.get('demo')} {result.get('round', '')}")
    # One sweep now, so today's due reminders are in the inboxes before the first beat.
    swept = run_sweep(database, now=clock.now())
    print(f"sweep: {swept.total_notifications} notifications written")
    database.dispose()
    accounts = "\n".join(f"  {name:<15}  {who}\n  {'':<15}  {what}" for name, who, what in demo.ACCOUNTS)
    print(NEXT_STEPS.format(db=settings.database_url, password=demo.DEMO_PASSWORD, accounts=accounts,
                            web=f"http://{WEB_HOST}:{WEB_PORT}"))
    procs = []
    for argv in _services():
        procs.append(subprocess.Popen(argv, cwd=Path(__file__).resolve().parents[2]))
    if not procs:
        return 0
    print("Running; press Ctrl+C to stop.")
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
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
    return 0


WEB_HOST = "127.0.0.1"
WEB_PORT = 8000


def _services() -> list[list[str]]:
    """The long-running processes of the embedded default: the web server, and the worker with
    its beat scheduler."""
    root = Path(__file__).resolve().parents[2]
    out: list[list[str]] = []
    if os.environ.get("BANGFU_NO_WEB") != "1":
        out.append([sys.executable, "-m", "uvicorn", "--factory", "workflow.entrypoints.web.app:create_app",
                    "--host", WEB_HOST, "--port", str(WEB_PORT)])
    if (root / "worker.py").exists() and os.environ.get("BANGFU_NO_WORKER") != "1":
        out.append([sys.executable, "-m", "celery", "-A", "worker", "worker", "-B", "--loglevel=INFO",
                    "--concurrency=2"])
    return out


if __name__ == "__main__":
    sys.exit(main())
