"""The one channel resolver (domain/channels.py) and the one budget table (domain/budgets.py)."""

from __future__ import annotations

import pytest

from workflow.app import purchases
from workflow.domain import budgets, channels, rules
from workflow.domain.policy import builtin

POLICY = builtin()


@pytest.mark.parametrize(("typed", "code"), [
    ("ygh", "ygh"), (" ygh ", "ygh"), ("YGH", "ygh"), ("ｙｇｈ", "ygh"),
    ("粤工惠购", "ygh"), ("粤工惠购 平台", "ygh"), ("832平台", "p832"), ("８３２平台", "p832"),
    ("脱贫地区农副产品网络销售平台（832平台）", "p832"),  # the policy's own name, full-width brackets
    ("广东馆", "gdg"), ("淘宝", "淘宝"), ("", ""),
])
def test_a_channel_as_typed_resolves_to_the_rounds_code(typed: str, code: str) -> None:
    assert channels.resolve_channel(POLICY.channels, typed) == code


def test_a_common_name_of_a_channel_the_round_lacks_is_kept_as_typed() -> None:
    only_ygh = [c for c in POLICY.channels if c.code == "ygh"]
    assert channels.resolve_channel(only_ygh, "广东馆") == "广东馆"
    assert channels.resolve_channel(only_ygh, "gdg") == "gdg"
    assert channels.resolve("广东馆", channels.alias_table()) == "gdg"  # no policy at hand: every name


def test_every_alias_leads_to_a_channel_of_the_builtin_policy() -> None:
    codes = {c.code for c in POLICY.channels}
    assert set(channels.CHANNEL_ALIASES.values()) <= codes


@pytest.mark.parametrize(("typed", "code"), [
    ("extra_quota", "extra_quota"), ("额外额度", "extra_quota"), ("消费帮扶额外额度", "extra_quota"),
    ("集体福利", "collective_welfare"), ("节日慰问品", "ordinary_gift"), (" 困难 帮扶 ", "hardship"),
    ("小金库", "小金库"),
])
def test_a_budget_as_typed_resolves_to_its_code(typed: str, code: str) -> None:
    assert budgets.resolve_budget(typed) == code


def test_the_budget_rule_reads_the_one_table() -> None:
    assert all(rules.check_budget(code) is None for code in budgets.BUDGETS)
    refusal = rules.check_budget("小金库")
    assert refusal is not None and refusal.code == "purchase.unknown_budget"
    assert "集体福利" in refusal.message
    assert budgets.DEFAULT_BUDGET in budgets.BUDGETS


def test_the_names_other_layers_import_are_the_one_table() -> None:
    from workflow.formats import ledger

    assert purchases.BUDGETS is budgets.BUDGETS and ledger.BUDGET_LABELS is budgets.BUDGETS
