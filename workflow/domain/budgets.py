"""Budget sources (经费来源) of a purchase line: the one table.

The CLI's choices, the web form, the API's schema, the import's 经费来源 column and the ledger's
downloads all read :data:`BUDGETS`. Whether a line's budget is one of them is a rule
(``purchase.unknown_budget``, :func:`workflow.domain.rules.check_budget`).
"""

from __future__ import annotations

from workflow.domain.channels import name_key

#: Code → the clerk's name for it.
BUDGETS: dict[str, str] = {
    "extra_quota": "额外额度",
    "ordinary_gift": "普通节日慰问品",
    "collective_welfare": "集体福利",
    "hardship": "困难帮扶",
    "member_activity": "会员活动",
}
#: A line that names no budget is booked against the extra quota of 粤工总〔2021〕17号.
DEFAULT_BUDGET = "extra_quota"

#: Other names clerks write for them (besides the codes and the names above).
BUDGET_ALIASES: dict[str, str] = {
    "消费帮扶额外额度": "extra_quota",
    "额外慰问额度": "extra_quota",
    "节日慰问品": "ordinary_gift",
    "节日慰问": "ordinary_gift",
    "普通慰问品": "ordinary_gift",
    "困难职工帮扶": "hardship",
    "会员活动经费": "member_activity",
}

_TABLE: dict[str, str] = {
    **{name_key(code): code for code in BUDGETS},
    **{name_key(label): code for code, label in BUDGETS.items()},
    **{name_key(alias): code for alias, code in BUDGET_ALIASES.items()},
}


def resolve_budget(text: str) -> str:
    """A budget as typed (code, name or a common alias) → its code, or the text stripped when it
    names none (the unknown-budget rule then quotes it)."""
    typed = text.strip()
    return _TABLE.get(name_key(typed), typed)


__all__ = ["BUDGETS", "BUDGET_ALIASES", "DEFAULT_BUDGET", "resolve_budget"]
