"""Errors to exit codes, and how a refusal is printed.

Exit codes: 0 done, 2 bad input or not found, 3 refused by a rule or a permission, 4 version
conflict (read again and retry), 1 a bug.
"""

from __future__ import annotations

import sys

from workflow.domain.errors import (
    AuthRequired,
    BadInput,
    BangfuError,
    CsrfFailed,
    LoginFailed,
    NotFound,
    PermissionDenied,
    RuleViolation,
    StoreError,
    TooManyAttempts,
    VersionConflict,
    nearest,
)
from workflow.domain.text import terminal_safe
from workflow.entrypoints.cli.argparse_zh import json_refusal

#: Looked up along the class hierarchy, nearest first.
EXIT_CODES: dict[type[BangfuError], int] = {
    BadInput: 2,
    NotFound: 2,
    PermissionDenied: 3,
    RuleViolation: 3,
    VersionConflict: 4,
    LoginFailed: 3,
    AuthRequired: 3,
    CsrfFailed: 3,
    TooManyAttempts: 3,
    StoreError: 1,  # a database refusal no rule foresaw: a bug, as an unexpected error is
}


def exit_code_for(exc: BangfuError) -> int:
    return nearest(EXIT_CODES, exc, 1)


def print_refusal(json_out: bool, code: str, message: str, exit_code: int) -> int:
    """Print a refusal (one line on stderr, or the JSON refusal on stdout); its exit code."""
    if json_out:
        print(json_refusal(code, message, exit_code))
    else:
        print(f"错误 [{code}]：{terminal_safe(message)}", file=sys.stderr)
    return exit_code
