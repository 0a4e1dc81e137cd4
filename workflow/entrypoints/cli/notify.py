"""What the scheduler and notification commands (``sweep``, ``deliver``, ``notify-preview``,
``inbox``, ``outbox`` ...) share: the notification kinds, the ``--as-of`` instant, the labels."""

from __future__ import annotations

from datetime import datetime

from workflow.domain import clock
from workflow.domain.errors import BadInput

# The kinds mirror notifications.templates.KINDS (a test checks); ``bangfu outbox retry --kind``
# checks against them without loading the templates.
KINDS = ("quota_reminder", "report_reminder", "reviewer_digest", "record_event", "overdue_notice",
         "quota_lapsed", "duplicate_order", "outbox_failed", "audit_head")

CHANNEL_LABELS = {"email": "邮件", "sms": "短信", "wecom": "企业微信", "dingtalk": "钉钉"}


def as_of(text: str | None) -> datetime:
    if not text:
        return clock.now()
    try:
        return clock.parse_instant(text)
    except ValueError:
        raise BadInput(f"时间“{text}”格式应为 2021-12-01T09:00（北京时间）", code="input.time") from None


def age(seconds: float | None) -> str:
    if seconds is None:
        return "无"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} 小时 {minutes} 分" if hours else f"{minutes} 分 {sec} 秒"
