"""What a parent's reviewer does over the children besides the lifecycle's own triggers:
change or extend a child's report deadline, accept many submissions at once, and remind the
units that have not reported (一键催办).

Both go through the same membership check as every other use case (outside the visible subtree:
NotFound; visible but not the parent's reviewer: PermissionDenied).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import states
from workflow.app import actors, lifecycle, record_views, views
from workflow.app.oplog import audited
from workflow.domain import clock, engine, text
from workflow.domain.errors import (
    BadInput,
    BangfuError,
    NotFound,
    PermissionDenied,
    Refusal,
    RuleViolation,
    StoreError,
)
from workflow.domain.money import MAX_COUNT
from workflow.store import rollup
from workflow.store.records import FireContext
from workflow.store.tables import dumps
from workflow.store.uow import UnitOfWork

log = logging.getLogger("bangfu.oversight")
DEADLINE_TRIGGER = "change_deadline"
DEADLINE_LABEL = "调整报送截止日期"


@audited('round.deadline', keep=('last_day', 'reason', 'seen_version'))
def set_report_deadline(
    uow: UnitOfWork,
    *,
    record_id: int,
    user_id: int,
    seen_version: int,
    last_day: date,
    reason: str | None = None,
    now: datetime | None = None,
) -> record_views.RecordView:
    """A parent's reviewer sets a child's report deadline (its last China day).

    Rules: not in the past; not after the round's final report deadline (the reporting units'
    deadline to the province: nobody can report later than that); not once the record is
    accepted. A parent whose own deadline is earlier must then chase its own deadline too; the
    policy's defaults give every lower level the same date, so 'extend' must be able to pass it. An overdue flag is lifted when the
    new deadline is still ahead. A history row (trigger ``change_deadline``, the old and the new
    last day in its detail) and a notice to the child's clerks go in the same transaction.
    """
    now = now or clock.now()
    reason = text.clean_text(reason or "", field="原因", multiline=True) or None
    with uow:
        rec = uow.records.get(record_id)
        actor = actors.actor_for(uow, user_id, rec)
        if states.REVIEWER not in actor.relation.parent_roles:
            raise PermissionDenied("只有上级单位的审核人可以调整报送截止日期", code="permission.not_parent_reviewer")
        if rec.state == states.ACCEPTED:
            raise RuleViolation(Refusal("deadline.record_accepted", "记录已通过，不能再调整报送截止日期"))
        today = clock.china_date(now)
        if last_day < today:
            raise RuleViolation(Refusal(
                "deadline.past", f"新的截止日期 {last_day:%Y年%m月%d日} 早于今天 {today:%Y年%m月%d日}"))
        rnd = uow.directory.round(rec.round_id)
        final_last = clock.deadline_last_day(rnd.report_deadline_reporting_unit)
        if last_day > final_last:
            raise RuleViolation(Refusal(
                "deadline.after_round",
                f"新的截止日期不能晚于本年度向省总工会报送的截止日期 {final_last:%Y年%m月%d日}"))
        old_last = clock.deadline_last_day(rec.report_deadline)
        new_deadline = clock.deadline_instant(last_day)
        values: dict[str, Any] = {"report_deadline": new_deadline, "updated_at": now}
        if new_deadline > now and rec.state not in (states.SUBMITTED, states.ACCEPTED):
            values["is_overdue"] = False
        if rec.version != seen_version or not uow.records.write(record_id, seen_version, values):
            raise actors.version_conflict(rec)
        # The overview's rollup follows the deadline (an accepted record is refused above, so no
        # snapshot totals are counted).
        def entry(deadline: datetime, overdue: bool) -> rollup.Entry:
            return rollup.entry(state=rec.state, is_grassroots=rec.is_grassroots, is_overdue=overdue,
                                is_late=rec.is_late, has_snapshot=rec.snapshot_id is not None,
                                report_deadline=deadline, snapshot_people=None, snapshot_fen=None)

        history_id = uow.records.add_history({
            "record_id": record_id, "at": now, "actor_user_id": actor.user.id, "actor_role": states.REVIEWER,
            "actor_org_id": actor.org.parent_id, "on_behalf": False, "from_state": rec.state,
            "to_state": rec.state, "trigger": DEADLINE_TRIGGER, "reason": reason,
            "detail": dumps({"from": old_last.isoformat(), "to": last_day.isoformat()}),
        })
        clerks = uow.directory.users_with_role(actor.org.id or 0, states.CLERK)
        uow.notifications.add(lifecycle.notification_rows(
            clerks, kind="record_event", source=f"history:{history_id}", record_id=record_id,
            payload={"org_name": actor.org.name, "org_code": actor.org.code,
                     "event": f"{DEADLINE_LABEL}为 {last_day:%Y年%m月%d日}", "trigger": DEADLINE_TRIGGER,
                     "actor_name": actor.user.display_name, "reason": reason,
                     "path": f"/records/{record_id}"},
            now=now, exclude_user_id=actor.user.id,
        ))
        uow.records.rollup_move(record_id, rec.round_id, actor.org.path, entry(rec.report_deadline, rec.is_overdue),
                                entry(new_deadline, values.get("is_overdue", rec.is_overdue)))  # last write
        uow.commit()
    return record_views.record_view(UnitOfWork(uow.database), record_id=record_id, user_id=user_id, now=now)


@dataclass(frozen=True)
class BulkOutcome:
    record_id: int
    ok: bool
    org_name: str = ""
    code: str = ""
    message: str = ""

    @property
    def status(self) -> str:
        """accepted | not_found | refused."""
        if self.ok:
            return "accepted"
        return "not_found" if self.code.endswith("not_found") else "refused"

    def to_dict(self) -> dict[str, Any]:
        return {"record_id": self.record_id, "ok": self.ok, "status": self.status,
                "org_name": self.org_name, "code": self.code, "message": self.message}


#: The most items one bulk accept takes (the API's body allows as many).
MAX_BULK_ITEMS = 500


def bulk_accept(
    database: Any, *, user_id: int, items: list[tuple[int, int]], now: datetime | None = None
) -> list[BulkOutcome]:
    """Accept each (record id, seen version) and report, record by record, what succeeded and
    why the others were refused. One refusal stops nothing else.

    Items are checked first (ids and versions in range, at most MAX_BULK_ITEMS): a bad list is
    refused with BadInput before anything is written. Then :func:`accept_many` decides and
    writes them set-based in one transaction; should the database fail it, the batch is rolled
    back and each item goes through :func:`lifecycle.fire` in its own transaction (a failing
    item then is reported as such, the others are accepted).
    """
    now = now or clock.now()
    if len(items) > MAX_BULK_ITEMS:
        raise BadInput(f"一次最多批量通过 {MAX_BULK_ITEMS} 条", code="bulk.too_many")
    for record_id, version in items:
        if not (1 <= record_id <= MAX_COUNT and 1 <= version <= MAX_COUNT):
            raise BadInput(f"无效的选择：记录 {record_id}，版本 {version}", code="input.bulk_item")
    if not items:
        return []
    try:
        return accept_many(UnitOfWork(database), user_id=user_id, items=items, now=now)
    except StoreError:
        log.warning("bulk accept: the batch failed in the database; accepting item by item", exc_info=True)
        return _accept_one_by_one(database, user_id=user_id, items=items, now=now)


def _outcome(record_id: int, exc: BangfuError, name: str) -> BulkOutcome:
    return BulkOutcome(record_id, False, "" if isinstance(exc, NotFound) else name, exc.code, exc.message)


@audited('record.bulk_accept')
def accept_many(
    uow: UnitOfWork, *, user_id: int, items: list[tuple[int, int]], now: datetime
) -> list[BulkOutcome]:
    """The set-based bulk accept, in one transaction (one lock order, one commit: 500 items in
    a few statements instead of a dozen each).

    One statement reads every item's context (:meth:`Records.fire_contexts`: versions, states,
    the parent record's state, the four-eyes facts, the actor's seats, the chain heads) and locks
    the records in id order; then their parent records are locked (children first, then the
    parents: :meth:`Records.lock_parent`'s order) and their states read under the lock. Each
    item is decided in Python in the caller's order, as :func:`lifecycle.fire` decides one
    (:func:`actors.decision_relation`, :func:`engine.decide`, the version seen); a refused item
    writes nothing. The accepted are written in batches: one versioned UPDATE, the parents'
    stale mark once each, the history rows chained in one insert, the outbox rows in one
    executemany and the rollup's summed move as the last write. The operation log gets one
    row (``record.bulk_accept``) naming how many were accepted and the refusals' codes.
    """
    trigger = "accept"
    out: list[BulkOutcome] = []
    with uow:
        contexts = uow.records.fire_contexts([r for r, _v in items], user_id)
        parents = uow.records.lock_parents(sorted({
            fc.parent_id for fc in contexts.values() if isinstance(fc, FireContext) and fc.parent_id is not None}))
        chosen: list[tuple[FireContext, Any, Any, dict[str, Any]]] = []  # (context, decision, deciding, values)
        for record_id, seen_version in items:
            fc = contexts[record_id]
            name = ""
            try:
                if isinstance(fc, BangfuError):
                    raise fc
                name = fc.org_name
                if fc.parent_id is not None:  # as of the lock (or as this batch left it)
                    got = contexts.get(fc.parent_id)
                    fc = replace(fc, parent_state=got.state if isinstance(got, FireContext)
                                 else parents.get(fc.parent_id, fc.parent_state))
                deciding = actors.decision_relation(uow, fc, now, trigger=trigger)
                if not deciding.relation.visible:
                    raise NotFound(f"找不到记录 #{record_id}", code="record.not_found")
                decision = engine.decide(fc.state, trigger, lifecycle.guard_context_of(
                    fc, now, None, deciding.escalation), deciding.relation)
                if fc.version != seen_version:
                    raise actors.version_conflict_at(fc.version)
            except BangfuError as exc:
                out.append(_outcome(record_id, exc, name))
                continue
            # (an accepted report stays sent: no supplement is folded back, see lifecycle.fire)
            assert decision.transition.source in lifecycle.SENT and decision.dest in lifecycle.SENT
            if deciding.standin_for and decision.acting_role == states.REVIEWER:  # every message says 代理
                fc = replace(fc, user_name=f"{fc.user_name}（代理{deciding.standin_for}）")
            chosen.append((fc, decision, deciding, lifecycle.transition_values(fc, trigger, decision, None, now)))
            # A second item of the same record sees it accepted (refused as fire would refuse it).
            contexts[record_id] = replace(fc, state=decision.dest, version=fc.version + 1)
            out.append(BulkOutcome(record_id, True, name, "ok", "已通过"))
        written: set[int] = set()
        by_values: dict[tuple[Any, ...], list[tuple[int, int]]] = {}
        for fc, _d, _dg, values in chosen:
            by_values.setdefault(tuple(sorted(values.items())), []).append((fc.record_id, fc.version))
        for key, pairs in by_values.items():
            written |= uow.records.write_many(pairs, dict(key))
        if len(written) < len(chosen):  # cannot happen under the locks; reported as fire would
            lost = {fc.record_id: fc.version for fc, *_rest in chosen if fc.record_id not in written}
            out = [o if o.record_id not in lost or not o.ok else _outcome(
                o.record_id, actors.version_conflict_at(lost[o.record_id]), o.org_name) for o in out]
            chosen = [c for c in chosen if c[0].record_id in written]
        uow.records.mark_parents_stale([fc.parent_id for fc, d, *_r in chosen
                                        if d.transition.locks_parent and fc.parent_id is not None])
        history = uow.records.add_history_many([
            (lifecycle.history_values(fc, trigger, decision, deciding, None, now), fc)
            for fc, decision, deciding, _v in chosen])
        uow.notifications.add_event_notifications_many([
            e for fc, *_r in chosen
            if (e := lifecycle.event_notifications(fc, trigger, history[fc.record_id], None, now)) is not None])
        uow.records.rollup_move_many([
            (fc.record_id, fc.round_id, fc.org.path, fc.rollup_entry(), lifecycle.rollup_after(fc, d, values))
            for fc, d, _dg, values in chosen])
        refused: dict[str, list[int]] = {}
        for o in out:
            if not o.ok:
                refused.setdefault(o.code, []).append(o.record_id)
        uow.oplog.note(items=len(items), accepted=len(chosen), refused=refused)
        uow.commit()
    return out


def _accept_one_by_one(database: Any, *, user_id: int, items: list[tuple[int, int]],
                       now: datetime) -> list[BulkOutcome]:
    """Each item through :func:`lifecycle.fire` in its own transaction (the batch's fallback)."""
    out: list[BulkOutcome] = []
    for record_id, version in items:
        name = ""
        try:
            with UnitOfWork(database, readonly=True) as uow:
                name = uow.directory.org(uow.records.get(record_id).org_id).name
            lifecycle.fire(UnitOfWork(database), record_id=record_id, trigger="accept", user_id=user_id,
                          seen_version=version, now=now)
            out.append(BulkOutcome(record_id, True, name, "ok", "已通过"))
        except StoreError:
            log.warning("bulk accept: record %s failed in the database", record_id, exc_info=True)
            out.append(BulkOutcome(record_id, False, name, "bulk.db_error", "数据库暂时无法完成该条，请稍后重试"))
        except BangfuError as exc:
            out.append(_outcome(record_id, exc, name))
    return out


# --- 一键催办: remind the units not yet submitted -----------------------------------------------

REMIND_TRIGGER = "remind"
REMIND_LABEL = "上级催办"
#: States in which a unit has not reported yet (a reminder makes sense).
NOT_REPORTED = (states.PLANNED, states.PURCHASED, states.SUMMARIZED)


@dataclass(frozen=True)
class Reminder:
    """One unit's outcome of a reminder: sent now, or already reminded today (or reported)."""

    record_id: int
    org_name: str
    sent: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"record_id": self.record_id, "org_name": self.org_name, "sent": self.sent, "note": self.note}


@audited('record.remind', keep=('round_id', 'record_ids'))
def remind(
    uow: UnitOfWork, *, user_id: int, round_id: int, record_ids: list[int] | None = None,
    now: datetime | None = None,
) -> list[Reminder]:
    """A parent's reviewer reminds subordinate units that have not reported (一键催办): the given
    records, or every unit under the reviewer's seats not yet submitted. Each unit's clerks get
    an in-app and an e-mail reminder naming the deadline, and the record's history says who
    reminded; a unit is reminded at most once a China day (a second click that day sends
    nothing and says so). The XLSX of phones (催报名单) stays for calling."""
    now = now or clock.now()
    today = clock.china_date(now)
    if record_ids is None:
        record_ids = [r["record_id"] for r in _not_reported(uow, user_id=user_id, round_id=round_id, now=now)]
    out: list[Reminder] = []
    for record_id in record_ids:
        with UnitOfWork(uow.database) as tx:
            rec = tx.records.get(record_id)
            actor = actors.actor_for(tx, user_id, rec)
            if states.REVIEWER not in actor.relation.parent_roles:
                raise PermissionDenied("只有上级单位的审核人可以催办", code="permission.not_parent_reviewer")
            if rec.state not in NOT_REPORTED:
                out.append(Reminder(record_id, actor.org.name, False, f"已{states.STATE_LABELS[rec.state]}，无需催办"))
                continue
            if any(h.trigger == REMIND_TRIGGER and clock.china_date(h.at) == today for h in tx.records.history(record_id)):
                out.append(Reminder(record_id, actor.org.name, False, "今天已催办过，每个单位每天催办一次"))
                continue
            last_day = clock.deadline_last_day(rec.report_deadline)
            days = (last_day - today).days
            when = (f"报送截止 {last_day:%Y年%m月%d日}（剩 {days} 天）" if days > 0 else
                    f"报送截止 {last_day:%Y年%m月%d日}（今天截止）" if days == 0 else
                    f"报送截止 {last_day:%Y年%m月%d日}，已逾期 {-days} 天")
            message = (f"当前状态：{states.STATE_LABELS[rec.state]}。{when}。"
                       "请尽快完成采购录入、汇总并提交上级审核；如有困难请联系上级工会。")
            history_id = tx.records.add_history({
                "record_id": record_id, "at": now, "actor_user_id": actor.user.id, "actor_role": states.REVIEWER,
                "actor_org_id": actor.org.parent_id, "on_behalf": False, "from_state": rec.state,
                "to_state": rec.state, "trigger": REMIND_TRIGGER, "reason": None,
                "detail": dumps({"deadline": last_day.isoformat()}),
            })
            clerks = tx.directory.users_with_role(actor.org.id or 0, states.CLERK)
            tx.notifications.add(lifecycle.notification_rows(
                clerks, kind="record_event", source=f"remind:{record_id}:{today.isoformat()}", record_id=record_id,
                payload={"org_name": actor.org.name, "org_code": actor.org.code, "event": REMIND_LABEL,
                         "trigger": REMIND_TRIGGER, "actor_name": actor.user.display_name, "note": message,
                         "history_id": history_id, "path": f"/records/{record_id}"},
                now=now, exclude_user_id=actor.user.id,
            ))
            tx.commit()
            out.append(Reminder(record_id, actor.org.name, True))
    return out


def _not_reported(uow: UnitOfWork, *, user_id: int, round_id: int, now: datetime) -> list[dict[str, Any]]:
    """The records under the user's reviewer seats that have not reported (every page)."""
    found: list[dict[str, Any]] = []
    page = 1
    while True:
        batch = views.subordinates(UnitOfWork(uow.database), user_id=user_id, round_id=round_id, page=page,
                                   per_page=200, now=now)
        found += [r for r in batch.items if r["state"] in NOT_REPORTED]
        if page * 200 >= batch.total:
            return found
        page += 1
