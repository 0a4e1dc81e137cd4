"""Printing a command's result, and the small texts several commands share."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections.abc import Callable
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import states
from workflow.domain.errors import BadInput
from workflow.domain.text import terminal_safe

ROLE_LABELS = {states.CLERK: "填报员", states.REVIEWER: "审核人", states.OBSERVER: "观察员", states.ADMIN: "管理员"}


def to_jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(value.to_dict() if hasattr(value, "to_dict") else asdict(value))
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def print_json(result: Any) -> None:
    print(json.dumps(to_jsonable(result), ensure_ascii=False, indent=2))


def print_result(result: Any, human: Callable[[Any], None] | None, *, as_json: bool) -> None:
    """A command's result: JSON under ``--json``; else nothing for ``None``, a string as it is,
    anything else through the command's ``human`` (JSON when it has none)."""
    if as_json:
        print_json(result)
        return
    if result is None:
        return
    # What a person reads passes :func:`terminal_safe`: a stored ANSI escape or bidi override is
    # shown escaped, never sent raw to the terminal.
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        if isinstance(result, str):
            print(result, end="" if result.endswith("\n") else "\n")
        elif human is not None:
            human(result)
        else:
            print_json(result)
    sys.stdout.write(terminal_safe(buffer.getvalue()))


def days_text(n: int) -> str:
    """Days to a deadline in the web's words: 剩 N 天 / 今天截止 / 已过 N 天."""
    if n > 0:
        return f"剩 {n} 天"
    return "今天截止" if n == 0 else f"已过 {-n} 天"


def read_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise BadInput(f"无法读取文件 {path}：{exc.strerror}", code="input.file") from None


def write_file(path: str, data: bytes | str) -> str:
    target = Path(path)
    try:
        if isinstance(data, str):
            target.write_text(data, encoding="utf-8")
        else:
            target.write_bytes(data)
    except OSError as exc:
        raise BadInput(f"无法写入文件 {path}：{exc.strerror}", code="output.file") from None
    return str(target)
