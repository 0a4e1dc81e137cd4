"""Templates: every kind renders, escaping by extension, strict variables, the filters."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import jinja2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from notifications.templates import (
    KINDS,
    SAMPLES,
    Rendered,
    UnknownKindError,
    abs_url,
    cn_date,
    cn_datetime,
    environment,
    make_environment,
    render,
    yuan,
)

SCRIPT = "<script>alert(1)</script>"


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_with_its_sample(kind: str) -> None:
    rendered = render(kind, SAMPLES[kind])

    assert isinstance(rendered, Rendered)
    assert rendered.subject.startswith("【消费帮扶】")
    assert "\n" not in rendered.subject
    link = SAMPLES[kind]["link"]
    assert link in rendered.text
    assert f'href="{link}"' in rendered.html
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_three_template_files(kind: str) -> None:
    folder = Path(environment().loader.searchpath[0])  # type: ignore[union-attr]
    for suffix in (".subject.txt", ".txt", ".html"):
        assert (folder / f"{kind}{suffix}").is_file()


def test_quota_reminder_says_amount_and_deadline() -> None:
    rendered = render("quota_reminder", SAMPLES["quota_reminder"])

    assert "剩余 12,345.60 元，截止 2021年12月31日" in rendered.text
    assert "还有 10 天" in rendered.text
    assert "12,345.60" in rendered.subject


@pytest.mark.parametrize(
    ("days_left", "expected"), [(1, "还有 1 天"), (0, "今天是最后一天"), (-2, "已逾期 2 天")]
)
def test_days_left_wording(days_left: int, expected: str) -> None:
    rendered = render("report_reminder", {**SAMPLES["report_reminder"], "days_left": days_left})

    assert expected in rendered.text
    assert expected in rendered.html


@pytest.mark.parametrize("kind", ["quota_reminder", "quota_lapsed"])
def test_union_name_is_escaped_in_html_and_verbatim_in_text(kind: str) -> None:
    rendered = render(kind, {**SAMPLES[kind], "union_name": SCRIPT})

    assert SCRIPT not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert SCRIPT in rendered.text


def test_digest_entries_are_escaped_in_html() -> None:
    context = dict(SAMPLES["reviewer_digest"])
    context["not_submitted"] = [{**context["not_submitted"][0], "name": SCRIPT}]

    rendered = render("reviewer_digest", context)

    assert SCRIPT not in rendered.html
    assert "&lt;script&gt;" in rendered.html
    assert SCRIPT in rendered.text


def test_missing_variable_raises() -> None:
    context = dict(SAMPLES["quota_reminder"])
    del context["left_fen"]

    with pytest.raises(jinja2.UndefinedError, match="left_fen"):
        render("quota_reminder", context)


def test_missing_attribute_in_a_list_item_raises() -> None:
    context = dict(SAMPLES["reviewer_digest"])
    context["awaiting_decision"] = [{"name": "某工会", "link": "https://x.example/1"}]

    with pytest.raises(jinja2.UndefinedError):
        render("reviewer_digest", context)


@pytest.mark.parametrize("reason", ["drop", None, ""])
def test_record_event_reason_is_optional(reason: str | None) -> None:
    context = dict(SAMPLES["record_event"])
    if reason == "drop":
        del context["reason"]
    else:
        context["reason"] = reason

    rendered = render("record_event", context)

    assert "原因" not in rendered.text
    assert "原因" not in rendered.html


def test_record_event_shows_reason_and_next_step() -> None:
    rendered = render("record_event", SAMPLES["record_event"])

    assert "原因：832平台采购金额与发票合计不符" in rendered.text
    assert "操作人：张敏" in rendered.text
    assert "重新汇总并提交" in rendered.text
    assert rendered.subject == "【消费帮扶】某公司工会委员会的记录：退回修改"


def test_reviewer_digest_lists_and_empty_lists() -> None:
    rendered = render("reviewer_digest", SAMPLES["reviewer_digest"])
    assert "某学校工会委员会，提交时间 2021年12月10日 14:30" in rendered.text
    assert "某街道总工会（已采购）" in rendered.text
    assert "待审核 1 项，未提交 2 家" in rendered.subject

    empty = render(
        "reviewer_digest",
        {**SAMPLES["reviewer_digest"], "not_submitted": [], "awaiting_decision": []},
    )
    assert empty.text.count("- 无") == 2


def test_subject_never_contains_a_line_break() -> None:
    rendered = render("record_event", {**SAMPLES["record_event"], "org_name": "某工会\r\nBcc: x@y"})

    assert "\n" not in rendered.subject and "\r" not in rendered.subject


@pytest.mark.parametrize("link", ["/records/1", "javascript:alert(1)", "file:///etc/passwd"])
def test_link_must_be_absolute_http(link: str) -> None:
    with pytest.raises(ValueError, match="absolute"):
        render("overdue_notice", {**SAMPLES["overdue_notice"], "link": link})


def test_unknown_kind() -> None:
    with pytest.raises(UnknownKindError):
        render("no_such_kind", {})


def test_environment_is_shared_and_extra_folders_reuse_its_configuration(tmp_path: Path) -> None:
    assert environment() is environment()
    (tmp_path / "page.html").write_text("<p>{{ name }} {{ fen|yuan }}</p>", encoding="utf-8")
    (tmp_path / "page.txt").write_text("{{ name }} {{ day|cn_date }}", encoding="utf-8")

    env = make_environment(tmp_path)

    assert env.get_template("page.html").render(name=SCRIPT, fen=5) == (
        "<p>&lt;script&gt;alert(1)&lt;/script&gt; 0.05</p>"
    )
    assert env.get_template("page.txt").render(name=SCRIPT, day=date(2022, 1, 1)) == (
        f"{SCRIPT} 2022年1月1日"
    )
    with pytest.raises(jinja2.UndefinedError):
        env.get_template("page.txt").render(name="x")
    # The notification templates stay reachable from the extended environment.
    assert env.get_template("quota_reminder.txt") is not None


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (0, "0.00"),
        (5, "0.05"),
        (100, "1.00"),
        (1_234_560, "12,345.60"),
        (-1_234_560, "-12,345.60"),
        (1_000_000_000_000, "10,000,000,000.00"),
    ],
)
def test_yuan(fen: int, text: str) -> None:
    assert yuan(fen) == text


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_yuan_round_trips(fen: int) -> None:
    text = yuan(fen)
    whole, _, cents = text.partition(".")
    assert len(cents) == 2
    assert all(len(group) == 3 for group in whole.lstrip("-").split(",")[1:])
    assert int(text.replace(",", "").replace(".", "")) == fen


@pytest.mark.parametrize("bad", [1.5, "100", True])
def test_yuan_refuses_non_integers(bad: object) -> None:
    with pytest.raises(TypeError):
        yuan(bad)  # type: ignore[arg-type]


def test_cn_date_and_datetime_use_china_time() -> None:
    assert cn_date(date(2021, 12, 31)) == "2021年12月31日"
    assert cn_date(date(2022, 1, 5)) == "2022年1月5日"
    # 16:30 UTC on 31 December is already 1 January in China.
    late = datetime(2021, 12, 31, 16, 30, tzinfo=UTC)
    assert cn_date(late) == "2022年1月1日"
    assert cn_datetime(late) == "2022年1月1日 00:30"
    with pytest.raises(ValueError, match="naive"):
        cn_datetime(datetime(2021, 12, 31, 16, 30))


def test_abs_url() -> None:
    assert (
        abs_url("https://bangfu.example/records/1?tab=2")
        == "https://bangfu.example/records/1?tab=2"
    )
    for bad in ["https:///nohost", "http://a b.example/", "ftp://x.example/"]:
        with pytest.raises(ValueError):
            abs_url(bad)
