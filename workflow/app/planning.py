"""Editing a record: the plan (the chosen extra amount per member and the member count) and the
report's texts (填报人, 联系电话, 填表时间, 先进经验, 工作亮点)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import states
from workflow.app.actors import actor_for, entry_role, policy_for, version_conflict
from workflow.app.oplog import audited
from workflow.app.record_views import RecordView, record_view
from workflow.domain import clock, money, rules, text
from workflow.domain.errors import (
    Refusal,
    RuleViolation,
)
from workflow.store.uow import UnitOfWork

if TYPE_CHECKING:
    pass


@audited('record.plan', keep=('amount_per_member_fen', 'members', 'seen_version'))
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
        _role, on_behalf = entry_role(actor, "填写计划")
        uow.oplog.note(on_behalf=on_behalf, before={"amount_per_member_fen": rec.amount_per_member_fen,
                                                    "members": rec.members})
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


@audited('record.report_info', keep=('reporter', 'fill_date', 'work_experience', 'work_highlights', 'seen_version'))
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
    reporter = text.clean_optional(reporter, field="填报人")
    phone = text.clean_optional(phone, field="联系电话")
    work_experience = text.clean_optional(work_experience, field="先进经验", multiline=True)
    work_highlights = text.clean_optional(work_highlights, field="工作亮点", multiline=True)
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
