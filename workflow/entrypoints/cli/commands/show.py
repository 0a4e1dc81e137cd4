"""``show``: a record with its quota, deadlines and the actions open to the user; its text is
also what ``plan`` and ``report-info`` print."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.app import record_views
from workflow.domain import clock, rules
from workflow.entrypoints.cli.command import Command
from workflow.entrypoints.cli.context import Context
from workflow.entrypoints.cli.output import days_text
from workflow.entrypoints.cli.parser import org_argument


def show(args: argparse.Namespace, ctx: Context) -> record_views.RecordView:
    rid = ctx.record_id(args.org)
    return record_views.record_view(ctx.uow(readonly=True), record_id=rid, user_id=ctx.user_id())


def record_text(v: Any) -> None:
    print(f"{v.org_name}（{v.org_code}）  {v.round_label}  状态：{v.state_label}  版本 {v.version}")
    if v.is_grassroots:
        per = rules.yuan(v.amount_per_member_fen) if v.amount_per_member_fen is not None else "未填"
        print(f"  每人额度 {per} 元 × 会员 {v.members if v.members is not None else '未填'} 人 = 额度 {rules.yuan(v.quota_fen)} 元")
        print(f"  已用 {rules.yuan(min(v.extra_spent_fen, v.quota_fen))} 元，剩余 {rules.yuan(v.quota_left_fen)} 元"
              + (f"，超出额度 {rules.yuan(v.over_quota_fen)} 元计入普通慰问品限额" if v.over_quota_fen else ""))
        print(f"  额度截止 {clock.deadline_last_day(v.quota_deadline):%Y年%m月%d日}（{days_text(v.days_left_quota)}）")
    print(f"  采购合计 {rules.yuan(v.spent_total_fen)} 元")
    print(f"  报送截止 {clock.deadline_last_day(v.report_deadline):%Y年%m月%d日}（{days_text(v.days_left_report)}）"
          + ("  【已逾期】" if v.is_overdue else "") + ("  【迟报】" if v.is_late else ""))
    if v.last_reason:
        print(f"  退回/撤销原因：{v.last_reason}")
    print("  可执行操作：")
    for a in v.actions:
        if a.allowed:
            print(f"    ✓ {a.trigger}（{a.label}）" + ("  需填写原因 --reason" if a.needs_reason else ""))
    for a in v.actions:
        if not a.allowed and a.refusal and a.refusal.code != "transition.not_allowed":
            print(f"    ✗ {a.label}：{a.refusal.message}（{a.refusal.code}）")


COMMANDS = {"show": Command(arguments=org_argument, run=show, human=record_text, context=Context)}
