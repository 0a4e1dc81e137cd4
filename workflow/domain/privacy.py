"""Personal data shown to people who do not need it (PIPL Art. 51: minimisation,
de-identification): clerks' phone numbers and e-mail addresses masked, and scrubbed from log
lines. Pure functions.

* :func:`mask_phone` — ``13800000001`` → ``138****0001``; a landline keeps its area code and
  last four digits (``020-83871234`` → ``020****1234``).
* :func:`mask_email` — ``zhang.san@example.cn`` → ``z***@example.cn``.
* :func:`redact` — every phone-like number and e-mail address in a text, masked (the log
  formatter runs every line through it).
"""

from __future__ import annotations

import re

_EMAIL = re.compile(r"([A-Za-z0-9._%+\-]+)@([A-Za-z0-9.\-]+\.[A-Za-z]{2,})")
#: A mobile number (11 digits from 1), or a landline (area code, dash, 7-8 digits), not inside
#: a longer run of digits (ids, amounts, timestamps stay as they are).
_PHONE = re.compile(r"(?<![\d.])(?:1[3-9]\d{9}|0\d{2,3}-?\d{7,8})(?![\d.])")


def mask_phone(phone: str | None) -> str | None:
    """The phone with its middle digits hidden: the first three characters and the last four
    digits stay (``138****0001``); a value too short to mask becomes ``****``."""
    if not phone:
        return phone
    text = phone.strip()
    digits = sum(c.isdigit() for c in text)
    if digits < 8:
        return "****"
    return f"{text[:3]}****{text[-4:]}"


def mask_email(email: str | None) -> str | None:
    """The address with its local part hidden but for the first character."""
    if not email or "@" not in email:
        return email
    local, _, domain = email.strip().partition("@")
    return f"{local[:1]}***@{domain}"


def redact(text: str) -> str:
    """``text`` with every e-mail address and phone-like number masked."""
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)) or "", text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)) or "", text)
