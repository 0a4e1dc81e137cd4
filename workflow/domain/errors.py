"""bangfu's one exception tree.

::

    BangfuError                    every error we raise on purpose (exit code 1 if uncaught)
    ├── BadInput                   malformed input: a file, a flag, a form field (exit 2, HTTP 422)
    │   └── PolicyError            a policy file that cannot be loaded (names field and reason)
    ├── NotFound                   no such record / organisation / user in the actor's view (exit 2, HTTP 404)
    ├── PermissionDenied           the actor has no membership that allows this (exit 3, HTTP 403)
    ├── RuleViolation              a rule of the notice refuses it (exit 3, HTTP 409)
    └── VersionConflict            somebody changed the record since the caller saw it (exit 4, HTTP 409)

Each carries a stable ``code`` and a Chinese ``message`` for users; entry points turn them into
exit codes or HTTP statuses, nothing else does.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Refusal:
    """Why a rule says no: a stable code and a Chinese sentence a clerk understands."""

    code: str
    message: str

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class BangfuError(Exception):
    """Base of every error bangfu raises on purpose."""

    code = "error"
    exit_code = 1
    http_status = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class BadInput(BangfuError):
    code = "bad_input"
    exit_code = 2
    http_status = 422


class PolicyError(BadInput):
    code = "policy.invalid"


class NotFound(BangfuError):
    code = "not_found"
    exit_code = 2
    http_status = 404


class PermissionDenied(BangfuError):
    code = "permission.denied"
    exit_code = 3
    http_status = 403


class RuleViolation(BangfuError):
    """A rule refused the action; ``refusal`` says which."""

    exit_code = 3
    http_status = 409

    def __init__(self, refusal: Refusal, *, trigger: str | None = None, state: str | None = None):
        super().__init__(refusal.message, code=refusal.code)
        self.refusal = refusal
        self.trigger = trigger
        self.state = state


class VersionConflict(BangfuError):
    code = "version.conflict"
    exit_code = 4
    http_status = 409


class MoneyInputError(BadInput, ValueError):
    """An amount or a count that is not what a clerk may type (:mod:`workflow.domain.money`).
    Also a ``ValueError`` so the ledger's cell parsers treat it like any other bad cell."""

    code = "input.money"


class TimeInputError(BadInput, ValueError):
    """A payment time or a form date that is not a time, or outside the years a purchase has."""

    code = "input.time"


class LimitExceeded(BadInput):
    """Input beyond a cap (file size, rows, a line's amount): refused before anything is written."""

    code = "input.limit"
