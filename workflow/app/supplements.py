"""补报: a late child's figures travel up the chain as supplements, without reopening any report.

A district accepts a union that came after the district had sent its report (``accept_late``,
:mod:`workflow.app.lifecycle`): the union's snapshot lines become supplement 1 of the district's
record, submitted to the city. The city's reviewer accepts it (:func:`accept`); if the city's own
report is sent by then, the same figures become the city's supplement, submitted to the
province; and so on to the top. If the city has not sent its report yet, its next summary counts
the accepted supplement (:mod:`workflow.store.supplements`). A report that comes back down
(withdrawn, returned, revoked) folds its supplements into its next summary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import states
from workflow.app.oplog import audited
from workflow.domain import access, clock
from workflow.domain.errors import NotFound, PermissionDenied, Refusal, RuleViolation
from workflow.domain.figures import Lines
from workflow.domain.money import yuan
from workflow.store.supplements import SUBMITTED, SupplementView
from workflow.store.uow import UnitOfWork

SENT = (states.SUBMITTED, states.ACCEPTED)
#: The transition whose permission a supplement's decision borrows: its record's parent's reviewers.
_DECIDE = next(t for t in states.TRANSITIONS if t.trigger == "accept")


@dataclass(frozen=True)
class AcceptResult:
    supplement: SupplementView
    forwarded: SupplementView | None  # the parent's supplement it became, if the parent had sent its report

    @property
    def message(self) -> str:
        text = f"已通过{self.supplement.label}（迟交单位：{self.supplement.units_text}）"
        if self.forwarded is not None:
            text += f"；已作为本单位的{self.forwarded.label}报上级审核"
        return text


def describe(sup: SupplementView) -> str:
    """A supplement in a clerk's words (history, messages, the Annex 2 note)."""
    return (f"{sup.label}：迟交单位 {sup.units_text}，人次 {sup.people_total:,}，"
            f"金额 {yuan(sup.amount_total_fen)} 元")


def file(uow: UnitOfWork, *, record_id: int, lines: Lines, late_units: list[tuple[str, str]], user_id: int,
         now: datetime, source_record_id: int | None = None, source_supplement_id: int | None = None) -> SupplementView:
    """File a supplement of ``record_id`` inside the caller's transaction: the supplement, a 补报
    row in the record's history, and a message to its parent's reviewers."""
    sup = uow.supplements.add(record_id=record_id, lines=lines, late_units=late_units, now=now,
                              source_record_id=source_record_id, source_supplement_id=source_supplement_id)
    rec = uow.records.get(record_id)
    org = uow.directory.org(rec.org_id)
    history_id = uow.records.add_history({
        "record_id": record_id, "at": now, "actor_user_id": user_id, "actor_role": states.REVIEWER,
        "actor_org_id": org.id, "on_behalf": False, "from_state": rec.state, "to_state": rec.state,
        "trigger": "supplement", "reason": describe(sup),
        "detail": json.dumps({"supplement_id": sup.id, "seq": sup.seq}, sort_keys=True),
    })
    if org.parent_id is not None:
        _notify(uow, org_id=org.parent_id, role=states.REVIEWER, user_id=user_id, history_id=history_id,
                record_id=record_id, org_name=org.name, org_code=org.code,
                event=f"{sup.label}待审核", reason=describe(sup), now=now)
    return sup


@audited('supplement.accept', keep=('supplement_id',))
def accept(uow: UnitOfWork, *, supplement_id: int, user_id: int, now: datetime | None = None) -> AcceptResult:
    """The record's parent's reviewer accepts a supplement; forwarded up when the parent's own
    report is already sent.

    Raises:
        NotFound: no such supplement in the user's view (``supplement.not_found``).
        PermissionDenied: not a reviewer of the record's parent.
        RuleViolation: no longer pending (``supplement.not_pending``); the record's report itself
            is not accepted yet (``supplement.base_not_accepted``).
    """
    now = now or clock.now()
    with uow:
        sup = uow.supplements.get(supplement_id)
        # The record's row is locked (as for a transition of it): no withdraw or return of its
        # report comes between this decision and its commit.
        fc = uow.records.fire_context(sup.record_id, user_id)
        relation = access.relation(fc.seats, fc.org)
        if not relation.visible:
            raise NotFound(f"找不到补报 #{supplement_id}", code="supplement.not_found")
        who = access.authorize(_DECIDE, relation)
        if isinstance(who, Refusal):
            raise PermissionDenied(who.message, code=who.code)
        if sup.state != SUBMITTED:
            raise RuleViolation(Refusal("supplement.not_pending", f"{sup.label}已审核或已作废，不能再审核"))
        if fc.state != states.ACCEPTED:
            raise RuleViolation(Refusal("supplement.base_not_accepted",
                                        f"{fc.org_name}的报表还没有通过：请先审核报表，再审核它的{sup.label}"))
        # The parent's row next (child, then parent: the one order); a summarized parent's
        # snapshot goes stale, as when a child is accepted.
        parent_state = uow.records.lock_parent(fc.parent_id) if fc.parent_id is not None else None
        if not uow.supplements.accept(sup.id, user_id=user_id, now=now):
            raise RuleViolation(Refusal("supplement.not_pending", f"{sup.label}已审核或已作废，不能再审核"))
        accepted = uow.supplements.get(sup.id)
        history_id = uow.records.add_history({
            "record_id": fc.record_id, "at": now, "actor_user_id": user_id, "actor_role": states.REVIEWER,
            "actor_org_id": fc.org_parent_id, "on_behalf": False, "from_state": fc.state, "to_state": fc.state,
            "trigger": "accept_supplement", "reason": describe(accepted),
            "detail": json.dumps({"supplement_id": sup.id, "seq": sup.seq}, sort_keys=True),
        }, after=fc)
        _notify(uow, org_id=fc.org_id, role=states.CLERK, user_id=user_id, history_id=history_id,
                record_id=fc.record_id, org_name=fc.org_name, org_code=fc.org_code,
                event=f"{sup.label}已通过", reason=describe(accepted), now=now)
        forwarded = None
        if fc.parent_id is not None and parent_state in SENT:
            forwarded = file(uow, record_id=fc.parent_id, lines=accepted.lines, late_units=accepted.late_units,
                             source_supplement_id=sup.id, user_id=user_id, now=now)
        uow.commit()
        return AcceptResult(supplement=accepted, forwarded=forwarded)


def for_record(uow: UnitOfWork, *, record_id: int, user_id: int) -> list[SupplementView]:
    """A record's supplements, for a user who may see the record."""
    with uow:
        fc = uow.records.fire_context(record_id, user_id, lock=False)
        if not access.relation(fc.seats, fc.org).visible:
            raise NotFound(f"找不到记录 #{record_id}", code="record.not_found")
        return uow.supplements.for_record(record_id)


def as_dict(sup: SupplementView) -> dict[str, object]:
    """A supplement for the API: its number, state, figures and the units that came late."""
    return {"id": sup.id, "record_id": sup.record_id, "seq": sup.seq, "label": sup.label, "state": sup.state,
            "state_label": sup.state_label, "people": sup.people_total, "amount_fen": sup.amount_total_fen,
            "late_units": [{"org_code": c, "org_name": n} for c, n in sup.late_units],
            "lines": {ch: {"people": p, "amount_fen": a} for ch, (p, a) in sorted(sup.lines.items())},
            "created_at": sup.created_at.isoformat(), "decided_at": sup.decided_at.isoformat() if sup.decided_at else None}


def _notify(uow: UnitOfWork, *, org_id: int, role: str, user_id: int, history_id: int, record_id: int,
            org_name: str, org_code: str, event: str, reason: str, now: datetime) -> int:
    actor = uow.directory.display_names([user_id]).get(user_id, "")
    payload = json.dumps({"org_name": org_name, "org_code": org_code, "event": event, "trigger": "supplement",
                          "actor_name": actor, "reason": reason, "path": f"/records/{record_id}"},
                         ensure_ascii=False, sort_keys=True)
    return uow.notifications.add_event_notifications(
        org_id=org_id, role=role, actor_user_id=user_id, source=f"history:{history_id}", record_id=record_id,
        payload=payload, now=now)
