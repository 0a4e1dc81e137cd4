"""The demo province: 21 cities with districts, a few provincial unions, about 200 grassroots
unions in every state of the lifecycle, clerks and reviewers, and a current-year round labelled
演示 whose lower-level report deadline is two weeks away, so reminders and days-left mean
something today. Built through the services, so every state is reached by real transitions.
"""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta
from typing import Any

from workflow.app import directory, lifecycle, planning, purchases, record_views, views
from workflow.app.passwords import hash_password
from workflow.domain import clock
from workflow.domain.policy import POLICY_DIR, builtin, parse_policy
from workflow.store.tables import Database
from workflow.store.uow import UnitOfWork

DEMO_PASSWORD = "demo1234"

CITIES: list[tuple[str, str, tuple[str, str]]] = [
    ("GZ", "广州市", ("天河区", "越秀区")), ("SZ", "深圳市", ("福田区", "南山区")),
    ("ZH", "珠海市", ("香洲区", "斗门区")), ("ST", "汕头市", ("金平区", "龙湖区")),
    ("FS", "佛山市", ("禅城区", "南海区")), ("SG", "韶关市", ("浈江区", "武江区")),
    ("HY", "河源市", ("源城区", "东源县")), ("MZ", "梅州市", ("梅江区", "梅县区")),
    ("HZ", "惠州市", ("惠城区", "惠阳区")), ("SW", "汕尾市", ("城区", "海丰县")),
    ("DG", "东莞市", ("莞城街道", "松山湖园区")), ("ZS", "中山市", ("石岐街道", "火炬开发区")),
    ("JM", "江门市", ("蓬江区", "新会区")), ("YJ", "阳江市", ("江城区", "阳东区")),
    ("ZJ", "湛江市", ("赤坎区", "霞山区")), ("MM", "茂名市", ("茂南区", "电白区")),
    ("ZQ", "肇庆市", ("端州区", "鼎湖区")), ("QY", "清远市", ("清城区", "清新区")),
    ("CZ", "潮州市", ("湘桥区", "潮安区")), ("JY", "揭阳市", ("榕城区", "揭东区")),
    ("YF", "云浮市", ("云城区", "云安区")),
]
INDUSTRY: list[tuple[str, str, str]] = [
    ("IND-EDU", "广东省教科文卫工会", "industry_union"),
    ("IND-TRANS", "广东省交通运输工会", "industry_union"),
    ("ORGAN", "广东省直机关工会", "provincial_organ_union"),
]
UNIT_SUFFIXES = ["人民医院", "第一中学", "供电局", "自来水公司", "税务局", "科技有限公司", "物流集团", "食品厂"]
# How the grassroots records are spread over the lifecycle (plus a few returned for revision).
STATE_PLAN = ["planned", "purchased", "summarized", "submitted", "accepted", "returned", "accepted", "submitted"]

#: The accounts the README and `make run` name, each with what it can do at once on a fresh
#: demo (tests/test_demo_round.py plays every line). Password: DEMO_PASSWORD.
ACCOUNTS: list[tuple[str, str, str]] = [
    ("gz-d1-g1-clerk", "grassroots clerk (GZ-D1-G1)",
     "record GZ-D1-G1 is planned with one mistyped line (order GZ-D1-G1-001, 500 people): void it "
     "with a reason, enter it again with 50, add purchases, then 完成采购 → 汇总 → 提交"),
    ("gz-d1-reviewer", "district reviewer (天河区总工会, GZ-D1)",
     "/review: GZ-D1-G4 awaits a decision: 通过, or 退回修改 with a reason"),
    ("gz-d1-clerk", "district clerk (GZ-D1)",
     "record GZ-D1 is 已采购 with its footer filled: after the reviewer's decisions, 汇总 and 提交 "
     "to the city (the page shows the snapshot and the subordinates still missing)"),
    ("gz-reviewer", "city reviewer (广州市总工会, GZ)",
     "/review: the district GZ-D2 has submitted with its accepted grassroots unions: 通过 or 退回修改"),
    ("gd-reviewer", "province reviewer (广东省总工会)",
     "/review: the city SZ has submitted to the province: 通过 or 退回修改; /overview and the "
     "province workbook"),
    ("xczx-observer", "rural-revitalisation observer (read only)", "/overview and the downloads"),
    ("gd-admin", "administrator", "/overview and the downloads, /admin/outbox"),
    ("gd-sysadmin", "system administrator (三员分立)", "/admin/orgs: organisations and accounts, CSV import"),
    ("gd-secadmin", "security administrator (三员分立)", "password policy, lockouts, role grants"),
    ("gd-auditor", "auditor (三员分立)", "/audit-log: what everybody did, the administrators included"),
]
#: The mistyped line the grassroots clerk finds on the demo (people typed 10 times too many).
MISTYPED_ORDER = "GZ-D1-G1-001"


def demo_policy_text(today: Any) -> str:
    """The 17号 policy with one current-year round labelled 演示: the lower levels' report
    deadline 14 days from today (capped at 31 December), so reminders are due today."""
    text = (POLICY_DIR / "yuegongzong-2021-17.toml").read_text(encoding="utf-8")
    text = text.replace('code = "yuegongzong-2021-17"', 'code = "demo"', 1)
    text = re.sub(r"\[\[rounds\]\]\nyear = 2021\nlabel = \"2021年度\"\n\n\[\[rounds\]\]\nyear = 2022\nlabel = \"2022年度\"\n",
                  "", text)
    due = min(today + timedelta(days=14), today.replace(month=12, day=31))
    return text + (
        f'\n[[rounds]]\nyear = {today.year}\nlabel = "{today.year}年度（演示）"\n'
        f'report_default = "{due.isoformat()}"\n'
    )


def _org_csv() -> tuple[str, list[tuple[str, str, str]]]:
    """The tree as CSV, and the grassroots units as (code, name, parent code)."""
    lines = ["code,name,kind,parent_code,phone", "GD,广东省总工会,province,,020-83828111",
             "XCZX,广东省乡村振兴局,observer_body,,020-12345678"]
    grassroots: list[tuple[str, str, str]] = []
    n = 0
    for code, city, districts in CITIES:
        lines.append(f"{code},{city}总工会,city_federation,GD,")
        for i, district in enumerate(districts, start=1):
            dcode = f"{code}-D{i}"
            lines.append(f"{dcode},{city}{district}总工会,district_federation,{code},")
            for j in range(4):
                n += 1
                suffix = UNIT_SUFFIXES[(n + j) % len(UNIT_SUFFIXES)]
                grassroots.append((f"{dcode}-G{j + 1}", f"{city}{district}{suffix}工会", dcode))
    for code, name, kind in INDUSTRY:
        lines.append(f"{code},{name},{kind},GD,")
        for j in range(10):
            suffix = UNIT_SUFFIXES[j % len(UNIT_SUFFIXES)]
            grassroots.append((f"{code}-G{j + 1}", f"{name.removesuffix('工会')}系统{suffix}{j + 1}分会", code))
    for gcode, name, parent in grassroots:
        lines.append(f"{gcode},{name},grassroots,{parent},")
    return "\n".join(lines) + "\n", grassroots


_SURNAMES = "陈李黄张梁林刘吴罗何郑杨谢郭邓"
_GIVEN = ("晓敏", "志强", "丽华", "建国", "美玲", "国栋", "秀英", "伟明", "慧珍", "家豪", "嘉欣", "永康")


def _person(code: str) -> str:
    """A clerk's name for the printed forms (填报人), the same for an organisation every run; a
    form never shows an organisation code."""
    n = sum(map(ord, code))
    return _SURNAMES[n % len(_SURNAMES)] + _GIVEN[n // len(_SURNAMES) % len(_GIVEN)]


def _user_csv(org_lines: str) -> str:
    rows = ["username,display_name,org_code,role,email,phone,password"]
    for line in org_lines.splitlines()[1:]:
        code, name, kind = line.split(",")[:3]
        if kind == "observer_body":
            continue
        slug = code.lower()
        if kind != "province":
            rows.append(f"{slug}-clerk,{name}填报员,{code},clerk,{slug}-clerk@example.test,13800000000,")
        if kind != "grassroots":
            rows.append(f"{slug}-reviewer,{name}审核人,{code},reviewer,{slug}-reviewer@example.test,13900000000,")
    rows.append("gd-admin,省总工会管理员,GD,admin,gd-admin@example.test,,")
    rows.append("gd-sysadmin,省总工会系统管理员,GD,system_admin,,,")
    rows.append("gd-secadmin,省总工会安全管理员,GD,security_admin,,,")
    rows.append("gd-auditor,省总工会审计员,GD,auditor,,,")
    rows.append("xczx-observer,省乡村振兴局观察员,GD,observer,xczx-observer@example.test,,")
    return "\n".join(rows) + "\n"


def build(database: Database, *, reset: bool = False, seed: int = 17) -> dict[str, Any]:
    """Create the demo world in ``database`` (idempotent unless ``reset``)."""
    now = clock.now()
    today = clock.china_date(now)
    database.upgrade()
    with UnitOfWork(database, readonly=True) as uow:
        already = bool(uow.directory.rounds())
    if already and not reset:
        return {"demo": "already loaded", "database": database.shown_url}
    org_csv, grassroots = _org_csv()
    directory.import_organisations(UnitOfWork(database), data=org_csv.encode(), now=now)
    shared_hash = hash_password(DEMO_PASSWORD)
    directory.import_users(UnitOfWork(database), data=_user_csv(org_csv).encode(), now=now,
                           hash_password=lambda _pw: shared_hash, first_login_change=False)
    _set_demo_passwords(database, shared_hash)
    directory.install_policy(UnitOfWork(database), policy=builtin(), now=now)
    demo = parse_policy(demo_policy_text(today), source="demo")
    directory.install_policy(UnitOfWork(database), policy=demo, now=now)
    label = demo.rounds[0].label
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    for i, (code, _name, parent) in enumerate(grassroots):
        target = STATE_PLAN[i % len(STATE_PLAN)]
        _advance(database, code, parent, label, target, rng, now)
        counts[target] = counts.get(target, 0) + 1
    _round_in_progress(database, label, now)
    return {"demo": "loaded", "round": label, "grassroots": len(grassroots), "states": counts,
            "database": database.shown_url, "password": DEMO_PASSWORD}


def _round_in_progress(database: Database, label: str, now: datetime) -> None:
    """Leave every account of :data:`ACCOUNTS` with its part of the round to do at once:

    - GZ-D1-G1 (planned) holds one mistyped line for its clerk to void and re-enter;
    - GZ-D1 is purchased, not submitted, so its reviewer's decisions on GZ-D1-G* are open
      (a submitted parent would lock them) and its clerk summarizes and submits afterwards;
    - GZ-D2 accepts its waiting child, then summarizes and submits to GZ (the city's inbox);
    - SZ-D1 accepts its waiting child, submits, SZ accepts it, and SZ submits to the province.
    """
    g1 = record_views.find_record(UnitOfWork(database), org_code="GZ-D1-G1", round_label=label)
    purchases.add_purchase(
        UnitOfWork(database), record_id=g1, user_id=_uid(database, "gz-d1-g1-clerk"), now=now,
        purchase=purchases.PurchaseInput(
            paid_at=max(now - timedelta(days=3), min(now, datetime(now.year, 1, 1, 1, tzinfo=clock.CHINA))),
            channel="ygh", amount_fen=250000, people=500,
            order_no=MISTYPED_ORDER, product="梅州金柚礼盒", holiday="中秋"),
    )
    _advance_federation(database, "GZ-D1", label, now, submit=False, summarize=False)
    for district in ("GZ-D2", "SZ-D1"):
        reviewer = _uid(database, f"{district.lower()}-reviewer")
        for child in _submitted_children(database, reviewer, district, label, now):
            _fire(database, child, "accept", reviewer, None, now)
        _advance_federation(database, district, label, now, submit=True)
    sz_d1 = record_views.find_record(UnitOfWork(database), org_code="SZ-D1", round_label=label)
    _fire(database, sz_d1, "accept", _uid(database, "sz-reviewer"), None, now)
    _advance_federation(database, "SZ", label, now, submit=True)


def _submitted_children(database: Database, reviewer: int, org_code: str, label: str, now: datetime) -> list[int]:
    """The submissions waiting in the reviewer's inbox (the demo's districts have a handful)."""
    rid = record_views.find_record(UnitOfWork(database), org_code=org_code, round_label=label)
    with UnitOfWork(database, readonly=True) as uow:
        round_id = uow.records.get(rid).round_id
    inbox = views.review_inbox(UnitOfWork(database, readonly=True), user_id=reviewer, round_id=round_id,
                               per_page=200, now=now)
    return [i["record_id"] for i in inbox.items]


def _set_demo_passwords(database: Database, shared_hash: str) -> None:
    with UnitOfWork(database) as uow:
        uow.directory.set_missing_passwords(shared_hash)
        uow.commit()


def _uid(database: Database, username: str) -> int:
    with UnitOfWork(database, readonly=True) as uow:
        return uow.directory.user_by_name(username).id or 0


def _fire(database: Database, rid: int, trigger: str, user: int, reason: str | None, now: datetime) -> None:
    with UnitOfWork(database, readonly=True) as uow:
        version = uow.records.get(rid).version
    lifecycle.fire(UnitOfWork(database), record_id=rid, trigger=trigger, user_id=user,
                  seen_version=version, reason=reason, now=now)


def _advance(database: Database, code: str, parent: str, label: str, target: str,
             rng: random.Random, now: datetime) -> None:
    rid = record_views.find_record(UnitOfWork(database), org_code=code, round_label=label)
    clerk = _uid(database, f"{code.lower()}-clerk")
    reviewer = _uid(database, f"{parent.lower()}-reviewer")
    members = rng.randint(20, 800)
    amount = rng.choice([0, 30000, 50000, 60000, 60000, 60000])
    with UnitOfWork(database, readonly=True) as uow:
        version = uow.records.get(rid).version
    planning.plan(UnitOfWork(database), record_id=rid, user_id=clerk, seen_version=version,
                  amount_per_member_fen=amount, members=members, now=now)
    if target == "planned":
        return
    year_start = datetime(now.year, 1, 1, tzinfo=clock.CHINA)
    span = max(1, int((now - year_start.astimezone(now.tzinfo)).total_seconds()) - 3600)
    channels = ["ygh", "gdg", "dxb", "p832", "dxyx", "local_hall", "other"]
    budget_left = amount * members
    for n in range(rng.randint(1, 4)):
        paid_at = year_start + timedelta(seconds=rng.randint(0, span))
        value = max(100, min(budget_left, rng.randint(2000, 12000) * 100)) if budget_left > 0 else rng.randint(500, 3000) * 100
        budget_left -= value
        purchases.add_purchase(
            UnitOfWork(database), record_id=rid, user_id=clerk, now=now,
            purchase=purchases.PurchaseInput(
                paid_at=paid_at, channel=rng.choice(channels), amount_fen=value,
                people=rng.randint(10, max(11, members)), order_no=f"{code}-{n + 1:03d}",
                product=rng.choice(["梅州金柚", "清远鸡", "英德红茶", "湛江菠萝", "河源米粉"]),
                holiday=rng.choice(["中秋", "国庆", "春节"]),
                budget="extra_quota" if amount else "ordinary_gift",
            ),
        )
    _fire(database, rid, "finish_purchasing", clerk, None, now)
    if target == "purchased":
        return
    with UnitOfWork(database, readonly=True) as uow:
        version = uow.records.get(rid).version
    planning.update_report_info(UnitOfWork(database), record_id=rid, user_id=clerk, seen_version=version,
                                reporter=_person(code), phone="13800000000", now=now)
    _fire(database, rid, "summarize", clerk, None, now)
    if target == "summarized":
        return
    _fire(database, rid, "submit", clerk, None, now)
    if target == "submitted":
        return
    if target == "returned":
        _fire(database, rid, "return_for_revision", reviewer, "领取人数与发放名单不一致，请核对后重新提交", now)
        return
    _fire(database, rid, "accept", reviewer, None, now)


def _advance_federation(database: Database, code: str, label: str, now: datetime, *, submit: bool,
                        summarize: bool = True) -> None:
    rid = record_views.find_record(UnitOfWork(database), org_code=code, round_label=label)
    clerk = _uid(database, f"{code.lower()}-clerk")
    with UnitOfWork(database, readonly=True) as uow:
        version = uow.records.get(rid).version
    planning.update_report_info(UnitOfWork(database), record_id=rid, user_id=clerk, seen_version=version,
                                reporter=_person(code), phone="020-83828111",
                                work_experience="组织基层工会集中采购帮扶产品", work_highlights="节日慰问品全部来自帮扶地区", now=now)
    _fire(database, rid, "finish_purchasing", clerk, None, now)
    if not summarize:
        return
    _fire(database, rid, "summarize", clerk, None, now)
    if submit:
        _fire(database, rid, "submit", clerk, None, now)
