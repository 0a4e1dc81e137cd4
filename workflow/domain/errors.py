"""bangfu's one exception tree.

::

    BangfuError                    every error we raise on purpose
    ├── BadInput                   malformed input: a file, a flag, a form field
    │   ├── PolicyError            a policy file that cannot be loaded (names field and reason)
    │   ├── MoneyInputError        an amount or count a clerk may not type
    │   ├── TimeInputError         a time or date that is not one, or out of range
    │   ├── LimitExceeded          input beyond a cap (file size, rows, a line's amount)
    │   └── ImportRefused          an order file with bad rows (the first N listed)
    ├── NotFound                   no such record / organisation / user in the actor's view
    ├── PermissionDenied           the actor has no membership that allows this
    ├── RuleViolation              a rule of the notice refuses it (``refusal`` says which)
    ├── VersionConflict            somebody changed the record since the caller saw it
    ├── LoginFailed                wrong username or password
    ├── TooManyAttempts            the login throttle refuses for a while
    ├── CsrfFailed                 a form or cookie write without its CSRF token
    └── AuthRequired               no session or token

    ExportUsageError, ImportUsageError (ValueError): a programmer's mistake in calling the
    formats (no tables to write, an unknown mapping), never a user's.

Each carries a stable ``code`` and a Chinese ``message`` for users. The entry points turn them
into exit codes (``workflow.entrypoints.cli.EXIT_CODES``) or HTTP statuses
(``workflow.entrypoints.web.errors.HTTP_STATUS``); nothing else does. The notifications package
keeps its own delivery errors (it imports nothing of ``workflow``).
"""

from __future__ import annotations

from collections.abc import Mapping
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

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class BadInput(BangfuError):
    code = "bad_input"


class PolicyError(BadInput):
    code = "policy.invalid"


class NotFound(BangfuError):
    code = "not_found"


class PermissionDenied(BangfuError):
    code = "permission.denied"


class RuleViolation(BangfuError):
    """A rule refused the action; ``refusal`` says which."""


    def __init__(self, refusal: Refusal, *, trigger: str | None = None, state: str | None = None):
        super().__init__(refusal.message, code=refusal.code)
        self.refusal = refusal
        self.trigger = trigger
        self.state = state


class VersionConflict(BangfuError):
    code = "version.conflict"


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


class ImportRefused(BadInput):
    """A file with bad rows: ``errors`` holds the first ``shown`` Chinese sentences (one per bad
    row), ``codes`` their codes (a rule's code, e.g. ``purchase.outside_year``, or a cell's, e.g.
    ``input.time``), ``total`` how many there were and ``more`` how many are not listed."""

    code = "import.refused"

    def __init__(self, errors: list[str], *, filename: str, shown: int = 200, codes: list[str] | None = None) -> None:
        head = f"文件“{filename[:100]}”有 {len(errors):,} 处错误，未导入任何数据："
        listed = errors[:shown]
        #: The code of each listed row's refusal (the rule's, as a line entered by hand would get).
        self.codes = list(codes[:shown]) if codes is not None else [self.code] * len(listed)
        self.total = len(errors)
        self.more = self.total - len(listed)
        tail = [f"……另有 {self.more:,} 处错误未列出（只列出前 {shown} 处）"] if self.more else []
        super().__init__("\n".join([head, *listed, *tail]))
        self.errors = listed


class StoreError(BangfuError):
    """A statement the database refused for a reason no rule foresaw (a bug, or a schema not
    set up): the store's translation of its library's errors, so nothing above it names them."""

    code = "store.error"

    def __init__(self, message: str, *, cause: str = "") -> None:
        super().__init__(message)
        #: The driver's own words (English, for the operator's log; never shown on a page).
        self.cause = cause

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, cause={self.cause!r})"


class StoreUnavailable(StoreError):
    """The database could not be reached, dropped the connection, or stayed busy: try again."""

    code = "store.unavailable"


class CsrfFailed(BangfuError):
    code = "csrf.failed"


class LoginFailed(BangfuError):
    code = "login.failed"


class TooManyAttempts(BangfuError):
    code = "login.throttled"


class AccountLocked(TooManyAttempts):
    """Too many failed logins in a row: the account is locked until the security administrator
    unlocks it or the lockout window passes."""

    code = "login.locked"


class AuthRequired(BangfuError):
    code = "auth.required"


class PasswordChangeRequired(PermissionDenied):
    """The password was set by someone else (a reset, a handover, an import) or has expired:
    nothing but choosing a new one is allowed."""

    code = "password.change_required"


class ExportUsageError(ValueError):
    """A programmer error in calling the export writers (e.g. no tables to write)."""


class ImportUsageError(ValueError):
    """A programmer error in calling the ledger parser (e.g. an unknown mapping)."""


def nearest(table: Mapping[type[BangfuError], int], exc: BangfuError, default: int) -> int:
    """The value an edge's table gives ``exc``: its class's row, else the nearest base class's
    row along the hierarchy, else ``default`` (an error no row names is a bug)."""
    return next((table[c] for c in type(exc).__mro__ if c in table), default)  # type: ignore[index]
