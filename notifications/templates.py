"""Notification templates: one configured Jinja2 environment and ``render``.

Every notification *kind* is three files under ``notifications/templates/``:
``{kind}.subject.txt`` (one line), ``{kind}.txt`` (plain text) and ``{kind}.html``.
Autoescaping is chosen by file extension: ``.html`` is escaped, ``.txt`` is not, so a union
named ``<script>`` arrives escaped in the HTML part and verbatim in the text part. Undefined
variables raise (``StrictUndefined``): a missing context key is a bug, never an empty string.

Filters available to every template (and to the web pages that reuse ``make_environment``):

- ``yuan``: integer fen -> ``12,345.60`` (no currency sign; templates write ``元``).
- ``cn_date``: a date -> ``2021年12月31日``; an aware datetime is first converted to China time.
- ``cn_datetime``: an aware datetime -> ``2021年12月20日 14:30`` in China time.
- ``abs_url``: passes an absolute ``http(s)`` URL through, raises on anything else, so a
  relative path or a ``javascript:`` link never reaches a mail.

Kinds and the context each needs (``SAMPLES`` holds one sample context per kind; it feeds the
tests and the future CLI preview command). Every kind takes ``link``: the absolute URL of the
record (or of the review list), built by the caller from the configured base URL.

``quota_reminder``  to a grassroots union before the quota deadline.
    ``union_name`` str, ``quota_fen`` / ``used_fen`` / ``left_fen`` int (fen),
    ``deadline`` date (China date, the last day), ``days_left`` int (0 = last day), ``link``.
``report_reminder``  to an organisation whose report is not yet submitted.
    ``org_name``, ``round_label`` (e.g. ``2021年度``), ``state_label`` (Chinese state name,
    e.g. ``已汇总``), ``deadline`` date, ``days_left`` int, ``link``.
``reviewer_digest``  to a reviewer: what is missing and what awaits a decision.
    ``reviewer_org_name``, ``deadline`` date, ``not_submitted``: list of mappings
    (``name``, ``state_label``, ``link``), ``awaiting_decision``: list of mappings
    (``name``, ``submitted_at`` aware datetime, ``link``), ``link`` (the review list).
``record_event``  after a transition: to the record's organisation or to its reviewers.
    ``org_name``, ``event`` (Chinese trigger label: 已提交 / 已通过 / 退回修改 / 撤销通过 / ...),
    ``actor_name``, ``reason`` (optional; may be absent or None), ``link``.
``overdue_notice``  to a parent's reviewers when children missed their report deadline: one
    digest per parent, round and deadline day. ``org_name`` (the parent), ``deadline`` date,
    ``children``: list of mappings (``child_org_name``, ``link``), ``link`` (the review list).
    Rows written before the digest carry one child: ``child_org_name``, ``deadline``, ``link``.
``quota_lapsed``  to a grassroots union after the quota deadline.
    ``union_name``, ``lapsed_fen`` int (fen), ``round_label``, ``link``.
``duplicate_order``  to the reviewers of each union's parent when two unions hold one order.
    ``org_name`` (the reviewer's side), ``other_org_name``, ``order_no``, ``channel_name``,
    ``round_label``, ``link``.
``outbox_failed``  daily, to the province's admins while notifications failed for good.
    ``org_name``, ``failed`` int, ``by_channel``: list of mappings (``label``, ``failed``),
    ``link`` (the admins' outbox page).
``audit_head``  daily, to the province's admins: the history chain's exported head.
    ``at`` (China time text), ``records`` / ``rows`` int, ``algorithm``, ``digest``,
    ``heads_file``, ``link``.

Webhook (robot) payloads are JSON built with ``json.dumps`` in ``channels``; they are never
templated text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import jinja2

__all__ = [
    "CHINA_TZ",
    "KINDS",
    "SAMPLES",
    "TEMPLATE_DIR",
    "Rendered",
    "UnknownKindError",
    "abs_url",
    "cn_date",
    "cn_datetime",
    "environment",
    "make_environment",
    "render",
    "yuan",
]

CHINA_TZ = ZoneInfo("Asia/Shanghai")
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

_SAMPLE_LINK = "https://bangfu.example.gd.cn/records/4401"

SAMPLES: dict[str, dict[str, Any]] = {
    "quota_reminder": {
        "union_name": "广州市越秀区某街道某公司工会委员会",
        "quota_fen": 4_800_000,
        "used_fen": 3_565_440,
        "left_fen": 1_234_560,
        "deadline": date(2021, 12, 31),
        "days_left": 10,
        "link": _SAMPLE_LINK,
    },
    "report_reminder": {
        "org_name": "广州市总工会",
        "round_label": "2021年度",
        "state_label": "已汇总",
        "deadline": date(2021, 12, 31),
        "days_left": 3,
        "link": _SAMPLE_LINK,
    },
    "reviewer_digest": {
        "reviewer_org_name": "广州市越秀区总工会",
        "deadline": date(2021, 12, 15),
        "not_submitted": [
            {
                "name": "某街道总工会",
                "state_label": "已采购",
                "link": "https://bangfu.example.gd.cn/records/5501",
            },
            {
                "name": "某公司工会委员会",
                "state_label": "计划中",
                "link": "https://bangfu.example.gd.cn/records/5502",
            },
        ],
        "awaiting_decision": [
            {
                "name": "某学校工会委员会",
                "submitted_at": datetime(2021, 12, 10, 6, 30, tzinfo=UTC),
                "link": "https://bangfu.example.gd.cn/records/5503",
            },
        ],
        "link": "https://bangfu.example.gd.cn/review",
    },
    "record_event": {
        "org_name": "某公司工会委员会",
        "event": "退回修改",
        "actor_name": "张敏",
        "reason": "832平台采购金额与发票合计不符，请核对。",
        "link": _SAMPLE_LINK,
    },
    "overdue_notice": {
        "child_org_name": "某街道总工会",
        "deadline": date(2021, 12, 15),
        "link": _SAMPLE_LINK,
    },
    "quota_lapsed": {
        "union_name": "某公司工会委员会",
        "lapsed_fen": 120_000,
        "round_label": "2021年度",
        "link": _SAMPLE_LINK,
    },
    "duplicate_order": {
        "org_name": "天河一中工会",
        "other_org_name": "越秀医院工会",
        "order_no": "YGH20211101001",
        "channel_name": "粤工惠购平台",
        "round_label": "2021年度",
        "link": _SAMPLE_LINK,
    },
    "outbox_failed": {
        "org_name": "广东省总工会",
        "failed": 3,
        "by_channel": [{"label": "邮件", "failed": 2}, {"label": "短信", "failed": 1}],
        "link": "https://bangfu.example.gd.cn/admin/outbox",
    },
    "audit_head": {
        "at": "2021-12-01T02:00:00+08:00",
        "records": 155_000,
        "rows": 812_345,
        "algorithm": "sm3",
        "digest": "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0",
        "heads_file": "heads-20211130T180000000000Z.tsv",
        "link": "https://bangfu.example.gd.cn/",
    },
}
"""One sample context per kind: documentation, preview input and test fixture."""

KINDS: tuple[str, ...] = tuple(SAMPLES)
"""The notification kinds this package can render."""


class UnknownKindError(ValueError):
    """Raised by ``render`` for a kind that has no templates here."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered notification.

    Attributes:
        subject: one line, no line breaks (safe as a mail header or a robot title).
        text: the plain-text body.
        html: the HTML body, autoescaped.
    """

    subject: str
    text: str
    html: str


def yuan(fen: int) -> str:
    """Format an integer amount of fen as yuan with thousands separators.

    Args:
        fen: the amount in fen (1 yuan = 100 fen); may be negative.

    Returns:
        e.g. ``"12,345.60"`` for 1234560.

    Raises:
        TypeError: if ``fen`` is not an int (floats would hide rounding errors).
    """
    _require_defined(fen)
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"yuan expects integer fen, got {type(fen).__name__}")
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def cn_date(value: date) -> str:
    """Format a date the Chinese way.

    Args:
        value: a date, or an aware datetime (converted to China time first).

    Returns:
        e.g. ``"2021年12月31日"``.

    Raises:
        ValueError: for a naive datetime (its day is ambiguous).
    """
    _require_defined(value)
    if isinstance(value, datetime):
        value = _to_china(value).date()
    return f"{value.year}年{value.month}月{value.day}日"


def cn_datetime(value: datetime) -> str:
    """Format an aware datetime in China time.

    Args:
        value: an aware datetime (any zone; storage is UTC).

    Returns:
        e.g. ``"2021年12月10日 14:30"``.

    Raises:
        ValueError: for a naive datetime.
    """
    _require_defined(value)
    local = _to_china(value)
    return f"{cn_date(local.date())} {local:%H:%M}"


def abs_url(value: str) -> str:
    """Let an absolute http(s) URL through unchanged.

    Args:
        value: the URL the caller built from the configured base URL.

    Returns:
        ``value`` unchanged.

    Raises:
        ValueError: for relative URLs, other schemes (``javascript:``, ``file:``) or URLs
            containing whitespace.
    """
    _require_defined(value)
    parts = urlsplit(str(value))
    if parts.scheme not in ("http", "https") or not parts.netloc or re.search(r"\s", value):
        raise ValueError(f"not an absolute http(s) URL: {value!r}")
    return value


def _require_defined(value: object) -> None:
    # A missing variable reaches a filter as an Undefined object; raise Jinja's own
    # UndefinedError naming it, not a confusing TypeError about the filter's input.
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()


def _to_china(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime: pass an aware datetime (UTC in storage)")
    return value.astimezone(CHINA_TZ)


def make_environment(*extra_template_dirs: str | Path) -> jinja2.Environment:
    """Build the configured Jinja2 environment.

    The notification templates are looked up first, then ``extra_template_dirs`` in order, so
    the web pages can add their own folder; keep their names distinct from ``{kind}.*`` and
    ``_mail_base.html`` (a subfolder is simplest).

    Args:
        *extra_template_dirs: further template folders (e.g. the web pages').

    Returns:
        An environment with extension-based autoescape (``.html`` escaped), ``StrictUndefined``,
        no reload check of the files (a changed template takes effect at the next start) and the ``yuan``, ``cn_date``, ``cn_datetime`` and ``abs_url`` filters.
    """
    loader = jinja2.FileSystemLoader([TEMPLATE_DIR, *map(Path, extra_template_dirs)])
    env = jinja2.Environment(
        loader=loader,
        autoescape=jinja2.select_autoescape(
            enabled_extensions=["html"], default_for_string=True, default=False
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # The templates ship with the code: a deploy restarts the processes. Without this every
        # render stat()s each template it extends or includes (three per mail, more per page).
        auto_reload=False,
    )
    env.filters.update(yuan=yuan, cn_date=cn_date, cn_datetime=cn_datetime, abs_url=abs_url)
    return env


@functools.cache
def environment() -> jinja2.Environment:
    """Return the shared notification environment (built once per process).

    Returns:
        ``make_environment()`` with no extra folders.
    """
    return make_environment()


def render(kind: str, context: Mapping[str, Any]) -> Rendered:
    """Render one notification kind.

    Args:
        kind: one of ``KINDS``.
        context: the variables that kind needs (see the module docstring and ``SAMPLES``).

    Returns:
        The subject (collapsed to one line), text and HTML bodies.

    Raises:
        UnknownKindError: if ``kind`` is not one of ``KINDS``.
        jinja2.UndefinedError: if the context misses a variable the templates use.
        ValueError: from the filters (a non-absolute link, a naive datetime).
        TypeError: from ``yuan`` for a non-integer amount.
    """
    if kind not in KINDS:
        raise UnknownKindError(f"unknown notification kind: {kind!r}")
    subject_t, text_t, html_t = _compiled(kind)
    ctx = dict(context)
    subject = subject_t.render(ctx)
    return Rendered(
        # A subject is a mail header and a robot title: never let a line break through.
        subject=" ".join(subject.split()),
        text=text_t.render(ctx),
        html=html_t.render(ctx),
    )


@functools.cache
def _compiled(kind: str) -> tuple[jinja2.Template, jinja2.Template, jinja2.Template]:
    # Compiled once per process (no up-to-date check of the files per message): a changed
    # template takes effect when the worker restarts.
    env = environment()
    return (env.get_template(f"{kind}.subject.txt"), env.get_template(f"{kind}.txt"),
            env.get_template(f"{kind}.html"))
