"""A province-sized data set, generated with bulk inserts and set-based SQL.

The shape follows the design's scale section: the provincial federation → 21 city federations →
5 district federations each → grassroots unions (215,000 at ``province`` scale), plus 19
provincial industry and other unions that report straight to the province (40 reporting units in
all). Every federation has a clerk and a reviewer, every grassroots union a clerk. The 17号 policy
is loaded through :func:`workflow.app.directory.install_policy`, which opens the records set-based; then
one UPDATE sets every grassroots plan (about 22 million members at province scale), ~10 purchases
per grassroots record are streamed in (``COPY`` on PostgreSQL, one ``executemany`` transaction on
SQLite), and the records are spread over the five states with their snapshots, snapshot lines and
history rows made by ``INSERT … SELECT … GROUP BY``.

Only rows are generated here; nothing goes through the engine (the W1 benchmark measures that).
Everything is deterministic for a seed: the same scale and seed give the same rows.

Use :func:`generate` from other benchmarks::

    info = generate(database, "small")
    info.round_id, info.counts["purchase"], info.state_counts["accepted"]
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, text

from workflow.app import directory
from workflow.domain import clock
from workflow.domain.policy import builtin
from workflow.entrypoints.demo import CITIES
from workflow.store import chain
from workflow.store.bulk import bulk_insert as store_bulk_insert
from workflow.store.tables import Database, UTCDateTime
from workflow.store.uow import UnitOfWork

#: Grassroots unions per scale.
SCALES: dict[str, int] = {"tiny": 200, "small": 2_000, "province": 215_000}
DISTRICTS_PER_CITY = 5
#: The moment the data set describes: inside the 2021 round, before every deadline.
NOW = datetime(2021, 11, 1, 2, 0, tzinfo=UTC)
ROUND_YEAR = 2021
#: A SQLite executemany / PostgreSQL COPY chunk.
BATCH = 10_000

#: Provincial unions reporting straight to the province (with the 21 cities: 40 reporting units).
PROVINCIAL_UNIONS: list[tuple[str, str, str]] = [
    ("IND-EDU", "广东省教科文卫工会", "industry_union"),
    ("IND-TRANS", "广东省交通运输工会", "industry_union"),
    ("IND-BUILD", "广东省建设建材工会", "industry_union"),
    ("IND-AGRI", "广东省农林水利工会", "industry_union"),
    ("IND-ENERGY", "广东省能源化学工会", "industry_union"),
    ("IND-MECH", "广东省机械冶金工会", "industry_union"),
    ("IND-TEXT", "广东省轻工纺织工会", "industry_union"),
    ("IND-FIN", "广东省金融工会", "industry_union"),
    ("IND-TRADE", "广东省商贸金融工会", "industry_union"),
    ("IND-POST", "广东省邮电工会", "industry_union"),
    ("ORGAN", "广东省直机关工会", "provincial_organ_union"),
    ("CU-RAIL", "广州铁路集团工会", "central_unit_union"),
    ("CU-GRID", "南方电网公司工会", "central_unit_union"),
    ("CU-AIR", "南方航空公司工会", "central_unit_union"),
    ("CU-MOBILE", "广东移动公司工会", "central_unit_union"),
    ("ENT-GUANGXIN", "广东省广新控股集团工会", "enterprise_union"),
    ("ENT-YUEHAI", "粤海控股集团工会", "enterprise_union"),
    ("ENT-HENGJIAN", "广东省广晟控股集团工会", "enterprise_union"),
    ("ENT-TRANSPORT", "广东省交通集团工会", "enterprise_union"),
]
UNIT_SUFFIXES = ["人民医院", "第一中学", "供电局", "自来水公司", "税务局", "科技有限公司", "物流集团",
                 "食品厂", "实验小学", "建筑公司", "银行支行", "街道办事处"]
CHANNELS = ["ygh", "ygh", "gdg", "dxb", "p832", "dxyx", "gzbf", "local_hall", "other"]
PRODUCTS = ["梅州金柚", "清远鸡", "英德红茶", "湛江菠萝", "河源米粉", "徐闻菠萝", "新会陈皮", "连州菜心"]
HOLIDAYS = ["元旦", "春节", "清明", "劳动节", "端午", "中秋", "国庆"]
REGIONS = ["广西百色", "贵州毕节", "云南昭通", "广东梅州", "广东清远", "四川甘孜"]
#: How grassroots records are spread over the lifecycle, in twentieths (sums to 20).
STATE_SHARES: list[tuple[str, int]] = [
    ("planned", 2), ("purchased", 4), ("summarized", 5), ("submitted", 4), ("accepted", 5),
]
#: The triggers that bring a record from planned to each state, with the acting side.
PATH_TO: list[tuple[str, str, str, str]] = [  # trigger, from, to, side
    ("finish_purchasing", "planned", "purchased", "own"),
    ("summarize", "purchased", "summarized", "own"),
    ("submit", "summarized", "submitted", "own"),
    ("accept", "submitted", "accepted", "parent"),
]
STATE_ORDER = ["planned", "purchased", "summarized", "submitted", "accepted"]


@dataclass
class GeneratedInfo:
    """What :func:`generate` made, for the benchmarks that reuse the data set."""

    url: str
    dialect: str
    scale: str
    seed: int
    now: datetime
    policy_code: str
    round_id: int
    round_label: str
    grassroots: int
    reporting_units: int
    members: int
    counts: dict[str, int] = field(default_factory=dict)  # rows per table
    seconds: dict[str, float] = field(default_factory=dict)  # per step
    state_counts: dict[str, int] = field(default_factory=dict)  # grassroots records of the round
    total_seconds: float = 0.0

    def rows_per_second(self) -> dict[str, float]:
        return {t: self.counts[t] / self.seconds[t] for t in self.counts if self.seconds.get(t)}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["now"] = self.now.isoformat()
        data["rows_per_second"] = {k: round(v) for k, v in self.rows_per_second().items()}
        return data


# --- the tree -------------------------------------------------------------------------------


@dataclass
class _Tree:
    orgs: list[tuple[int, str, str, str, int | None, str, int]]  # id, code, name, kind, parent, path, depth
    users: list[tuple[int, str, str, str]]  # id, username, display name, email
    memberships: list[tuple[int, int, int, str]]  # id, user, org, role
    grassroots: list[tuple[int, int]]  # (org id, clerk user id)
    reporting_units: int


def build_tree(grassroots: int) -> _Tree:
    """Organisations with explicit ids and correct materialised paths, users and memberships."""
    orgs: list[tuple[int, str, str, str, int | None, str, int]] = []
    paths: dict[int, str] = {}
    names: dict[int, str] = {}

    def add(code: str, name: str, kind: str, parent: int | None) -> int:
        oid = len(orgs) + 1
        path = (paths[parent] if parent is not None else "/") + f"{oid}/"
        depth = 0 if parent is None else orgs[parent - 1][6] + 1
        orgs.append((oid, code, name, kind, parent, path, depth))
        paths[oid], names[oid] = path, name
        return oid

    root = add("GD", "广东省总工会", "province", None)
    districts: list[int] = []
    for code, city, _two in CITIES:
        cid = add(code, f"{city}总工会", "city_federation", root)
        for k in range(1, DISTRICTS_PER_CITY + 1):
            districts.append(add(f"{code}-D{k}", f"{city}第{k}区县总工会", "district_federation", cid))
    provincial = [add(code, name, kind, root) for code, name, kind in PROVINCIAL_UNIONS]
    federations = list(range(1, len(orgs) + 1))
    reporting_units = len(CITIES) + len(provincial)
    grassroots_ids: list[int] = []
    for i in range(grassroots):
        # One in ten grassroots unions belongs to a provincial union, the rest to districts.
        parent = provincial[(i // 10) % len(provincial)] if i % 10 == 0 else districts[i % len(districts)]
        stem = names[parent].removesuffix("总工会").removesuffix("工会")
        suffix = UNIT_SUFFIXES[i % len(UNIT_SUFFIXES)]
        grassroots_ids.append(add(f"G{i + 1:06d}", f"{stem}{suffix}第{i + 1}号工会", "grassroots", parent))

    users: list[tuple[int, str, str, str]] = []
    memberships: list[tuple[int, int, int, str]] = []

    def user(org_id: int, role: str) -> int:
        uid = len(users) + 1
        username = f"{orgs[org_id - 1][1].lower()}-{role}"
        label = "填报员" if role == "clerk" else "审核人"
        users.append((uid, username, f"{names[org_id]}{label}", f"{username}@example.test"))
        memberships.append((len(memberships) + 1, uid, org_id, role))
        return uid

    for oid in federations:
        if oid != root:
            user(oid, "clerk")
        user(oid, "reviewer")
    pairs = [(oid, user(oid, "clerk")) for oid in grassroots_ids]
    return _Tree(orgs, users, memberships, pairs, reporting_units)


# --- bulk writing ---------------------------------------------------------------------------


def _sqlite_value(v: Any) -> Any:
    """What SQLAlchemy's SQLite types store: naive UTC text for instants, ISO text for dates."""
    if isinstance(v, datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bool):
        return int(v)
    return v


def _chunks(rows: Iterable[Sequence[Any]], size: int) -> Iterator[list[Sequence[Any]]]:
    chunk: list[Sequence[Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def bulk_insert(database: Database, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Insert rows fast: PostgreSQL ``COPY`` through psycopg, SQLite ``executemany`` in batches
    inside one transaction. Returns the number of rows."""
    n = 0
    raw = database.engine.raw_connection()
    try:
        cur = raw.cursor()
        cols = ", ".join(columns)
        if database.dialect == "postgresql":
            with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row(row)
                    n += 1
        else:
            marks = ", ".join("?" for _ in columns)
            cur.execute("BEGIN IMMEDIATE")
            for chunk in _chunks(rows, BATCH):
                cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})",
                                [tuple(_sqlite_value(v) for v in r) for r in chunk])
                n += len(chunk)
        if database.dialect == "postgresql":
            raw.commit()
        else:
            cur.execute("COMMIT")
        cur.close()
    finally:
        raw.close()
    return n


def _reset_sequences(database: Database, tables: Sequence[str]) -> None:
    """Explicit ids were written: move PostgreSQL's sequences past them."""
    if database.dialect != "postgresql":
        return
    with database.engine.begin() as conn:
        for t in tables:
            conn.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT coalesce(max(id), 1) FROM {t}))"
            ))


def _purchase_rows(pairs: list[tuple[int, int]], rng: random.Random, now: datetime) -> Iterator[tuple[Any, ...]]:
    """~10 lines per grassroots record, paid in the round's year (China time) before ``now``."""
    start = datetime(ROUND_YEAR, 1, 1, tzinfo=clock.CHINA).astimezone(UTC)
    span = int((now - start).total_seconds()) - 3600
    for record_id, clerk in pairs:
        for n in range(rng.randint(8, 12)):
            paid_at = start + timedelta(seconds=rng.randrange(span))
            extra = rng.random() < 0.9
            yield (
                record_id, paid_at, clock.china_date(paid_at), rng.choice(CHANNELS),
                rng.randint(200, 8000) * 100, rng.randint(5, 150), rng.choice(HOLIDAYS),
                rng.choice(PRODUCTS), "实物", rng.choice(REGIONS), f"R{record_id}-{n + 1:02d}", 1,
                "extra_quota" if extra else "ordinary_gift", clerk, paid_at + timedelta(hours=1),
                False, "bench",
            )


PURCHASE_COLUMNS = (
    "record_id", "paid_at", "paid_on", "channel", "amount_fen", "people", "holiday", "product",
    "product_form", "origin_region", "order_no", "line_no", "budget", "entered_by_user_id",
    "entered_at", "on_behalf", "source",
)


# --- the generator --------------------------------------------------------------------------


def generate(database: Database, scale: str = "tiny", *, seed: int = 17,
             log: Callable[[str], None] | None = None) -> GeneratedInfo:
    """Fill an empty database with a province of ``scale`` for the 2021 round.

    Args:
        database: an empty bangfu database (the schema is upgraded here).
        scale: ``tiny`` (200 grassroots unions), ``small`` (2,000) or ``province`` (215,000).
        seed: the random seed; the same seed and scale give the same rows.
        log: called with one line per step (rows and rows/second).

    Returns:
        The round, counts per table, seconds per step and records per state.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}: choose one of {', '.join(SCALES)}")
    say = log or (lambda _line: None)
    rng = random.Random(seed)
    began = time.perf_counter()
    database.upgrade()
    with database.engine.connect() as conn:
        if conn.execute(text("SELECT count(*) FROM organisation")).scalar():
            raise ValueError("generate() needs an empty database")
    info = GeneratedInfo(url=database.url, dialect=database.dialect, scale=scale, seed=seed, now=NOW,
                         policy_code="", round_id=0, round_label="", grassroots=SCALES[scale],
                         reporting_units=0, members=0)

    def step(name: str, fn: Callable[[], int], analyze: Sequence[str] = ()) -> int:
        """Run one bulk step and refresh the planner's statistics of the tables it wrote
        (``analyze``, default the table named ``name``), timed with it: without them the next
        step's statements are planned over "empty" tables (PostgreSQL planned the sweep as
        nested loops)."""
        t0 = time.perf_counter()
        rows = fn()
        with UnitOfWork(database) as uow:
            uow.bulk.analyze(*(analyze or (name,)))
            uow.commit()
        dt = time.perf_counter() - t0
        info.counts[name], info.seconds[name] = info.counts.get(name, 0) + rows, info.seconds.get(name, 0.0) + dt
        say(f"  {name:<16} {rows:>10,} rows {dt:8.2f} s {rows / dt if dt else 0:>12,.0f} rows/s")
        return rows

    tree = build_tree(SCALES[scale])
    info.reporting_units = tree.reporting_units
    step("organisation", lambda: bulk_insert(
        database, "organisation", ("id", "code", "name", "kind", "parent_id", "path", "depth", "is_observer"),
        ((*o, False) for o in tree.orgs)))
    step("app_user", lambda: bulk_insert(
        database, "app_user", ("id", "username", "display_name", "email", "is_active", "channels", "created_at"),
        ((*u, True, "inbox,email", NOW) for u in tree.users)))
    step("membership", lambda: bulk_insert(database, "membership", ("id", "user_id", "org_id", "role"),
                                          tree.memberships))
    _reset_sequences(database, ["organisation", "app_user", "membership"])

    policy = builtin()
    info.policy_code = policy.code

    def load() -> int:
        directory.install_policy(UnitOfWork(database), policy=policy, now=NOW)
        # Every record of both rounds, counted in the table.
        with database.engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM record")).scalar() or 0)

    step("record", load, ("record", "rollup", "round"))
    with database.engine.connect() as conn:
        row = conn.execute(text("SELECT id, label FROM round WHERE policy_code = :p AND year = :y"),
                           {"p": policy.code, "y": ROUND_YEAR}).one()
        info.round_id, info.round_label = int(row[0]), str(row[1])
        record_of: dict[int, int] = dict(conn.execute(
            text("SELECT org_id, id FROM record WHERE round_id = :r AND is_grassroots = :t"),
            {"r": info.round_id, "t": True}).all())
    params = {"r": info.round_id, "t": True}

    # Plans: one UPDATE; amount 0/300/600 yuan and 20..180 members (22 million at province scale).
    def plans() -> int:
        with database.begin() as s:
            n = s.execute(text(
                "UPDATE record SET members = 20 + (org_id * 7919) % 161,"
                " amount_per_member_fen = CASE org_id % 10 WHEN 0 THEN 0 WHEN 1 THEN 30000 ELSE 60000 END,"
                " quota_fen = (20 + (org_id * 7919) % 161)"
                "   * (CASE org_id % 10 WHEN 0 THEN 0 WHEN 1 THEN 30000 ELSE 60000 END),"
                " version = 2"
                " WHERE round_id = :r AND is_grassroots = :t"), params).rowcount
            s.execute(text(
                "INSERT INTO member_count (org_id, round_id, members)"
                " SELECT org_id, round_id, members FROM record WHERE round_id = :r AND members IS NOT NULL"),
                {"r": info.round_id})
        return int(n or 0)

    step("plan (UPDATE)", plans, ("record", "member_count"))
    pairs = [(record_of[oid], clerk) for oid, clerk in tree.grassroots]
    step("purchase", lambda: bulk_insert(database, "purchase", PURCHASE_COLUMNS, _purchase_rows(pairs, rng, NOW)))
    _spread_states(database, info, step)

    def rollups() -> int:
        # States were spread by set-based SQL: the overview's rollup is recomputed once.
        with UnitOfWork(database) as uow:
            n = uow.records.rollup_rebuild()
            uow.commit()
        return n

    step("rollup", rollups)
    with database.engine.connect() as conn:
        info.members = int(conn.execute(text(
            "SELECT coalesce(sum(members), 0) FROM record WHERE round_id = :r"), {"r": info.round_id}).scalar() or 0)
        info.state_counts = {str(s): int(n) for s, n in conn.execute(text(
            "SELECT state, count(*) FROM record WHERE round_id = :r AND is_grassroots = :t GROUP BY state"),
            params).all()}
    info.total_seconds = time.perf_counter() - began
    return info


def _spread_states(database: Database, info: GeneratedInfo, step: Callable[..., int]) -> None:
    """Move grassroots records to their target states (set-based), with contact details, history
    rows along the path, and a snapshot (+ lines per channel) for summarized and later."""
    as_of = clock.china_date(NOW)
    # By organisation id (the same on every database; record ids depend on insert order).
    # Shares by (org_id / 10) % 20: independent of the plan amount, which goes by org_id % 10.
    bucket = "((org_id / 10) % 20)"
    cases, lo = [], 0
    for state, share in STATE_SHARES:
        cases.append(f"WHEN {bucket} < {lo + share} THEN '{state}'")
        lo += share
    base = {"r": info.round_id, "t": True}
    instant = bindparam("now", type_=UTCDateTime)

    def states_update() -> int:
        with database.begin() as s:
            n = s.execute(text(
                f"UPDATE record SET state = CASE {' '.join(cases)} END"
                " WHERE round_id = :r AND is_grassroots = :t"), base).rowcount
            # version: 2 after planning, +1 per transition on the way.
            s.execute(text(
                "UPDATE record SET version = 2 + CASE state WHEN 'planned' THEN 0 WHEN 'purchased' THEN 1"
                " WHEN 'summarized' THEN 2 WHEN 'submitted' THEN 3 ELSE 4 END,"
                " reporter = CASE WHEN state IN ('summarized', 'submitted', 'accepted') THEN '张三' END,"
                " phone = CASE WHEN state IN ('summarized', 'submitted', 'accepted') THEN '13812345678' END,"
                " fill_date = CASE WHEN state IN ('summarized', 'submitted', 'accepted') THEN :as_of END,"
                " submitted_at = CASE WHEN state IN ('submitted', 'accepted') THEN :now END,"
                " decided_at = CASE WHEN state = 'accepted' THEN :now END,"
                " updated_at = :now"
                " WHERE round_id = :r AND is_grassroots = :t").bindparams(instant, bindparam("as_of", type_=_date_type())),
                {**base, "now": NOW, "as_of": as_of})
        return int(n or 0)

    step("state (UPDATE)", states_update, ("record",))

    def snapshots() -> int:
        with database.begin() as s:
            n = s.execute(text(
                "INSERT INTO snapshot (record_id, taken_at, as_of, people_total, amount_total_fen,"
                " missing_children)"
                " SELECT r.id, :now, :as_of, coalesce(sum(p.people), 0), coalesce(sum(p.amount_fen), 0), '[]'"
                " FROM record r LEFT JOIN purchase p ON p.record_id = r.id"
                " WHERE r.round_id = :r AND r.is_grassroots = :t"
                " AND r.state IN ('summarized', 'submitted', 'accepted')"
                " GROUP BY r.id").bindparams(instant, bindparam("as_of", type_=_date_type())),
                {**base, "now": NOW, "as_of": as_of}).rowcount
            s.execute(text(
                "UPDATE record SET snapshot_id = s.id, snapshot_stale = :f FROM snapshot s"
                " WHERE s.record_id = record.id AND record.round_id = :r"), {"r": info.round_id, "f": False})
        return int(n or 0)

    step("snapshot", snapshots, ("snapshot", "record"))

    def lines() -> int:
        with database.begin() as s:
            return int(s.execute(text(
                "INSERT INTO snapshot_line (snapshot_id, channel, people, amount_fen)"
                " SELECT s.id, p.channel, sum(p.people), sum(p.amount_fen)"
                " FROM snapshot s JOIN purchase p ON p.record_id = s.record_id"
                " GROUP BY s.id, p.channel")).rowcount or 0)

    step("snapshot_line", lines)

    def history() -> int:
        # Chained as the system chains them (workflow.store.chain): the rows of each step
        # selected set-based, sealed in Python after their record's previous row, bulk inserted.
        seal = chain.sealer().seal
        heads: dict[int, tuple[int, str | None]] = {}
        n = 0
        with database.begin() as s:
            for i, (trigger, src, dst, side) in enumerate(PATH_TO):
                reached = "', '".join(STATE_ORDER[i + 1:])
                member_org = "r.org_id" if side == "own" else "o.parent_id"
                role = "clerk" if side == "own" else "reviewer"
                acting_org = "r.org_id" if side == "own" else "o.parent_id"
                rows = s.execute(text(
                    f"SELECT r.id, m.user_id, {acting_org}"
                    " FROM record r JOIN organisation o ON o.id = r.org_id"
                    f" JOIN membership m ON m.org_id = {member_org} AND m.role = '{role}'"
                    f" WHERE r.round_id = :r AND r.is_grassroots = :t AND r.state IN ('{reached}')"
                    " ORDER BY r.id, m.user_id"), base).all()
                sealed = []
                for rid, uid, org in rows:
                    row = seal({"record_id": rid, "at": NOW, "actor_user_id": uid, "actor_role": role,
                                "actor_org_id": org, "on_behalf": False, "from_state": src, "to_state": dst,
                                "trigger": trigger, "reason": None, "detail": None}, heads.get(rid))
                    heads[rid] = (row["seq"], row["row_hash"])
                    sealed.append([row[c] for c in chain.COLUMNS])
                n += store_bulk_insert(s.connection(), "history", chain.COLUMNS, sealed)
        return n

    step("history", history)


def _date_type() -> Any:
    from sqlalchemy import Date

    return Date()


__all__ = ["GeneratedInfo", "NOW", "SCALES", "build_tree", "bulk_insert", "generate"]
