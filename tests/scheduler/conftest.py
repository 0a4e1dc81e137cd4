"""Scheduler fixtures: the small world with purchases, a real SMTP server, mail helpers."""

from __future__ import annotations

import asyncio
import email
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import insert, text

from notifications.channels import EmailChannel, WebhookChannel, message_id_for
from tests.conftest import World
from tests.notifications.conftest import (  # noqa: F401  (fixtures)
    RecordingHandler,
    SmtpServer,
    free_port,
    robot_server,
    smtp_server,
)
from workflow.domain import clock
from workflow.store.tables import Database, Notification, User

BASE_URL = "https://bangfu.test"
#: 30 days before 31 December, at the reminder hour (China time).
DEC_1_0900 = clock.parse_instant("2021-12-01T09:00")


def channels_for(server: SmtpServer) -> dict[str, object]:
    return {
        "email": EmailChannel(server.host, server.port, "bangfu@example.test", timeout=5),
        "wecom": WebhookChannel("wecom"),
        "dingtalk": WebhookChannel("dingtalk"),
    }


def mails(server: SmtpServer) -> list[email.message.EmailMessage]:
    out = []
    for r in server.handler.received:
        msg = email.message_from_bytes(r.content, policy=default_policy)
        assert isinstance(msg, email.message.EmailMessage)
        out.append(msg)
    return out


def body(msg: email.message.EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def message_ids(server: SmtpServer) -> list[str]:
    return sorted(str(m["Message-ID"]) for m in mails(server))


def rows(db: Database, where: str = "1=1", **params: object) -> list[dict[str, object]]:
    with db.engine.connect() as conn:
        result = conn.execute(text(f"SELECT * FROM notification WHERE {where} ORDER BY id"), params)
        return [dict(r._mapping) for r in result]


def system_history(db: Database, trigger: str) -> list[dict[str, object]]:
    with db.engine.connect() as conn:
        result = conn.execute(
            text("SELECT h.*, o.code FROM history h JOIN record r ON r.id = h.record_id"
                 " JOIN organisation o ON o.id = r.org_id WHERE h.trigger = :t ORDER BY o.code"),
            {"t": trigger},
        )
        return [dict(r._mapping) for r in result]


def setup_round(w: World) -> None:
    """G1 planned 600 yuan × 100 members, spent 47,654.40 (12,345.60 left); G2 a nil plan;
    G3 submitted with 1,200 spent; G4 planned 300 × 10, spent it all; G5 not planned."""
    w.plan("G1", 60000, 100)
    w.buy("G1", "G1-1", 4765440, 80)
    w.plan("G2", 0, 50)
    w.to_submitted("G3")
    w.plan("G4", 30000, 10)
    w.buy("G4", "G4-1", 300000, 10)


@pytest.fixture()
def round_world(any_world: World) -> World:
    setup_round(any_world)
    return any_world


def at(text_: str) -> datetime:
    return clock.parse_instant(text_)


# --- drills: a slow SMTP server and a backlog ------------------------------------------------


class SlowHandler(RecordingHandler):
    """Takes ``delay`` seconds per message before accepting it, like a slow relay."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.controller: Controller | None = None

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture()
def slow_smtp() -> Iterator[SmtpServer]:
    """A real aiosmtpd server taking 50 ms per message."""
    handler = SlowHandler(0.05)
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    handler.controller = controller  # an outage drill stops and restarts it
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        handler.controller.stop()


def received_pairs(server: SmtpServer, prefix: str = "drill") -> list[tuple[str, str]]:
    """(Message-ID, recipient) of every accepted mail to a recipient starting with
    ``prefix``, headers only."""
    parser = BytesHeaderParser()
    out: list[tuple[str, str]] = []
    for r in list(server.handler.received):
        headers = parser.parsebytes(r.content)
        out.extend((str(headers["Message-ID"]), rcpt) for rcpt in r.rcpt_tos
                   if rcpt.startswith(prefix))
    return out


def backlog(db: Database, n: int, *, first_user: int = 1000) -> list[tuple[str, str]]:
    """``n`` users with an address and one pending e-mail row each; returns the expected
    (Message-ID, recipient) pairs."""
    payload = json.dumps({"union_name": "演练工会", "quota_fen": 4_800_000, "used_fen": 3_565_440,
                          "left_fen": 1_234_560, "deadline": "2021-12-31", "days_left": 30,
                          "path": "/records/1"}, ensure_ascii=False)
    ids = range(first_user, first_user + n)
    with db.begin() as s:
        s.execute(insert(User.__table__), [  # type: ignore[attr-defined]
            dict(id=i, username=f"drill{i}", display_name=f"演练{i}",
                 email=f"drill{i}@example.test", is_active=True, channels="inbox,email")
            for i in ids])
        s.execute(insert(Notification.__table__), [  # type: ignore[attr-defined]
            dict(user_id=i, channel="email", source=f"drill:{i}", kind="quota_reminder",
                 payload=payload, status="pending", attempts=0) for i in ids])
    return sorted((message_id_for(f"{i}:email:drill:{i}"), f"drill{i}@example.test")
                  for i in ids)


@dataclass
class SmsProvider:
    base_url: str
    requests: list[tuple[str, dict[str, str], Any]]

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest.fixture()
def sms_provider() -> Iterator[SmsProvider]:
    """A recording HTTP server standing in for the SMS provider: ``/send`` accepts,
    ``/refuse`` refuses the number, ``/busy`` answers 503."""
    requests: list[tuple[str, dict[str, str], Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length).decode("utf-8"))
            requests.append((self.path, dict(self.headers), body))
            status, answer = {"/send": (200, b'{"code": "OK", "id": "m1"}'),
                              "/refuse": (200, b'{"code": "isv.MOBILE_NUMBER_ILLEGAL"}'),
                              "/busy": (503, b"busy")}.get(self.path, (404, b""))
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield SmsProvider(f"http://127.0.0.1:{server.server_port}", requests)
    finally:
        server.shutdown()
        server.server_close()
