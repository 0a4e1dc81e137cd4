"""A self-contained province for the scheduler benchmarks (W2, W5): GD → 21 cities → 5
districts each → N grassroots unions, a clerk per union, a clerk and a reviewer per federation,
the 17号 policy's 2021 round, every grassroots plan set by one UPDATE and P purchases per record
by one ``INSERT … SELECT``. Deterministic for a given N and P.

(The shared generator ``bench/generate.py`` lands on another branch; this one stays small so the
scheduler benchmarks run on their own.)
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, text

from workflow.app import directory
from workflow.domain.policy import POLICY_DIR, parse_policy
from workflow.store.tables import Database, Membership, Organisation, User, UTCDateTime
from workflow.store.uow import UnitOfWork

NOW = datetime(2021, 11, 1, 2, 0, tzinfo=UTC)
CITIES = 21
DISTRICTS = 5
BATCH = 20_000


def _policy() -> Any:
    text_ = (POLICY_DIR / "yuegongzong-2021-17.toml").read_text(encoding="utf-8")
    text_ = re.sub(r"\[\[rounds\]\]\nyear = 2022\nlabel = \"2022年度\"\n", "", text_)
    return parse_policy(text_, source="bench")


def _chunks(rows: list[dict[str, Any]]) -> Any:
    for i in range(0, len(rows), BATCH):
        yield rows[i : i + BATCH]


def generate(database: Database, *, grassroots: int, purchases: int = 3) -> dict[str, Any]:
    """Fill an empty, upgraded database. Returns counts and the seconds it took."""
    started = time.perf_counter()
    orgs: list[dict[str, Any]] = [dict(id=1, code="GD", name="广东省总工会", kind="province",
                                       parent_id=None, path="/1/", depth=0, is_observer=False)]
    federations: list[int] = []
    districts: list[tuple[int, str]] = []
    next_id = 2
    for c in range(1, CITIES + 1):
        cid = next_id
        next_id += 1
        orgs.append(dict(id=cid, code=f"C{c:02d}", name=f"第{c}市总工会", kind="city_federation",
                         parent_id=1, path=f"/1/{cid}/", depth=1, is_observer=False))
        federations.append(cid)
        for d in range(1, DISTRICTS + 1):
            did = next_id
            next_id += 1
            orgs.append(dict(id=did, code=f"C{c:02d}-D{d}", name=f"第{c}市第{d}区总工会",
                             kind="district_federation", parent_id=cid, path=f"/1/{cid}/{did}/",
                             depth=2, is_observer=False))
            federations.append(did)
            districts.append((did, f"/1/{cid}/{did}/"))
    grassroots_ids = []
    for g in range(grassroots):
        did, path = districts[g % len(districts)]
        gid = next_id
        next_id += 1
        orgs.append(dict(id=gid, code=f"G{g:06d}", name=f"基层工会{g:06d}", kind="grassroots",
                         parent_id=did, path=f"{path}{gid}/", depth=3, is_observer=False))
        grassroots_ids.append(gid)
    users: list[dict[str, Any]] = []
    members: list[dict[str, Any]] = []

    def person(org_id: int, role: str) -> None:
        uid = len(users) + 1
        users.append(dict(id=uid, username=f"u{uid}", display_name=f"用户{uid}",
                          email=f"u{uid}@example.test", is_active=True, channels="inbox,email",
                          created_at=NOW))
        members.append(dict(user_id=uid, org_id=org_id, role=role))

    person(1, "reviewer")
    for fid in federations:
        person(fid, "clerk")
        person(fid, "reviewer")
    for gid in grassroots_ids:
        person(gid, "clerk")
    with database.begin() as s:
        for table, rows in ((Organisation, orgs), (User, users), (Membership, members)):
            for chunk in _chunks(rows):
                s.execute(insert(table.__table__), chunk)
        if database.dialect == "postgresql":
            for t in ("organisation", "app_user", "membership"):
                s.execute(text(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'),"
                               f" (SELECT MAX(id) FROM {t}))"))
    directory.install_policy(UnitOfWork(database), policy=_policy(), now=NOW)
    numbers = " UNION ALL ".join(f"SELECT {k} AS k" for k in range(1, purchases + 1))
    with database.begin() as s:
        # 0–600 yuan per member in 100-yuan steps (one in seven chooses 0), 50–249 members.
        s.execute(text(
            "UPDATE record SET amount_per_member_fen = (org_id % 7) * 10000,"
            " members = 50 + org_id % 200,"
            " quota_fen = (org_id % 7) * 10000 * (50 + org_id % 200) WHERE is_grassroots"))
        # Spending: some unions have used their quota up, most have not.
        s.execute(text(
            "INSERT INTO purchase (record_id, paid_at, paid_on, channel, amount_fen, people,"
            " product, order_no, line_no, budget, entered_at, on_behalf, source)"
            " SELECT r.id, :paid_at, :paid_on, CASE WHEN n.k % 2 = 0 THEN 'ygh' ELSE 'p832' END,"
            f" (r.quota_fen * (r.org_id % 5)) / ({purchases} * 3), 10, '帮扶农产品',"
            " 'B' || CAST(r.id AS TEXT) || '-' || CAST(n.k AS TEXT), 1, 'extra_quota', :paid_at,"
            " FALSE, 'bench'"
            f" FROM record r CROSS JOIN ({numbers}) n WHERE r.is_grassroots"
        ).bindparams(bindparam("paid_at", type_=UTCDateTime)),
            {"paid_at": NOW, "paid_on": NOW.date()},
        )
    # Fresh statistics, as autovacuum would have them on a live database (without them the
    # PostgreSQL planner takes the bulk-loaded tables for empty ones).
    with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    with database.session(readonly=True) as s:
        counts = {t: s.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one()
                  for t in ("organisation", "app_user", "record", "purchase")}
    counts["seconds"] = round(time.perf_counter() - started, 1)
    return counts
