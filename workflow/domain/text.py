"""Free text: the one rule every typed or imported string passes, and the one sanitiser every
writer and terminal applies to what is stored.

A clerk's text (填报人, 先进经验, a reason, a product name, an organisation's name in a directory
import …) may not carry characters that are invisible, that steer a terminal or that reverse the
reading order:

* C0 controls (U+0000–U+001F) and DEL, except newline and tab in long texts (a carriage return
  is read as a newline there);
* C1 controls (U+0080–U+009F, U+0085 included);
* bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069);
* lone surrogates and the non-characters U+FFFE, U+FFFF (no file format can hold them).

What passes is normalised to NFC (the same word typed on two machines is the same string).
Every entry path (CLI, JSON API, pages, file imports) reaches this through the app's use cases,
so the same text gets the same answer everywhere.

Defence in depth: a string stored before this rule (or planted in the database) must still never
break an export or a terminal: :func:`writable` replaces what XLSX/DOCX/CSV cannot hold, and
:func:`terminal_safe` escapes what would steer a terminal.
"""

from __future__ import annotations

import re
import unicodedata

from workflow.domain.errors import BadInput, Refusal

CONTROL_CODE = "input.control_char"
BIDI_CODE = "input.bidi"

_BIDI = "\u202a-\u202e\u2066-\u2069"
_FORBIDDEN_ALWAYS = f"\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}\ud800-\udfff\ufffe\uffff"
#: Forbidden in a one-line field (a name, a phone): every control, newline and tab included.
_ONE_LINE = re.compile(f"[\t\n{_FORBIDDEN_ALWAYS}]")
#: Forbidden in a long text (先进经验, a reason): newline and tab are allowed.
_MULTI_LINE = re.compile(f"[{_FORBIDDEN_ALWAYS}]")
_BIDI_RE = re.compile(f"[{_BIDI}]")
#: What a writer (XLSX, DOCX, CSV) replaces: everything forbidden except newline, tab and carriage
#: return.
_UNWRITABLE = re.compile(f"[{_FORBIDDEN_ALWAYS}]".replace("\x0b-\x1f", "\x0b\x0c\x0e-\x1f"))
#: What a terminal must not receive raw: as for writers, carriage return included.
_TERMINAL = re.compile(f"[{_FORBIDDEN_ALWAYS}]")

REPLACEMENT = "\ufffd"


def text_refusal(value: str | None, *, field: str, multiline: bool = False) -> Refusal | None:
    """Why ``value`` may not be stored in ``field`` (named in Chinese), or None."""
    if not value:
        return None
    # A one-line field is stored without surrounding blanks: a tab or line end there is trimmed.
    text = value.replace("\r\n", "\n").replace("\r", "\n") if multiline else value.strip(" \t\r\n")
    m = (_MULTI_LINE if multiline else _ONE_LINE).search(text)
    if m is None:
        return None
    position = m.start() + 1
    if _BIDI_RE.match(m.group(0)):
        return Refusal("input.bidi", f"“{field}”第 {position} 个字符是看不见的文字方向控制符（常见于复制粘贴），"
                                  "会让文字倒着显示，请删掉后再提交")
    if m.group(0) in "\n\t":
        return Refusal("input.control_char", f"“{field}”只能填一行，第 {position} 个字符是换行或制表符，请删掉后再提交")
    return Refusal("input.control_char", f"“{field}”第 {position} 个字符是看不见的控制字符（常见于复制粘贴），"
                                 "请删掉后再提交")


def normalise(value: str, *, multiline: bool = False, strip: bool = True) -> str:
    """NFC, without surrounding blanks (unless not ``strip``); in a long text, line ends as
    ``\\n``. Assumes the text passed :func:`text_refusal` (lone surrogates cannot be normalised)."""
    if multiline:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = unicodedata.normalize("NFC", value)
    return value.strip() if strip else value


def clean_text(value: str, *, field: str, multiline: bool = False) -> str:
    """``value`` checked and normalised (:func:`normalise`), or BadInput naming ``field``."""
    if refusal := text_refusal(value, field=field, multiline=multiline):
        raise BadInput(refusal.message, code=refusal.code)
    return normalise(value, multiline=multiline)


def clean_optional(value: str | None, *, field: str, multiline: bool = False) -> str | None:
    """:func:`clean_text` for a field that may be absent (None stays None)."""
    return None if value is None else clean_text(value, field=field, multiline=multiline)


def writable(value: str) -> str:
    """``value`` with every character no file format may hold replaced by U+FFFD (what a writer
    calls on any stored string, whatever its age)."""
    return _UNWRITABLE.sub(REPLACEMENT, value)


def terminal_safe(value: str) -> str:
    """``value`` with controls, bidi overrides and the like shown escaped (``\\x1b``, ``\\u202e``)
    so a stored string cannot steer a terminal; newline and tab stay."""
    return _TERMINAL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), value)


__all__ = ["BIDI_CODE", "CONTROL_CODE", "REPLACEMENT", "clean_optional", "clean_text", "normalise",
           "terminal_safe", "text_refusal", "writable"]
