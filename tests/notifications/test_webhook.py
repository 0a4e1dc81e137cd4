"""WebhookChannel against a local HTTP server; the rate limiter on a fake clock."""

from __future__ import annotations

import json

import pytest

from notifications.channels import (
    INBOX,
    SMS,
    Channel,
    NullInboxChannel,
    OutgoingMessage,
    PermanentDeliveryError,
    RecordingSmsGateway,
    SlidingWindowLimiter,
    SmsChannel,
    TemporaryDeliveryError,
    WebhookChannel,
)
from notifications.templates import KINDS, SAMPLES, render
from tests.notifications.conftest import RobotServer, free_port


class FakeClock:
    """A monotonic clock that only moves when told to or when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def digest_message(url: str, key: str = "digest:4401:2021-12-10") -> OutgoingMessage:
    context = SAMPLES["reviewer_digest"]
    return OutgoingMessage(key, url, render("reviewer_digest", context), context["link"])


def make_channel(kind: str = "wecom", clock: FakeClock | None = None) -> WebhookChannel:
    clock = clock or FakeClock()
    return WebhookChannel(kind, timeout=5, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]


def test_wecom_posts_a_markdown_message(robot_server: RobotServer) -> None:
    channel = make_channel("wecom")
    msg = digest_message(robot_server.url("/ok?key=SECRET"))

    channel.send(msg)

    [(path, headers, body)] = robot_server.requests
    assert path == "/ok?key=SECRET"
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert body == channel.payload(msg)
    assert set(body) == {"msgtype", "markdown"}
    assert body["msgtype"] == "markdown"
    assert set(body["markdown"]) == {"content"}
    content = body["markdown"]["content"]
    assert content.startswith(f"**{msg.rendered.subject}**")
    assert "某学校工会委员会，提交时间 2021年12月10日 14:30" in content
    assert content.endswith(f"[打开记录]({msg.link})")


def test_dingtalk_posts_title_and_text(robot_server: RobotServer) -> None:
    channel = make_channel("dingtalk")
    msg = digest_message(robot_server.url("/ok?access_token=SECRET"))

    channel.send(msg)

    [(_, _, body)] = robot_server.requests
    assert body["msgtype"] == "markdown"
    assert set(body["markdown"]) == {"title", "text"}
    assert body["markdown"]["title"] == msg.rendered.subject
    assert "消费帮扶" in body["markdown"]["text"]  # DingTalk robots may filter on a keyword
    assert body["markdown"]["text"].endswith(f"[打开记录]({msg.link})")


def test_nonzero_errcode_with_200_is_a_permanent_failure(robot_server: RobotServer) -> None:
    with pytest.raises(PermanentDeliveryError, match="93000") as caught:
        make_channel("wecom").send(digest_message(robot_server.url("/invalid-key?key=SECRET")))

    assert caught.value.key == "digest:4401:2021-12-10"
    assert caught.value.channel == "wecom"
    assert "SECRET" not in str(caught.value)  # the robot token never reaches a log line


@pytest.mark.parametrize(
    ("kind", "path"), [("wecom", "/wecom-limited"), ("dingtalk", "/dingtalk-fast")]
)
def test_robot_rate_limit_codes_are_temporary(
    robot_server: RobotServer, kind: str, path: str
) -> None:
    with pytest.raises(TemporaryDeliveryError):
        make_channel(kind).send(digest_message(robot_server.url(path)))


def test_dingtalk_keyword_refusal_is_permanent(robot_server: RobotServer) -> None:
    with pytest.raises(PermanentDeliveryError, match="310000"):
        make_channel("dingtalk").send(digest_message(robot_server.url("/dingtalk-keyword")))


def test_http_503_is_temporary(robot_server: RobotServer) -> None:
    with pytest.raises(TemporaryDeliveryError, match="503"):
        make_channel().send(digest_message(robot_server.url("/busy")))


def test_http_404_and_non_json_answers_are_permanent(robot_server: RobotServer) -> None:
    with pytest.raises(PermanentDeliveryError, match="404"):
        make_channel().send(digest_message(robot_server.url("/nowhere")))
    with pytest.raises(PermanentDeliveryError, match="not a robot answer"):
        make_channel().send(digest_message(robot_server.url("/not-json")))


def test_unreachable_robot_is_temporary() -> None:
    with pytest.raises(TemporaryDeliveryError):
        make_channel().send(digest_message(f"http://127.0.0.1:{free_port()}/ok"))


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.cn/x", "not a url"])
def test_only_http_urls_are_posted_to(url: str) -> None:
    with pytest.raises(PermanentDeliveryError, match="http"):
        make_channel().send(digest_message(url))


def test_the_21st_message_within_a_minute_waits(robot_server: RobotServer) -> None:
    clock = FakeClock()
    channel = make_channel("wecom", clock)
    url = robot_server.url("/ok?key=A")

    for i in range(20):
        channel.send(digest_message(url, key=f"k{i}"))
        clock.now += 1.0  # 20 messages spread over 20 seconds
    assert clock.sleeps == []

    channel.send(digest_message(url, key="k20"))

    # The first message went at t=1000; the 21st may go at t=1060, it asked at t=1020.
    assert clock.sleeps == [pytest.approx(40.0)]
    assert len(robot_server.requests) == 21


def test_limiter_counts_per_url(robot_server: RobotServer) -> None:
    clock = FakeClock()
    channel = make_channel("wecom", clock)

    for i in range(20):
        channel.send(digest_message(robot_server.url("/ok?key=A"), key=f"a{i}"))
    channel.send(digest_message(robot_server.url("/ok?key=B"), key="b0"))

    assert clock.sleeps == []


def test_sliding_window_frees_slots_as_they_age() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(3, 60.0, clock=clock, sleep=clock.sleep)

    for _ in range(3):
        assert limiter.acquire("u") == 0.0
        clock.now += 10.0  # events at 1000, 1010, 1020; now 1030
    assert limiter.acquire("u") == pytest.approx(30.0)  # waits until 1060
    assert clock.now == pytest.approx(1060.0)
    clock.now += 10.0  # 1070: the 1010 event has aged out
    assert limiter.acquire("u") == 0.0
    assert clock.sleeps == [pytest.approx(30.0)]


def test_limiter_refuses_a_zero_budget() -> None:
    with pytest.raises(ValueError):
        SlidingWindowLimiter(0)


def test_robots_carry_only_digests_and_overdue_notices() -> None:
    accepted = {kind for kind in KINDS if WebhookChannel.accepts(kind)}
    assert accepted == {"reviewer_digest", "overdue_notice"}
    assert make_channel().accepts("quota_reminder") is False


def test_user_text_cannot_inject_markdown_links() -> None:
    context = {**SAMPLES["overdue_notice"], "child_org_name": "[点此领奖](http://evil.example)<b>"}
    msg = OutgoingMessage(
        "k", "http://x.example/", render("overdue_notice", context), context["link"]
    )

    content = make_channel("wecom").payload(msg)["markdown"]["content"]

    assert "](http://evil.example)" not in content
    assert "<b>" not in content
    assert "［点此领奖］" in content


@pytest.mark.parametrize(("kind", "limit"), [("wecom", 4096), ("dingtalk", 20000)])
def test_long_digests_are_cut_to_the_robot_limit_keeping_the_link(kind: str, limit: int) -> None:
    context = dict(SAMPLES["reviewer_digest"])
    row = context["not_submitted"][0]
    context["not_submitted"] = [{**row, "name": f"第{i}街道总工会"} for i in range(400)]
    msg = OutgoingMessage(
        "k", "http://x.example/", render("reviewer_digest", context), "https://b.example/review"
    )

    markdown = make_channel(kind).payload(msg)["markdown"]
    text = markdown["content"] if kind == "wecom" else markdown["text"]

    assert len(text.encode("utf-8")) <= limit
    assert "已截断" in text
    assert text.endswith("[打开记录](https://b.example/review)")
    json.dumps(markdown, ensure_ascii=False).encode("utf-8")  # still valid UTF-8 after cutting


def test_unknown_webhook_kind() -> None:
    with pytest.raises(ValueError):
        WebhookChannel("slack")  # type: ignore[arg-type]


def test_webhook_channel_is_a_channel() -> None:
    assert isinstance(make_channel("dingtalk"), Channel)
    assert make_channel("dingtalk").name == "dingtalk"


def test_inbox_channel_does_nothing() -> None:
    channel = NullInboxChannel()
    assert channel.name == INBOX == "inbox"
    assert isinstance(channel, Channel)
    channel.send(digest_message("user:42"))


def test_sms_channel_sends_subject_and_link_through_the_gateway() -> None:
    gateway = RecordingSmsGateway()
    channel = SmsChannel(gateway)
    msg = digest_message("13800000000")

    channel.send(msg)

    assert channel.name == SMS
    assert gateway.sent == [("13800000000", f"{msg.rendered.subject} {msg.link}")]
    gateway.fail_with = TemporaryDeliveryError("gateway down", channel=SMS)
    with pytest.raises(TemporaryDeliveryError):
        channel.send(msg)
