"""Issue 20 point 4: the one free-text rule (controls, bidi overrides, NFC) and the one sanitiser
for writers and terminals."""

from __future__ import annotations

import pytest

from workflow.domain import text
from workflow.domain.codes import CODES
from workflow.domain.errors import BadInput

HOSTILE = ["a\u0001b", "x\u0085y", "\u202eabc", "\u2066x\u2069", "\x1b[31mred", "a\x7fb", "\ud800", "\ufffe"]


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("multiline", [False, True])
def test_hostile_text_is_refused_in_chinese_naming_the_field(value: str, multiline: bool) -> None:
    with pytest.raises(BadInput) as caught:
        text.clean_text(value, field="填报人", multiline=multiline)
    assert caught.value.code in (text.CONTROL_CODE, text.BIDI_CODE) and caught.value.code in CODES
    assert "“填报人”" in caught.value.message and "第" in caught.value.message


def test_newline_and_tab_only_in_long_texts_and_nfc() -> None:
    assert text.clean_text("第一段\r\n\t第二段\r", field="先进经验", multiline=True) == "第一段\n\t第二段"
    for one_line in ("张\n三", "张\t三"):
        with pytest.raises(BadInput, match="只能填一行"):
            text.clean_text(one_line, field="填报人")
    assert text.clean_text(" e\u0301 ", field="x") == "\u00e9"  # NFC, blanks trimmed
    assert text.clean_optional(None, field="x") is None
    assert text.text_refusal("", field="x") is None and text.text_refusal("正常的中文 ABC 123", field="x") is None


def test_writable_and_terminal_safe_neutralise_any_stored_string() -> None:
    for value in HOSTILE:
        assert text.text_refusal(text.writable(value), field="x", multiline=True) is None
    assert text.writable("a\r\n\tb") == "a\r\n\tb"
    shown = text.terminal_safe("\x1b[31m红\u202e\n\tok\r")
    assert "\x1b" not in shown and "\u202e" not in shown and "\r" not in shown
    assert shown == "\\x1b[31m红\\u202e\n\tok\\r"
