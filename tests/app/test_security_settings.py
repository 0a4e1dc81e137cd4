"""Issue 21 points 3 and 4: the password, session and personal-data settings have safe defaults,
are read from the environment, and refuse a cipher without a proper key."""

from __future__ import annotations

import pytest

from workflow.domain.errors import BadInput
from workflow.settings import Settings, from_env


def test_the_defaults_are_the_safe_ones() -> None:
    rules = Settings().security
    assert (rules.min_length, rules.min_classes, rules.history, rules.max_age_days, rules.lockout_failures,
            rules.lockout_minutes, rules.idle_minutes) == (8, 3, 3, 90, 5, 30, 30)
    assert Settings().pii_cipher == "none" and Settings().oidc_issuer == ""


def test_the_environment_sets_the_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANGFU_PASSWORD_MAX_AGE_DAYS", "0")
    monkeypatch.setenv("BANGFU_LOCKOUT_MINUTES", "0")
    monkeypatch.setenv("BANGFU_IDLE_MINUTES", "15")
    rules = from_env().security
    assert (rules.max_age_days, rules.lockout_minutes, rules.idle_minutes) == (0, 0, 15)
    monkeypatch.setenv("BANGFU_PASSWORD_MIN_LENGTH", "6")  # below the floor of 8
    with pytest.raises(BadInput, match="不小于 8"):
        from_env()


@pytest.mark.parametrize(("cipher", "key", "ok"), [
    ("aes-gcm", "ab" * 32, True), ("aes-gcm", "ab" * 16, False), ("sm4", "ab" * 16, True),
    ("sm4", "", False), ("rot13", "", False), ("aes-gcm", "zz" * 32, False),
])
def test_a_cipher_needs_its_key(cipher: str, key: str, ok: bool) -> None:
    settings = Settings(pii_cipher=cipher, pii_key=key)
    if ok:
        assert settings.check() is settings
    else:
        with pytest.raises(BadInput) as exc:
            settings.check()
        assert exc.value.code in ("settings.pii_key", "settings.pii_cipher")
