"""Reading a record: its view (quota use, deadlines, the actions open to the user), a federation's
parts, its history, what changed since a return, and finding a record by organisation."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import states
from workflow.app import oplog
from workflow.app.actors import Actor, actor_for, decision_relation, policy_for
from workflow.app.lifecycle import _texts, action_label, guard_context_of
from workflow.domain import access, changes, clock, engine, rules
from workflow.domain.engine import Action
from workflow.domain.errors import (
    NotFound,
)
from workflow.domain.figures import wan_people, wan_yuan
from workflow.domain.policy import begun_rounds
from workflow.store.uow import UnitOfWork

if TYPE_CHECKING:
    from workflow.store.tables import Purchase, Record


@dataclass
class RecordView:
    """A record as a clerk or reviewer sees it (CLI ``show``, web dashboard, JSON API)."""

    id: int
    org_code: str
    org_name: str
    org_kind: str
    round_id: int
    round_label: str
    year: int
    state: str
    state_label: str
    version: int
    is_grassroots: bool
    is_reporting_unit: bool
    amount_per_member_fen: int | None
    members: int | None
    quota_fen: int
    extra_spent_fen: int
    quota_left_fen: int
    over_quota_fen: int
    spent_total_fen: int
    quota_deadline: datetime
    report_deadline: datetime
    days_left_quota: int
    days_left_report: int
    is_overdue: bool
    is_late: bool
    snapshot_id: int | None
    snapshot_stale: bool
    reporter: str | None
    phone: str | None
    fill_date: date | None
    work_experience: str | None
    work_highlights: str | None
    last_reason: str | None
    lapsed_fen: int | None
    actions: list[Action] = field(default_factory=list)
    #: Four eyes with one reviewer: the organisation whose reviewers decide this record instead
    #: of its parent's (every reviewer of the parent filled it in), or None.
    four_eyes_to: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["actions"] = [
            {
                "trigger": a.trigger,
                "label": a.label,
                "allowed": a.allowed,
                "needs_reason": a.needs_reason,
                "refusal": {"code": a.refusal.code, "message": a.refusal.message} if a.refusal else None,
            }
            for a in self.actions
        ]
        return data


def _line(p: Purchase) -> dict[str, Any]:
    return {"id": p.id, "order_no": p.order_no, "line_no": p.line_no, "channel": p.channel,
            "amount_fen": p.amount_fen, "people": p.people, "paid_on": p.paid_on, "product": p.product,
            "voided": p.voided_at is not None, "void_reason": p.void_reason}


def changes_since_return(uow: UnitOfWork, *, record_id: int, user_id: int) -> dict[str, Any] | None:
    """What changed since the record's latest return for revision, against the submission that
    was returned: purchase lines added and voided, aggregate lines added, the Annex 2 rows before
    → after, and the report texts changed. *After* is the submission that came back if there is
    one, else the record as it stands (its fresh snapshot, or the live sums). None if the record
    was never returned."""
    with uow:
        rec = uow.records.get(record_id)
        contacts = access.may_see_contacts(actor_for(uow, user_id, rec).relation)
        rows = uow.records.history(record_id)
        returns = [h for h in rows if h.trigger == "return_for_revision"]
        if not returns:
            return None
        ret = returns[-1]
        before_submit = [h for h in rows if h.trigger == "submit" and (h.id or 0) < (ret.id or 0)]
        before = json.loads(before_submit[-1].detail) if before_submit and before_submit[-1].detail else {}
        before_snapshot = before.get("snapshot_id") or uow.records.snapshot_before(record_id, ret.at)
        after_submit = [h for h in rows if h.trigger == "submit" and (h.id or 0) > (ret.id or 0)]
        if after_submit and after_submit[-1].detail:
            after = json.loads(after_submit[-1].detail)
            after_lines = uow.records.snapshot_lines_map(after.get("snapshot_id"))
            after_what = "resubmitted"
        else:
            after = _texts(rec)
            if rec.snapshot_id is not None and not rec.snapshot_stale and rec.state == states.SUMMARIZED:
                after_lines, after_what = uow.records.snapshot_lines_map(rec.snapshot_id), "snapshot"
            else:

                after_lines, after_what = uow.reports.snapshot_lines(record_id)[0], "live"
        before_lines = uow.records.snapshot_lines_map(before_snapshot)
        added, voided = uow.purchases.changed_since(record_id, ret.at)
        aggregate_added = uow.purchases.aggregate_lines_since(record_id, ret.at)
        _rnd, policy = policy_for(uow, rec)
        returned_by = uow.directory.user(ret.actor_user_id).display_name if ret.actor_user_id else "系统"
        table = [r.to_dict() for r in changes.row_changes(before_lines, after_lines, policy)]
        if not contacts:
            before, after = _without_contacts(before), _without_contacts(after)
        texts = changes.text_changes(before, after) if before else []
        return {
            "returned_at": ret.at, "returned_by": returned_by, "reason": ret.reason,
            "before_submitted_at": before_submit[-1].at if before_submit else None,
            "after": after_what, "after_submitted_at": after_submit[-1].at if after_submit else None,
            "rows": table, "rows_changed": [r for r in table if r["changed"]],
            "added": [_line(p) for p in added], "voided": [_line(p) for p in voided],
            "aggregates_added": [{"channel": a.channel, "people": a.people, "amount_fen": a.amount_fen,
                                  "note": a.note} for a in aggregate_added],
            "texts": texts, "texts_known": bool(before),
            "changed": bool(added or voided or aggregate_added or texts or any(r["changed"] for r in table)),
        }


def record_view(uow: UnitOfWork, *, record_id: int, user_id: int, now: datetime | None = None) -> RecordView:
    """A record with its quota use, deadlines and the actions open to this user."""
    now = now or clock.now()
    with uow:
        rec = uow.records.get(record_id)
        actor = actor_for(uow, user_id, rec)
        view = _view(uow, rec, actor, now)
    if view.phone and not actor.relation.own_roles:
        # Shown whole to the record's chain of federations (they call the clerk): an audit row.
        oplog.log(uow.database, action="contacts.reveal", actor_id=user_id, object=f"record:{record_id}",
                  detail={"org": view.org_code, "field": "phone"})
    return view


def _view(uow: UnitOfWork, rec: Record, actor: Actor, now: datetime) -> RecordView:
    rnd, _policy = policy_for(uow, rec)
    spent = uow.purchases.spent_by_budget(rec.id or 0)
    use = rules.quota_use(rec.quota_fen, spent.get("extra_quota", 0))
    # The guards read what a transition would read: the one context statement.
    # (unlocked: a page locks nothing).
    fc = uow.records.fire_context(rec.id or 0, actor.user.id or 0, lock=False)
    deciding = decision_relation(uow, fc, now)
    relation, escalation = deciding.relation, deciding.escalation
    ctx = guard_context_of(fc, now, None, escalation)
    return RecordView(
        id=rec.id or 0,
        org_code=actor.org.code,
        org_name=actor.org.name,
        org_kind=actor.org.kind,
        round_id=rnd.id or 0,
        round_label=rnd.label,
        year=rnd.year,
        state=rec.state,
        state_label=states.STATE_LABELS[rec.state],
        version=rec.version,
        is_grassroots=rec.is_grassroots,
        is_reporting_unit=rec.is_reporting_unit,
        amount_per_member_fen=rec.amount_per_member_fen,
        members=rec.members,
        quota_fen=rec.quota_fen,
        extra_spent_fen=use.extra_spent_fen,
        quota_left_fen=use.left_fen,
        over_quota_fen=use.over_quota_fen,
        spent_total_fen=sum(spent.values()),
        quota_deadline=rnd.quota_deadline,
        report_deadline=rec.report_deadline,
        days_left_quota=rules.days_left(rnd.quota_deadline, now),
        days_left_report=rules.days_left(rec.report_deadline, now),
        is_overdue=rec.is_overdue or rules.is_overdue(rec.state, rec.report_deadline, now),
        is_late=rec.is_late,
        snapshot_id=rec.snapshot_id,
        snapshot_stale=rec.snapshot_stale,
        reporter=rec.reporter if access.may_see_contacts(actor.relation) else None,
        phone=rec.phone if access.may_see_contacts(actor.relation) else None,
        fill_date=rec.fill_date,
        work_experience=rec.work_experience,
        work_highlights=rec.work_highlights,
        last_reason=rec.last_reason,
        lapsed_fen=rec.lapsed_fen,
        actions=[replace(a, label=action_label(a.trigger, rec.state, grassroots=rec.is_grassroots))
                 for a in engine.available_actions(rec.state, ctx, relation)],
        four_eyes_to=escalation.org_name if escalation is not None else None,
    )


def _figure(people: int, fen: int) -> dict[str, Any]:
    return {"people": people, "amount_fen": fen, "wan_people": str(wan_people(people)), "wan_yuan": str(wan_yuan(fen))}


def _sum(lines: dict[str, tuple[int, int]]) -> dict[str, Any]:
    return _figure(sum(p for p, _ in lines.values()), sum(a for _, a in lines.values()))


def federation_view(uow: UnitOfWork, *, record_id: int, user_id: int, limit: int = 50) -> dict[str, Any] | None:
    """What a federation's record will send up, for its own page: the snapshot it holds (if
    summarized; stale or not), the live parts a summary would add up now (own purchases,
    aggregate lines, accepted children's snapshots), its children per state and the children not
    yet accepted (the first ``limit``). None for a grassroots record."""
    with uow:
        rec = uow.records.get(record_id)
        actor_for(uow, user_id, rec)
        if rec.is_grassroots:
            return None
        parts = uow.reports.snapshot_parts(record_id)
        counts, missing = uow.reports.children_status(record_id, limit=limit)
        snapshot = None
        if rec.snapshot_id is not None:
            snap, _lines = uow.records.snapshot(rec.snapshot_id)
            snapshot = {**_figure(snap.people_total, snap.amount_total_fen), "as_of": snap.as_of,
                        "taken_at": snap.taken_at, "stale": rec.snapshot_stale,
                        "missing_children": json.loads(snap.missing_children or "[]")}
    children_total = sum(counts.values())
    return {
        "snapshot": snapshot,
        "live": {"own": _sum(parts["own"]), "aggregate": _sum(parts["aggregate"]),
                 "children": _sum(parts["children"]),
                 "total": _figure(sum(p for d in parts.values() for p, _ in d.values()),
                                  sum(a for d in parts.values() for _, a in d.values()))},
        "children_total": children_total,
        "children_accepted": counts.get(states.ACCEPTED, 0),
        "children_counts": {s: counts.get(s, 0) for s in states.STATES},
        "missing": [{"record_id": m.id, "org_code": m.code, "org_name": m.name, "state": m.state,
                     "state_label": states.STATE_LABELS[m.state], "overdue": bool(m.is_overdue),
                     "returned": rules.returned_not_resubmitted(m.state, m.last_reason),
                     "people": m.people_total, "amount_fen": m.amount_total_fen} for m in missing],
        "missing_total": children_total - counts.get(states.ACCEPTED, 0),
    }


def available_actions(uow: UnitOfWork, *, record_id: int, user_id: int, now: datetime | None = None) -> list[Action]:
    """Each trigger with allowed, or the rule that refuses it, for this user."""
    return record_view(uow, record_id=record_id, user_id=user_id, now=now).actions


def find_record(
    uow: UnitOfWork, *, org_code: str, round_label: str | None = None, now: datetime | None = None
) -> int:
    """The record id of an organisation in a round.

    Without a round label: the organisation's record in the newest round whose year has begun
    (China time), so that in 2021 a clerk works on 2021's record, not on 2022's; the newest round
    when none has begun yet.
    """
    with uow:
        org = uow.directory.org_by_code(org_code)
        if round_label:
            rnd = uow.directory.round_by_label(round_label)
            return uow.records.for_org(org.id or 0, rnd.id or 0).id or 0
        rounds = uow.directory.rounds()
        if not rounds:
            raise NotFound("尚未加载任何年度", code="round.not_found")
        for rnd in begun_rounds(rounds, clock.china_date(now or clock.now())):
            try:
                return uow.records.for_org(org.id or 0, rnd.id or 0).id or 0
            except NotFound:
                continue  # a round scoped to another subtree
        raise NotFound("该单位在已开始的年度中没有记录", code="record.not_found")


_NAIVE_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")


def _aware_detail(detail: Any) -> Any:
    """History details written by set-based SQL hold instants as the database's naive UTC text
    (``2021-12-31 16:00:00.000000``); give them their offset (ISO 8601, ``+00:00``)."""
    if isinstance(detail, dict):
        return {k: _aware_detail(v) for k, v in detail.items()}
    if isinstance(detail, str) and _NAIVE_INSTANT.match(detail):
        return datetime.fromisoformat(detail.replace(" ", "T")).replace(tzinfo=UTC).isoformat()
    return detail


ROLE_NAMES = {states.CLERK: "填报员", states.REVIEWER: "审核人", states.ADMIN: "管理员", states.OBSERVER: "观察员"}
CONTACT_FIELDS = ("reporter", "phone")


def _without_contacts(detail: Any) -> Any:
    """A history detail without 填报人 and 联系电话 (for those who may not see contact data)."""
    if isinstance(detail, dict):
        return {k: v for k, v in detail.items() if k not in CONTACT_FIELDS}
    return detail


def history(uow: UnitOfWork, *, record_id: int, user_id: int) -> list[dict[str, Any]]:
    """The record's history rows, oldest first, with actor names."""
    with uow:
        rec = uow.records.get(record_id)
        contacts = access.may_see_contacts(actor_for(uow, user_id, rec).relation)
        out = []
        for h in uow.records.history(record_id):
            actor_name = uow.directory.user(h.actor_user_id).display_name if h.actor_user_id else "系统"
            if not contacts and h.actor_user_id:  # an observer sees the role, not the clerk's name
                actor_name = ROLE_NAMES.get(h.actor_role or "", "经办人")
            detail = json.loads(h.detail) if h.detail else None
            if not contacts:
                detail = _without_contacts(detail)
            out.append(
                {
                    "id": h.id,
                    "at": h.at,
                    "actor": actor_name,
                    "role": h.actor_role,
                    "on_behalf": h.on_behalf,
                    "from": h.from_state,
                    "to": h.to_state,
                    "trigger": h.trigger,
                    "label": action_label(h.trigger, h.from_state, grassroots=rec.is_grassroots),
                    "reason": h.reason,
                    "detail": _aware_detail(detail) if detail else None,
                    "summary": _history_summary(h.trigger, detail),
                }
            )
        return out


def _history_summary(trigger: str, detail: Any) -> str | None:
    """A line of Chinese for history rows whose detail matters to a reader."""
    if trigger == "void_purchase" and isinstance(detail, dict):
        return (f"订单 {detail.get('order_no')}#{detail.get('line_no')}：{rules.yuan(int(detail.get('amount_fen') or 0))} 元，"
                f"{detail.get('people')} 人次（支付日期 {detail.get('paid_on')}），已作废，不再计入")
    if isinstance(detail, dict) and detail.get("standin_for"):
        return f"代理{detail['standin_for']}审核"
    if trigger == "explain_duplicate" and isinstance(detail, dict):
        return f"订单 {detail.get('order_no')} 同时由{'、'.join(detail.get('unions') or [])}录入，审核人已说明原因"
    return None
