"""Scheduler fixtures: the small world with purchases, a real SMTP server, mail helpers."""

from __future__ import annotations

import email
from datetime import datetime
from email.policy import default as default_policy

import pytest
from sqlalchemy import text

from notifications.channels import EmailChannel, WebhookChannel
from tests.conftest import World
from tests.notifications.conftest import SmtpServer, robot_server, smtp_server  # noqa: F401  (fixtures)
from workflow.domain import clock
from workflow.store.tables import Database

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
