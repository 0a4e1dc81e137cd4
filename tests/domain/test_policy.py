"""Policy files: the 17号 numbers as data, malformed files refused with field and reason, and a
second file that adds rounds scoped to one city's subtree with no code change."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from tests.conftest import NOW_2021, World
from workflow.app import directory, planning, purchases, record_views
from workflow.domain import policy
from workflow.domain.errors import BadInput, NotFound, PolicyError, RuleViolation
from workflow.entrypoints.cli import exit_code_for
from workflow.store.tables import Organisation, Record, Round
from workflow.store.uow import UnitOfWork

BASE = (policy.POLICY_DIR / "yuegongzong-2021-17.toml").read_text(encoding="utf-8")


# --- the shipped 17号 file ------------------------------------------------------------------


def test_17_hao_numbers() -> None:
    p = policy.builtin()
    assert p.code == "yuegongzong-2021-17"
    assert p.document == "粤工总〔2021〕17号"
    assert [(r.year, r.label) for r in p.rounds] == [(2021, "2021年度"), (2022, "2022年度")]
    r21 = p.round(2021)
    assert r21 is not None
    assert r21.cap_fen_per_member == 60000
    assert r21.quota_last_day == date(2021, 12, 31)
    assert r21.report_last_day_reporting_unit == date(2021, 12, 31)
    assert r21.report_last_day_default < r21.report_last_day_reporting_unit
    assert r21.entry_cutoff_last_day == date(2022, 1, 31)
    # Deadlines are stored as the next day's 00:00 China time, in UTC.
    assert r21.quota_deadline == datetime(2021, 12, 31, 16, 0, tzinfo=UTC)
    assert p.reminder_offsets == (30, 14, 7, 3, 1, 0)
    assert p.receiver_kind == "province"
    assert {"city_federation", "industry_union"} <= p.reporting_unit_kinds
    assert p.grassroots_kinds == frozenset({"grassroots"})
    assert {"现金", "购物卡", "代金券"} <= set(p.forbidden_forms)
    assert set(p.holidays) == {"元旦", "春节", "清明", "劳动节", "端午", "中秋", "国庆"}
    lim = p.limits
    assert (lim.budget_share_soft_percent, lim.budget_share_hard_percent) == (30, 40)
    assert lim.retained_share_hard_percent == 50
    assert lim.per_member_soft_fen == 250000
    assert [s.label for s in p.stats_rows] == [
        "粤工惠购平台", "乡村振兴全国消费帮扶广东馆", "广东东西部扶贫协作产品交易网", "832平台",
        "其他采购渠道(含线上和线下)",
    ]
    official = {c.code for c in p.channels if c.is_official}
    assert {"ygh", "gdg", "dxb", "p832"} <= official
    assert all(c.stats_row in {s.code for s in p.stats_rows} for c in p.channels)
    assert any(c.official == "no" for c in p.channels)  # other channels are allowed


def test_every_shipped_policy_parses() -> None:
    files = sorted(policy.POLICY_DIR.glob("*.toml"))
    assert len(files) >= 2
    for f in files:
        assert policy.load_policy(f).code == f.stem


# --- malformed files ------------------------------------------------------------------------


def _without_table(text: str, name: str) -> str:
    return re.sub(rf"^\[{re.escape(name)}\]\n(?:(?!\[).*\n)*", "", text, count=1, flags=re.M)


def _set(text: str, key: str, value: str, nth: int = 0) -> str:
    matches = list(re.finditer(rf"^{re.escape(key)} = .*$", text, flags=re.M))
    m = matches[nth]
    return text[: m.start()] + f"{key} = {value}" + text[m.end():]


MALFORMED = [
    ("missing table", lambda t: _without_table(t, "quota"), "quota", "缺少该表"),
    ("missing deadlines", lambda t: _without_table(t, "deadlines"), "deadlines", "缺少该表"),
    ("cap above range", lambda t: _set(t, "cap_yuan_per_member", "100001"),
     "quota.cap_yuan_per_member", "100001"),
    ("cap negative", lambda t: _set(t, "cap_yuan_per_member", "-1"), "quota.cap_yuan_per_member", "-1"),
    ("cap not an integer", lambda t: _set(t, "cap_yuan_per_member", '"600"'),
     "quota.cap_yuan_per_member", "整数"),
    ("unknown stats_row", lambda t: _set(t, "stats_row", '"taobao"', nth=2),
     "channels[2].stats_row", "taobao"),
    ("bad official", lambda t: _set(t, "official", '"maybe"'), "channels[0].official", "maybe"),
    ("bad date", lambda t: _set(t, "deadline", '"02-30"'), "deadline", "02-30"),
    ("bad date format", lambda t: _set(t, "entry_cutoff", "31"), "entry_cutoff", "MM-DD"),
    ("report_default after the reporting-unit deadline",
     lambda t: _set(t, "report_default", '"12-31"').replace(
         'report_reporting_unit = "12-31"', 'report_reporting_unit = "12-25"'),
     "report_default", "不能晚于"),
    ("entry cutoff before the quota deadline",
     lambda t: _set(t, "entry_cutoff_next_year", "false"), "entry_cutoff", "早于"),
    ("duplicate year", lambda t: t.replace("year = 2022", "year = 2021"), "rounds", "两次"),
    ("year out of range", lambda t: t.replace("year = 2022", "year = 1999"), "rounds[1].year", "1999"),
    ("reminder offset out of range", lambda t: _set(t, "reminder_offsets", "[30, -1]"),
     "deadlines.reminder_offsets", "整数列表"),
    ("reminder hour out of range", lambda t: _set(t, "reminder_hour", "24"), "deadlines.reminder_hour", "24"),
    ("soft share above hard", lambda t: _set(t, "budget_share_soft_percent", "45"), "ordinary_limits", "一般比例"),
    ("no rounds", lambda t: re.sub(r"^\[\[rounds\]\]\n(?:(?!\[).*\n)*", "", t, flags=re.M), "rounds", "至少一项"),
    ("empty label", lambda t: t.replace('label = "2021年度"', 'label = ""'), "rounds[0].label", "非空"),
    ("bad TOML", lambda t: t.replace("[quota]", "[quota"), "TOML", ""),
]


@pytest.mark.parametrize(("name", "mutate", "field", "reason"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_policy_is_refused_with_field_and_reason(name: str, mutate, field: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    text = mutate(BASE)
    assert text != BASE, "the mutation did not apply"
    with pytest.raises(PolicyError) as exc:
        policy.parse_policy(text, source="bad.toml")
    assert isinstance(exc.value, BadInput) and exit_code_for(exc.value) == 2
    assert exc.value.code == "policy.invalid"
    assert field in exc.value.message
    assert reason in exc.value.message
    assert "\n" not in exc.value.message or name == "bad TOML"


def test_a_missing_policy_file_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PolicyError) as exc:
        policy.load_policy(tmp_path / "nope.toml")
    assert "nope.toml" in exc.value.message


# --- loading: rounds and records ------------------------------------------------------------


def _records(database, round_label: str) -> list[str]:  # type: ignore[no-untyped-def]
    with UnitOfWork(database, readonly=True) as uow:
        rnd = uow.directory.round_by_label(round_label)
        return sorted(uow.session.execute(
            select(Organisation.code).join(Record, Record.org_id == Organisation.id)
            .where(Record.round_id == rnd.id)
        ).scalars())


ALL_BUT_PROVINCE = ["C1", "C2", "D1", "D2", "D3", "G1", "G2", "G3", "G4", "G5", "IND"]


def test_loading_17_hao_opens_one_record_per_org_and_round(any_world: World) -> None:
    w = any_world
    assert _records(w.db, "2021年度") == ALL_BUT_PROVINCE
    assert _records(w.db, "2022年度") == ALL_BUT_PROVINCE
    again = directory.install_policy(w.uow(), policy=policy.builtin(), now=NOW_2021)
    assert again == {"policy": "yuegongzong-2021-17", "rounds": ["2021年度", "2022年度"], "records_opened": 0}
    with w.uow(True) as uow:
        c1 = uow.records.get(w.rid("C1"))
        g1 = uow.records.get(w.rid("G1"))
        rnd = uow.directory.round(g1.round_id)
        assert (c1.is_reporting_unit, c1.is_grassroots) == (True, False)
        assert (g1.is_reporting_unit, g1.is_grassroots) == (False, True)
        assert c1.report_deadline == rnd.report_deadline_reporting_unit
        assert g1.report_deadline == rnd.report_deadline_default
        assert uow.records.get(g1.parent_id).org_id == uow.directory.org_by_code("D1").id  # type: ignore[arg-type]


def test_load_reports_the_records_it_opened(any_db) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import WORLD_ORGS

    directory.import_organisations(UnitOfWork(any_db), data=WORLD_ORGS.encode(), now=NOW_2021)
    result = directory.install_policy(UnitOfWork(any_db), policy=policy.builtin(), now=NOW_2021)
    assert result["records_opened"] == 2 * len(ALL_BUT_PROVINCE)


def test_a_new_organisation_gets_records_in_open_rounds(any_world: World) -> None:
    w = any_world
    directory.import_organisations(
        w.uow(), data=b"code,name,kind,parent_code\nG6,\xe6\x96\xb0\xe5\xb7\xa5\xe4\xbc\x9a,grassroots,D1\n",
        now=NOW_2021,
    )
    assert "G6" in _records(w.db, "2021年度")
    w.plan("G6", 10000, 5, user="d1-reviewer")  # on its behalf until it has a clerk


GZ_ORGS = """code,name,kind,parent_code
GZ,广州市总工会（新）,city_federation,GD
GZD1,海珠区总工会,district_federation,GZ
GZG1,海珠一中工会,grassroots,GZD1
GZG2,海珠医院工会,grassroots,GZD1
"""


def test_guangzhou_policy_adds_rounds_scoped_to_one_city(any_world: World) -> None:
    w = any_world
    directory.import_organisations(w.uow(), data=GZ_ORGS.encode(), now=NOW_2021)
    gz = policy.builtin("guangzhou-2023")
    assert gz.scope == "GZ"
    assert [r.year for r in gz.rounds] == [2023, 2024, 2025]
    result = directory.install_policy(w.uow(), policy=gz, now=NOW_2021)
    assert result["rounds"] == ["2023年度（广州）", "2024年度（广州）", "2025年度（广州）"]
    assert result["records_opened"] == 3 * 3
    for label in result["rounds"]:
        # The city itself receives the reports: no record for it; nothing outside its subtree.
        assert _records(w.db, label) == ["GZD1", "GZG1", "GZG2"]
    # The 17号 rounds are untouched and now include the new organisations.
    assert "GZG1" in _records(w.db, "2021年度")
    with w.uow(True) as uow:
        rounds = {r.label: r for r in uow.directory.rounds()}
        gz_round = rounds["2024年度（广州）"]
        assert gz_round.scope_org_id == uow.directory.org_by_code("GZ").id
        assert gz_round.year == 2024 and gz_round.policy_code == "guangzhou-2023"
        assert rounds["2021年度"].scope_org_id is None


def test_a_scoped_policy_written_as_data_needs_no_code_change(any_world: World) -> None:
    """A later notice for the world's 广州 (C1): rounds 2023-2024 and a lower cap, as text."""
    w = any_world
    text = (policy.POLICY_DIR / "guangzhou-2023.toml").read_text(encoding="utf-8")
    text = text.replace('code = "guangzhou-2023"', 'code = "c1-2023"').replace('scope = "GZ"', 'scope = "C1"')
    text = _set(text, "cap_yuan_per_member", "500")
    text = re.sub(r'\[\[rounds\]\]\nyear = 2025\nlabel = ".*"\n', "", text)
    text = text.replace("（广州）", "（C1）")
    p = policy.parse_policy(text, source="c1.toml")
    directory.install_policy(w.uow(), policy=p, now=NOW_2021)
    for label in ("2023年度（C1）", "2024年度（C1）"):
        assert _records(w.db, label) == ["D1", "D2", "G1", "G2", "G3"]
    with w.uow(True) as uow:
        rnd = uow.directory.round_by_label("2023年度（C1）")
        assert rnd.cap_fen_per_member == 50000
        assert uow.session.execute(select(Round).where(Round.policy_code == "c1-2023")).scalars().all()
    # The round's own cap applies: 600 yuan is refused in 2023, allowed in 2021.
    rid = record_views.find_record(w.uow(True), org_code="G1", round_label="2023年度（C1）")
    in_2023 = datetime(2023, 3, 1, 2, 0, tzinfo=UTC)
    with w.uow(True) as uow:
        version = uow.records.get(rid).version
    with pytest.raises(RuleViolation) as exc:
        planning.plan(w.uow(), record_id=rid, user_id=w.uid("g1-clerk"), seen_version=version,
                      amount_per_member_fen=60000, members=10, now=in_2023)
    assert exc.value.code == "plan.amount_out_of_range"
    planning.plan(w.uow(), record_id=rid, user_id=w.uid("g1-clerk"), seen_version=version,
                  amount_per_member_fen=50000, members=10, now=in_2023)
    w.plan("G1", 60000, 10)  # the 2021 record keeps the 17号 cap
    # A purchase paid in 2023 counts for the 2023 round and is refused for 2021.
    purchase = purchases.PurchaseInput(paid_at=in_2023, channel="ygh", amount_fen=100, people=1, order_no="Z")
    purchases.add_purchase(w.uow(), record_id=rid, user_id=w.uid("g1-clerk"), purchase=purchase, now=in_2023)
    with pytest.raises(RuleViolation) as exc:
        purchases.add_purchase(w.uow(), record_id=w.rid("G1"), user_id=w.uid("g1-clerk"),
                              purchase=purchase, now=NOW_2021)
    assert exc.value.code == "purchase.outside_year"


def test_a_scope_naming_an_unknown_organisation_is_refused(any_world: World) -> None:
    w = any_world
    with pytest.raises(NotFound) as exc:
        directory.install_policy(w.uow(), policy=policy.builtin("guangzhou-2023"), now=NOW_2021)
    assert "GZ" in exc.value.message and exit_code_for(exc.value) == 2
    with w.uow(True) as uow:
        assert [r.policy_code for r in uow.directory.rounds()] == ["yuegongzong-2021-17"] * 2


@pytest.mark.parametrize("year", [2024, 2025])
def test_demo_policy_parses_on_every_day_of_the_year(year: int) -> None:
    from datetime import timedelta

    from workflow.entrypoints import demo

    day = date(year, 1, 1)
    while day.year == year:
        p = policy.parse_policy(demo.demo_policy_text(day), source=f"demo@{day}")
        assert [r.year for r in p.rounds] == [year]
        rnd = p.rounds[0]
        assert "演示" in rnd.label
        assert day <= rnd.report_last_day_default <= rnd.report_last_day_reporting_unit
        assert rnd.report_last_day_default <= date(year, 12, 31)
        day += timedelta(days=1)
