"""The lifecycle: fire a trigger on a record (membership, the rules, the version seen), and write
state, history, the rollup's move and the outbox rows in one transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import states
from workflow.app import supplements
from workflow.app.actors import (
    Deciding,
    Escalation,
    _conflict,
    decision_relation,
    four_eyes_escalation,
)
from workflow.app.oplog import audited
from workflow.domain import clock, engine, rules, text
from workflow.domain.engine import GuardContext
from workflow.domain.errors import (
    NotFound,
)
from workflow.domain.figures import wan_people, wan_yuan
from workflow.store import rollup
from workflow.store.records import FireContext
from workflow.store.uow import UnitOfWork

if TYPE_CHECKING:
    from workflow.store.tables import Record, User


#: States in which a record's report has been sent up.
SENT = (states.SUBMITTED, states.ACCEPTED)

#: History rows that are not transitions of the lifecycle (the state stays as it was).
EVENT_LABELS: dict[str, str] = {
    "void_purchase": "作废采购行",
    "explain_duplicate": "说明重复订单",
    "remind": "上级催办",
    "supplement": "补报",
    "accept_supplement": "上级通过补报",
    "supersede_supplements": "补报并入重新汇总",
}


#: A federation's own words for the transitions whose grassroots label speaks of purchasing: it
#: enters its own lines and aggregate lines, then adds up its accepted subordinates.
FEDERATION_ACTION_LABELS: dict[tuple[str, str], str] = {
    ("finish_purchasing", states.PLANNED): "完成本级录入",
    ("reopen", states.PURCHASED): "退回本级录入",
    ("reopen", states.SUMMARIZED): "撤销汇总（继续录入）",
    ("summarize", states.PURCHASED): "汇总（本级数据＋已通过的下级）",
}


def action_label(trigger: str, source: str, *, grassroots: bool) -> str:
    """The label of ``trigger`` fired from ``source`` for this kind of record."""
    if not grassroots and (trigger, source) in FEDERATION_ACTION_LABELS:
        return FEDERATION_ACTION_LABELS[(trigger, source)]
    transition = states.find(trigger, source)
    if transition is not None and transition.label:
        return transition.label
    return states.TRIGGER_LABELS.get(trigger) or EVENT_LABELS.get(trigger, trigger)


#: Who hears about an event: the parent's reviewers or the record's own clerks.
EVENT_RECIPIENTS: dict[str, str] = {
    "submit": "parent_reviewers",
    "withdraw": "parent_reviewers",
    "accept": "own_clerks",
    "accept_late": "own_clerks",
    "return_for_revision": "own_clerks",
    "revoke_acceptance": "own_clerks",
}


@dataclass(frozen=True)
class FireResult:
    record_id: int
    trigger: str
    from_state: str
    to_state: str
    version: int
    history_id: int
    on_behalf: bool
    notifications: int
    label: str = ""  # the transition's name for this record (its source state and kind)
    org_name: str = ""  # the union whose record moved (a reviewer's message names it)
    standin_for: str | None = None  # 代理: the reviewer the actor stood in for

    @property
    def message(self) -> str:
        """What the user is told once it is done (the web's flash, the CLI's line)."""
        label = self.label or states.TRIGGER_LABELS.get(self.trigger, self.trigger)
        return (f"已{label}：{states.STATE_LABELS[self.from_state]} → {states.STATE_LABELS[self.to_state]}"
                + ("（代填报）" if self.on_behalf else "")
                + (f"（代理{self.standin_for}）" if self.standin_for else ""))


@audited('record.fire', keep=('trigger', 'reason', 'seen_version'), success_row=False)
def fire(
    uow: UnitOfWork,
    *,
    record_id: int,
    trigger: str,
    user_id: int,
    seen_version: int,
    reason: str | None = None,
    now: datetime | None = None,
) -> FireResult:
    """Fire ``trigger`` on a record as a user.

    Args:
        uow: a fresh unit of work.
        record_id: the record.
        trigger: ``finish_purchasing``, ``summarize``, ``submit``, ``withdraw``, ``reopen``,
            ``accept``, ``return_for_revision`` or ``revoke_acceptance``.
        user_id: the actor.
        seen_version: the record version the caller saw.
        reason: required for return and revoke.
        now: the instant (defaults to :func:`workflow.domain.clock.now`).

    Returns:
        What happened: states, the new version, the history row.

    Raises:
        NotFound, PermissionDenied, RuleViolation, VersionConflict.
    """
    now = now or clock.now()
    reason = text.clean_text(reason, field="原因", multiline=True) or None if reason else None
    with uow:
        # One statement reads the record, its organisation, the round's cap, the parent record's
        # state, the actor and their memberships; everything after it is plain values.
        fc = uow.records.fire_context(record_id, user_id)
        deciding = decision_relation(uow, fc, now, trigger=trigger)
        relation, escalation = deciding.relation, deciding.escalation
        if not relation.visible:
            # Outside the user's subtree the record does not exist for them.
            raise NotFound(f"找不到记录 #{record_id}", code="record.not_found")
        decision = engine.decide(fc.state, trigger, guard_context_of(fc, now, reason, escalation), relation)
        if decision.transition.locks_parent and fc.parent_id is not None:
            # Accepting or revoking a child changes the sum its parent freezes. The parent's row
            # is locked now (the child's first, then the parent's: the one order, and a parent's
            # own transition locks only its own row), its state read again under the lock and a
            # summarized parent's snapshot marked stale, in one statement. Until this commits,
            # the parent can neither summarize (it would miss this decision) nor submit.
            parent_state = uow.records.lock_parent(fc.parent_id)
            if parent_state != fc.parent_state:
                fc = replace(fc, parent_state=parent_state)
                decision = engine.decide(fc.state, trigger, guard_context_of(fc, now, reason, escalation), relation)
        if fc.version != seen_version:
            raise _conflict(fc.version)
        if deciding.standin_for and decision.acting_role == states.REVIEWER:  # every message says 代理
            fc = replace(fc, user_name=f"{fc.user_name}（代理{deciding.standin_for}）")
        values = transition_values(fc, trigger, decision, reason, now)
        if trigger == "summarize":
            snap = uow.records.take_snapshot(record_id, now=now, as_of=clock.china_date(now))
            values.update(snapshot_id=snap.id, snapshot_stale=False)
            if fc.fill_date is None:
                values["fill_date"] = snap.as_of
        # A report that comes back down (withdrawn, returned, revoked) folds its supplements
        # into its next summary: the snapshot that lacked them is stale.
        if (decision.transition.source in SENT and decision.dest not in SENT
                and uow.supplements.supersede(record_id, now=now)):
            values["snapshot_stale"] = True
        if not uow.records.write(record_id, seen_version, values):
            raise _conflict(fc.version)
        history_id = uow.records.add_history(history_values(fc, trigger, decision, deciding, reason, now), after=fc)
        sent = _notify_event(uow, fc, trigger, history_id, reason, now)
        # (asked when the parent's reviewer submits on the union's behalf: the lone reviewer's case)
        if (trigger == "submit" and decision.on_behalf
                and (up := four_eyes_escalation(uow, fc, state=states.SUBMITTED)) is not None):
            # Four eyes with one reviewer: the grandparent's reviewers decide, and hear of it now.
            sent += _notify_event(uow, fc, trigger, history_id, reason, now, to_org_id=up.org_id)
        if trigger == "accept_late" and fc.parent_id is not None:
            # 补报: the late child's figures go up as a supplement of its parent's sent report.
            lines = uow.records.snapshot_lines_map(fc.snapshot_id)
            supplements.file(uow, record_id=fc.parent_id, lines=lines, late_units=[(fc.org_code, fc.org_name)],
                             source_record_id=record_id, user_id=fc.user_id, now=now)
        # The overview's rollup moves with the record, in this transaction, as its last write:
        # the counter rows it takes (shared with the record's siblings) are held for the commit only.
        uow.records.rollup_move(record_id, fc.round_id, fc.org.path, fc.rollup_entry(),
                                rollup_after(fc, decision, values))
        uow.commit()
        return FireResult(
            standin_for=deciding.standin_for if decision.acting_role == states.REVIEWER else None,
            record_id=record_id,
            trigger=trigger,
            from_state=decision.transition.source,
            to_state=decision.dest,
            version=seen_version + 1,
            history_id=history_id,
            on_behalf=decision.on_behalf,
            notifications=sent,
            label=action_label(trigger, decision.transition.source, grassroots=fc.is_grassroots),
            org_name=fc.org_name,
        )


def transition_values(fc: FireContext, trigger: str, decision: engine.Decision, reason: str | None,
                      now: datetime) -> dict[str, Any]:
    """The record's columns a transition writes (its state and the trigger's own; a summary's
    snapshot is added by :func:`fire`)."""
    values: dict[str, Any] = {"state": decision.dest, "updated_at": now}
    if trigger == "submit":
        values.update(submitted_at=now, is_late=rules.is_late(now, fc.report_deadline), is_overdue=False)
    elif trigger in ("accept", "accept_late"):
        values.update(decided_at=now, last_reason=None)
    elif trigger in ("return_for_revision", "revoke_acceptance"):
        values.update(decided_at=now, last_reason=reason)
    return values


def history_values(fc: FireContext, trigger: str, decision: engine.Decision, deciding: Deciding,
                   reason: str | None, now: datetime) -> dict[str, Any]:
    """A transition's history row (every column but ``id`` and the chain's): who acted, for
    which organisation (the parent's for a reviewer, the grandparent's when four eyes sent the
    decision there), from and to which state."""
    acting_org = fc.org_parent_id if decision.acting_role == states.REVIEWER else fc.org_id
    if deciding.escalation is not None and states.REVIEWER not in deciding.relation.parent_roles:
        acting_org = deciding.escalation.org_id  # four eyes sent the decision to the grandparent
    return {
        "record_id": fc.record_id, "at": now, "actor_user_id": fc.user_id, "actor_role": decision.acting_role,
        "actor_org_id": acting_org, "on_behalf": decision.on_behalf, "from_state": fc.state,
        "to_state": decision.dest, "trigger": trigger, "reason": reason,
        # A submission keeps what it sent: its snapshot and the report texts, so the
        # reviewer can see what changed when a returned record comes back.
        "detail": json.dumps(submission_detail(fc), ensure_ascii=False, sort_keys=True)
        if trigger == "submit" else standin_detail(deciding.standin_for, decision.acting_role),
    }


def rollup_after(fc: FireContext, decision: engine.Decision, values: dict[str, Any]) -> rollup.Entry:
    """The record's rollup entry after a transition writing ``values``."""
    return rollup.entry(
        state=decision.dest, is_grassroots=fc.is_grassroots,
        is_overdue=values.get("is_overdue", fc.is_overdue), is_late=values.get("is_late", fc.is_late),
        has_snapshot=values.get("snapshot_id", fc.snapshot_id) is not None,
        report_deadline=fc.report_deadline, snapshot_people=fc.snapshot_people, snapshot_fen=fc.snapshot_fen,
    )


def standin_detail(standin_for: str | None, acting_role: str) -> str | None:
    """A decision taken as a stand-in (代理) says on whose behalf, in the history row's detail."""
    if standin_for is None or acting_role != states.REVIEWER:
        return None
    return json.dumps({"standin_for": standin_for}, ensure_ascii=False, sort_keys=True)


def _on_behalf(fc: FireContext) -> bool:
    """Whether the actor is not one of the record's own clerks (a parent's reviewer acting)."""
    return not any(o.id == fc.org_id and r == states.CLERK for o, r in fc.seats)


def guard_context_of(fc: FireContext, now: datetime, reason: str | None,
                     escalation: Escalation | None = None) -> GuardContext:
    """The guards' values from a transition's plain context."""
    amount, members = fc.amount_per_member_fen, fc.members
    if not fc.is_grassroots:  # quota rules apply to grassroots records only
        amount, members = amount or 0, members or 0
    return GuardContext(
        cap_fen=fc.cap_fen_per_member, amount_per_member_fen=amount, members=members,
        is_grassroots=fc.is_grassroots, is_reporting_unit=fc.is_reporting_unit,
        work_experience=fc.work_experience, work_highlights=fc.work_highlights,
        has_snapshot=fc.snapshot_id is not None, snapshot_stale=fc.snapshot_stale, reporter=fc.reporter,
        phone=fc.phone, fill_date=fc.fill_date, today=clock.china_date(now), reason=reason,
        parent_state=fc.parent_state, four_eyes=fc.four_eyes,
        # The statement said whether the actor is one of the record's fillers since its last
        # return (asked of submitted records only): the guard needs no more than that.
        actor_is_filler=fc.actor_filled,
        four_eyes_to=escalation.org_name if escalation is not None else None,
    )


def _notify_event(uow: UnitOfWork, fc: FireContext, trigger: str, history_id: int, reason: str | None,
                  now: datetime, *, to_org_id: int | None = None) -> int:
    """Outbox rows for an event, keyed by (recipient, channel, history row), in one statement
    (see :func:`event_notifications`)."""
    event = event_notifications(fc, trigger, history_id, reason, now, to_org_id=to_org_id)
    return 0 if event is None else uow.notifications.add_event_notifications(**event)


def event_notifications(fc: FireContext, trigger: str, history_id: int, reason: str | None,
                        now: datetime, *, to_org_id: int | None = None) -> dict[str, Any] | None:
    """Who hears of an event and what they read, as the arguments of
    ``uow.notifications.add_event_notifications`` (None: nobody): the parent's reviewers or the
    record's own clerks (see :data:`EVENT_RECIPIENTS`); for other triggers the own clerks when
    somebody acted on their behalf."""
    who = EVENT_RECIPIENTS.get(trigger)
    if who is None and not _on_behalf(fc):
        return None
    audiences: list[tuple[int, str]] = []
    if to_org_id is not None or (who == "parent_reviewers" and fc.org_parent_id is not None):
        # the parent's reviewers, or those four eyes sent the decision to
        audiences.append((to_org_id if to_org_id is not None else fc.org_parent_id or 0, states.REVIEWER))
        if _on_behalf(fc):  # a reviewer submitted for the union: its clerks are told too
            audiences.append((fc.org_id, states.CLERK))
    else:
        audiences.append((fc.org_id, states.CLERK))
    if trigger == "accept" and fc.org_parent_id is not None:  # the parent's clerk compiles the report
        audiences.append((fc.org_parent_id, states.CLERK))
    payload = json.dumps({
        "org_name": fc.org_name,
        "org_code": fc.org_code,
        "event": states.TRIGGER_LABELS.get(trigger, trigger),
        "trigger": trigger,
        "actor_name": fc.user_name,
        "reason": reason,
        "figures": _event_figures(fc, trigger),
        "note": event_note(trigger, clock.deadline_last_day(fc.report_deadline), clock.china_date(now)),
        "path": f"/records/{fc.record_id}",
    }, ensure_ascii=False, sort_keys=True, default=str)
    (org_id, role), *more = audiences
    return {"org_id": org_id, "role": role, "also": more[0] if more else None,  # one statement for both
            "actor_user_id": fc.user_id, "source": f"history:{history_id}", "record_id": fc.record_id,
            "payload": payload, "now": now}


def _event_figures(fc: FireContext, trigger: str) -> str | None:
    """What the record sends (its snapshot), as a clerk reads it: a grassroots union's exact
    figures, a federation's in 万 with the exact ones beside."""
    if trigger not in ("submit", "accept", "return_for_revision", "withdraw") or fc.snapshot_people is None:
        return None
    people, fen = fc.snapshot_people, fc.snapshot_fen or 0
    exact = f"{people:,} 人次，{rules.yuan(fen)} 元"
    return exact if fc.is_grassroots else f"{wan_people(people)} 万人次，{wan_yuan(fen)} 万元（{exact}）"


def event_note(trigger: str, last_day: date, today: date) -> str:
    """What the recipient of an event does next, and by when (the record's report deadline)."""
    when = (f"于 {last_day:%Y年%m月%d日} 前" if last_day >= today
            else f"尽快（报送截止日期 {last_day:%Y年%m月%d日} 已过）")
    return {
        "submit": f"请审核：通过，或写明原因退回修改；请{when}处理。",
        "withdraw": "下级已撤回提交，修改后会重新提交，暂无需处理。",
        "accept": "已审核通过，无需进一步操作；数据已计入上级汇总。",
        "return_for_revision": f"请根据审核意见修改，重新汇总后{when}再次提交。",
        "revoke_acceptance": f"请根据意见修改，重新汇总后{when}再次提交。",
    }.get(trigger, "请登录系统查看详情。")


def submission_detail(rec: Record | FireContext) -> dict[str, Any]:
    """What a submission sends: its snapshot id and the report texts (the history row's detail)."""
    return {"snapshot_id": rec.snapshot_id, **_texts(rec)}


def _texts(rec: Record | FireContext) -> dict[str, Any]:
    return {"reporter": rec.reporter, "phone": rec.phone,
            "fill_date": rec.fill_date.isoformat() if rec.fill_date else None,
            "work_experience": rec.work_experience, "work_highlights": rec.work_highlights}


def user_channels(user: User) -> list[str]:
    """The channels a user chose; the in-app inbox always, e-mail only with an address."""
    chosen = [c.strip() for c in (user.channels or "").split(",") if c.strip()]
    out = ["inbox"]
    for c in chosen:
        if c == "email" and not user.email:
            continue
        if c not in out:
            out.append(c)
    return out


def notification_rows(
    recipients: list[User],
    *,
    kind: str,
    source: str,
    record_id: int | None,
    payload: dict[str, Any],
    now: datetime,
    exclude_user_id: int | None = None,
) -> list[dict[str, Any]]:
    """Outbox rows, one per recipient and chosen channel; the inbox copy is delivered at once."""
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True, default=str)
    rows: list[dict[str, Any]] = []
    for user in recipients:
        if user.id == exclude_user_id:
            continue
        for channel in user_channels(user):
            rows.append(
                {
                    "user_id": user.id,
                    "channel": channel,
                    "source": source,
                    "kind": kind,
                    "record_id": record_id,
                    "payload": body,
                    "status": "sent" if channel == "inbox" else "pending",
                    "attempts": 0,
                    "created_at": now,
                    "sent_at": now if channel == "inbox" else None,
                }
            )
    return rows
