"""The purchase ledger: a line entered by hand (the CLI, the API, a form), voided with a reason,
listed; the same rules as a file's lines (:mod:`workflow.app.purchase_import`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import states
from workflow.app.actors import _acting_org_id, actor_for, entry_role, policy_for
from workflow.app.oplog import audited
from workflow.app.order_claims import DuplicateWarning, claims_by_order, flag_claims
from workflow.domain import budgets, channels, clock, rules, text
from workflow.domain.errors import (
    BadInput,
    NotFound,
    Refusal,
    RuleViolation,
)
from workflow.domain.policy import Policy
from workflow.store.purchases import OrderBalance
from workflow.store.uow import UnitOfWork

if TYPE_CHECKING:
    from workflow.store.tables import Round


#: The budget sources (one table, in the domain); the name stays for the pages, views and CLI.
BUDGETS = budgets.BUDGETS


VOID_REASON_MAX = 500


@dataclass(frozen=True)
class PurchaseInput:
    """A purchase line as a clerk enters it (or an import row)."""

    paid_at: datetime
    channel: str
    amount_fen: int
    people: int
    order_no: str
    line_no: int = 1
    product: str = ""
    product_form: str | None = None
    holiday: str | None = None
    origin_region: str | None = None
    budget: str = "extra_quota"
    refund_of: str | None = None  # the order number a negative line refunds


def resolve_channel(policy: Policy, text: str) -> str:
    """A channel as a clerk names it: its code, its name in the policy, or a common Chinese name
    (粤工惠购, 832平台 ...); unknown text is returned as typed (the check refuses it). The one
    resolver is :func:`workflow.domain.channels.resolve_channel`."""
    return channels.resolve_channel(policy.channels, text)


def normalise_purchase(policy: Policy, p: PurchaseInput) -> PurchaseInput:
    """The line with its channel and budget as codes (typed names resolved, unknown text kept for
    the refusal to quote), its texts in NFC: what every entry path does before
    :func:`check_purchase`. Texts the free-text rule refuses are kept as typed for the refusal."""
    def norm(value: str | None, *, field: str, multiline: bool = False) -> str | None:
        if value is None or text.text_refusal(value, field=field, multiline=multiline):
            return value
        return text.normalise(value, strip=False)  # stored as typed (the writers neutralise), in NFC

    return replace(p, channel=resolve_channel(policy, norm(p.channel, field="采购渠道") or ""),
                   budget=budgets.resolve_budget(norm(p.budget, field="经费来源") or ""),
                   order_no=norm(p.order_no, field="订单号") or "",
                   product=norm(p.product, field="商品名称", multiline=True) or "",
                   product_form=norm(p.product_form, field="商品形式"), holiday=norm(p.holiday, field="节日"),
                   origin_region=norm(p.origin_region, field="产地"), refund_of=norm(p.refund_of, field="原订单号"))


def text_fields_refusal(p: PurchaseInput) -> Refusal | None:
    """The free-text rule (:mod:`workflow.domain.text`) on every text of a purchase line."""
    for value, field, multiline in (
        (p.channel, "采购渠道", False), (p.budget, "经费来源", False), (p.order_no, "订单号", False),
        (p.product, "商品名称", True), (p.product_form, "商品形式", False), (p.holiday, "节日", False),
        (p.origin_region, "产地", False), (p.refund_of, "原订单号", False),
    ):
        if refusal := text.text_refusal(value, field=field, multiline=multiline):
            return refusal
    return None


def check_purchase(policy: Policy, rnd: Round, p: PurchaseInput, *, now: datetime) -> Refusal | None:
    """Every rule a purchase line must pass before it is stored (manual entry and import)."""
    if refusal := text_fields_refusal(p):
        return refusal
    for check in (
        rules.check_channel(p.channel, policy.channels),
        rules.check_budget(p.budget),
        rules.check_order_ref(p.order_no, p.line_no),
        rules.check_purchase_amounts(p.amount_fen, p.people),
        rules.check_purchase_people(p.amount_fen, p.people),
        rules.check_line_caps(p.amount_fen, p.people, p.line_no, max_amount_fen=policy.caps.line_amount_fen,
                              max_people=policy.caps.line_people, max_line_no=policy.caps.line_no),
        rules.check_purchase_year(p.paid_at, rnd.year, clock.deadline_last_day(rnd.quota_deadline)),
        rules.check_paid_not_after_entry(p.paid_at, now),
        rules.check_product_form(p.product_form, policy.forbidden_forms, p.product),
        rules.check_entry_window(now, rnd.entry_cutoff),
        rules.check_holiday(p.holiday, policy.holidays),
        rules.check_refund_link(p.amount_fen, p.refund_of),
    ):
        if check:
            return check
    return None


@dataclass(frozen=True)
class PurchaseEntry:
    """A line entered: its id, and the warnings it raised (its order also held by other unions)."""

    purchase_id: int
    record_id: int
    duplicates: tuple[DuplicateWarning, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"purchase_id": self.purchase_id, "record_id": self.record_id,
                "duplicate_warnings": [d.to_dict() for d in self.duplicates]}


def add_purchase(
    uow: UnitOfWork, *, record_id: int, user_id: int, purchase: PurchaseInput, now: datetime | None = None
) -> int:
    """Enter one purchase line (:func:`enter_purchase`); the purchase id."""
    return enter_purchase(uow, record_id=record_id, user_id=user_id, purchase=purchase, now=now).purchase_id


@audited('purchase.enter', keep=('purchase',))
def enter_purchase(
    uow: UnitOfWork, *, record_id: int, user_id: int, purchase: PurchaseInput, now: datetime | None = None
) -> PurchaseEntry:
    """Enter one purchase line; a summarized record's snapshot becomes stale. When another
    union's record of the round holds the same order (channel + order number) live and no
    reviewer explained it, the line is stored all the same: the answer warns, and the reviewers
    of both unions are notified (:func:`workflow.app.order_claims.flag_claims`).

    Returns:
        The purchase id and the duplicate-order warnings.
    """
    now = now or clock.now()
    with uow:
        # The record's row first: a summarize or submit of it waits for this line, or this line
        # for it (and then sees its new state), never a line landing under a frozen snapshot.
        uow.purchases.lock_record(record_id)
        rec = uow.records.get(record_id)
        actor = actor_for(uow, user_id, rec)
        role, on_behalf = entry_role(actor, "录入采购")
        if refusal := rules.check_record_open_for_purchases(rec.state):
            raise RuleViolation(refusal)
        rnd, policy = policy_for(uow, rec)
        purchase = normalise_purchase(policy, purchase)
        if refusal := check_purchase(policy, rnd, purchase, now=now):
            raise RuleViolation(refusal)
        refund_of_id = None
        if purchase.amount_fen < 0 and purchase.refund_of:
            original = uow.purchases.find_live(record_id, purchase.channel, purchase.refund_of, 1)
            if original is None:
                raise RuleViolation(rules.refund_order_unknown(purchase.refund_of))
            refund_of_id = original.id
            key = (purchase.channel, purchase.refund_of)
            order = uow.purchases.order_balances(record_id, key).get(key, OrderBalance(0, 0, 0, 0))
            if refusal := rules.check_refunds_within_order(
                    purchase.refund_of, order.order_fen, order.order_people,
                    order.refunds_fen + purchase.amount_fen, order.refunds_people + purchase.people):
                raise RuleViolation(refusal)
        purchase_id = uow.purchases.insert({
            "record_id": record_id,
            "paid_at": purchase.paid_at,
            "paid_on": clock.china_date(purchase.paid_at),
            "channel": purchase.channel,
            "amount_fen": purchase.amount_fen,
            "people": purchase.people,
            "holiday": purchase.holiday,
            "product": purchase.product,
            "product_form": purchase.product_form,
            "origin_region": purchase.origin_region,
            "order_no": purchase.order_no.strip(),
            "line_no": purchase.line_no,
            "budget": purchase.budget,
            "refund_of_id": refund_of_id,
            "entered_by_user_id": actor.user.id,
            "entered_at": now,
            "on_behalf": on_behalf,
            "source": "manual",
            "void_on_behalf": False,
        })
        uow.records.mark_snapshot_stale(record_id, only_state=states.SUMMARIZED)
        warnings = flag_claims(uow, record_id=record_id, round_id=rec.round_id, round_label=rnd.label, policy=policy,
                               orders=[(purchase.channel, purchase.order_no.strip())] if purchase.amount_fen > 0 else [],
                               actor_user_id=actor.user.id, now=now)
        uow.commit()
        return PurchaseEntry(purchase_id, record_id, tuple(warnings))


@audited('purchase.void', keep=('reason',))
def void_purchase(
    uow: UnitOfWork, *, record_id: int, purchase_id: int, user_id: int, reason: str,
    now: datetime | None = None,
) -> int:
    """Void one purchase line with a reason, before submit: the line stays in the ledger, struck
    through with who, when and why, and counts nowhere (quota, sums, snapshots, reports); a
    history row records it and a summarized record's snapshot becomes stale. The correct line
    can then be entered under the same order number.

    Who: the record's clerk, or the parent's reviewer on its behalf (代填报). A submitted or
    accepted record is refused (only a return opens it again).

    Returns:
        The history row's id.

    Raises:
        NotFound, PermissionDenied, RuleViolation, BadInput (no reason).
    """
    now = now or clock.now()
    reason = text.clean_text(reason or "", field="作废原因", multiline=True)
    with uow:
        uow.purchases.lock_record(record_id)  # as for a new line: never under a frozen snapshot
        rec = uow.records.get(record_id)
        actor = actor_for(uow, user_id, rec)
        role, on_behalf = entry_role(actor, "作废采购行")
        if not reason:
            raise BadInput("请填写作废原因，例如“人次误录为 500，应为 50”", code="purchase.void_reason_missing")
        if len(reason) > VOID_REASON_MAX:
            raise BadInput(f"作废原因不能超过 {VOID_REASON_MAX} 字", code="purchase.void_reason_long")
        if refusal := rules.check_record_open_for_purchases(rec.state):
            raise RuleViolation(refusal)
        line = uow.purchases.get(purchase_id)
        if line is None or line.record_id != record_id:
            raise NotFound(f"本记录中没有第 #{purchase_id} 条采购", code="purchase.not_found")
        if line.voided_at is not None:
            raise RuleViolation(Refusal("purchase.already_voided",
                                        f"订单 {line.order_no} 第 {line.line_no} 行已于 "
                                        f"{clock.china_date(line.voided_at):%Y-%m-%d} 作废"))
        if refunds := uow.purchases.live_refunds_of(purchase_id):
            raise RuleViolation(Refusal("purchase.void_has_refunds",
                                        f"订单 {line.order_no} 还有 {len(refunds)} 条退款未作废，请先作废退款行"))
        if not uow.purchases.void(purchase_id, user_id=actor.user.id or 0, reason=reason, on_behalf=on_behalf, now=now):
            raise RuleViolation(Refusal("purchase.already_voided", f"订单 {line.order_no} 第 {line.line_no} 行已作废"))
        uow.records.mark_snapshot_stale(record_id, only_state=states.SUMMARIZED)
        detail = {"purchase_id": purchase_id, "order_no": line.order_no, "line_no": line.line_no,
                  "channel": line.channel, "amount_fen": line.amount_fen, "people": line.people,
                  "paid_on": line.paid_on.isoformat()}
        history_id = uow.records.add_history({
            "record_id": record_id, "at": now, "actor_user_id": actor.user.id, "actor_role": role,
            "actor_org_id": _acting_org_id(actor, role), "on_behalf": on_behalf, "from_state": rec.state,
            "to_state": rec.state, "trigger": "void_purchase", "reason": reason,
            "detail": json.dumps(detail, ensure_ascii=False, sort_keys=True),
        })
        uow.commit()
        return history_id


def list_purchases(uow: UnitOfWork, *, record_id: int, user_id: int) -> list[dict[str, Any]]:
    """The record's ledger, voided lines included (with who voided them, when and why); a live
    line whose order other unions of the round also hold (unexplained) lists them in
    ``also_claimed_by``."""
    with uow:
        rec = uow.records.get(record_id)
        actor_for(uow, user_id, rec)
        _rnd, policy = policy_for(uow, rec)
        claimed = claims_by_order(uow, record_id, rec.round_id)
        channel_names = {c.code: c.name for c in policy.channels}
        lines = uow.purchases.of_record(record_id)
        names = uow.directory.display_names({p.voided_by_user_id for p in lines if p.voided_by_user_id})
        return [
            {
                "id": p.id,
                "paid_at": p.paid_at,
                "paid_on": p.paid_on,
                "channel": p.channel,
                "channel_name": channel_names.get(p.channel, p.channel),
                "amount_fen": p.amount_fen,
                "people": p.people,
                "order_no": p.order_no,
                "line_no": p.line_no,
                "product": p.product,
                "product_form": p.product_form,
                "holiday": p.holiday,
                "budget": p.budget,
                "on_behalf": p.on_behalf,
                "voided": p.voided_at is not None,
                "voided_at": p.voided_at,
                "voided_by": names.get(p.voided_by_user_id or 0),
                "void_reason": p.void_reason,
                "void_on_behalf": p.void_on_behalf,
                "also_claimed_by": [] if p.voided_at is not None or p.amount_fen <= 0
                else claimed.get((p.channel, p.order_no), []),
            }
            for p in lines
        ]
