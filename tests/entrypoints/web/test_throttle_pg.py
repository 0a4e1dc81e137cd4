"""Issue 10 point 10: the login throttle holds under concurrency on PostgreSQL. A real uvicorn
server (its thread pool runs the logins in parallel) and 30 client threads that fire one wrong
password each at the same moment: at most MAX_FAILURES guesses reach the password check."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from tests.conftest import World
from tests.entrypoints.web.conftest import PASSWORD
from workflow.app import accounts
from workflow.entrypoints.web.app import create_app
from workflow.settings import Settings
from workflow.store.uow import UnitOfWork

THREADS = 30


@pytest.fixture()
def pg_server(pg_world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("BANGFU_NOW", "2021-11-01T10:00")
    accounts.set_password(UnitOfWork(pg_world.db), username="g1-clerk", new_password=PASSWORD)
    app = create_app(pg_world.db, Settings(env="test", secret_key="test-secret-" + "x" * 32))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _storm(base: str, passwords: list[str]) -> Counter[int]:
    barrier = threading.Barrier(len(passwords))
    statuses: list[int] = []
    lock = threading.Lock()

    def guess(password: str) -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            barrier.wait()
            resp = client.post("/api/session", json={"username": "g1-clerk", "password": password})
        with lock:
            statuses.append(resp.status_code)

    workers = [threading.Thread(target=guess, args=(p,)) for p in passwords]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return Counter(statuses)


def test_thirty_simultaneous_wrong_passwords_let_at_most_five_through(pg_server: str) -> None:
    counts = _storm(pg_server, [f"wrong-{i}" for i in range(THREADS)])
    print(f"\n30 threads on PostgreSQL: {dict(counts)}")
    assert sum(counts.values()) == THREADS
    assert set(counts) <= {401, 429}
    assert counts[401] <= accounts.MAX_FAILURES
    assert counts[429] >= THREADS - accounts.MAX_FAILURES


def test_the_right_password_inside_the_storm_is_throttled_too(pg_server: str) -> None:
    counts = _storm(pg_server, [f"wrong-{i}" for i in range(THREADS - 1)] + [PASSWORD])
    assert counts[401] + counts[200] <= accounts.MAX_FAILURES
    with httpx.Client(base_url=pg_server) as client:
        assert client.post("/api/session", json={"username": "g1-clerk", "password": PASSWORD}).status_code in (200, 429)
