"""Use cases: load, check membership, fire, persist state + history + outbox, commit.

Every function takes a fresh :class:`~workflow.store.uow.UnitOfWork` (not yet entered) and keyword
arguments; it opens the transaction, does its work through the store's methods and commits, or
raises one of :mod:`workflow.domain.errors` and leaves nothing behind. The CLI, the web and the worker
call these and nothing deeper.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import states
from workflow.domain import access, budgets, changes, channels, clock, engine, money, rules
from workflow.domain.access import Relation
from workflow.domain.engine import Action, GuardContext
from workflow.domain.errors import (
    BadInput,
    NotFound,
    PermissionDenied,
    Refusal,
    RuleViolation,
    VersionConflict,
)
from workflow.domain.figures import wan_people, wan_yuan
from workflow.domain.policy import Policy
from workflow.store import rollup
from workflow.store.purchases import OrderBalance
from workflow.store.records import FireContext
from workflow.store.uow import UnitOfWork

if TYPE_CHECKING:
    from workflow.store.tables import Organisation, Purchase, Record, Round, User

#: The budget sources (one table, in the domain); the name stays for the pages, views and CLI.
BUDGETS = budgets.BUDGETS
#: History rows that are not transitions of the lifecycle (the state stays as it was).
EVENT_LABELS: dict[str, str] = {
    "void_purchase": "作废采购行",
}
VOID_REASON_MAX = 500
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
    "return_for_revision": "own_clerks",
    "revoke_acceptance": "own_clerks",
}


# --- views ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """The user acting and their relation to one record."""

    user: User
    org: Organisation  # the record's organisation
    relation: Relation


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

    @property
    def message(self) -> str:
        """What the user is told once it is done (the web's flash, the CLI's line)."""
        label = self.label or states.TRIGGER_LABELS.get(self.trigger, self.trigger)
        return (f"已{label}：{states.STATE_LABELS[self.from_state]} → {states.STATE_LABELS[self.to_state]}"
                + ("（代填报）" if self.on_behalf else ""))


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


# --- membership -----------------------------------------------------------------------------


def relation_to(uow: UnitOfWork, user_id: int, org: Organisation) -> tuple[User, Relation, bool]:
    """The user's roles in ``org`` and in its parent, and whether ``org`` is in their view
    (:mod:`workflow.domain.access`)."""
    user, mems = uow.directory.user_with_memberships(user_id)
    rel = access.relation(mems, org)
    return user, rel, rel.visible


def actor_for(uow: UnitOfWork, user_id: int, rec: Record) -> Actor:
    """The acting user and their relation to ``rec``; NotFound outside their subtree."""
    org = uow.directory.org(rec.org_id)
    user, relation, visible = relation_to(uow, user_id, org)
    if not visible:
        # Outside the user's subtree the record does not exist for them.
        raise NotFound(f"找不到记录 #{rec.id}", code="record.not_found")
    return Actor(user=user, org=org, relation=relation)


def entry_role(actor: Actor, what: str) -> tuple[str, bool]:
    """Who may enter a record's data: its clerks, or the parent's reviewer on its behalf."""
    who = access.entry_role(actor.relation, what)
    if isinstance(who, Refusal):
        raise PermissionDenied(who.message, code=who.code)
    return who


def policy_for(uow: UnitOfWork, rec: Record) -> tuple[Round, Policy]:
    rnd = uow.directory.round(rec.round_id)
    return rnd, uow.directory.policy(rnd.policy_code)


# --- the lifecycle --------------------------------------------------------------------------


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
    reason = reason.strip() if reason else None
    with uow:
        # One statement reads the record, its organisation, the round's cap, the parent record's
        # state, the actor and their memberships; everything after it is plain values.
        fc = uow.records.fire_context(record_id, user_id)
        relation = access.relation(fc.seats, fc.org)
        if not relation.visible:
            # Outside the user's subtree the record does not exist for them.
            raise NotFound(f"找不到记录 #{record_id}", code="record.not_found")
        decision = engine.decide(fc.state, trigger, guard_context_of(fc, now, reason), relation)
        if fc.version != seen_version:
            raise _conflict(fc.version)
        values: dict[str, Any] = {"state": decision.dest, "updated_at": now}
        if trigger == "summarize":
            snap = uow.records.take_snapshot(record_id, now=now, as_of=clock.china_date(now))
            values.update(snapshot_id=snap.id, snapshot_stale=False)
            if fc.fill_date is None:
                values["fill_date"] = snap.as_of
        elif trigger == "submit":
            values.update(submitted_at=now, is_late=rules.is_late(now, fc.report_deadline), is_overdue=False)
        elif trigger == "accept":
            values.update(decided_at=now, last_reason=None)
        elif trigger in ("return_for_revision", "revoke_acceptance"):
            values.update(decided_at=now, last_reason=reason)
        if not uow.records.write(record_id, seen_version, values):
            raise _conflict(fc.version)
        # The overview's rollup moves with the record, in this transaction.
        uow.records.rollup_move(fc.round_id, fc.org.path, fc.rollup_entry(), rollup.entry(
            state=decision.dest, is_grassroots=fc.is_grassroots,
            is_overdue=values.get("is_overdue", fc.is_overdue), is_late=values.get("is_late", fc.is_late),
            has_snapshot=values.get("snapshot_id", fc.snapshot_id) is not None,
            report_deadline=fc.report_deadline, snapshot_people=fc.snapshot_people, snapshot_fen=fc.snapshot_fen,
        ))
        acting_org = fc.org_parent_id if decision.acting_role == states.REVIEWER else fc.org_id
        history_id = uow.records.add_history({
            "record_id": record_id, "at": now, "actor_user_id": fc.user_id, "actor_role": decision.acting_role,
            "actor_org_id": acting_org, "on_behalf": decision.on_behalf, "from_state": fc.state,
            "to_state": decision.dest, "trigger": trigger, "reason": reason,
            # A submission keeps what it sent: its snapshot and the report texts, so the
            # reviewer can see what changed when a returned record comes back.
            "detail": json.dumps(submission_detail(fc), ensure_ascii=False, sort_keys=True)
            if trigger == "submit" else None,
        })
        if trigger in ("accept", "revoke_acceptance"):
            # The parent's frozen sum no longer matches its children's accepted numbers.
            uow.records.mark_snapshot_stale(fc.parent_id, only_state=states.SUMMARIZED)
        sent = _notify_event(uow, fc, trigger, history_id, reason, now)
        uow.commit()
        return FireResult(
            record_id=record_id,
            trigger=trigger,
            from_state=decision.transition.source,
            to_state=decision.dest,
            version=seen_version + 1,
            history_id=history_id,
            on_behalf=decision.on_behalf,
            notifications=sent,
            label=action_label(trigger, decision.transition.source, grassroots=fc.is_grassroots),
        )


def _on_behalf(fc: FireContext) -> bool:
    """Whether the actor is not one of the record's own clerks (a parent's reviewer acting)."""
    return not any(o.id == fc.org_id and r == states.CLERK for o, r in fc.seats)


def guard_context_of(fc: FireContext, now: datetime, reason: str | None) -> GuardContext:
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
    )


def _notify_event(uow: UnitOfWork, fc: FireContext, trigger: str, history_id: int, reason: str | None,
                  now: datetime) -> int:
    """Outbox rows for an event, keyed by (recipient, channel, history row), in one statement:
    the parent's reviewers or the record's own clerks (see :data:`EVENT_RECIPIENTS`); for other
    triggers the own clerks when somebody acted on their behalf."""
    who = EVENT_RECIPIENTS.get(trigger)
    if who is None and not _on_behalf(fc):
        return 0
    if who == "parent_reviewers" and fc.org_parent_id is not None:
        org_id, role = fc.org_parent_id, states.REVIEWER
    else:
        org_id, role = fc.org_id, states.CLERK
    payload = json.dumps({
        "org_name": fc.org_name,
        "org_code": fc.org_code,
        "event": states.TRIGGER_LABELS.get(trigger, trigger),
        "trigger": trigger,
        "actor_name": fc.user_name,
        "reason": reason,
        "path": f"/records/{fc.record_id}",
    }, ensure_ascii=False, sort_keys=True, default=str)
    return uow.notifications.add_event_notifications(org_id=org_id, role=role, actor_user_id=fc.user_id,
                                       source=f"history:{history_id}", record_id=fc.record_id,
                                       payload=payload, now=now)


def submission_detail(rec: Record | FireContext) -> dict[str, Any]:
    """What a submission sends: its snapshot id and the report texts (the history row's detail)."""
    return {"snapshot_id": rec.snapshot_id, **_texts(rec)}


def _texts(rec: Record | FireContext) -> dict[str, Any]:
    return {"reporter": rec.reporter, "phone": rec.phone,
            "fill_date": rec.fill_date.isoformat() if rec.fill_date else None,
            "work_experience": rec.work_experience, "work_highlights": rec.work_highlights}


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
        actor_for(uow, user_id, rec)
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


def _acting_org_id(actor: Actor, role: str) -> int | None:
    if role == states.REVIEWER:
        return actor.org.parent_id
    return actor.org.id


def version_conflict(rec: Record) -> VersionConflict:
    return _conflict(rec.version)


def _conflict(version: int) -> VersionConflict:
    return VersionConflict(f"记录已被他人修改（当前版本 {version}），请刷新后重试", code="version.conflict")


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


# --- reading --------------------------------------------------------------------------------


def record_view(uow: UnitOfWork, *, record_id: int, user_id: int, now: datetime | None = None) -> RecordView:
    """A record with its quota use, deadlines and the actions open to this user."""
    now = now or clock.now()
    with uow:
        rec = uow.records.get(record_id)
        actor = actor_for(uow, user_id, rec)
        return _view(uow, rec, actor, now)


def _view(uow: UnitOfWork, rec: Record, actor: Actor, now: datetime) -> RecordView:
    rnd, _policy = policy_for(uow, rec)
    spent = uow.purchases.spent_by_budget(rec.id or 0)
    use = rules.quota_use(rec.quota_fen, spent.get("extra_quota", 0))
    # The guards read what a transition would read: the one context statement.
    ctx = guard_context_of(uow.records.fire_context(rec.id or 0, actor.user.id or 0), now, None)
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
        reporter=rec.reporter,
        phone=rec.phone,
        fill_date=rec.fill_date,
        work_experience=rec.work_experience,
        work_highlights=rec.work_highlights,
        last_reason=rec.last_reason,
        lapsed_fen=rec.lapsed_fen,
        actions=[replace(a, label=action_label(a.trigger, rec.state, grassroots=rec.is_grassroots))
                 for a in engine.available_actions(rec.state, ctx, actor.relation)],
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
        year = clock.china_date(now or clock.now()).year
        begun = [r for r in rounds if r.year <= year] or rounds
        for rnd in reversed(begun):
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


def history(uow: UnitOfWork, *, record_id: int, user_id: int) -> list[dict[str, Any]]:
    """The record's history rows, oldest first, with actor names."""
    with uow:
        rec = uow.records.get(record_id)
        actor_for(uow, user_id, rec)
        out = []
        for h in uow.records.history(record_id):
            actor_name = uow.directory.user(h.actor_user_id).display_name if h.actor_user_id else "系统"
            detail = json.loads(h.detail) if h.detail else None
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
    return None


# --- data entry -----------------------------------------------------------------------------


def plan(
    uow: UnitOfWork,
    *,
    record_id: int,
    user_id: int,
    seen_version: int,
    amount_per_member_fen: int,
    members: int | None = None,
    now: datetime | None = None,
) -> RecordView:
    """Set the chosen extra amount per member (0..cap) and the member count while planned.
    Without ``members`` the round's imported member count for the organisation is used."""
    now = now or clock.now()
    with uow:
        rec = uow.records.get(record_id)
        actor = actor_for(uow, user_id, rec)
        entry_role(actor, "填写计划")
        rnd, _ = policy_for(uow, rec)
        if rec.state != states.PLANNED:
            raise RuleViolation(Refusal("plan.locked", "只有“计划中”的记录可以修改计划；请先退回计划"))
        if members is None:
            members = uow.directory.member_count(rec.org_id, rec.round_id)
        if refusal := rules.check_plan(amount_per_member_fen, members, cap_fen=rnd.cap_fen_per_member):
            raise RuleViolation(refusal)
        assert members is not None  # check_plan refuses a missing count
        quota = rules.quota_fen(amount_per_member_fen, members, is_grassroots=rec.is_grassroots)
        values = {"amount_per_member_fen": amount_per_member_fen, "members": members,
                  "quota_fen": quota, "updated_at": now}
        if rec.version != seen_version or not uow.records.write(record_id, seen_version, values):
            raise version_conflict(rec)
        uow.commit()
    return record_view(type(uow)(uow.database), record_id=record_id, user_id=user_id, now=now)


def update_report_info(
    uow: UnitOfWork,
    *,
    record_id: int,
    user_id: int,
    seen_version: int,
    reporter: str | None = None,
    phone: str | None = None,
    fill_date: date | None = None,
    work_experience: str | None = None,
    work_highlights: str | None = None,
    now: datetime | None = None,
) -> RecordView:
    """Set the footer (填报人, 联系电话, 填表时间) and the work-report texts. Fields left None keep
    their value. Refused once submitted."""
    now = now or clock.now()
    with uow:
        rec = uow.records.get(record_id)
        actor = actor_for(uow, user_id, rec)
        entry_role(actor, "填写报表信息")
        if rec.state in (states.SUBMITTED, states.ACCEPTED):
            raise RuleViolation(Refusal("report.locked", "记录已提交或已通过，不能修改报表信息"))
        if phone is not None and (refusal := rules.check_phone(phone)):
            raise RuleViolation(refusal)
        if fill_date is not None:
            money.check_date_range(fill_date, "填表时间")
        if fill_date is not None and fill_date > clock.china_date(now):
            raise RuleViolation(Refusal("contact.fill_date_future", f"填表时间 {fill_date:%Y年%m月%d日} 不能晚于今天"))
        values: dict[str, Any] = {"updated_at": now}
        for name, value in (("reporter", reporter), ("phone", phone), ("fill_date", fill_date),
                            ("work_experience", work_experience), ("work_highlights", work_highlights)):
            if value is not None:
                values[name] = value.strip() if isinstance(value, str) else value
        if rec.is_reporting_unit and rec.state == states.SUMMARIZED and (
            work_experience is not None or work_highlights is not None
        ):
            values["snapshot_stale"] = True
        if rec.version != seen_version or not uow.records.write(record_id, seen_version, values):
            raise version_conflict(rec)
        uow.commit()
    return record_view(type(uow)(uow.database), record_id=record_id, user_id=user_id, now=now)


def resolve_channel(policy: Policy, text: str) -> str:
    """A channel as a clerk names it: its code, its name in the policy, or a common Chinese name
    (粤工惠购, 832平台 ...); unknown text is returned as typed (the check refuses it). The one
    resolver is :func:`workflow.domain.channels.resolve_channel`."""
    return channels.resolve_channel(policy.channels, text)


def normalise_purchase(policy: Policy, p: PurchaseInput) -> PurchaseInput:
    """The line with its channel and budget as codes (typed names resolved, unknown text kept for
    the refusal to quote): what every entry path does before :func:`check_purchase`."""
    return replace(p, channel=resolve_channel(policy, p.channel), budget=budgets.resolve_budget(p.budget))


def check_purchase(policy: Policy, rnd: Round, p: PurchaseInput, *, now: datetime) -> Refusal | None:
    """Every rule a purchase line must pass before it is stored (manual entry and import)."""
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


def add_purchase(
    uow: UnitOfWork, *, record_id: int, user_id: int, purchase: PurchaseInput, now: datetime | None = None
) -> int:
    """Enter one purchase line; a summarized record's snapshot becomes stale.

    Returns:
        The purchase id.
    """
    now = now or clock.now()
    with uow:
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
            uow.purchases.lock_record(record_id)  # refunds of one order are checked one at a time
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
        uow.commit()
        return purchase_id


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
    reason = (reason or "").strip()
    with uow:
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
    """The record's ledger, voided lines included (with who voided them, when and why)."""
    with uow:
        rec = uow.records.get(record_id)
        actor_for(uow, user_id, rec)
        _rnd, policy = policy_for(uow, rec)
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
            }
            for p in lines
        ]



__all__ = [
    "Actor", "actor_for", "entry_role", "policy_for", "version_conflict", "BUDGETS", "normalise_purchase", "FireResult", "PurchaseInput", "RecordView", "add_purchase",
    "available_actions", "check_purchase", "find_record", "fire", "history", "list_purchases",
    "notification_rows", "plan", "record_view", "relation_to",
    "update_report_info", "user_channels", "void_purchase", "EVENT_LABELS",
]
