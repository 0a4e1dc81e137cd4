"""Report use cases: an organisation's Annex 2 table, the province workbook, aggregate lines,
completeness and 催报 lists, the gift-limit check, the work report, and the orders held by more
than one union (listed per level, explained by a reviewer), each with its access check. The SQL they need is in :mod:`workflow.store.reports`; the arithmetic in
:mod:`workflow.domain.figures`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import states
from notifications.templates import make_environment
from workflow.app import actors, oplog
from workflow.app.oplog import audited
from workflow.domain import access, channels, clock, limits, privacy, rules, text
from workflow.domain.errors import BadInput, NotFound, PermissionDenied, Refusal, RuleViolation
from workflow.domain.figures import (
    Annex2Table,
    Lines,
    OfficialShare,
    UnitFigures,
    add_lines,
    check_aggregate_line,
    official_share,
    wan_people,
    wan_yuan,
)
from workflow.domain.policy import Policy, begun_rounds
from workflow.formats.exports import sanitising, write_rows_xlsx, write_xlsx
from workflow.store.reports import CHASE_HEADERS, ComparisonRow, CompletenessRow, Scope
from workflow.store.tables import AggregateLine, Organisation, Round
from workflow.store.uow import UnitOfWork

# --- use cases with membership checks -------------------------------------------------------


def check_can_view(memberships: Iterable[tuple[Organisation, str]], org: Organisation) -> None:
    """Statistics are visible from any seat at or above the organisation (domain.access);
    outside the user's view the organisation does not exist for them."""
    if not access.can_view(memberships, org):
        raise NotFound(f"找不到单位代码“{org.code}”", code="org.not_found")






# --- use cases (membership checked) ---------------------------------------------------------
# These take a fresh UnitOfWork like the services; the CLI and the web call them.

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "formats" / "templates"



def _round(uow: UnitOfWork, round_label: str | None) -> Round:
    if round_label:
        return uow.directory.round_by_label(round_label)  # type: ignore[no-any-return]
    rounds = uow.directory.rounds()
    if not rounds:
        raise NotFound("尚未加载任何年度", code="round.not_found")
    return begun_rounds(rounds, clock.today())[0]  # type: ignore[no-any-return]



def _visible_org(uow: UnitOfWork, user_id: int, org_code: str) -> Organisation:
    org = uow.directory.org_by_code(org_code)
    uow.directory.user(user_id)
    check_can_view(uow.directory.memberships(user_id), org)
    return org  # type: ignore[no-any-return]



@dataclass
class StatsView:
    """An organisation's Annex 2 table and what sits beside it in a view."""

    org_code: str
    org_name: str
    round_label: str
    state: str | None
    source: str  # snapshot | live | subtree
    table: Annex2Table
    official: OfficialShare
    units: list[UnitFigures]
    pending: Lines  # submitted subordinates, not yet accepted

    def to_dict(self) -> dict[str, Any]:
        return {
            "org_code": self.org_code, "org_name": self.org_name, "round_label": self.round_label,
            "state": self.state, "source": self.source, "status_note": self.table.status_note,
            "supplement_note": self.table.supplement_note,
            "rows": [{"label": r.label, "people": r.people, "amount_fen": r.amount_fen,
                      "people_wan": str(wan_people(r.people)), "amount_wan_yuan": str(wan_yuan(r.amount_fen))}
                     for r in self.table.rows],
            "total": {"people": self.table.total_people, "amount_fen": self.table.total_amount_fen,
                      "people_wan": str(wan_people(self.table.total_people)),
                      "amount_wan_yuan": str(wan_yuan(self.table.total_amount_fen))},
            "official_share_percent": str(self.official.percent) if self.official.percent is not None else None,
            "official_fen": self.official.official_fen,
            "units": [{"org_code": u.org_code, "org_name": u.org_name, "state": u.state, "status": u.status_note,
                       "people": u.people, "amount_fen": u.amount_fen} for u in self.units],
        }



def _contacts_for(table: Annex2Table, allowed: bool) -> Annex2Table:
    """The table as the user may see it: without 填报人 and 联系电话 unless ``allowed``
    (:func:`workflow.domain.access.can_see_contacts`), and even then the phone masked (a report
    is read, not dialled: the 催报 list and the record's own page reveal the number)."""
    if not allowed:
        return replace(table, reporter=None, phone=None)
    return replace(table, phone=privacy.mask_phone(table.phone))


def stats(uow: UnitOfWork, *, org_code: str, user_id: int, round_label: str | None = None, live: bool = False) -> StatsView:
    """The Annex 2 table of an organisation in a round as the user may see it.

    A record's own table (snapshot for submitted/accepted; live for drafts or with ``live``);
    for an organisation without a record (the province) its subtree's accepted numbers. Beside it:
    the official-platform share and the direct subordinates' figures with their status.
    """
    with uow:
        org = _visible_org(uow, user_id, org_code)
        contacts = access.can_see_contacts(uow.directory.memberships(user_id), org)
        rnd = _round(uow, round_label)
        policy = uow.directory.policy(rnd.policy_code)
        units = uow.reports.unit_figures(rnd.id, parent_org_id=org.id)
        pending = add_lines(*(u.lines for u in units if u.state == states.SUBMITTED))
        rec = uow.reports.record_of(org.id, rnd.id)
        if rec is not None:
            (unit,) = uow.reports.unit_figures(rnd.id, record_ids=[rec.id or 0], live=live)
            table = _contacts_for(uow.reports.unit_table(unit, policy, rnd.label), contacts)
            if rec.is_grassroots:  # a single union's own paper: its exact figures
                table = replace(table, exact=True)
            return StatsView(org.code, org.name, rnd.label, rec.state, unit.source, table,
                             official_share(unit.lines, policy), units, pending)
        st = uow.reports.subtree_stats(org.id, rnd.id)
        table = _contacts_for(uow.reports.annex2_for_subtree(org.id, rnd.id, policy), contacts)
        return StatsView(org.code, org.name, rnd.label, None, "subtree", table,
                         official_share(st.accepted, policy), units, pending)



def receiver_org(uow: UnitOfWork, rnd: Round, policy: Policy) -> Organisation:
    """The organisation that receives a round's reports (the province, or a scoped root)."""
    if rnd.scope_org_id is not None:
        return uow.directory.org(rnd.scope_org_id)
    org = uow.reports.receiver_root(policy.receiver_kind)
    if org is None:
        raise NotFound("找不到接收报表的单位（省总工会）", code="org.not_found")
    return org


def province_workbook(uow: UnitOfWork, *, user_id: int, round_label: str | None = None) -> bytes:
    """The receiver's workbook: an overview sheet of every reporting unit and one Annex 2 sheet
    per unit, from snapshots."""

    with uow:
        rnd = _round(uow, round_label)
        policy = uow.directory.policy(rnd.policy_code)
        root = receiver_org(uow, rnd, policy)
        seats = uow.directory.memberships(user_id)
        if not access.can_view(seats, root):
            # Any seat at the receiver (its reviewers, admins, observers) sees the whole
            # system, as on the overview; the message says so, and where a lower level looks.
            raise PermissionDenied(f"全省汇总表只供“{root.name}”的账户下载；下级单位请在统计页下载本单位的附件2汇总表",
                                   code="permission.report_scope")
        contacts = access.can_see_contacts(seats, root)
        tables = [_contacts_for(t, contacts) for t in uow.reports.province_tables(rnd.id, policy, root_org_id=root.id)]
        # The units not yet reported share one sheet (the 催报 list's units, in the official
        # order), without phones: the 催报 list is where a federation reads those. Their 填报人
        # is shown as on their forms, to whom may see contacts.
        missing = sorted(uow.reports.unsubmitted_units(rnd.id, root.id), key=lambda u: policy.official_rank(u.name))
        unsubmitted = [(u.name, u.state_label, u.deadline_text, (u.reporter or "") if contacts else "", len(u.clerks))
                       for u in missing]
        title = f"{rnd.label}工会消费帮扶情况汇总表"
    if not tables:
        raise NotFound("本年度没有报送单位", code="report.empty")
    return write_xlsx(tables, overview_title=title, unsubmitted=unsubmitted)



@audited('aggregate.add', keep=('channel', 'people', 'amount_fen', 'note'))
def add_aggregate_line(
    uow: UnitOfWork, *, record_id: int, user_id: int, channel: str, people: int, amount_fen: int, note: str,
    now: datetime | None = None,
) -> int:
    """A federation enters an aggregate line (channel, people, amount, a note on the source).

    Refused for grassroots records (they enter purchases) and for submitted/accepted records; a
    summarized record's snapshot becomes stale.
    """

    now = now or clock.now()
    note = text.clean_text(note, field="数据来源说明", multiline=True)
    with uow:
        rec = uow.records.get(record_id)
        actor = actors.actor_for(uow, user_id, rec)
        _role, _on_behalf = actors.entry_role(actor, "录入汇总数据")
        if rec.is_grassroots:
            raise RuleViolation(Refusal("aggregate.grassroots", "基层工会请逐笔录入采购明细，汇总数据只能由上级工会录入"))
        if refusal := rules.check_record_open_for_purchases(rec.state):
            raise RuleViolation(refusal)
        _rnd, policy = actors.policy_for(uow, rec)
        channel = channels.resolve_channel(policy.channels, channel)  # 粤工惠购 → ygh, as for purchases
        if refusal := check_aggregate_line(policy, channel=channel, people=people, amount_fen=amount_fen, note=note):
            raise RuleViolation(refusal)
        line = AggregateLine(record_id=record_id, channel=channel, people=people, amount_fen=amount_fen,
                             note=note.strip(), entered_by_user_id=actor.user.id, entered_at=now)
        uow.add(line)
        uow.records.mark_snapshot_stale(record_id, only_state=states.SUMMARIZED)
        uow.commit()
        return line.id or 0



def _reviewer_scope(uow: UnitOfWork, user_id: int, org: Organisation) -> None:
    """Completeness is for reviewers, admins and observers of the organisation's subtree."""
    seats = uow.directory.memberships(user_id)
    check_can_view(seats, org)
    if not access.can_view_completeness(seats, org):
        raise PermissionDenied(f"只有“{org.name}”或其上级的审核人可以查看报送情况", code="permission.report_scope")


def oversight_org(uow: UnitOfWork, user_id: int, org_code: str | None) -> Organisation:
    """The organisation a subtree report is about: ``org_code``, or the user's highest
    non-clerk seat; the user must watch it (:func:`_reviewer_scope`)."""
    if org_code:
        org = uow.directory.org_by_code(org_code)
    else:
        mine = [o for o, role in uow.directory.memberships(user_id) if role != states.CLERK]
        if not mine:
            raise PermissionDenied("只有审核人可以查看报送情况", code="permission.report_scope")
        org = min(mine, key=lambda o: o.depth)
    _reviewer_scope(uow, user_id, org)
    return org  # type: ignore[no-any-return]


def _chase_scope(uow: UnitOfWork, user_id: int, org: Organisation) -> None:
    """The 催报 list carries clerks' phone numbers: the chain of federations only."""
    _reviewer_scope(uow, user_id, org)
    if not access.can_see_contacts(uow.directory.memberships(user_id), org):
        raise PermissionDenied("催报名单含填报员联系电话，只供工会上级审核人使用", code="permission.contact_data")


def may_chase(uow: UnitOfWork, *, user_id: int, org_code: str) -> bool:
    """Whether :func:`chase` would give the user this organisation's 催报 list (the same rule,
    asked, not copied): a page offers the download only to those it would not refuse."""
    with uow:
        try:
            _chase_scope(uow, user_id, uow.directory.org_by_code(org_code))
        except (PermissionDenied, NotFound):
            return False
    return True


def completeness_for(
    uow: UnitOfWork, *, user_id: int, round_label: str | None = None, under_code: str | None = None,
    now: datetime | None = None, scope: Scope = "children",
) -> list[CompletenessRow]:
    """:func:`completeness` for a user: under ``under_code`` or the user's own organisation."""
    now = now or clock.now()
    with uow:
        rnd = _round(uow, round_label)
        org = oversight_org(uow, user_id, under_code)
        return uow.reports.completeness(rnd.id, now=now, scope=scope, under_org_id=org.id)



def chase(
    uow: UnitOfWork, *, user_id: int, org_code: str, round_label: str | None = None, now: datetime | None = None,
) -> tuple[list[tuple[Any, ...]], bytes]:
    """The 催报 list of an organisation's subordinates not yet submitted, and its XLSX."""

    now = now or clock.now()
    with uow:
        org = uow.directory.org_by_code(org_code)
        _chase_scope(uow, user_id, org)
        rnd = _round(uow, round_label)
        rows = uow.reports.chase_list(rnd.id, org.id, now=now)
        title = f"{org.name}{rnd.label}未报送单位催报名单"
    # The list is made to be dialled: its phones are shown whole, and each time that is an
    # audit row (who, whose units, how many).
    oplog.log(uow.database, action="contacts.export", actor_id=user_id, object=f"org:{org.code}",
              detail={"list": "chase", "round": rnd.label, "units": len(rows)})
    return rows, write_rows_xlsx(title, CHASE_HEADERS, rows)



def limits_for(
    uow: UnitOfWork, *, org_code: str, user_id: int, ordinary_fen: int, budget_fen: int, retained_fen: int,
    basis: str, round_label: str | None = None,
) -> Any:
    """The gift-limit check of a grassroots record: its quota and extra spending from the
    ledger, the other numbers from the caller."""

    if basis not in limits.BASES:
        raise BadInput(f"计算基数须为 budget（年度预算支出）或 retained（留成经费），不是“{basis}”",
                       code="input.basis")
    if min(ordinary_fen, budget_fen, retained_fen) < 0:
        raise BadInput("金额不能为负数", code="input.money")
    with uow:
        org = _visible_org(uow, user_id, org_code)
        rnd = _round(uow, round_label)
        rec = uow.reports.record_of(org.id, rnd.id)
        if rec is None or not rec.is_grassroots:
            raise RuleViolation(Refusal("limits.not_grassroots", "慰问品限额只适用于基层工会的记录"))
        policy = uow.directory.policy(rnd.policy_code)
        spent = uow.purchases.spent_by_budget(rec.id)
        return limits.check_limits(
            ordinary_fen=ordinary_fen, budget_fen=budget_fen, retained_fen=retained_fen, basis=basis,
            quota_fen=rec.quota_fen, extra_fen=spent.get("extra_quota", 0), members=rec.members,
            limits=policy.limits,
        )



@dataclass(frozen=True)
class WorkReport:
    markdown: str
    html: str
    context: dict[str, Any] = field(default_factory=dict)  # what the templates were given

    def docx(self) -> bytes:
        """The report as a Word document (offices edit and seal it)."""
        # lazy: start-up time (python-docx)
        from workflow.formats.docx_report import write_work_report

        return write_work_report(self.context)



def letter_addressee(parent_name: str, *, reporting_unit: bool) -> str:
    """Whom a work report is addressed to: a reporting unit writes to the receiving federation's
    职工服务部 (广东省总工会职工服务部), any other unit to its parent federation."""
    return f"{parent_name}职工服务部" if reporting_unit and parent_name else parent_name


def work_report(uow: UnitOfWork, *, org_code: str, user_id: int, round_label: str | None = None) -> WorkReport:
    """The work report (工作报告) of a reporting unit: its texts (先进经验, 工作亮点), its Annex 2
    numbers and its subordinates' highlights, as Markdown and HTML."""

    view = stats(uow, org_code=org_code, user_id=user_id, round_label=round_label)
    with uow:
        org = uow.directory.org_by_code(org_code)
        contacts = access.can_see_contacts(uow.directory.memberships(user_id), org)
        rnd = _round(uow, round_label)
        rec = uow.reports.record_of(org.id, rnd.id)
        if rec is None:
            raise NotFound(f"“{org.name}”在{rnd.label}没有记录", code="record.not_found")
        highlights = uow.reports.child_highlights(rec.id or 0)
        policy = uow.directory.policy(rnd.policy_code)
        parent = uow.directory.org(org.parent_id) if org.parent_id is not None else None
        # A single (grassroots) union's figures as they are; 万 with two decimals is the notice's
        # table, for federations (30 people would print as 0.00 万).
        single = rec.is_grassroots
        rows = [{"label": r.label, "people": r.people if single else wan_people(r.people),
                 "amount": rules.yuan(r.amount_fen) if single else wan_yuan(r.amount_fen),
                 "amount_fen": r.amount_fen} for r in view.table.rows]
        ctx = {
            "org_name": org.name, "round_label": rnd.label, "state_label": states.STATE_LABELS[rec.state],
            "status_note": view.table.status_note or "", "experience": (rec.work_experience or "").strip(),
            "highlights": (rec.work_highlights or "").strip(), "rows": rows,
            "single_union": single,
            "total_people": view.table.total_people if single else wan_people(view.table.total_people),
            "total_amount": rules.yuan(view.table.total_amount_fen) if single else wan_yuan(view.table.total_amount_fen),
            "total_fen": view.table.total_amount_fen,
            "official_text": view.official.text(),
            "subordinates": [{"name": n, "highlights": h.strip(), "state_label": states.STATE_LABELS[st]}
                             for n, h, st in highlights],
            "reporter": (rec.reporter or "") if contacts else "",
            "phone": (privacy.mask_phone(rec.phone) or "") if contacts else "",
            "fill_date": view.table.fill_date,
            # 先进经验 and 工作亮点 are asked of reporting units and federations, not of grassroots unions.
            "has_texts": not rec.is_grassroots, "draft": view.table.draft,
            # The letter a unit sends up: to its parent (a reporting unit: the receiver's 职工服务部),
            # on the notice's authority, signed with the unit's name, the date and the seal.
            "addressee": letter_addressee(parent.name if parent else "", reporting_unit=rec.is_reporting_unit),
            "intro": (f"根据《{policy.title}》（{policy.document}）要求，"
                      f"现将{org.name}{rnd.label}消费帮扶工作情况报告如下："),
            "letter_date": view.table.fill_date or clock.today(),
        }
    env = sanitising(make_environment(TEMPLATE_DIR))
    return WorkReport(markdown=env.get_template("work_report.md").render(ctx),
                      html=env.get_template("work_report.html").render(ctx), context=ctx)



def compare_rounds(
    uow: UnitOfWork, *, org_code: str, user_id: int, before: str, after: str,
) -> list[ComparisonRow]:
    """:func:`comparison` of an organisation's subordinates between two rounds (labels or years)."""
    with uow:
        org = _visible_org(uow, user_id, org_code)
        _reviewer_scope(uow, user_id, org)
        b, a = uow.directory.round_by_label(before), uow.directory.round_by_label(after)
        return uow.reports.comparison(org.id, b.id, a.id)


# --- orders held by more than one union (issue 20 point 3) ----------------------------------

#: Orders listed at most per call (a province's list is read level by level).
DUPLICATES_SHOWN = 500
EXPLAIN_REASON_MAX = 500


@dataclass(frozen=True)
class DuplicateOrders:
    """Within an organisation's subtree, the orders (channel + order number) held live by two or
    more of its unions in a round, each with its holders and whether a reviewer explained it."""

    org_code: str
    org_name: str
    round_label: str
    orders: list[dict[str, Any]]
    truncated: bool  # more than :data:`DUPLICATES_SHOWN` orders: the rest is in the subordinates' lists

    @property
    def unexplained(self) -> int:
        return sum(1 for o in self.orders if not o["explained"])

    def to_dict(self) -> dict[str, Any]:
        return {"org_code": self.org_code, "org_name": self.org_name, "round_label": self.round_label,
                "orders": self.orders, "unexplained": self.unexplained, "truncated": self.truncated}


def duplicate_orders(
    uow: UnitOfWork, *, user_id: int, org_code: str, round_label: str | None = None,
) -> DuplicateOrders:
    """The orders held live by two or more unions' records of the round within the user's view of
    ``org_code``'s subtree: each union's name, people and amount, and the explanation (who, when,
    why) if a reviewer gave one covering every union now holding it. Set-based: one statement
    over the subtree's live lines (:meth:`workflow.store.order_claims.OrderClaims.suspects`).

    Who: a reviewer, admin or observer seat at the organisation or above (as completeness)."""
    with uow:
        org = uow.directory.org_by_code(org_code)
        _reviewer_scope(uow, user_id, org)
        rnd = _round(uow, round_label)
        policy = uow.directory.policy(rnd.policy_code)
        names = {c.code: c.name for c in policy.channels}
        rows = uow.order_claims.suspects(rnd.id or 0, org.path, limit=DUPLICATES_SHOWN + 1)
    grouped: dict[tuple[str, str], list[Any]] = {}
    for holder, note in rows:
        grouped.setdefault((holder.channel, holder.order_no), []).append((holder, note))
    orders = []
    for (channel, order_no), items in list(grouped.items())[:DUPLICATES_SHOWN]:
        note = items[0][1]
        held_by = {h.record_id for h, _n in items}
        explained = note is not None and held_by <= note.record_ids
        orders.append({
            "channel": channel, "channel_name": names.get(channel, channel), "order_no": order_no,
            "unions": [{"org_code": h.org_code, "org_name": h.org_name, "record_id": h.record_id,
                        "state": h.state, "state_label": states.STATE_LABELS.get(h.state, h.state),
                        "people": h.people, "amount_fen": h.amount_fen, "lines": h.lines} for h, _n in items],
            "people": sum(h.people for h, _n in items), "amount_fen": sum(h.amount_fen for h, _n in items),
            "explained": explained,
            "explanation": None if note is None else {
                "by": note.explained_by, "at": note.explained_at, "reason": note.reason,
                # An explanation given before another union entered the order covers the earlier ones only.
                "covers_all": explained},
        })
    return DuplicateOrders(org.code, org.name, rnd.label, orders, truncated=len(grouped) > DUPLICATES_SHOWN)


@dataclass(frozen=True)
class ExplainResult:
    round_label: str
    channel: str
    channel_name: str
    order_no: str
    unions: tuple[str, ...]
    history_ids: tuple[int, ...]

    @property
    def message(self) -> str:
        return (f"已说明订单 {self.order_no}（{self.channel_name}）：{'、'.join(self.unions)}"
                "录入同一订单的原因已记录，不再提示重复")

    def to_dict(self) -> dict[str, Any]:
        return {"round_label": self.round_label, "channel": self.channel, "channel_name": self.channel_name,
                "order_no": self.order_no, "unions": list(self.unions), "history_ids": list(self.history_ids),
                "message": self.message}


@audited('duplicate.explain', keep=('channel', 'order_no', 'reason'))
def explain_duplicate(
    uow: UnitOfWork, *, user_id: int, round_label: str | None, channel: str, order_no: str, reason: str,
    now: datetime | None = None,
) -> ExplainResult:
    """A reviewer explains an order held by two or more unions (e.g. one platform order paid for
    two unions' gifts): the explanation (who, when, why, which records) is stored, every holder's
    record gets a history row (``explain_duplicate``, 说明重复订单, the reason), and the order
    drops out of the warnings. Only a reviewer whose seat covers every union holding the order
    (their common ancestor's reviewer or one above: :func:`workflow.domain.access.explaining_seat`)
    may do it, with a reason. A union entering the order later is flagged again.

    Raises:
        BadInput (no reason, too long), NotFound (no such order held by two unions in the user's
        view), PermissionDenied (the user's reviewer seats do not cover every holder).
    """
    now = now or clock.now()
    reason = (reason or "").strip()
    order_no = (order_no or "").strip()
    if not reason:
        raise BadInput("请写明说明原因，例如“同一张订单由两个单位分摊，各自金额见发票”",
                       code="duplicate.reason_missing")
    if len(reason) > EXPLAIN_REASON_MAX:
        raise BadInput(f"说明原因不能超过 {EXPLAIN_REASON_MAX} 字", code="duplicate.reason_long")
    with uow:
        rnd = _round(uow, round_label)
        policy = uow.directory.policy(rnd.policy_code)
        code = channels.resolve_channel(policy.channels, channel)
        channel_name = {c.code: c.name for c in policy.channels}.get(code, code)
        holders = uow.order_claims.holders(rnd.id or 0, code, order_no)
        seats = uow.directory.memberships(user_id)
        if len(holders) < 2 or not any(access.can_view(seats, h.org) for h in holders):
            raise NotFound(f"{rnd.label}没有找到被两个以上单位录入的订单 {order_no}（{channel_name}）",
                           code="duplicate.not_found")
        seat = access.explaining_seat(seats, [h.org for h in holders])
        if seat is None:
            raise PermissionDenied("只有同时管辖录入这张订单的所有单位的上级审核人（共同上级或更高一级）可以说明",
                                   code="permission.duplicate_scope")
        uow.order_claims.save_note(round_id=rnd.id or 0, channel=code, order_no=order_no,
                                   record_ids={h.record_id for h in holders}, user_id=user_id, reason=reason, now=now)
        unions = tuple(h.org_name for h in holders)
        detail = json.dumps({"channel": code, "order_no": order_no, "unions": list(unions),
                             "records": [h.record_id for h in holders]}, ensure_ascii=False, sort_keys=True)
        history_ids = tuple(uow.records.add_history({
            "record_id": h.record_id, "at": now, "actor_user_id": user_id, "actor_role": states.REVIEWER,
            "actor_org_id": seat.id, "on_behalf": False, "from_state": h.state, "to_state": h.state,
            "trigger": "explain_duplicate", "reason": reason, "detail": detail,
        }) for h in holders)
        uow.commit()
    return ExplainResult(rnd.label, code, channel_name, order_no, unions, history_ids)
