"""Orders claimed by more than one union (issue 20 point 3): the same platform order (channel +
order number) held live by two unions' records in one round would count twice in the province's
Annex 2 table.

It is a warning, never a refusal: a line entered by hand or imported is stored, then
:func:`flag_claims` (in the same transaction) finds every other record of the round holding one
of the new lines' orders, not covered by a reviewer's explanation, and writes one outbox row per
pair of records to the reviewers of each record's parent organisation (kind ``duplicate_order``,
keyed by the pair and the order, so entering the order again notifies nobody twice). The clerk
sees the warning in the entry's answer, the import's result and the ledger's marks
(:func:`claims_by_order`). The suspects per level and their explanation are reporting's
(:func:`workflow.app.reporting.duplicate_orders`, :func:`~workflow.app.reporting.explain_duplicate`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import states
from workflow.app.lifecycle import notification_rows
from workflow.domain.policy import Policy
from workflow.store.order_claims import OtherClaim
from workflow.store.uow import UnitOfWork

if TYPE_CHECKING:
    from workflow.store.tables import User

#: The notification kind (a template in notifications/templates/).
KIND = "duplicate_order"


@dataclass(frozen=True)
class DuplicateWarning:
    """One order of a record also held, unexplained, by other unions of the round."""

    channel: str
    channel_name: str
    order_no: str
    other_unions: tuple[str, ...]

    @property
    def message(self) -> str:
        return (f"订单 {self.order_no}（{self.channel_name}）也被{'、'.join(self.other_unions)}录入，"
                f"可能重复计算；已通知双方的上级审核人核实")

    def to_dict(self) -> dict[str, object]:
        return {"channel": self.channel, "channel_name": self.channel_name, "order_no": self.order_no,
                "other_unions": list(self.other_unions), "message": self.message}


def claims_by_order(uow: UnitOfWork, record_id: int, round_id: int) -> dict[tuple[str, str], list[str]]:
    """The record's orders also held live by other unions of the round and not explained:
    (channel, order number) → the other unions' names (one query)."""
    out: dict[tuple[str, str], list[str]] = {}
    for c in uow.order_claims.others_of_record(record_id, round_id):
        if not c.explained:
            out.setdefault((c.channel, c.order_no), []).append(c.org_name)
    return out


def flag_claims(
    uow: UnitOfWork, *, record_id: int, round_id: int, round_label: str, policy: Policy,
    orders: Iterable[tuple[str, str]], actor_user_id: int | None, now: datetime,
) -> list[DuplicateWarning]:
    """After ``orders`` (channel, order number) were stored in the record: the warnings, and the
    outbox rows to the reviewers of both sides of every unexplained pair (in the caller's
    transaction; a pair already notified is skipped by the outbox's unique key)."""
    wanted = set(orders)
    if not wanted:
        return []
    others = [c for c in uow.order_claims.others_of_record(record_id, round_id)
              if not c.explained and (c.channel, c.order_no) in wanted]
    if not others:
        return []
    rec = uow.records.get(record_id)
    mine = uow.directory.org(rec.org_id)
    names = {c.code: c.name for c in policy.channels}
    reviewers: dict[int, list[User]] = {}

    def reviewers_of(org_id: int | None) -> list[User]:
        if org_id is None:
            return []
        if org_id not in reviewers:
            reviewers[org_id] = uow.directory.users_with_role(org_id, states.REVIEWER)
        return reviewers[org_id]

    rows: list[dict[str, object]] = []
    grouped: dict[tuple[str, str], list[OtherClaim]] = {}
    for c in others:
        grouped.setdefault((c.channel, c.order_no), []).append(c)
        channel_name = names.get(c.channel, c.channel)
        low, high = sorted((record_id, c.record_id))
        source = f"duplicate:{round_id}:{low}:{high}:{c.channel}:{c.order_no}"[:200]
        common = {"channel_name": channel_name, "order_no": c.order_no, "round_label": round_label}
        rows += notification_rows(
            reviewers_of(mine.parent_id), kind=KIND, source=source, record_id=record_id, now=now,
            payload={**common, "org_name": mine.name, "other_org_name": c.org_name, "path": f"/records/{record_id}"},
            exclude_user_id=actor_user_id)
        rows += notification_rows(
            reviewers_of(c.org_parent_id), kind=KIND, source=source, record_id=c.record_id, now=now,
            payload={**common, "org_name": c.org_name, "other_org_name": mine.name,
                     "path": f"/records/{c.record_id}"},
            exclude_user_id=actor_user_id)
    # One row per (recipient, channel, source): a reviewer of both parents hears once.
    unique = {(r["user_id"], r["channel"], r["source"]): r for r in reversed(rows)}
    uow.notifications.add(unique.values())
    return [DuplicateWarning(channel, names.get(channel, channel), order_no, tuple(c.org_name for c in group))
            for (channel, order_no), group in sorted(grouped.items())]
