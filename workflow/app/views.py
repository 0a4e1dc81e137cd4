"""The read side for the pages and the JSON API: a reviewer's inbox, subordinates' status, the
records a user may see, the province overview, the notification inbox.

The queries are :mod:`workflow.store.lists` (set-based, LIMIT/OFFSET) and the rollup behind
:meth:`workflow.store.reports.Reports.completeness`. Filter and sort keys are checked here against
fixed lists; anything else is refused with a Chinese message
(:class:`~workflow.domain.errors.BadInput`, HTTP 422), so user input never reaches SQL as a name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import states
from workflow.app.oplog import audited
from workflow.app.purchases import BUDGETS
from workflow.domain import access, clock, rules
from workflow.domain.errors import BadInput, NotFound, PermissionDenied, Refusal
from workflow.domain.figures import wan_people, wan_yuan
from workflow.domain.policy import begun_rounds
from workflow.store import lists
from workflow.store.lists import RecordQuery
from workflow.store.tables import Round
from workflow.store.uow import UnitOfWork

MAX_PER_PAGE = 200
#: The last page anyone pages to (keeps OFFSET inside 64 bits).
MAX_PAGE = 100_000
#: Sort keys a list accepts (newest / most first for amount and submission time).
RECORD_SORTS: tuple[str, ...] = tuple(lists.RECORD_SORTS)
STATE_FILTERS: tuple[str, ...] = states.STATES
OVERDUE_FILTERS: tuple[str, ...] = ("yes", "no")
OVERVIEW_ROLES = frozenset({states.REVIEWER, states.OBSERVER, states.ADMIN})


@dataclass
class Page:
    items: list[dict[str, Any]]
    total: int
    page: int
    per_page: int
    filters: dict[str, Any] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "total": self.total, "page": self.page,
                "per_page": self.per_page, "pages": self.pages, "filters": self.filters}


def check_key(value: str | None, allowed: Iterable[str], what: str) -> str | None:
    """``value`` if it is one of ``allowed`` (or empty: None), else refuse naming the choices."""
    if value is None or value == "":
        return None
    allowed = list(allowed)
    if value not in allowed:
        raise BadInput(f"不支持的{what}“{value}”，可选：{'、'.join(allowed)}", code="query.bad_key")
    return value


def check_paging(page: int, per_page: int) -> tuple[int, int]:
    if not 1 <= page <= MAX_PAGE:
        raise BadInput(f"页码须在 1 至 {MAX_PAGE:,} 之间", code="query.bad_page")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise BadInput(f"每页条数须在 1 至 {MAX_PER_PAGE} 之间", code="query.bad_per_page")
    return page, per_page


# --- rounds ---------------------------------------------------------------------------------


def rounds(uow: UnitOfWork) -> list[dict[str, Any]]:
    with uow:
        return [{"id": r.id, "label": r.label, "year": r.year} for r in uow.directory.rounds()]


@dataclass(frozen=True)
class RoundInfo:
    id: int
    label: str
    year: int


def current_round(uow: UnitOfWork, *, round_id: int | None = None, now: datetime | None = None) -> RoundInfo:
    """The round asked for, else the newest round whose year has begun (China time), else the
    newest (:func:`workflow.domain.policy.begun_rounds`, as on the command line)."""
    with uow:
        if round_id is not None:
            rnd: Round = uow.directory.round(round_id)
        else:
            all_rounds = uow.directory.rounds()
            if not all_rounds:
                raise NotFound("尚未加载任何年度", code="round.not_found")
            rnd = begun_rounds(all_rounds, clock.china_date(now or clock.now()))[0]
        return RoundInfo(id=rnd.id or 0, label=rnd.label, year=rnd.year)


def own_records(uow: UnitOfWork, *, user_id: int, round_id: int) -> list[dict[str, Any]]:
    """The records of the organisations the user holds a seat in (one per seat), for the home
    page: a clerk lands on their record, a reviewer sees their own federation's record."""
    with uow:
        rows = uow.lists.own_record_rows(user_id, round_id)
        return [{"record_id": i, "state": s, "state_label": states.STATE_LABELS[s], "org_code": c,
                 "org_name": n, "role": r} for i, s, c, n, r in rows if r in access.BUSINESS_ROLES]


# --- record lists ---------------------------------------------------------------------------


def _paged_records(
    uow: UnitOfWork, *, round_id: int, now: datetime, submitted_only: bool = False,
    parent_seat_of: int | None = None, under_paths: list[str] | None = None, state: str | None,
    overdue: str | None, q: str | None, sort: str | None, page: int, per_page: int,
) -> Page:
    state = check_key(state, STATE_FILTERS, "状态筛选")
    overdue = check_key(overdue, OVERDUE_FILTERS, "逾期筛选")
    sort = check_key(sort, RECORD_SORTS, "排序字段") or "org_code"
    page, per_page = check_paging(page, per_page)
    with uow:
        # 代理: the children of the federations whose reviewer the user stands in for today.
        standin_orgs = [s.org.id for s in uow.delegations.running_for(parent_seat_of, clock.china_date(now))] \
            if parent_seat_of is not None else []
        query = RecordQuery(round_id=round_id, now=now, submitted_only=submitted_only, parent_seat_of=parent_seat_of,
                            standin_orgs=standin_orgs, under_paths=under_paths, state=state, overdue=overdue, q=q,
                            sort=sort)
        total, rows = uow.lists.record_page(query, page=page, per_page=per_page)
    items = [
        {
            "record_id": r.id, "version": r.version, "state": r.state,
            "state_label": states.STATE_LABELS[r.state], "org_code": r.code, "org_name": r.name,
            "report_deadline": r.report_deadline,
            "deadline_last_day": clock.deadline_last_day(r.report_deadline),
            "submitted_at": r.submitted_at, "is_late": bool(r.is_late), "overdue": bool(r.overdue),
            "quota_fen": r.quota_fen, "amount_per_member_fen": r.amount_per_member_fen,
            "members": r.members, "snapshot_stale": bool(r.snapshot_stale),
            "last_reason": r.last_reason, "is_grassroots": bool(r.is_grassroots),
            "returned": rules.returned_not_resubmitted(r.state, r.last_reason),
            "people_total": r.people_total, "amount_total_fen": r.amount_total_fen,
        }
        for r in rows
    ]
    return Page(items=items, total=int(total), page=page, per_page=per_page,
                filters={"state": state, "overdue": overdue, "q": q, "sort": sort})


def review_inbox(
    uow: UnitOfWork, *, user_id: int, round_id: int, q: str | None = None, sort: str | None = None,
    page: int = 1, per_page: int = 50, now: datetime | None = None,
) -> Page:
    """Submissions awaiting the user's decision: submitted records whose parent organisation the
    user reviews."""
    return _paged_records(
        uow, round_id=round_id, submitted_only=True, parent_seat_of=user_id, state=None, overdue=None,
        q=q, sort=sort or "submitted_at", page=page, per_page=per_page, now=now or clock.now(),
    )


def subordinates(
    uow: UnitOfWork, *, user_id: int, round_id: int, state: str | None = None,
    overdue: str | None = None, q: str | None = None, sort: str | None = None, page: int = 1,
    per_page: int = 50, now: datetime | None = None,
) -> Page:
    """The records of the organisations directly under the user's reviewer seats."""
    return _paged_records(
        uow, round_id=round_id, parent_seat_of=user_id, state=state, overdue=overdue, q=q, sort=sort,
        page=page, per_page=per_page, now=now or clock.now(),
    )


def visible_records(
    uow: UnitOfWork, *, user_id: int, round_id: int, state: str | None = None,
    overdue: str | None = None, q: str | None = None, sort: str | None = None, page: int = 1,
    per_page: int = 50, now: datetime | None = None,
) -> Page:
    """Every record in the user's visible subtrees (their seats' organisations and below)."""
    with uow:
        paths = [o.path for o, _r in access.business_seats(uow.directory.memberships(user_id))]
    return _paged_records(
        uow, round_id=round_id, under_paths=paths, state=state, overdue=overdue, q=q, sort=sort,
        page=page, per_page=per_page, now=now or clock.now(),
    )


# --- the overview ---------------------------------------------------------------------------


def overview(uow: UnitOfWork, *, user_id: int, round_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Per organisation directly under the user's top seat (for the province: the reporting
    units): its own record, counts per state over its subtree (itself included), overdue records,
    and the accepted grassroots numbers (people, amount) from their snapshots. The counts are
    :func:`workflow.app.reporting.completeness` in its ``subtree`` scope (the query the completeness
    report and the round status read), without the snapshot check."""
    now = now or clock.now()
    with uow:
        seats = [(o, r) for o, r in uow.directory.memberships(user_id) if r in OVERVIEW_ROLES]
        if not seats:
            raise PermissionDenied("只有审核人、管理员或观察员可以查看汇总概况", code="overview.not_allowed")
        top = min((o for o, _ in seats), key=lambda o: (o.depth, o.code))
        rnd = uow.directory.round(round_id)
        head = {"org_code": top.code, "org_name": top.name, "round_id": rnd.id, "round_label": rnd.label}
        *rows, _total = uow.reports.completeness(round_id, now=now, scope="subtree", under_org_id=top.id,
                                     check_snapshots=False)
        units = uow.lists.overview_units(round_id, top.id or 0)
    by_org = {r.org_id: r for r in rows}

    def stat(uid: int) -> dict[str, Any]:
        """The unit's subtree, itself included (the completeness row counts the records below)."""
        r = by_org.get(uid)
        if r is None:
            return {"counts": dict.fromkeys(states.STATES, 0), "total": 0, "grassroots": 0,
                    "grassroots_accepted": 0, "overdue": 0, "people": 0, "amount_fen": 0}
        counts = r.by_state
        if r.own_state is not None:
            counts[r.own_state] += 1
        return {"counts": counts, "total": r.total + (r.own_state is not None),
                "grassroots": r.grassroots, "grassroots_accepted": r.grassroots_accepted,
                "overdue": r.overdue + r.own_overdue, "people": r.accepted_people, "amount_fen": r.accepted_fen}

    out_units = []
    totals = {"counts": dict.fromkeys(states.STATES, 0), "total": 0, "grassroots": 0,
              "grassroots_accepted": 0, "overdue": 0, "people": 0, "amount_fen": 0}
    for uid, code, name, kind, rec_id, rec_state, people, amount, deadline in units:
        st = stat(uid)
        for k in ("total", "grassroots", "grassroots_accepted", "overdue", "people", "amount_fen"):
            totals[k] += st[k]
        for k, v in st["counts"].items():
            totals["counts"][k] += v
        out_units.append({
            "org_code": code, "org_name": name, "org_kind": kind, "record_id": rec_id,
            "state": rec_state, "state_label": states.STATE_LABELS.get(rec_state or "", "无记录"),
            "reported_people": people, "reported_amount_fen": amount,
            "deadline_last_day": clock.deadline_last_day(deadline) if deadline else None,
            "completeness": (st["grassroots_accepted"] / st["grassroots"]) if st["grassroots"] else None,
            **st,
        })
    totals["completeness"] = (totals["grassroots_accepted"] / totals["grassroots"]
                              if totals["grassroots"] else None)
    totals.update(reported_figures(out_units))
    return {**head, "units": out_units, "totals": totals}


#: A unit's record in these states has sent its snapshot up (what the province workbook lists).
REPORTED_STATES = (states.SUBMITTED, states.ACCEPTED)


def reported_figures(units: list[dict[str, Any]]) -> dict[str, Any]:
    """What the units under the top seat have *reported* to it: the snapshots of the units whose
    record is submitted or accepted, the definition of the province workbook's 合计 (an overview
    row per reporting unit, summed); split into accepted by the top level and awaiting it.
    Amounts exact (fen, people) and in the workbook's 万 with two decimals."""
    def part(wanted: tuple[str, ...]) -> dict[str, Any]:
        chosen = [u for u in units if u["state"] in wanted]
        people = sum(int(u["reported_people"] or 0) for u in chosen)
        fen = sum(int(u["reported_amount_fen"] or 0) for u in chosen)
        return {"units": len(chosen), "people": people, "amount_fen": fen,
                "wan_people": str(wan_people(people)), "wan_yuan": str(wan_yuan(fen))}

    for u in units:
        u["reported"] = u["state"] in REPORTED_STATES
        u["reported_wan_people"] = str(wan_people(int(u["reported_people"] or 0))) if u["reported"] else None
        u["reported_wan_yuan"] = str(wan_yuan(int(u["reported_amount_fen"] or 0))) if u["reported"] else None
    return {"units_total": len(units), "reported": part(REPORTED_STATES),
            "reported_accepted": part((states.ACCEPTED,)), "reported_pending": part((states.SUBMITTED,))}


# --- the notification inbox ------------------------------------------------------------------

KIND_LABELS = {
    "record_event": "记录动态",
    "quota_reminder": "额度提醒",
    "report_reminder": "报送提醒",
    "reviewer_digest": "审核提醒",
    "overdue_notice": "逾期通知",
    "quota_lapsed": "额度失效",
    "duplicate_order": "重复订单",
    "outbox_failed": "发送失败",
    "audit_head": "历史链头",
}


def unread_count(uow: UnitOfWork, *, user_id: int) -> int:
    """The number the 通知 link carries on every page."""
    with uow:
        return uow.notifications.unread_count(user_id)  # type: ignore[no-any-return]


def notifications(uow: UnitOfWork, *, user_id: int, page: int = 1, per_page: int = 50) -> Page:
    """The user's in-app inbox, newest first; each item with its record's current state
    (``state_now``, ``state_label_now``; None without a record)."""
    page, per_page = check_paging(page, per_page)
    with uow:
        total, unread, rows = uow.notifications.inbox_page(user_id, page=page, per_page=per_page)
        # The record's state now, beside what the notification said then (an old reminder's
        # 「计划中」 after the union has submitted): one query for the page.
        now_states = uow.notifications.record_states(n.record_id for n in rows if n.record_id)
        items = []
        for n in rows:
            try:
                payload = json.loads(n.payload or "{}")
            except ValueError:
                payload = {}
            items.append({"id": n.id, "kind": n.kind, "kind_label": KIND_LABELS.get(n.kind, n.kind),
                          "record_id": n.record_id, "created_at": n.created_at,
                          "read": n.read_at is not None,
                          "state_now": now_states.get(n.record_id or 0),
                          "state_label_now": states.STATE_LABELS.get(now_states.get(n.record_id or 0) or ""),
                          "payload": payload if isinstance(payload, dict) else {}})
    return Page(items=items, total=int(total), page=page, per_page=per_page, filters={"unread": int(unread)})


@audited('notifications.read')
def mark_notifications_read(uow: UnitOfWork, *, user_id: int, now: datetime | None = None,
                            ids: Sequence[int] | None = None) -> int:
    """Mark the user's unread inbox notifications read: all of them, or only ``ids`` (another
    user's ids change nothing)."""
    with uow:
        n = uow.notifications.mark_inbox_read(user_id, now=now or clock.now(), ids=ids)
        uow.commit()
        return n


def notification_target(uow: UnitOfWork, *, user_id: int, notification_id: int) -> str:
    """Where a notification of the user's inbox points (its record, or the review list); 404 for
    another user's notification."""
    with uow:
        n = uow.notifications.notification(notification_id)
        if n is None or n.user_id != user_id or n.channel != "inbox":
            raise NotFound(f"找不到通知 #{notification_id}", code="notification.not_found")
        try:
            payload = json.loads(n.payload or "{}")
        except ValueError:
            payload = {}
    path = payload.get("path") if isinstance(payload, dict) else None
    if isinstance(path, str) and path.startswith("/") and not path.startswith("//"):
        return path
    return f"/records/{n.record_id}" if n.record_id else "/"


def entry_options(uow: UnitOfWork, *, round_id: int) -> dict[str, Any]:
    """What a purchase form offers: the round's channels, holidays and budgets (policy data)."""
    with uow:
        rnd = uow.directory.round(round_id)
        policy = uow.directory.policy(rnd.policy_code)
        year = rnd.year
    return {
        "channels": [{"code": c.code, "name": c.name, "official": c.official} for c in policy.channels],
        "holidays": list(policy.holidays),
        "forbidden_forms": list(policy.forbidden_forms),
        "budgets": [{"code": k, "name": v} for k, v in BUDGETS.items()],
        "year": year,
    }


def record_relation(uow: UnitOfWork, *, user_id: int, record_id: int) -> dict[str, Any]:
    """What the page may offer this user on a record: data entry (its clerk, or the parent's
    reviewer on its behalf) and the parent's reviewer's decisions. The services check again.

    ``lone_reviewer_to``: for the parent's reviewer when the parent has no other active reviewer
    (and four eyes is on), the organisation whose reviewers will decide the record if this
    reviewer fills it in (代填报): the page says so before anything is entered."""
    with uow:
        rec = uow.records.get(record_id)
        org = uow.directory.org(rec.org_id)
        rel = access.relation(uow.directory.memberships(user_id), org)
        if not rel.visible:
            raise NotFound(f"找不到记录 #{record_id}", code="record.not_found")
        parent_reviewer = states.REVIEWER in rel.parent_roles
        lone_to = None
        if parent_reviewer and org.parent_id is not None and uow.directory.round(rec.round_id).four_eyes:
            parent = uow.directory.org(org.parent_id)
            others = uow.directory.active_user_ids(parent.id or 0, states.REVIEWER) - {user_id}
            if not others and parent.parent_id is not None:
                lone_to = uow.directory.org(parent.parent_id).name
    own_clerk = states.CLERK in rel.own_roles
    return {"own_clerk": own_clerk, "parent_reviewer": parent_reviewer,
            "can_enter": not isinstance(access.entry_role(rel, ""), Refusal), "lone_reviewer_to": lone_to}
