"""The web process as deployed (``bangfu serve --workers N``, the Procfile's and the systemd
unit's): its connections have Nagle's algorithm off, and it serves from several workers.

uvicorn's own ``--workers`` left ``TCP_NODELAY`` off on every accepted socket (the listener is
bound with ``proto`` 0; uvicorn issue #3149): each keep-alive request after a connection's first
then waited ~40 ms on the client's delayed ACK. The check here is the socket option itself,
never a timing.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import uvicorn

from workflow.entrypoints.web.serve import listening_socket

ROOT = Path(__file__).resolve().parents[3]


def test_the_listener_hands_its_connections_tcp_nodelay() -> None:
    config = uvicorn.Config("workflow.entrypoints.web.app:create_app", factory=True, host="127.0.0.1", port=0)
    listener = listening_socket(config)
    listener.listen()  # as the server's event loop does with it
    try:
        client = socket.create_connection(listener.getsockname()[:2])
        accepted, _ = listener.accept()
        with client, accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        listener.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_bangfu_serve_with_two_workers_answers_on_one_keep_alive_connection(tmp_path: Path) -> None:
    env = {**os.environ, "BANGFU_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}", "BANGFU_VAR_DIR": str(tmp_path),
           "BANGFU_ENV": "development"}
    cli = [sys.executable, "-m", "workflow.entrypoints.cli"]
    assert subprocess.run([*cli, "init"], cwd=ROOT, env=env, capture_output=True, timeout=120).returncode == 0
    port = _free_port()
    with (tmp_path / "server.log").open("wb") as log:
        proc = subprocess.Popen([*cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while True:
            try:
                conn.request("GET", "/healthz")
                first = conn.getresponse()
                first.read()
                break
            except OSError:
                conn.close()
                assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                time.sleep(0.2)
        statuses = [first.status]
        for _ in range(3):  # the same connection, kept alive
            conn.request("GET", "/static/app.css")
            resp = conn.getresponse()
            resp.read()
            statuses.append(resp.status)
        conn.close()
        assert statuses == [200, 200, 200, 200]
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0, (tmp_path / "server.log").read_text()


def test_bangfu_serve_refuses_no_workers_in_chinese(tmp_path: Path) -> None:
    env = {**os.environ, "BANGFU_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}", "BANGFU_VAR_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "workflow.entrypoints.cli", "serve", "--workers", "0"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "工作进程数至少为 1" in done.stderr and "Traceback" not in done.stderr


def test_bangfu_serve_refuses_a_bad_or_taken_port_in_chinese(tmp_path: Path) -> None:
    env = {**os.environ, "BANGFU_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}", "BANGFU_VAR_DIR": str(tmp_path),
           "BANGFU_ENV": "development"}
    cli = [sys.executable, "-m", "workflow.entrypoints.cli", "serve", "--host", "127.0.0.1"]
    done = subprocess.run([*cli, "--port", "99999"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "端口须在 1 到 65535 之间" in done.stderr and "Traceback" not in done.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = subprocess.run([*cli, "--port", port], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "端口已被占用" in done.stderr and "Traceback" not in done.stderr
