"""What changed between a submission that was returned and the record that came back: the Annex 2
rows before → after, and the report texts. Pure: lines and texts in, rows out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workflow.domain.figures import Lines, annex2_rows
from workflow.domain.policy import Policy

#: The report texts a submission carries, with their labels on the form.
TEXT_FIELDS: dict[str, str] = {
    "reporter": "填报人",
    "phone": "联系电话",
    "fill_date": "填表时间",
    "work_experience": "先进经验",
    "work_highlights": "工作亮点",
}
TOTAL_LABEL = "合计"


@dataclass(frozen=True)
class RowChange:
    """One Annex 2 row (or 合计) before → after, exact people and fen."""

    label: str
    before_people: int
    before_fen: int
    after_people: int
    after_fen: int

    @property
    def changed(self) -> bool:
        return (self.before_people, self.before_fen) != (self.after_people, self.after_fen)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "before_people": self.before_people, "before_fen": self.before_fen,
                "after_people": self.after_people, "after_fen": self.after_fen, "changed": self.changed,
                "people_change": self.after_people - self.before_people,
                "fen_change": self.after_fen - self.before_fen}


def row_changes(before: Lines, after: Lines, policy: Policy) -> list[RowChange]:
    """Every Annex 2 row of the policy in the form's order, then 合计."""
    rows = [RowChange(b.label, b.people, b.amount_fen, a.people, a.amount_fen)
            for b, a in zip(annex2_rows(before, policy), annex2_rows(after, policy), strict=True)]
    rows.append(RowChange(TOTAL_LABEL, sum(r.before_people for r in rows), sum(r.before_fen for r in rows),
                          sum(r.after_people for r in rows), sum(r.after_fen for r in rows)))
    return rows


def text_changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """The report texts that differ (an empty value is ``None``), with their labels."""
    out = []
    for key, label in TEXT_FIELDS.items():
        b, a = (before.get(key) or None), (after.get(key) or None)
        if b != a:
            out.append({"field": key, "label": label, "before": b, "after": a})
    return out
