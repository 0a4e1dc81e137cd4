"""Structured logs: one JSON object per line on stderr for the ``bangfu`` loggers.

``BANGFU_LOG_LEVEL`` (DEBUG, INFO, WARNING, ERROR; default INFO) sets the level and
``BANGFU_LOG_FORMAT`` (``json``, the default, or ``text``) the format. Delivery logs one
``delivery_batch`` event per batch and the sweep one ``sweep`` event per run, with their counts
as fields; anything passed as ``extra=`` becomes a field.

No phone number or e-mail address reaches a log line: every line, its fields and its traceback
go through :func:`workflow.domain.privacy.redact` (an SMTP refusal quotes the address it
refused; a validation error may quote what was typed).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from workflow.domain.privacy import redact
from workflow.settings import Settings

_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...extra fields}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return redact(json.dumps(out, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    """The plain format (``BANGFU_LOG_FORMAT=text``), redacted the same way."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure(settings: Settings) -> None:
    """Install the ``bangfu`` handler once (idempotent)."""
    logger = logging.getLogger("bangfu")
    logger.setLevel(getattr(logging, settings.log_level, logging.INFO))
    if any(getattr(h, "_bangfu", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._bangfu = True  # type: ignore[attr-defined]
    if settings.log_format == "text":
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.propagate = False
