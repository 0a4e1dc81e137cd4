"""Annex 2 roll-ups on SQLite and PostgreSQL: snapshots only for submitted/accepted records,
live sums for drafts, level by level; official share, comparison, completeness and chasing."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import openpyxl
import pytest
from sqlalchemy import insert

from tests.conftest import NOW_2021, World
from workflow.app import directory, purchases, reporting
from workflow.domain import clock
from workflow.domain import figures as annex
from workflow.domain.errors import NotFound, PermissionDenied, RuleViolation
from workflow.domain.figures import wan_yuan
from workflow.domain.policy import builtin
from workflow.store import reports as aggregates
from workflow.store.tables import Purchase

POLICY = builtin()


def grassroots(w: World, org: str, buys: list[tuple[str, int, int]], *, submit: bool = True) -> None:
    """Plan, buy (channel, amount_fen, people), summarize and (optionally) submit."""
    clerk = f"{org.lower()}-clerk"
    w.plan(org, 60000, 100)
    for i, (channel, amount, people) in enumerate(buys, start=1):
        w.buy(org, f"{org}-{i}", amount, people, channel=channel)
    w.fire(org, "finish_purchasing", clerk)
    w.info(org)
    w.fire(org, "summarize", clerk)
    if submit:
        w.fire(org, "submit", clerk)


def federation_up(w: World, org: str, *, reporting_unit: bool = False) -> None:
    clerk = f"{org.lower()}-clerk"
    w.fire(org, "finish_purchasing", clerk)
    extra = {"work_experience": f"{org}先进经验", "work_highlights": f"{org}工作亮点"} if reporting_unit else {}
    w.info(org, **extra)
    w.fire(org, "summarize", clerk)
    w.fire(org, "submit", clerk)


def figures(w: World, org: str, *, live: bool = False) -> dict[str, tuple[int, int]]:
    with w.uow(True) as uow:
        table = aggregates.annex2_for_record(uow.session, w.rid(org), POLICY, live=live)
    return {r.label: (r.people, r.amount_fen) for r in table.rows}


def total(rows: dict[str, tuple[int, int]]) -> tuple[int, int]:
    return sum(p for p, _ in rows.values()), sum(a for _, a in rows.values())


def test_rollup_level_by_level_reads_snapshots_of_accepted_and_submitted(any_world: World) -> None:
    w = any_world
    grassroots(w, "G1", [("ygh", 1_000_000, 100), ("dxyx", 500_000, 50), ("local_hall", 300_000, 30)])
    grassroots(w, "G2", [("p832", 200_000, 20)])
    grassroots(w, "G3", [("ygh", 100_000, 10)], submit=False)
    w.fire("G1", "accept", "d1-reviewer")

    g1 = figures(w, "G1")
    assert g1["粤工惠购平台"] == (100, 1_000_000)
    assert g1["其他采购渠道(含线上和线下)"] == (80, 800_000)  # dxyx and local_hall map to "other"
    assert g1["832平台"] == (0, 0)

    # D1 (a draft) adds its accepted child only; G2 is submitted, not yet accepted.
    with w.uow(True) as uow:
        st = uow.reports.subtree_stats(_org_id(w, "D1"), _round_id(w))
    assert total(st.accepted) == (180, 1_800_000)
    assert total(st.pending) == (20, 200_000)
    assert [u.org_code for u in st.units] == ["G1", "G2"]
    assert [u.status_note for u in st.units] == ["已通过", "已提交，待审核"]
    assert "已提交，待审核 1 个" in st.note()

    # Official share: ygh and dxyx are official platforms (dxyx sits in the "other" Annex 2 row),
    # local_hall is only "preferred".
    share = annex.official_share(st.accepted, POLICY)
    assert (share.official_fen, share.total_fen) == (1_500_000, 1_800_000)
    assert share.percent == Decimal("83.33")

    # D1 adds an aggregate line (a street's ledger total), accepts G2, summarizes and submits;
    # C1 accepts D1; the province sees C1 only once C1 has submitted.
    reporting.add_aggregate_line(w.uow(), record_id=w.rid("D1"), user_id=w.uid("d1-clerk"), channel="other",
                               people=5, amount_fen=50_000, note="天河区街道工会台账汇总", now=NOW_2021)
    d1_live = figures(w, "D1")  # a draft: own aggregate line + G1's accepted snapshot, same row
    assert d1_live["其他采购渠道(含线上和线下)"] == (80 + 5, 800_000 + 50_000)
    assert total(d1_live) == (185, 1_850_000)
    w.fire("G2", "accept", "d1-reviewer")
    federation_up(w, "D1")
    assert total(figures(w, "D1")) == (205, 2_050_000)
    w.fire("D1", "accept", "c1-reviewer")
    federation_up(w, "C1", reporting_unit=True)  # D2 (with G3) not accepted: missing
    assert total(figures(w, "C1")) == (205, 2_050_000)

    with w.uow(True) as uow:
        province = uow.reports.annex2_for_subtree(_org_id(w, "GD"), _round_id(w), POLICY)
        units = uow.reports.unit_figures(_round_id(w), parent_org_id=_org_id(w, "GD"))
    assert (province.total_people, province.total_amount_fen) == (0, 0)  # C1 submitted, not accepted
    assert "已提交，待审核 1 个" in (province.status_note or "")
    assert {u.org_code: u.amount_fen for u in units}["C1"] == 2_050_000
    w.fire("C1", "accept", "gd-reviewer")
    with w.uow(True) as uow:
        province = uow.reports.annex2_for_subtree(_org_id(w, "GD"), _round_id(w), POLICY)
    assert (province.total_people, province.total_amount_fen) == (205, 2_050_000)


def test_submitted_and_accepted_read_snapshots_only(any_world: World) -> None:
    w = any_world
    grassroots(w, "G1", [("ygh", 1_000_000, 100)])
    w.fire("G1", "accept", "d1-reviewer")
    grassroots(w, "G2", [("ygh", 300_000, 30)], submit=False)
    # G2 is summarized: a purchase entered now makes its snapshot stale; the summarized view
    # keeps the frozen numbers and the live view shows the new ones.
    w.buy("G2", "G2-late", 50_000, 5)
    assert total(figures(w, "G2")) == (30, 300_000)
    assert total(figures(w, "G2", live=True)) == (35, 350_000)
    # A line that lands in an accepted record's ledger (bulk load, direct SQL) changes nothing
    # the province sees: accepted records are read from their snapshots.
    with w.db.begin() as s:
        s.execute(insert(Purchase.__table__).values(
            record_id=w.rid("G1"), paid_at=NOW_2021, paid_on=NOW_2021.date(), channel="ygh",
            amount_fen=999_900, people=99, product="", order_no="late", line_no=1, budget="extra_quota",
            on_behalf=False, source="sql",
        ))
    assert total(figures(w, "G1")) == (100, 1_000_000)
    assert total(figures(w, "G1", live=True)) == (100, 1_000_000)  # accepted: snapshot whatever
    with w.uow(True) as uow:
        d1 = uow.reports.subtree_stats(_org_id(w, "D1"), _round_id(w))
        progress = aggregates.live_rollup_by_path(uow.session, _org_id(w, "C1"), _round_id(w))
    assert total(d1.accepted) == (100, 1_000_000)
    # The live progress by path prefix sees every ledger line below D1, whatever the states.
    assert total(progress[_org_id(w, "D1")]) == (100 + 99 + 35, 1_000_000 + 999_900 + 350_000)
    assert _org_id(w, "D2") not in progress


def test_rounded_rows_do_not_add_up_to_rounded_total(any_world: World) -> None:
    w = any_world
    # 4,000 fen = 0.004 万元 -> 0.00 per row; the exact total 8,000 fen = 0.008 -> 0.01.
    grassroots(w, "G1", [("ygh", 4_000, 40), ("gdg", 4_000, 40)])
    view = reporting.stats(w.uow(True), round_label="2021年度", org_code="G1", user_id=w.uid("g1-clerk"))
    rows = {r.label: r for r in view.table.rows}
    assert wan_yuan(rows["粤工惠购平台"].amount_fen) == Decimal("0.00")
    assert wan_yuan(rows["乡村振兴全国消费帮扶广东馆"].amount_fen) == Decimal("0.00")
    assert wan_yuan(view.table.total_amount_fen) == Decimal("0.01")
    from dataclasses import replace

    from workflow.formats.exports import write_csv, write_xlsx

    # The union's own paper shows its exact figures (issue 22, point 12) ...
    ws = openpyxl.load_workbook(io.BytesIO(write_xlsx([view.table]))).active
    values = {row[0]: row[1:] for row in ws.iter_rows(values_only=True) if row and row[0]}
    assert [float(v) for v in values["粤工惠购平台"][:2]] == [40.0, 40.0]
    assert [float(v) for v in values["合计"][:2]] == [80.0, 80.0]
    # ... and in 万 (as a federation's table rolls it up) the rows and 合计 differ, and the paper says so.
    ws = openpyxl.load_workbook(io.BytesIO(write_xlsx([replace(view.table, exact=False)]))).active
    values = {row[0]: row[1:] for row in ws.iter_rows(values_only=True) if row and row[0]}
    assert [float(v) for v in values["粤工惠购平台"][:2]] == [0.0, 0.0]
    assert [float(v) for v in values["合计"][:2]] == [0.01, 0.01]
    note = next(k for k in values if str(k).startswith("注："))
    assert "各行相加为 0.00 万人次、0.00 万元" in note and "精确合计 80 人次，80.00 元" in note
    assert "两者不同是舍入所致" in write_csv(replace(view.table, exact=False)).decode("utf-8-sig")


def test_stats_view_scope_is_the_seats_subtree(any_world: World) -> None:
    """One rule (workflow.domain.access): statistics are visible from any seat at or above the
    organisation — a federation's clerk compiles its system's report, so it sees its
    subordinates' figures; outside the view the organisation does not exist (NotFound)."""
    w = any_world
    grassroots(w, "G1", [("ygh", 100_000, 10)])
    assert reporting.stats(w.uow(True), round_label="2021年度", org_code="G1", user_id=w.uid("d1-reviewer")).source == "snapshot"
    assert reporting.stats(w.uow(True), round_label="2021年度", org_code="G1", user_id=w.uid("gd-reviewer")).state == "submitted"
    assert reporting.stats(w.uow(True), round_label="2021年度", org_code="G1", user_id=w.uid("d1-clerk")).state == "submitted"
    with pytest.raises(NotFound):  # a grassroots clerk does not see its parent
        reporting.stats(w.uow(True), round_label="2021年度", org_code="D1", user_id=w.uid("g1-clerk"))
    with pytest.raises(NotFound):  # nor a reviewer another district
        reporting.stats(w.uow(True), round_label="2021年度", org_code="G3", user_id=w.uid("d1-reviewer"))
    # The observer's membership names the root of the subtree it may read (C1).
    assert reporting.stats(w.uow(True), round_label="2021年度", org_code="G1", user_id=w.uid("observer")).state
    with pytest.raises(NotFound):
        reporting.stats(w.uow(True), round_label="2021年度", org_code="C2", user_id=w.uid("observer"))
    view = reporting.stats(w.uow(True), round_label="2021年度", org_code="GD", user_id=w.uid("gd-reviewer"))
    assert view.source == "subtree" and [u.org_code for u in view.units] == ["C1", "C2", "IND"]


def test_aggregate_lines_refused_for_grassroots_and_need_a_note(any_world: World) -> None:
    w = any_world
    with pytest.raises(RuleViolation, match="基层工会"):
        reporting.add_aggregate_line(w.uow(), record_id=w.rid("G1"), user_id=w.uid("g1-clerk"), channel="ygh",
                                   people=1, amount_fen=100, note="x", now=NOW_2021)
    with pytest.raises(RuleViolation, match="来源"):
        reporting.add_aggregate_line(w.uow(), record_id=w.rid("D1"), user_id=w.uid("d1-clerk"), channel="ygh",
                                   people=1, amount_fen=100, note=" ", now=NOW_2021)
    with pytest.raises(PermissionDenied):  # a clerk of the parent is not D1's clerk
        reporting.add_aggregate_line(w.uow(), record_id=w.rid("D1"), user_id=w.uid("c1-clerk"), channel="ygh",
                                   people=1, amount_fen=100, note="x", now=NOW_2021)
    # The parent's reviewer may enter it on D1's behalf.
    reporting.add_aggregate_line(w.uow(), record_id=w.rid("D1"), user_id=w.uid("c1-reviewer"), channel="ygh",
                               people=3, amount_fen=300, note="代填报", now=NOW_2021)
    assert total(figures(w, "D1")) == (3, 300)


def test_comparison_between_2021_and_2022(any_world: World) -> None:
    w = any_world
    grassroots(w, "G1", [("ygh", 1_000_000, 100)])
    w.fire("G1", "accept", "d1-reviewer")
    w2022 = World(db=w.db, round_label="2022年度", users=w.users)
    now_2022 = datetime(2022, 11, 1, 2, 0, tzinfo=UTC)
    with clock.frozen(now_2022):
        w2022.plan("G1", 60000, 100, now=now_2022)

        purchases.add_purchase(w.uow(), record_id=w2022.rid("G1"), user_id=w.uid("g1-clerk"), now=now_2022,
                              purchase=purchases.PurchaseInput(paid_at=now_2022, channel="ygh", amount_fen=1_500_000,
                                                              people=120, order_no="2022-1"))
    rows = reporting.compare_rounds(w.uow(True), org_code="D1", user_id=w.uid("d1-reviewer"),
                                  before="2021年度", after="2022年度")
    g1 = {r.org_code: r for r in rows}["G1"]
    assert (g1.before_fen, g1.after_fen, g1.change_fen) == (1_000_000, 1_500_000, 500_000)
    assert g1.change_percent == Decimal("50.00")
    assert (g1.before_state, g1.after_state) == ("accepted", "planned")


def test_completeness_counts_states_overdue_and_late(any_world: World) -> None:
    w = any_world
    grassroots(w, "G1", [("ygh", 100_000, 10)])
    w.fire("G1", "accept", "d1-reviewer")
    grassroots(w, "G2", [("ygh", 100_000, 10)])
    # After the grassroots deadline (20 Dec), before the reporting units' (31 Dec).
    late = datetime(2021, 12, 25, 2, 0, tzinfo=UTC)
    with w.uow(True) as uow:
        rows = uow.reports.completeness(_round_id(w), now=late)
    by = {r.org_code: r for r in rows}
    d1 = by["D1"]
    assert (d1.total, d1.accepted, d1.submitted, d1.not_submitted, d1.overdue) == (2, 1, 1, 0, 0)
    assert (by["D2"].planned, by["D2"].overdue) == (1, 1)
    assert (by["GD"].total, by["GD"].overdue) == (3, 0)  # C1, C2, IND: deadline 31 Dec
    province = rows[-1]
    assert province.org_name == "全省合计" and province.org_id is None
    assert province.total == 11 and province.accepted == 1 and province.submitted == 1
    assert province.overdue == 9 - 3  # every non-submitted subordinate but the reporting units
    # G3 submits after its deadline: late, no longer overdue.
    grassroots(w, "G3", [("ygh", 100_000, 10)], submit=False)
    w.fire("G3", "submit", "g3-clerk", now=late)
    with w.uow(True) as uow:
        by = {r.org_code: r for r in uow.reports.completeness(_round_id(w), now=late)}
    assert (by["D2"].submitted, by["D2"].overdue, by["D2"].late) == (1, 0, 1)
    assert (by[""].late, by[""].overdue) == (1, 5)
    under = reporting.completeness_for(w.uow(True), round_label="2021年度", user_id=w.uid("c1-reviewer"), now=late)
    assert [r.org_code for r in under] == ["C1", "D1", "D2", ""]
    assert under[-1].total == 2 + 2 + 1


def test_completeness_subtree_scope_and_the_snapshot_check(any_world: World) -> None:
    """The one completeness query in both scopes: direct subordinates per federation, or every
    record below each reporting unit; fresh snapshots checked against purchases, aggregate lines
    and accepted children's snapshots; stale ones not judged."""
    from sqlalchemy import text

    w = any_world
    grassroots(w, "G1", [("ygh", 100_000, 10)])
    w.fire("G1", "accept", "d1-reviewer")
    reporting.add_aggregate_line(w.uow(), record_id=w.rid("D1"), user_id=w.uid("d1-clerk"), channel="other",
                               people=5, amount_fen=50_000, note="天河区街道工会台账汇总", now=NOW_2021)
    federation_up(w, "D1")  # D1's snapshot: its aggregate line plus G1's accepted snapshot

    def scoped(scope: aggregates.Scope, under: str | None = None) -> dict[str, aggregates.CompletenessRow]:
        with w.uow(True) as uow:
            rows = uow.reports.completeness(_round_id(w), now=NOW_2021, scope=scope,
                                        under_org_id=_org_id(w, under) if under else None)
        return {r.org_code: r for r in rows}

    sub = scoped("subtree")
    assert sorted(sub) == ["", "C1", "C2", "IND"]  # the reporting units, then the total
    c1 = sub["C1"]
    assert (c1.own_state, c1.subordinates, c1.accepted, c1.submitted, c1.planned) == ("planned", 5, 1, 1, 3)
    assert (c1.snapshots, c1.mismatched, c1.adds_up) == (2, 0, True)  # G1 and D1 add up
    assert (sub["C2"].subordinates, sub["IND"].subordinates, sub[""].subordinates) == (2, 1, 8)
    children = scoped("children")
    assert (children["C1"].total, children["C1"].snapshots) == (2, 1)  # D1, D2; D1's snapshot
    assert (children["D1"].total, children["D1"].accepted, children["D1"].snapshots) == (2, 1, 1)
    under = scoped("subtree", under="C1")
    assert sorted(under) == ["", "D1", "D2"] and under[""].org_name.endswith("合计")
    assert (under["D1"].own_state, under["D1"].subordinates, under["D1"].snapshots) == ("submitted", 2, 2)
    assert (under["D1"].grassroots, under["D1"].grassroots_accepted, under["D1"].accepted_people,
            under["D1"].accepted_fen) == (2, 1, 10, 100_000)  # G1's snapshot; G2 not accepted
    with w.uow(True) as uow:  # the web overview's call: no snapshot check, no purchase read
        unchecked = uow.reports.completeness(_round_id(w), now=NOW_2021, scope="subtree",
                                         check_snapshots=False)
    assert [(r.mismatched, r.adds_up) for r in unchecked] == [(None, None)] * 4
    assert [r.total for r in unchecked] == [sub[c].total for c in ("C1", "C2", "IND", "")]

    with w.db.engine.begin() as conn:  # D1's snapshot no longer adds up
        conn.execute(text("UPDATE snapshot SET people_total = people_total + 1 WHERE id = "
                          "(SELECT snapshot_id FROM record WHERE id = :rid)"), {"rid": w.rid("D1")})
    sub, children = scoped("subtree"), scoped("children")
    assert (sub["C1"].mismatched, sub["C1"].adds_up, sub["C2"].adds_up, sub[""].mismatched) == (1, False, True, 1)
    assert (children["C1"].mismatched, children["D1"].mismatched) == (1, 0)
    with w.db.engine.begin() as conn:  # a stale snapshot is to be summarized again, not judged
        conn.execute(text("UPDATE record SET snapshot_stale = TRUE WHERE id = :rid"), {"rid": w.rid("D1")})
    assert scoped("subtree")["C1"].adds_up


def test_chase_list_names_clerks_and_phones_and_writes_xlsx(any_world: World) -> None:
    w = any_world
    directory.import_users(w.uow(), now=NOW_2021, data=(
        "username,display_name,org_code,role,email,phone\n"
        "g2-clerk2,G2第二填报员,G2,clerk,,13900000002\n"
    ).encode())
    grassroots(w, "G1", [("ygh", 100_000, 10)])
    rows, data = reporting.chase(w.uow(True), round_label="2021年度", user_id=w.uid("d1-reviewer"), org_code="D1", now=NOW_2021)
    assert [r[0] for r in rows] == ["G2"]
    assert "G2填报员" in rows[0][5] and "G2第二填报员" in rows[0][5] and "13900000002" in rows[0][6]
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    cells = [c for row in ws.iter_rows(values_only=True) for c in row if c]
    assert "G2" in cells and "天河供电局工会" in cells
    with pytest.raises(NotFound):  # D1 is G2's parent: outside a grassroots clerk's view
        reporting.chase(w.uow(True), round_label="2021年度", user_id=w.uid("g2-clerk"), org_code="D1", now=NOW_2021)
    with pytest.raises(PermissionDenied):  # the 催报 list carries phone numbers: not for observers
        reporting.chase(w.uow(True), round_label="2021年度", user_id=w.uid("observer"), org_code="D1", now=NOW_2021)


def test_province_workbook_overview_and_one_sheet_per_unit(any_world: World) -> None:
    w = any_world
    grassroots(w, "G5", [("ygh", 1_234_567, 321)])
    w.fire("G5", "accept", "ind-reviewer")
    federation_up(w, "IND", reporting_unit=True)
    data = reporting.province_workbook(w.uow(True), user_id=w.uid("gd-reviewer"), round_label="2021年度")
    wb = openpyxl.load_workbook(io.BytesIO(data))
    # overview + IND's form + one sheet for C1 and C2, which have not reported (issue 22)
    assert wb.sheetnames == ["汇总", "广东省教科文卫工会", "未报送单位"]
    overview = [row for row in wb.worksheets[0].iter_rows(values_only=True)]
    ind = next(r for r in overview if r[1] == "广东省教科文卫工会")
    assert float(ind[3]) == 1.23 and "已提交，待审核" in ind[4]
    c1 = next(r for r in overview if r[1] == "广州市总工会")
    assert float(c1[3]) == 0.0 and "未报送" in c1[4]
    with pytest.raises(PermissionDenied) as refused:
        reporting.province_workbook(w.uow(True), user_id=w.uid("c1-reviewer"), round_label="2021年度")
    # The refusal names who may (every account of the province, not only its reviewers: an
    # observer there downloads it too) and where a city looks instead.
    assert "审核人" not in str(refused.value) and "附件2" in str(refused.value)


def test_province_workbook_lists_the_unsubmitted_units_together_not_as_forms_of_zeros(any_world: World) -> None:
    """Issue 22 point 15: a unit that has not reported gets no Annex 2 of 0.00; one sheet lists
    them all (name, state, deadline, 填报人, how many clerks), with no phone on it."""
    w = any_world
    federation_up(w, "IND", reporting_unit=True)
    data = reporting.province_workbook(w.uow(True), user_id=w.uid("gd-reviewer"), round_label="2021年度")
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert "广州市总工会" not in wb.sheetnames and "未报送单位" in wb.sheetnames
    rows = [r for r in wb["未报送单位"].iter_rows(values_only=True) if any(r)]
    assert rows[0][0] == "2021年度未报送单位"
    assert rows[1] == ("序号", "单位", "状态", "报送截止", "填报人", "填报员人数")
    with w.uow(True) as uow:
        chased = uow.reports.chase_list(_round_id(w), _org_id(w, "GD"))
    assert [r[1] for r in rows[2:]] == [c[1] for c in chased] and len(chased) == 2  # C1, C2
    c1 = next(r for r in rows if r[1] == "广州市总工会")
    chase_c1 = next(c for c in chased if c[1] == "广州市总工会")
    assert c1[2] == chase_c1[2] and c1[3] == chase_c1[3] and "年" in c1[3]
    assert c1[5] == len([n for n in chase_c1[5].split("、") if n != "（无填报员）"]) >= 1
    flat = " ".join(str(v) for r in rows for v in r if v is not None)
    assert not any(p and p in flat for c in chased for p in (c[6], c[7]) if p not in ("", "未登记"))


def test_work_report_has_texts_numbers_and_subordinates_highlights(any_world: World) -> None:
    w = any_world
    w.plan("G5", 60000, 100)
    w.buy("G5", "G5-1", 2_000_000, 200)
    w.fire("G5", "finish_purchasing", "g5-clerk")
    w.info("G5", work_highlights="<b>职工食堂</b>采购帮扶农产品")
    w.fire("G5", "summarize", "g5-clerk")
    w.fire("G5", "submit", "g5-clerk")
    w.fire("G5", "accept", "ind-reviewer")
    w.info("IND", work_experience="建立“线上+线下”双渠道", work_highlights="全系统参与")
    report = reporting.work_report(w.uow(True), round_label="2021年度", org_code="IND", user_id=w.uid("ind-reviewer"))
    for text in (report.markdown, report.html):
        assert "广东省教科文卫工会2021年度消费帮扶工作报告" in text
        assert "全系统参与" in text and "省人民医院工会" in text
        assert "| 合计 | 0.02 | 2.00 |" in report.markdown
    assert "&lt;b&gt;职工食堂" in report.html and "<b>职工食堂</b>" in report.markdown


def _org_id(w: World, code: str) -> int:
    with w.uow(True) as uow:
        return uow.directory.org_by_code(code).id or 0


def _round_id(w: World) -> int:
    with w.uow(True) as uow:
        return uow.directory.round_by_label(w.round_label).id or 0


def test_province_workbook_prints_one_a4_page_per_sheet(world: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import shutil
    import subprocess
    import uuid

    soffice = shutil.which("libreoffice") or shutil.which("soffice")
    if soffice is None or not shutil.which("pdftotext") or not shutil.which("pdfinfo"):
        if os.environ.get("REQUIRE_SERVICES") == "1":
            pytest.fail("LibreOffice and poppler-utils are required (REQUIRE_SERVICES=1)")
        pytest.skip("LibreOffice or poppler-utils not installed")
    w = world
    grassroots(w, "G5", [("ygh", 1_234_567, 321), ("p832", 4_000, 40)])
    w.fire("G5", "accept", "ind-reviewer")
    federation_up(w, "IND", reporting_unit=True)
    source = tmp_path / "province.xlsx"
    source.write_bytes(reporting.province_workbook(w.uow(True), user_id=w.uid("gd-reviewer"), round_label="2021年度"))
    profile = tmp_path / f"lo-{uuid.uuid4().hex}"
    subprocess.run([soffice, "--headless", f"-env:UserInstallation={profile.as_uri()}", "--convert-to", "pdf",
                    "--outdir", str(tmp_path), str(source)], check=True, capture_output=True, timeout=300)
    pdf = tmp_path / "province.pdf"
    info = subprocess.run(["pdfinfo", "-f", "1", "-l", "99", str(pdf)], check=True, capture_output=True,
                          text=True).stdout
    sizes = [line for line in info.splitlines() if line.startswith("Page ") and "size" in line]
    assert len(sizes) == 3 and all("(A4)" in line for line in sizes)  # overview, IND, 未报送单位 (C1, C2)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True,
                          text=True).stdout
    assert text.count("合计") >= 4
    # IND: 粤工惠购 1.23 万元 / 0.03 万人次; 832平台 0.00 万元 (40 元); 合计 1.24 万元, 0.04 万人次.
    for figure in ("1.23", "0.03", "1.24", "0.04", "广东省教科文卫工会", "已提交，待审核", "未报送"):
        assert figure in text, figure


def test_full_chain_province_total_equals_every_ledger_line(any_world: World) -> None:
    """Every level accepted: the province's accepted total is the sum of every purchase and
    aggregate line in the tree, per Annex 2 row, and matches the live path roll-up per unit."""
    w = any_world
    buys = {
        "G1": [("ygh", 123_456, 7), ("gdg", 10_001, 1)],
        "G2": [("dxb", 99_999, 3), ("other", 5_005, 2)],
        "G3": [("p832", 77_777, 5)],
        "G4": [("ygh", 1, 1), ("nyfx", 333_333, 9)],
        "G5": [("counterpart", 44_444, 4)],
    }
    parents = {"G1": "d1", "G2": "d1", "G3": "d2", "G4": "d3", "G5": "ind"}
    for org, lines in buys.items():
        grassroots(w, org, lines)
        w.fire(org, "accept", f"{parents[org]}-reviewer")
    reporting.add_aggregate_line(w.uow(), record_id=w.rid("D3"), user_id=w.uid("d3-clerk"), channel="gzbf",
                               people=11, amount_fen=12_345, note="福田区街道汇总", now=NOW_2021)
    for org, parent in (("D1", "c1"), ("D2", "c1"), ("D3", "c2")):
        federation_up(w, org)
        w.fire(org, "accept", f"{parent}-reviewer")
    for org in ("C1", "C2", "IND"):
        federation_up(w, org, reporting_unit=True)
        w.fire(org, "accept", "gd-reviewer")
    expected: dict[str, tuple[int, int]] = {}
    for channel, amount, people in [*(x for lines in buys.values() for x in lines), ("gzbf", 12_345, 11)]:
        p, a = expected.get(channel, (0, 0))
        expected[channel] = (p + people, a + amount)
    with w.uow(True) as uow:
        table = uow.reports.annex2_for_subtree(_org_id(w, "GD"), _round_id(w), POLICY)
        progress = aggregates.live_rollup_by_path(uow.session, _org_id(w, "GD"), _round_id(w))
        units = uow.reports.unit_figures(_round_id(w), parent_org_id=_org_id(w, "GD"))
    assert [r.label for r in table.rows] == [s.label for s in POLICY.stats_rows]
    assert [(r.people, r.amount_fen) for r in table.rows] == [
        (r.people, r.amount_fen) for r in annex.annex2_rows(expected, POLICY)]
    assert (table.total_people, table.total_amount_fen) == total(expected)
    assert "已通过 3 个" in (table.status_note or "")
    # Level by level (snapshots) and by path (ledger) agree per reporting unit.
    assert {u.org_id: u.lines for u in units} == progress
