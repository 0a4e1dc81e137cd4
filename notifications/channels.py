"""Delivery channels: e-mail over SMTP, group-robot webhooks, the in-app inbox and an SMS seam.

A channel takes one ``OutgoingMessage`` (already rendered) and either returns or raises::

    DeliveryError                    base: carries channel, key and a redacted recipient
    ├── PermanentDeliveryError       retrying will not help: bad address, refused by the
    │                                server (5xx), robot disabled, wrong token, bad URL
    └── TemporaryDeliveryError       retry later: connection refused or dropped, timeout,
                                     SMTP 4xx, HTTP 5xx/429, robot rate limit

The outbox delivery loop (workflow side) marks a row sent on return, schedules a retry on
``TemporaryDeliveryError`` and marks it failed on ``PermanentDeliveryError``. Channels never
retry by themselves; the next sweep does, and because a resend of the same notification carries
the same ``Message-ID`` (``message_id_for``), mail clients show it once.

Channels know nothing about SQL, Celery or the workflow; they are built by the workflow side.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import smtplib
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, parseaddr
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from notifications.templates import Rendered

__all__ = [
    "EMAIL",
    "INBOX",
    "ROBOT_KINDS",
    "SMS",
    "Channel",
    "DeliveryError",
    "DeliveryResult",
    "EmailChannel",
    "HttpSmsGateway",
    "NullInboxChannel",
    "OutgoingMessage",
    "PermanentDeliveryError",
    "RecordingSmsGateway",
    "SlidingWindowLimiter",
    "SmsChannel",
    "SmsGateway",
    "TemporaryDeliveryError",
    "WebhookChannel",
    "message_id_for",
]

EMAIL = "email"
INBOX = "inbox"
SMS = "sms"

ROBOT_KINDS: frozenset[str] = frozenset({"reviewer_digest", "overdue_notice"})
"""Kinds a group robot may carry: federation digests, never personal reminders."""


# --------------------------------------------------------------------------- errors


class DeliveryError(Exception):
    """A message could not be delivered.

    Attributes:
        channel: the channel name (``email``, ``wecom``, ...).
        key: the notification key, if known.
        recipient: the recipient with any URL query (robot tokens) removed.
    """

    def __init__(
        self, message: str, *, channel: str, key: str | None = None, recipient: str | None = None
    ) -> None:
        self.channel = channel
        self.key = key
        self.recipient = _redact(recipient) if recipient is not None else None
        super().__init__(message)

    def __str__(self) -> str:
        where = f" (channel={self.channel}, key={self.key}, recipient={self.recipient})"
        return super().__str__() + where


class PermanentDeliveryError(DeliveryError):
    """Retrying the same message will fail again; a person must fix data or configuration."""


class TemporaryDeliveryError(DeliveryError):
    """The message may go through later; the outbox should retry it with backoff."""


def _redact(recipient: str) -> str:
    # Robot URLs carry their secret in the query (?key=..., ?access_token=...): never log it.
    parts = urlsplit(recipient)
    if parts.scheme in ("http", "https") and parts.query:
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "***", ""))
    return recipient


# --------------------------------------------------------------------------- the contract


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One notification ready to send.

    Attributes:
        key: the unique notification key (the outbox row's); resends reuse it.
        recipient: an e-mail address, a webhook URL or a user id, depending on the channel.
        rendered: the rendered subject, text and HTML.
        link: the absolute URL of the record.
    """

    key: str
    recipient: str
    rendered: Rendered
    link: str


@runtime_checkable
class Channel(Protocol):
    """Anything that delivers an ``OutgoingMessage``.

    Attributes:
        name: the channel name stored in the outbox row (part of its unique key).
    """

    name: str

    def send(self, msg: OutgoingMessage) -> None:
        """Deliver one message or raise a ``DeliveryError``."""
        ...


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """The outcome of one message in a batch.

    Attributes:
        key: the notification key.
        error: ``None`` on success, else the error that message got.
    """

    key: str
    error: DeliveryError | None = None

    @property
    def ok(self) -> bool:
        """True if the message was accepted by the server."""
        return self.error is None


# --------------------------------------------------------------------------- e-mail


def message_id_for(key: str) -> str:
    """Derive the Message-ID of a notification from its key.

    A resend of the same notification carries the same Message-ID, so mail clients and
    servers that de-duplicate on it show it once.

    Args:
        key: the unique notification key.

    Returns:
        ``"<{first 32 hex digits of sha256(key)}@bangfu.local>"``.
    """
    return f"<{hashlib.sha256(key.encode('utf-8')).hexdigest()[:32]}@bangfu.local>"


class EmailChannel:
    """E-mail over SMTP: multipart/alternative (text, HTML), UTF-8, deterministic Message-ID.

    Args:
        host: the SMTP server.
        port: its port (25/587 plain or STARTTLS, 465 with ``implicit_tls``).
        sender: the From address, optionally with a display name
            (``"广东省总工会 <noreply@example.cn>"``).
        use_tls: upgrade the connection with STARTTLS (certificate verified).
        username: log in with this user if given.
        password: and this password.
        timeout: socket timeout in seconds.
        implicit_tls: connect with TLS from the start (SMTPS, port 465).
    """

    name = EMAIL

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        use_tls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10,
        *,
        implicit_tls: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.use_tls = use_tls
        self.username = username
        self.password = password
        self.timeout = timeout
        self.implicit_tls = implicit_tls
        self._built: tuple[bytes, bytes, bytes, bytes] | None = None
        self._envelope_from = parseaddr(sender)[1] or sender

    def build_message(self, msg: OutgoingMessage) -> EmailMessage:
        """Build the MIME message for one notification.

        Args:
            msg: the notification.

        Returns:
            A multipart/alternative message with base64 UTF-8 text and HTML parts.

        Raises:
            PermanentDeliveryError: if the recipient or sender is not a valid address header
                (for instance one containing a line break).
        """
        mime = EmailMessage(policy=SMTP_POLICY)
        try:
            mime["From"] = self.sender
            mime["To"] = msg.recipient
            mime["Subject"] = msg.rendered.subject
        except (ValueError, IndexError) as exc:
            raise PermanentDeliveryError(
                f"invalid header: {exc}", channel=self.name, key=msg.key, recipient=msg.recipient
            ) from exc
        mime["Date"] = formatdate(usegmt=True)
        mime["Message-ID"] = message_id_for(msg.key)
        # RFC 3834: tells vacation responders not to answer a machine.
        mime["Auto-Submitted"] = "auto-generated"
        # base64 keeps Chinese text 7-bit clean for any relay, at 4/3 the size (QP would triple).
        mime.set_content(msg.rendered.text, subtype="plain", charset="utf-8", cte="base64")
        mime.add_alternative(msg.rendered.html, subtype="html", charset="utf-8", cte="base64")
        return mime

    def raw_message(self, msg: OutgoingMessage) -> EmailMessage | bytes:
        """The message as bytes, assembled from a skeleton built once per channel.

        The same MIME structure as :meth:`build_message` (multipart/alternative, base64 UTF-8
        text and HTML, the same headers), but only the per-recipient parts are made per
        message: To, Subject (RFC 2047), Date, Message-ID and the two base64 bodies. About 20
        times cheaper than building and flattening an ``EmailMessage``. A recipient that is not
        a plain ASCII address (display names, international addresses) takes the full path.
        """
        if not _PLAIN_ADDRESS.fullmatch(msg.recipient):
            return self.build_message(msg)
        head, middle, tail, end = self._skeleton()
        subject = msg.rendered.subject
        if subject.isascii() and len(subject) < 60 and "\n" not in subject and "\r" not in subject:
            subject_line = f"Subject: {subject}\r\n"
        else:
            subject_line = "Subject: " + _encoded_words(subject) + "\r\n"
        return b"".join((
            head, f"To: {msg.recipient}\r\n".encode("ascii"), subject_line.encode("ascii"),
            f"Date: {formatdate(usegmt=True)}\r\nMessage-ID: {message_id_for(msg.key)}\r\n"
            .encode("ascii"),
            middle, _b64(msg.rendered.text), tail, _b64(msg.rendered.html), end,
        ))

    def _skeleton(self) -> tuple[bytes, bytes, bytes, bytes]:
        if self._built is None:
            probe = EmailMessage(policy=SMTP_POLICY)
            try:
                probe["From"] = self.sender
            except (ValueError, IndexError) as exc:
                raise PermanentDeliveryError(f"invalid header: {exc}", channel=self.name) from exc
            boundary = "===============bangfu-alternative=="
            part = "Content-Type: text/{0}; charset=\"utf-8\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            self._built = (
                probe.as_bytes().split(b"\r\n\r\n", 1)[0] + b"\r\n",
                ("Auto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n"
                 f"Content-Type: multipart/alternative;\r\n boundary=\"{boundary}\"\r\n\r\n"
                 f"--{boundary}\r\n" + part.format("plain")).encode("ascii"),
                (f"--{boundary}\r\n" + part.format("html")).encode("ascii"),
                f"--{boundary}--\r\n".encode("ascii"),
            )
            self._envelope_from = parseaddr(self.sender)[1] or self.sender
        return self._built

    def send(self, msg: OutgoingMessage) -> None:
        """Send one notification on its own connection.

        Args:
            msg: the notification; ``recipient`` is an e-mail address.

        Raises:
            TemporaryDeliveryError: connection problems, timeouts, SMTP 4xx.
            PermanentDeliveryError: SMTP 5xx, bad addresses, TLS certificate failures.
        """
        mime = self.raw_message(msg)
        with self._connection(msg) as smtp:
            self._deliver(smtp, msg, mime)

    def send_many(self, msgs: Iterable[OutgoingMessage]) -> list[DeliveryResult]:
        """Send many notifications over one SMTP connection.

        A refused message does not stop the batch. If the connection drops, the next message
        opens a new one; if connecting fails, the remaining messages fail with the same
        temporary error instead of each waiting for its own timeout.

        Args:
            msgs: the notifications, in sending order.

        Returns:
            One ``DeliveryResult`` per message, in the same order.
        """
        results: list[DeliveryResult] = []
        smtp: smtplib.SMTP | None = None
        connect_error: DeliveryError | None = None
        try:
            for msg in msgs:
                if connect_error is not None:
                    results.append(DeliveryResult(msg.key, _rekey(connect_error, msg)))
                    continue
                try:
                    mime = self.raw_message(msg)
                    if smtp is None:
                        try:
                            smtp = self._connect(msg)
                        except DeliveryError as exc:
                            connect_error = exc
                            raise
                    self._deliver(smtp, msg, mime)
                except DeliveryError as exc:
                    results.append(DeliveryResult(msg.key, exc))
                    if isinstance(exc, TemporaryDeliveryError) and smtp is not None:
                        # The connection may be unusable: start afresh for the next message.
                        _quit_quietly(smtp)
                        smtp = None
                else:
                    results.append(DeliveryResult(msg.key))
        finally:
            if smtp is not None:
                _quit_quietly(smtp)
        return results

    @contextmanager
    def session(self) -> Iterator[Callable[[OutgoingMessage], None]]:
        """One SMTP connection for several messages sent one at a time.

        Unlike :meth:`send_many`, each call returns (or raises) before the next message is
        sent, so the caller can record every message as sent before sending the next one.
        The connection opens on the first message and reopens after a temporary error.

        Yields:
            ``send(msg)``, raising ``DeliveryError`` like :meth:`send`.
        """
        held: list[smtplib.SMTP] = []

        def send(msg: OutgoingMessage) -> None:
            mime = self.raw_message(msg)
            if not held:
                held.append(self._connect(msg))
            try:
                self._deliver(held[0], msg, mime)
            except TemporaryDeliveryError:
                _quit_quietly(held.pop())
                raise

        try:
            yield send
        finally:
            if held:
                _quit_quietly(held.pop())

    def probe(self) -> None:
        """Open a connection and close it again: is the server reachable (and does it accept
        the login)? Sends no message.

        Raises:
            DeliveryError: as :meth:`send` would for the connection.
        """
        probe = OutgoingMessage(key="probe", recipient="", rendered=_NO_CONTENT, link="")
        _quit_quietly(self._connect(probe))

    # -- internals

    @contextmanager
    def _connection(self, msg: OutgoingMessage) -> Iterator[smtplib.SMTP]:
        smtp = self._connect(msg)
        try:
            yield smtp
        finally:
            _quit_quietly(smtp)

    def _connect(self, msg: OutgoingMessage) -> smtplib.SMTP:
        smtp: smtplib.SMTP | None = None
        try:
            if self.implicit_tls:
                smtp = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    timeout=self.timeout,
                    context=ssl.create_default_context(),
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            smtp.ehlo()
            if self.use_tls and not self.implicit_tls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.username is not None:
                smtp.login(self.username, self.password or "")
            return smtp
        except (smtplib.SMTPException, OSError) as exc:
            if smtp is not None:
                _quit_quietly(smtp)
            raise self._classify(exc, msg) from exc

    def _deliver(self, smtp: smtplib.SMTP, msg: OutgoingMessage,
                 mime: EmailMessage | bytes) -> None:
        try:
            if isinstance(mime, bytes):
                smtp.sendmail(self._envelope_from, [msg.recipient], mime)
            else:
                smtp.send_message(mime, from_addr=None, to_addrs=[msg.recipient])
        except (smtplib.SMTPException, OSError) as exc:
            raise self._classify(exc, msg) from exc

    def _classify(self, exc: BaseException, msg: OutgoingMessage) -> DeliveryError:
        def err(cls: type[DeliveryError], text: str) -> DeliveryError:
            return cls(text, channel=self.name, key=msg.key, recipient=msg.recipient)

        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            cls = _by_smtp_code(min(codes) if codes else 550)
            return err(cls, f"recipient refused: {exc.recipients}")
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return err(TemporaryDeliveryError, f"server disconnected: {exc}")
        if isinstance(exc, smtplib.SMTPResponseException):
            # Includes SMTPConnectError, SMTPSenderRefused, SMTPDataError, SMTPAuthenticationError.
            return err(_by_smtp_code(exc.smtp_code), f"SMTP {exc.smtp_code}: {exc.smtp_error!r}")
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return err(PermanentDeliveryError, f"server lacks a required extension: {exc}")
        if isinstance(exc, ssl.SSLCertVerificationError):
            return err(PermanentDeliveryError, f"TLS certificate rejected: {exc}")
        if isinstance(exc, OSError | smtplib.SMTPException):
            return err(TemporaryDeliveryError, f"{type(exc).__name__}: {exc}")
        return err(PermanentDeliveryError, repr(exc))  # pragma: no cover - defensive


_NO_CONTENT = Rendered(subject="", text="", html="")

_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


def _encoded_words(text: str) -> str:
    """RFC 2047 base64 encoded words of at most 39 UTF-8 bytes each (64 characters), folded
    onto continuation lines: what a mail client decodes back to ``text``."""
    text = text.replace("\r", " ").replace("\n", " ")
    words: list[str] = []
    chunk: list[str] = []
    size = 0
    for ch in text:
        n = len(ch.encode("utf-8"))
        if size + n > 39:
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(ch)
        size += n
    if chunk:
        words.append("".join(chunk))
    return "\r\n ".join(
        "=?utf-8?b?" + base64.b64encode(w.encode("utf-8")).decode("ascii") + "?=" for w in words)


def _b64(text: str) -> bytes:
    # What the email package writes: CRLF line ends and a final one inside the text, base64
    # lines of 76 characters ending in CRLF.
    text = text.replace("\r\n", "\n")
    if not text.endswith("\n"):
        text += "\n"
    body = text.replace("\n", "\r\n").encode("utf-8")
    return base64.encodebytes(body).replace(b"\n", b"\r\n")


def _by_smtp_code(code: int) -> type[DeliveryError]:
    # 4xx are transient by definition (RFC 5321 §4.2.1); anything else odd is treated as final.
    return TemporaryDeliveryError if 400 <= code < 500 or code < 0 else PermanentDeliveryError


def _rekey(error: DeliveryError, msg: OutgoingMessage) -> DeliveryError:
    clone = type(error)(error.args[0], channel=error.channel, key=msg.key, recipient=msg.recipient)
    clone.__cause__ = error.__cause__
    return clone


def _quit_quietly(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


# --------------------------------------------------------------------------- webhooks


class SlidingWindowLimiter:
    """At most ``max_events`` per ``window`` seconds per key, waiting when the window is full.

    Per process: several worker processes each keep their own window, so run robot delivery in
    one queue/worker (or lower ``max_events``) if that matters.

    Args:
        max_events: events allowed in any window.
        window: the window length in seconds.
        clock: a monotonic clock in seconds.
        sleep: called with the seconds to wait.
    """

    def __init__(
        self,
        max_events: int,
        window: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        self.max_events = max_events
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """Wait until an event for ``key`` fits in the window, then record it.

        Args:
            key: what is limited (a webhook URL).

        Returns:
            The total seconds waited (0.0 if none).
        """
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                events = self._events.setdefault(key, deque())
                while events and events[0] <= now - self.window:
                    events.popleft()
                if len(events) < self.max_events:
                    events.append(now)
                    return waited
                delay = events[0] + self.window - now
            self._sleep(delay)
            waited += delay


_TEMPORARY_ROBOT_CODES: dict[str, frozenset[int]] = {
    # WeCom: -1 system busy, 45009 API frequency limit, 45033 concurrency limit.
    "wecom": frozenset({-1, 45009, 45033}),
    # DingTalk: -1 system busy, 130101 "send too fast, exceed 20 times per minute",
    # 410100 throttled.
    "dingtalk": frozenset({-1, 130101, 410100}),
}

_MAX_CONTENT_BYTES = {"wecom": 4096, "dingtalk": 20000}  # the robots' documented limits

_TRUNCATED_NOTE = "\n\n……（内容过长，已截断，请打开链接查看全部）"


class WebhookChannel:
    """Group-robot webhooks of WeCom (企业微信) and DingTalk (钉钉), markdown messages.

    ``recipient`` is the robot's full webhook URL (token included). A 200 answer whose JSON
    ``errcode`` is not 0 is a failure. A client-side sliding-window limiter keeps to
    ``max_per_minute`` messages per URL, as both robots refuse more than 20 a minute.

    Args:
        kind: ``"wecom"`` or ``"dingtalk"``; also the channel ``name``.
        timeout: HTTP timeout in seconds.
        max_per_minute: messages allowed per URL in any 60 seconds.
        clock: monotonic clock for the limiter (injectable for tests).
        sleep: how the limiter waits (injectable for tests).
    """

    def __init__(
        self,
        kind: Literal["wecom", "dingtalk"],
        timeout: float = 10,
        max_per_minute: int = 20,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if kind not in _TEMPORARY_ROBOT_CODES:
            raise ValueError(f"unknown webhook kind: {kind!r}")
        self.kind = kind
        self.name: str = kind
        self.timeout = timeout
        self.limiter = SlidingWindowLimiter(max_per_minute, 60.0, clock=clock, sleep=sleep)

    @staticmethod
    def accepts(kind: str) -> bool:
        """Whether a notification kind may go to a group robot.

        Args:
            kind: the notification kind.

        Returns:
            True only for federation digests and overdue notices (``ROBOT_KINDS``).
        """
        return kind in ROBOT_KINDS

    def payload(self, msg: OutgoingMessage) -> dict[str, Any]:
        """Build the robot's JSON body.

        Args:
            msg: the notification.

        Returns:
            WeCom: ``{"msgtype": "markdown", "markdown": {"content": ...}}``;
            DingTalk: ``{"msgtype": "markdown", "markdown": {"title": ..., "text": ...}}``.
        """
        title = _markdown_safe(msg.rendered.subject)
        body = _markdown_safe(msg.rendered.text.strip())
        tail = f"\n\n[打开记录]({msg.link})"
        head = f"**{title}**\n\n" if self.kind == "wecom" else f"### {title}\n\n"
        limit = _MAX_CONTENT_BYTES[self.kind]
        text = head + body + tail
        if len(text.encode("utf-8")) > limit:
            room = limit - len((head + _TRUNCATED_NOTE + tail).encode("utf-8"))
            body = body.encode("utf-8")[: max(room, 0)].decode("utf-8", errors="ignore")
            text = head + body + _TRUNCATED_NOTE + tail
        if self.kind == "wecom":
            return {"msgtype": "markdown", "markdown": {"content": text}}
        return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}

    def send(self, msg: OutgoingMessage) -> None:
        """POST one markdown message to the robot URL in ``msg.recipient``.

        Args:
            msg: the notification.

        Raises:
            TemporaryDeliveryError: HTTP 5xx/429, timeouts, connection errors, robot
                rate-limit or busy codes.
            PermanentDeliveryError: a non-http(s) URL, other HTTP 4xx, a non-JSON answer,
                any other non-zero ``errcode``.
        """

        def err(cls: type[DeliveryError], text: str) -> DeliveryError:
            return cls(text, channel=self.name, key=msg.key, recipient=msg.recipient)

        if urlsplit(msg.recipient).scheme not in ("http", "https"):
            raise err(PermanentDeliveryError, "webhook URL must be http(s)")
        data = json.dumps(self.payload(msg), ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(
            msg.recipient,
            data=data,
            headers={"Content-Type": "application/json; charset=utf-8"},
            method="POST",
        )
        self.limiter.acquire(msg.recipient)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            transient = exc.code >= 500 or exc.code == 429
            cls = TemporaryDeliveryError if transient else PermanentDeliveryError
            raise err(cls, f"HTTP {exc.code}") from exc
        except OSError as exc:  # URLError, timeouts, refused connections
            raise err(TemporaryDeliveryError, f"{type(exc).__name__}: {exc}") from exc
        try:
            answer = json.loads(raw)
            errcode = int(answer.get("errcode", 0))
        except (ValueError, AttributeError, TypeError) as exc:
            raise err(PermanentDeliveryError, f"not a robot answer: {raw[:200]!r}") from exc
        if errcode != 0:
            robot_cls: type[DeliveryError] = (
                TemporaryDeliveryError
                if errcode in _TEMPORARY_ROBOT_CODES[self.kind]
                else PermanentDeliveryError
            )
            raise err(robot_cls, f"errcode {errcode}: {answer.get('errmsg', '')}")


def _markdown_safe(text: str) -> str:
    # Names come from users: a union called "[点此](http://evil)" must not become a link in a
    # federation's group chat, nor "<font ...>" a styled tag. Full-width brackets read the same.
    return text.translate(_MARKDOWN_SAFE)


_MARKDOWN_SAFE = str.maketrans("[]<>", "［］＜＞")


# --------------------------------------------------------------------------- inbox


class NullInboxChannel:
    """The in-app inbox: the outbox row the workflow writes *is* the inbox entry.

    So delivery has nothing to do; this channel exists so the delivery loop treats every
    channel alike.
    """

    name = INBOX

    def send(self, msg: OutgoingMessage) -> None:
        """Do nothing: the row is already in the inbox.

        Args:
            msg: the notification.
        """
        return None


# --------------------------------------------------------------------------- SMS seam


class SmsGateway(Protocol):
    """The SMS provider boundary (none is reachable here).

    Mainland providers send only pre-approved templates; a real gateway maps ``text`` (or the
    notification kind) onto its template and parameters.
    """

    def send_sms(self, phone: str, text: str) -> None:
        """Send one short message or raise a ``DeliveryError``."""
        ...


@dataclass
class RecordingSmsGateway:
    """An in-memory SMS gateway for tests: records what it was asked to send.

    Attributes:
        sent: ``(phone, text)`` pairs, in order.
        fail_with: if set, raised instead of recording.
    """

    sent: list[tuple[str, str]] = field(default_factory=list)
    fail_with: DeliveryError | None = None

    def send_sms(self, phone: str, text: str) -> None:
        """Record the message, or raise ``fail_with``.

        Args:
            phone: the mobile number.
            text: the message text.
        """
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append((phone, text))


class HttpSmsGateway:
    """An SMS provider reached over HTTP: one JSON POST per message.

    The request is ``{"phone": ..., "sign": ..., "text": ..., "key": <message key>}`` with
    ``Authorization: Bearer <api key>``; a 2xx answer whose JSON ``code`` is ``0`` or ``"OK"``
    (or that has no ``code``) means accepted. Mainland providers (Aliyun, Tencent Cloud) differ
    in field names; a deployment puts a small adapter in front of them or subclasses this one.

    Raises on send:
        TemporaryDeliveryError: connection errors, timeouts, HTTP 429 and 5xx.
        PermanentDeliveryError: other HTTP 4xx, a non-JSON answer, any other ``code``.

    Args:
        url: the provider's endpoint (http or https).
        api_key: the provider's key (sent as a bearer token, never logged).
        sign: the approved signature (签名) shown in front of the text.
        timeout: HTTP timeout in seconds.
    """

    def __init__(self, url: str, api_key: str, *, sign: str = "", timeout: float = 10) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("SMS provider URL must be http(s)")
        self.url = url
        self.api_key = api_key
        self.sign = sign
        self.timeout = timeout

    def send_sms(self, phone: str, text: str, key: str | None = None) -> None:
        """POST one message to the provider.

        Args:
            phone: the mobile number.
            text: the message text.
            key: the notification key (lets the provider de-duplicate a resend).
        """

        def err(cls: type[DeliveryError], what: str) -> DeliveryError:
            return cls(what, channel=SMS, key=key, recipient=phone)

        body = json.dumps({"phone": phone, "sign": self.sign, "text": text, "key": key},
                          ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(
            self.url, data=body, method="POST",
            headers={"Content-Type": "application/json; charset=utf-8",
                     "Authorization": f"Bearer {self.api_key}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            transient = exc.code >= 500 or exc.code == 429
            raise err(TemporaryDeliveryError if transient else PermanentDeliveryError,
                      f"HTTP {exc.code}") from exc
        except OSError as exc:
            raise err(TemporaryDeliveryError, f"{type(exc).__name__}: {exc}") from exc
        try:
            answer = json.loads(raw) if raw.strip() else {}
            code = answer.get("code", 0) if isinstance(answer, dict) else None
        except ValueError as exc:
            raise err(PermanentDeliveryError, f"not a provider answer: {raw[:200]!r}") from exc
        if code not in (0, "0", "OK", "ok"):
            raise err(PermanentDeliveryError, f"provider refused: {raw[:200]!r}")


class SmsChannel:
    """SMS through an ``SmsGateway``: the subject and the link, nothing more.

    Args:
        gateway: the provider boundary.
    """

    name = SMS

    def __init__(self, gateway: SmsGateway) -> None:
        self.gateway = gateway

    def send(self, msg: OutgoingMessage) -> None:
        """Send the subject and link to the phone number in ``msg.recipient``.

        Args:
            msg: the notification.
        """
        text = f"{msg.rendered.subject} {msg.link}"
        if isinstance(self.gateway, HttpSmsGateway):
            self.gateway.send_sms(msg.recipient, text, key=msg.key)
        else:
            self.gateway.send_sms(msg.recipient, text)
