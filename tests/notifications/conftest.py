"""Fixtures: a real SMTP server (aiosmtpd) and a real HTTP server standing in for the robots."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

REJECT_PREFIX = "reject"  # recipients starting with this get 550
BUSY_PREFIX = "busy"  # recipients starting with this get 451


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    """One mail the SMTP server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    session_id: int


@dataclass
class RecordingHandler:
    """aiosmtpd handler that keeps every accepted mail and refuses some recipients."""

    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list
    ) -> str:
        if address.startswith(REJECT_PREFIX):
            return "550 5.1.1 no such mailbox"
        if address.startswith(BUSY_PREFIX):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.received.append(
            Received(
                mail_from=str(envelope.mail_from),
                rcpt_tos=list(envelope.rcpt_tos),
                content=envelope.content,
                session_id=id(session),
            )
        )
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 and a free port, recording what it receives."""
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


# Path -> (HTTP status, body) the fake robot answers with.
ROBOT_ANSWERS: dict[str, tuple[int, bytes]] = {
    "/ok": (200, b'{"errcode":0,"errmsg":"ok"}'),
    "/invalid-key": (200, b'{"errcode":93000,"errmsg":"invalid webhook url"}'),
    "/wecom-limited": (200, b'{"errcode":45009,"errmsg":"api freq out of limit"}'),
    "/dingtalk-fast": (
        200,
        b'{"errcode":130101,"errmsg":"send too fast, exceed 20 times per minute"}',
    ),
    "/dingtalk-keyword": (200, b'{"errcode":310000,"errmsg":"keywords not in content"}'),
    "/busy": (503, b"Service Unavailable"),
    "/not-json": (200, b"<html>login</html>"),
}


@dataclass
class RobotServer:
    base_url: str
    requests: list[tuple[str, dict[str, str], Any]]

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest.fixture
def robot_server() -> Iterator[RobotServer]:
    """A local HTTP server that answers like WeCom/DingTalk robots, by path."""
    requests: list[tuple[str, dict[str, str], Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length).decode("utf-8"))
            requests.append((self.path, dict(self.headers), body))
            status, answer = ROBOT_ANSWERS.get(self.path.split("?")[0], (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield RobotServer(f"http://127.0.0.1:{server.server_address[1]}", requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
