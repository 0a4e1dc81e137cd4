"""Shared fixtures: real SQLite always; real PostgreSQL / Redis / RabbitMQ when reachable.

With ``REQUIRE_SERVICES=1`` (CI) a test that needs a service it cannot reach fails instead of
skipping. Each test run gets its own PostgreSQL database (created, then dropped) and its own
queue-name prefix, so a developer's run and CI never see each other's data.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from workflow.app import directory, lifecycle, planning, purchases, record_views
from workflow.domain.policy import builtin
from workflow.store.tables import Database
from workflow.store.uow import UnitOfWork

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"
PG_ADMIN_URL = os.environ.get("BANGFU_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BANGFU_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RABBIT_URL = os.environ.get("BANGFU_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
RUN_ID = f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
#: Queue names are prefixed per test run.
QUEUE_PREFIX = f"bangfu_test_{RUN_ID}"

# A moment inside the 2021 round, before every deadline.
NOW_2021 = datetime(2021, 11, 1, 2, 0, tzinfo=UTC)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def need(service: str, available: bool) -> None:
    """Skip (or, with REQUIRE_SERVICES=1, fail) when a service is unreachable."""
    if available:
        return
    message = f"{service} is not reachable"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and REQUIRE_SERVICES=1")
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    need("PostgreSQL", port_open("127.0.0.1", 5432))
    from sqlalchemy import create_engine

    admin_url = PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    name = f"bangfu_test_{RUN_ID}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_database(pg_url: str) -> Iterator[Database]:
    database = Database(pg_url, pool_size=25)
    database.upgrade()
    yield database
    database.dispose()


def _truncate(database: Database) -> None:
    from sqlmodel import SQLModel

    names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with database.engine.begin() as conn:
        # History refuses TRUNCATE (a trigger); the fixture, as superuser, empties the scratch
        # database with triggers off for this transaction only.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture()
def pg_db(pg_database: Database) -> Iterator[Database]:
    """The run's PostgreSQL database, emptied before each test."""
    _truncate(pg_database)
    yield pg_database


@pytest.fixture()
def sqlite_db(tmp_path) -> Iterator[Database]:  # type: ignore[no-untyped-def]
    database = Database(f"sqlite:///{tmp_path / 'bangfu.db'}")
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request) -> Database:  # type: ignore[no-untyped-def]
    """Runs the test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_db")  # type: ignore[no-any-return]
    return request.getfixturevalue("pg_db")  # type: ignore[no-any-return]


# --- a small world --------------------------------------------------------------------------

WORLD_ORGS = """code,name,kind,parent_code
GD,广东省总工会,province,
C1,广州市总工会,city_federation,GD
C2,深圳市总工会,city_federation,GD
D1,天河区总工会,district_federation,C1
D2,越秀区总工会,district_federation,C1
D3,福田区总工会,district_federation,C2
G1,天河一中工会,grassroots,D1
G2,天河供电局工会,grassroots,D1
G3,越秀医院工会,grassroots,D2
G4,福田税务局工会,grassroots,D3
IND,广东省教科文卫工会,industry_union,GD
G5,省人民医院工会,grassroots,IND
"""


def world_users_csv() -> str:
    rows = ["username,display_name,org_code,role,email"]
    for code in ("GD", "C1", "C2", "D1", "D2", "D3", "IND", "G1", "G2", "G3", "G4", "G5"):
        if code != "GD":
            rows.append(f"{code.lower()}-clerk,{code}填报员,{code},clerk,{code.lower()}-clerk@example.test")
        if not code.startswith("G") or code == "GD":
            rows.append(f"{code.lower()}-reviewer,{code}审核人,{code},reviewer,{code.lower()}-reviewer@example.test")
    rows.append("observer,乡村振兴局观察员,C1,observer,observer@example.test")
    return "\n".join(rows) + "\n"


@dataclass
class World:
    """A province with two cities, districts, grassroots unions and an industry union, loaded
    with the 17号 policy; helpers to act as a user."""

    db: Database
    round_label: str = "2021年度"
    users: dict[str, int] = field(default_factory=dict)

    def uow(self, readonly: bool = False) -> UnitOfWork:
        return UnitOfWork(self.db, readonly=readonly)

    def rid(self, org: str) -> int:
        return record_views.find_record(self.uow(True), org_code=org, round_label=self.round_label)

    def uid(self, username: str) -> int:
        if username not in self.users:
            with self.uow(True) as uow:
                self.users[username] = uow.directory.user_by_name(username).id or 0
        return self.users[username]

    def version(self, org: str) -> int:
        with self.uow(True) as uow:
            return uow.records.get(self.rid(org)).version

    def state(self, org: str) -> str:
        with self.uow(True) as uow:
            return uow.records.get(self.rid(org)).state

    def fire(self, org: str, trigger: str, user: str, reason: str | None = None,
             now: datetime = NOW_2021) -> lifecycle.FireResult:
        return lifecycle.fire(self.uow(), record_id=self.rid(org), trigger=trigger,
                             user_id=self.uid(user), seen_version=self.version(org), reason=reason, now=now)

    def plan(self, org: str, amount_fen: int = 60000, members: int = 100, user: str | None = None,
             now: datetime = NOW_2021) -> record_views.RecordView:
        return planning.plan(self.uow(), record_id=self.rid(org), user_id=self.uid(user or f"{org.lower()}-clerk"),
                             seen_version=self.version(org), amount_per_member_fen=amount_fen, members=members, now=now)

    def buy(self, org: str, order: str, amount_fen: int, people: int = 10, channel: str = "ygh",
            paid_at: datetime = NOW_2021, user: str | None = None, now: datetime = NOW_2021,
            **kw) -> int:  # type: ignore[no-untyped-def]
        return purchases.add_purchase(
            self.uow(), record_id=self.rid(org), user_id=self.uid(user or f"{org.lower()}-clerk"), now=now,
            purchase=purchases.PurchaseInput(paid_at=paid_at, channel=channel, amount_fen=amount_fen,
                                            people=people, order_no=order, **kw),
        )

    def info(self, org: str, user: str | None = None, **kw) -> record_views.RecordView:  # type: ignore[no-untyped-def]
        kw.setdefault("reporter", "张三")
        kw.setdefault("phone", "13812345678")
        return planning.update_report_info(self.uow(), record_id=self.rid(org),
                                           user_id=self.uid(user or f"{org.lower()}-clerk"),
                                           seen_version=self.version(org), now=NOW_2021, **kw)

    def to_submitted(self, org: str, amount_fen: int = 60000, members: int = 100) -> None:
        """Plan, buy, summarize and submit a grassroots record as its clerk."""
        clerk = f"{org.lower()}-clerk"
        self.plan(org, amount_fen, members)
        self.buy(org, f"{org}-1", 120000, 20)
        self.fire(org, "finish_purchasing", clerk)
        self.info(org)
        self.fire(org, "summarize", clerk)
        self.fire(org, "submit", clerk)


def build_world(database: Database) -> World:
    now = NOW_2021
    directory.import_organisations(UnitOfWork(database), data=WORLD_ORGS.encode(), now=now)
    directory.import_users(UnitOfWork(database), data=world_users_csv().encode(), now=now)
    directory.install_policy(UnitOfWork(database), policy=builtin(), now=now)
    return World(db=database)


@pytest.fixture()
def world(sqlite_db: Database) -> World:
    return build_world(sqlite_db)


@pytest.fixture()
def pg_world(pg_db: Database) -> World:
    return build_world(pg_db)


@pytest.fixture()
def any_world(any_db: Database) -> World:
    return build_world(any_db)
