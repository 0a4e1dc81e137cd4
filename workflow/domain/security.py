"""Password and session rules (issue 21 point 3): pure functions over one :class:`SecurityRules`
value, which the settings build (``workflow.settings.Settings.security``).

* a password has at least ``min_length`` characters drawn from at least ``min_classes`` of the
  four classes (lower case, upper case, digits, others);
* the last ``history`` passwords (the current one included) are refused as a new one;
* a password older than ``max_age_days`` must be changed (0: never expires);
* after ``lockout_failures`` failed logins in a row the account is locked, until the security
  administrator unlocks it or ``lockout_minutes`` pass (0: only the administrator unlocks);
* a session idle for ``idle_minutes`` ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from workflow.domain.errors import Refusal


@dataclass(frozen=True)
class SecurityRules:
    min_length: int = 8
    min_classes: int = 3
    history: int = 3
    max_age_days: int = 90
    lockout_failures: int = 5
    lockout_minutes: int = 30
    idle_minutes: int = 30


DEFAULT_RULES = SecurityRules()


def character_classes(password: str) -> int:
    """How many of the four classes (a-z, A-Z, 0-9, anything else) the password uses."""
    return sum((
        any(c.islower() for c in password),
        any(c.isupper() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    ))


def password_refusal(password: str, rules: SecurityRules = DEFAULT_RULES) -> Refusal | None:
    """Why a new password is not accepted, or None."""
    if len(password) < rules.min_length:
        return Refusal("password.too_short", f"新密码至少 {rules.min_length} 个字符")
    if character_classes(password) < rules.min_classes:
        return Refusal("password.too_simple",
                       f"新密码须包含小写字母、大写字母、数字、符号中的至少 {rules.min_classes} 种")
    return None


def password_expired(changed_at: datetime | None, now: datetime, rules: SecurityRules = DEFAULT_RULES) -> bool:
    """True when a password set at ``changed_at`` is past its age limit (never when the limit
    is 0 or the account has no password date)."""
    if rules.max_age_days <= 0 or changed_at is None:
        return False
    return now - changed_at >= timedelta(days=rules.max_age_days)


def locked(locked_at: datetime | None, now: datetime, rules: SecurityRules = DEFAULT_RULES) -> bool:
    """True while an account locked at ``locked_at`` stays locked."""
    if locked_at is None:
        return False
    if rules.lockout_minutes <= 0:
        return True
    return now - locked_at < timedelta(minutes=rules.lockout_minutes)


def idle_expired(last_seen: float | None, now: float, rules: SecurityRules = DEFAULT_RULES) -> bool:
    """True when a session last used at ``last_seen`` (epoch seconds) has been idle too long."""
    if last_seen is None or rules.idle_minutes <= 0:
        return False
    return now - last_seen >= rules.idle_minutes * 60
