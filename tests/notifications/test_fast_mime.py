"""The e-mail channel's fast path (issue 12.3): bytes assembled from a skeleton built once
read exactly like the full ``EmailMessage`` (same headers, same decoded bodies)."""

from __future__ import annotations

import email
from email.policy import default

import pytest

from notifications.channels import EmailChannel, OutgoingMessage
from notifications.templates import KINDS, SAMPLES, render


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("sender", ["bangfu@example.test", "广东省总工会 <noreply@example.cn>"])
def test_fast_bytes_read_like_the_full_message(kind: str, sender: str) -> None:
    channel = EmailChannel("127.0.0.1", 25, sender)
    msg = OutgoingMessage(key=f"7:email:reminder:{kind}", recipient="clerk.g1@example.test",
                          rendered=render(kind, SAMPLES[kind]), link="https://bangfu.test/")
    fast = channel.raw_message(msg)
    assert isinstance(fast, bytes)
    a = email.message_from_bytes(fast, policy=default)
    b = email.message_from_bytes(channel.build_message(msg).as_bytes(), policy=default)
    for header in ("From", "To", "Subject", "Message-ID", "Auto-Submitted", "MIME-Version"):
        assert str(a[header]) == str(b[header]), header
    assert a.get_content_type() == "multipart/alternative" and not a.defects
    for part in ("plain", "html"):
        pa, pb = a.get_body((part,)), b.get_body((part,))
        assert pa is not None and pb is not None
        assert pa.get_content() == pb.get_content()
        assert pa["Content-Transfer-Encoding"] == "base64"
    assert all(len(line) <= 78 for line in fast.split(b"\r\n"))


def test_an_address_with_a_display_name_takes_the_full_path() -> None:
    channel = EmailChannel("127.0.0.1", 25, "bangfu@example.test")
    msg = OutgoingMessage(key="k", recipient="张三 <z@example.test>",
                          rendered=render("quota_reminder", SAMPLES["quota_reminder"]), link="x")
    assert not isinstance(channel.raw_message(msg), bytes)
