"""The column types bangfu adds to SQLAlchemy's: instants stored as UTC, personal data (phones,
e-mail addresses) encrypted at rest when the settings say so."""

from __future__ import annotations

import base64
import hmac
import os
from datetime import UTC, datetime

from sqlalchemy import DateTime, String, TypeDecorator
from sqlalchemy.engine import Dialect


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC; refuses naive values so no local time slips in."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: bangfu stores aware UTC instants only")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# --- personal data at rest ------------------------------------------------------------------

#: The marks that open an encrypted value; a value without one was written in clear.
_AES_MARK, _SM4_MARK = "aes1:", "sm41:"


def _sm4_mac(key: bytes, data: bytes) -> bytes:
    from gmssl import sm3  # lazy: only a deployment that chose SM4 loads gmssl (start-up time)

    # HMAC-SM3 (RFC 2104 over SM3's 64-byte block), encrypt-then-MAC over the IV and ciphertext.
    block = key.ljust(64, b"\0")
    inner = bytes(b ^ 0x36 for b in block)
    outer = bytes(b ^ 0x5C for b in block)
    h_inner = bytes.fromhex(sm3.sm3_hash(list(inner + data)))
    return bytes.fromhex(sm3.sm3_hash(list(outer + h_inner)))


def encrypt_personal(plain: str, cipher: str, key_hex: str) -> str:
    """``plain`` encrypted with ``cipher`` (``aes-gcm`` or ``sm4``) under the hex key; ``none``
    leaves it as it is. A fresh random nonce per value."""
    if cipher == "none" or not plain:
        return plain
    key = bytes.fromhex(key_hex)
    if cipher == "aes-gcm":
        # lazy: only a deployment that chose AES-GCM loads it (start-up time)
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = os.urandom(12)
        return _AES_MARK + base64.b64encode(nonce + AESGCM(key).encrypt(nonce, plain.encode(), None)).decode()
    from gmssl.sm4 import SM4_ENCRYPT, CryptSM4  # lazy: only with SM4 chosen

    iv = os.urandom(16)
    sm4 = CryptSM4()
    sm4.set_key(key, SM4_ENCRYPT)
    body = iv + bytes(sm4.crypt_cbc(iv, plain.encode()))
    return _SM4_MARK + base64.b64encode(body + _sm4_mac(key, body)).decode()


def decrypt_personal(stored: str, key_hex: str) -> str:
    """The clear text of a stored value (a value written in clear comes back as it is)."""
    if stored.startswith(_AES_MARK):
        # lazy: only a deployment that chose AES-GCM loads it (start-up time)
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        raw = base64.b64decode(stored[len(_AES_MARK):])
        return AESGCM(bytes.fromhex(key_hex)).decrypt(raw[:12], raw[12:], None).decode()
    if stored.startswith(_SM4_MARK):
        from gmssl.sm4 import SM4_DECRYPT, CryptSM4  # lazy: only with SM4 values stored

        raw = base64.b64decode(stored[len(_SM4_MARK):])
        key = bytes.fromhex(key_hex)
        body, tag = raw[:-32], raw[-32:]
        if not hmac.compare_digest(tag, _sm4_mac(key, body)):
            raise ValueError("personal data failed its integrity check (wrong BANGFU_PII_KEY?)")
        sm4 = CryptSM4()
        sm4.set_key(key, SM4_DECRYPT)
        return bytes(sm4.crypt_cbc(body[:16], body[16:])).decode()
    return stored


def _pii_setting() -> tuple[str, str]:
    from workflow.settings import get_settings  # lazy: read at first use, as the other settings are

    s = get_settings()
    return s.pii_cipher, s.pii_key


def seal(value: str | None) -> str | None:
    """A phone or e-mail address as it is stored under the configured cipher (for the bulk
    loaders, which write the driver's values without the column types)."""
    if value is None:
        return None
    cipher, key = _pii_setting()
    return encrypt_personal(value, cipher, key)


def unseal(value: str | None) -> str | None:
    """A stored phone or e-mail address in clear (for the statements that read the driver's
    values without the column types)."""
    if value is None or not value.startswith((_AES_MARK, _SM4_MARK)):
        return value
    return decrypt_personal(value, _pii_setting()[1])


#: The columns that hold personal data (:class:`PersonalText`), for the raw-driver paths.
PERSONAL_COLUMNS = frozenset({"email", "phone"})


class PersonalText(TypeDecorator[str]):
    """A phone number or e-mail address: encrypted at rest when ``BANGFU_PII_CIPHER`` says so
    (AES-256-GCM or SM4, the key in ``BANGFU_PII_KEY``, outside the database); read back in
    clear whatever the setting, so turning it on needs no downtime. Nothing filters on these
    columns in SQL (an encrypted value is different every time it is written)."""

    impl = String(400)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return seal(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return unseal(value)
