"""The HTTP status of each error of :mod:`workflow.domain.errors`: the one table the web uses
(the command line has its exit codes in :data:`workflow.entrypoints.cli.EXIT_CODES`)."""

from __future__ import annotations

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
    StoreUnavailable,
    TooManyAttempts,
    VersionConflict,
    nearest,
)

#: Looked up along the exception's class hierarchy, nearest class first.
HTTP_STATUS: dict[type[BangfuError], int] = {
    BadInput: 422,
    NotFound: 404,
    PermissionDenied: 403,
    CsrfFailed: 403,
    RuleViolation: 409,
    VersionConflict: 409,
    LoginFailed: 401,
    AuthRequired: 401,
    TooManyAttempts: 429,
    StoreError: 500,
    StoreUnavailable: 503,
}


def http_status(exc: BangfuError) -> int:
    """The status an error answers with; 500 for an error no row names (a bug)."""
    return nearest(HTTP_STATUS, exc, 500)
