"""EmailChannel against a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest

from notifications.channels import (
    EMAIL,
    Channel,
    EmailChannel,
    OutgoingMessage,
    PermanentDeliveryError,
    TemporaryDeliveryError,
    message_id_for,
)
from notifications.templates import SAMPLES, render
from tests.notifications.conftest import SmtpServer, free_port

SENDER = "广东省总工会消费帮扶 <noreply@bangfu.example>"


def make_channel(server: SmtpServer) -> EmailChannel:
    return EmailChannel(server.host, server.port, SENDER, timeout=5)


def quota_message(
    recipient: str, key: str = "quota_reminder:2021:4401:2021-12-21"
) -> OutgoingMessage:
    context = SAMPLES["quota_reminder"]
    return OutgoingMessage(
        key=key,
        recipient=recipient,
        rendered=render("quota_reminder", context),
        link=context["link"],
    )


def parse(content: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(content, policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_message_id_is_deterministic() -> None:
    first = message_id_for("k-1")
    assert first == message_id_for("k-1")
    assert first != message_id_for("k-2")
    assert first.startswith("<") and first.endswith("@bangfu.local>")
    assert len(first) == len("<@bangfu.local>") + 32


def test_email_channel_is_a_channel(smtp_server: SmtpServer) -> None:
    channel = make_channel(smtp_server)
    assert isinstance(channel, Channel)
    assert channel.name == EMAIL


def test_send_delivers_a_chinese_multipart_mail(smtp_server: SmtpServer) -> None:
    msg = quota_message("union-4401@example.cn")

    make_channel(smtp_server).send(msg)

    [received] = smtp_server.handler.received
    assert received.rcpt_tos == ["union-4401@example.cn"]
    assert received.mail_from == "noreply@bangfu.example"
    assert received.content.isascii()  # encoded headers and base64 bodies: any relay copes
    mail = parse(received.content)
    assert mail["Subject"] == msg.rendered.subject
    assert "剩余 12,345.60 元" in str(mail["Subject"])
    assert mail["Message-ID"] == message_id_for(msg.key)
    assert mail["From"].addresses[0].display_name == "广东省总工会消费帮扶"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail.get_content_type() == "multipart/alternative"
    text_part = mail.get_body(preferencelist=("plain",))
    html_part = mail.get_body(preferencelist=("html",))
    assert text_part is not None and html_part is not None
    text = text_part.get_content()
    html = html_part.get_content()
    assert "剩余 12,345.60 元，截止 2021年12月31日" in text
    assert "剩余 <strong>12,345.60 元</strong>，截止 <strong>2021年12月31日</strong>" in html
    assert msg.link in text and msg.link in html


def test_resend_carries_the_same_message_id(smtp_server: SmtpServer) -> None:
    channel = make_channel(smtp_server)
    msg = quota_message("union-4401@example.cn")

    channel.send(msg)
    channel.send(msg)

    ids = {parse(r.content)["Message-ID"] for r in smtp_server.handler.received}
    assert ids == {message_id_for(msg.key)}


def test_html_part_escapes_a_hostile_union_name(smtp_server: SmtpServer) -> None:
    context = {**SAMPLES["quota_reminder"], "union_name": "<script>alert(1)</script>"}
    msg = OutgoingMessage("k", "a@example.cn", render("quota_reminder", context), context["link"])

    make_channel(smtp_server).send(msg)

    mail = parse(smtp_server.handler.received[0].content)
    html_part = mail.get_body(preferencelist=("html",))
    text_part = mail.get_body(preferencelist=("plain",))
    assert html_part is not None and text_part is not None
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_part.get_content()
    assert "<script>" not in html_part.get_content()
    assert "<script>alert(1)</script>" in text_part.get_content()


def test_refused_recipient_is_permanent(smtp_server: SmtpServer) -> None:
    with pytest.raises(PermanentDeliveryError) as caught:
        make_channel(smtp_server).send(quota_message("reject@example.cn", key="k-550"))

    assert caught.value.key == "k-550"
    assert caught.value.channel == EMAIL
    assert smtp_server.handler.received == []


def test_greylisted_recipient_is_temporary(smtp_server: SmtpServer) -> None:
    with pytest.raises(TemporaryDeliveryError):
        make_channel(smtp_server).send(quota_message("busy@example.cn"))


def test_unreachable_server_is_temporary() -> None:
    channel = EmailChannel("127.0.0.1", free_port(), SENDER, timeout=2)

    with pytest.raises(TemporaryDeliveryError):
        channel.send(quota_message("a@example.cn"))


def test_header_injection_in_recipient_is_refused(smtp_server: SmtpServer) -> None:
    with pytest.raises(PermanentDeliveryError):
        make_channel(smtp_server).send(quota_message("a@example.cn\r\nBcc: spy@example.cn"))
    assert smtp_server.handler.received == []


def test_send_many_reuses_one_connection_and_reports_each_message(
    smtp_server: SmtpServer,
) -> None:
    msgs = [
        quota_message("one@example.cn", key="k1"),
        quota_message("reject@example.cn", key="k2"),
        quota_message("two@example.cn", key="k3"),
        quota_message("three@example.cn", key="k4"),
    ]

    results = make_channel(smtp_server).send_many(msgs)

    assert [r.key for r in results] == ["k1", "k2", "k3", "k4"]
    assert [r.ok for r in results] == [True, False, True, True]
    assert isinstance(results[1].error, PermanentDeliveryError)
    received = smtp_server.handler.received
    assert [r.rcpt_tos for r in received] == [
        ["one@example.cn"],
        ["two@example.cn"],
        ["three@example.cn"],
    ]
    assert len({r.session_id for r in received}) == 1
    assert [parse(r.content)["Message-ID"] for r in received] == [
        message_id_for(k) for k in ("k1", "k3", "k4")
    ]


def test_send_many_reconnects_after_a_temporary_failure(smtp_server: SmtpServer) -> None:
    msgs = [
        quota_message("one@example.cn", key="k1"),
        quota_message("busy@example.cn", key="k2"),
        quota_message("two@example.cn", key="k3"),
    ]

    results = make_channel(smtp_server).send_many(msgs)

    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, TemporaryDeliveryError)
    assert len({r.session_id for r in smtp_server.handler.received}) == 2


def test_send_many_against_an_unreachable_server_fails_every_message_temporarily() -> None:
    channel = EmailChannel("127.0.0.1", free_port(), SENDER, timeout=2)
    msgs = [quota_message(f"u{i}@example.cn", key=f"k{i}") for i in range(3)]

    results = channel.send_many(msgs)

    assert [r.key for r in results] == ["k0", "k1", "k2"]
    assert all(isinstance(r.error, TemporaryDeliveryError) for r in results)
    assert [r.error.key for r in results if r.error] == ["k0", "k1", "k2"]


def test_send_many_of_nothing_opens_no_connection(smtp_server: SmtpServer) -> None:
    assert make_channel(smtp_server).send_many([]) == []


def test_starttls_required_but_not_offered_is_permanent(smtp_server: SmtpServer) -> None:
    channel = EmailChannel(smtp_server.host, smtp_server.port, SENDER, use_tls=True, timeout=5)

    with pytest.raises(PermanentDeliveryError, match="extension"):
        channel.send(quota_message("a@example.cn"))
    assert smtp_server.handler.received == []
