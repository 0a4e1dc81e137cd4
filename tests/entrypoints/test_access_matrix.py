"""One access policy, one answer on every edge.

role × relation × capability, each cell asked through the command line, the JSON API and the
pages, all three giving the answer written below (the README's Security section in a table):

- relations: where the actor's organisation sits relative to the district federation D1 (own,
  parent C1, grandparent GD, child G1, sibling D2, another city C2);
- roles: clerk, reviewer, admin, observer, and the three separate administrators (三员分立,
  issue 21): system_admin, security_admin, auditor;
- capabilities: view the record, view its statistics, enter data (a purchase line), decide
  (accept the submitted record), download the 催报 list of D1's subordinates, reset the password
  of D1's clerk, read the audit log of D1's people, add a second reviewer to D1.

An answer is ``ok``, ``hidden`` (outside the actor's view the thing does not exist: HTTP 404,
exit code 2) or ``denied`` (in view but not permitted: HTTP 403, exit code 3). Every cell that
changes data runs on a fresh byte copy of the prepared database, so each edge sees the same
starting point.
"""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

import states
from tests.app.test_permission_matrix import drive
from tests.conftest import NOW_2021, build_world
from workflow.app import accounts, directory, passwords, record_views
from workflow.entrypoints import cli
from workflow.entrypoints.web.app import create_app
from workflow.settings import Settings, get_settings
from workflow.store.tables import Database
from workflow.store.uow import UnitOfWork

TARGET = "D1"
RELATIONS = {"own": "D1", "parent": "C1", "grandparent": "GD", "child": "G1", "sibling": "D2",
             "another_city": "C2"}
ROLES = ("clerk", "reviewer", "admin", "observer", "system_admin", "security_admin", "auditor")
ADMIN_ROLES = frozenset({"system_admin", "security_admin", "auditor"})
CAPABILITIES = ("view", "stats", "enter", "decide", "chase", "reset", "audit", "add_account")
EDGES = ("cli", "api", "page")
VISIBLE = frozenset({"own", "parent", "grandparent"})
PASSWORD = "matrix-pass-1234"
NEW_PASSWORD = "a-new-password-5678"
NOW_TEXT = "2021-11-01T10:00"


def expected(capability: str, relation: str, role: str) -> str:
    """The written policy (README, Security; docs/compliance.md), independent of the code under test."""
    if capability == "audit":  # the auditors of D1 or above read D1's people's rows; nobody else
        if role != "auditor":
            return "denied"
        return "ok" if relation in VISIBLE else "hidden"
    if role in ADMIN_ROLES:  # no record, no figure, no phone for the three administrators
        if role == "system_admin" and relation in VISIBLE and capability in ("reset", "add_account"):
            return "ok"  # accounts are the system administrator's
        return "hidden"
    if relation not in VISIBLE:
        return "hidden"
    if capability == "add_account":  # D1's own reviewer (a second reviewer) or its parent's
        return "ok" if (relation, role) in {("own", "reviewer"), ("parent", "reviewer")} else "denied"
    if capability in ("view", "stats"):
        return "ok"
    if capability == "enter":
        return "ok" if (relation, role) in {("own", "clerk"), ("parent", "reviewer")} else "denied"
    if capability == "decide":
        return "ok" if (relation, role) == ("parent", "reviewer") else "denied"
    if capability == "chase":  # completeness with clerks' phone numbers: the federations' reviewers
        return "ok" if role in ("reviewer", "admin") else "denied"
    if capability == "reset":  # the direct parent's reviewer manages a clerk's account
        return "ok" if (relation, role) == ("parent", "reviewer") else "denied"
    raise AssertionError(capability)


@dataclass(frozen=True)
class Cell:
    capability: str
    relation: str
    role: str

    @property
    def username(self) -> str:
        return f"x-{RELATIONS[self.relation].lower()}-{self.role}"

    @property
    def id(self) -> str:
        return f"{self.capability}-{self.relation}-{self.role}"


CELLS = [Cell(c, r, role) for c in CAPABILITIES for r in RELATIONS for role in ROLES]


def _users_csv() -> str:
    rows = ["username,display_name,org_code,role,email"]
    for org in RELATIONS.values():
        for role in ROLES:
            rows.append(f"x-{org.lower()}-{role},{org}{role},{org},{role},")
    return "\n".join(rows) + "\n"


@dataclass
class Prepared:
    path: Path
    tokens: dict[str, str]


@pytest.fixture(scope="module")
def cheap_argon2() -> Iterator[None]:
    """The matrix checks who may act, not the hash's strength."""
    saved = passwords._hasher
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    passwords._hasher = saved


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, cheap_argon2: None) -> dict[str, Prepared]:
    """Two databases: D1 purchased (view, stats, enter, chase, reset) and D1 submitted (decide)."""
    out = {}
    for state in (states.PURCHASED, states.SUBMITTED):
        folder = tmp_path_factory.mktemp(f"access-{state}")
        path = folder / "bangfu.db"
        database = Database(f"sqlite:///{path}")
        database.upgrade()
        w = build_world(database)
        directory.import_users(UnitOfWork(database), data=_users_csv().encode(), now=NOW_2021)
        drive(w, TARGET, state)
        tokens = {}
        for cell in CELLS:
            if cell.username not in tokens:
                accounts.set_password(UnitOfWork(database), username=cell.username, new_password=PASSWORD)
                tokens[cell.username] = accounts.create_token(UnitOfWork(database), username=cell.username,
                                                              name="matrix")
        database.dispose()
        out[state] = Prepared(path, tokens)
    return out


def _restore(template: Path, dest: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        target = Path(str(dest) + suffix)
        if target.exists():
            target.unlink()
        src = Path(str(template) + suffix)
        if src.exists():
            shutil.copyfile(src, target)


def _outcome_http(status: int) -> str:
    if status in (200, 201, 204, 303):
        return "ok"
    return {404: "hidden", 403: "denied"}.get(status, f"http {status}")


def _outcome_exit(code: int, err: str) -> str:
    return {0: "ok", 2: "hidden", 3: "denied"}.get(code, f"exit {code}: {err.strip()}")


class Edges:
    """Runs one capability as one user through each edge on a database file."""

    def __init__(self, path: Path, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch,
                 capsys: pytest.CaptureFixture[str]) -> None:
        self.path, self.tokens, self.mp, self.capsys = path, tokens, monkeypatch, capsys
        self.db = Database(f"sqlite:///{path}")
        self.app = create_app(self.db, Settings(env="test", secret_key="matrix-secret-" + "x" * 32))
        self.rid = record_views.find_record(UnitOfWork(self.db, readonly=True), org_code=TARGET, round_label="2021年度")
        with UnitOfWork(self.db, readonly=True) as uow:
            self.version = uow.records.get(self.rid).version

    def close(self) -> None:
        self.db.dispose()

    # --- the command line ----------------------------------------------------------------

    def cli(self, capability: str, username: str, tmp: Path) -> str:
        self.mp.setenv("BANGFU_DATABASE_URL", f"sqlite:///{self.path}")
        self.mp.setenv("BANGFU_NOW", NOW_TEXT)
        self.mp.delenv("BANGFU_USER", raising=False)
        get_settings.cache_clear()
        args = {
            "view": ["show", TARGET],
            "stats": ["stats", TARGET],
            "enter": ["purchase-add", TARGET, "--paid-at", "2021-10-20T10:00", "--channel", "ygh",
                      "--amount", "100", "--people", "2", "--order", "MATRIX-CLI"],
            "decide": ["fire", TARGET, "accept"],
            "chase": ["chase-list", TARGET, str(tmp / "chase.xlsx")],
            "reset": ["password-reset", "d1-clerk"],
            "audit": ["audit-log", "--org", TARGET],
            "add_account": ["account-add", TARGET, f"{username}-new", "--name", "第二审核人", "--role", "reviewer"],
        }[capability]
        self.mp.setattr("sys.stdin", io.StringIO(NEW_PASSWORD + "\n"))
        self.capsys.readouterr()
        code = cli.main([*args, "--as", username])
        _out, err = self.capsys.readouterr()
        get_settings.cache_clear()
        return _outcome_exit(code, err)

    # --- the JSON API --------------------------------------------------------------------

    def api(self, capability: str, username: str) -> str:
        with TestClient(self.app) as client:
            client.headers["Authorization"] = f"Bearer {self.tokens[username]}"
            rid = self.rid
            if capability == "view":
                r = client.get(f"/api/records/{rid}")
            elif capability == "stats":
                r = client.get(f"/api/orgs/{TARGET}/annex2")
            elif capability == "enter":
                r = client.post(f"/api/records/{rid}/purchases", json={
                    "paid_at": "2021-10-20T10:00", "channel": "ygh", "amount": "100", "people": 2,
                    "order_no": "MATRIX-API"})
            elif capability == "decide":
                r = client.post(f"/api/records/{rid}/fire", json={"trigger": "accept", "seen_version": self.version})
            elif capability == "chase":
                r = client.get(f"/api/orgs/{TARGET}/chase")
            elif capability == "audit":
                r = client.get("/api/audit-log", params={"org": TARGET})
            elif capability == "add_account":
                r = client.post(f"/api/orgs/{TARGET}/accounts", json={
                    "username": f"{username}-new", "display_name": "第二审核人", "role": "reviewer",
                    "new_password": NEW_PASSWORD})
            else:
                r = client.post("/api/accounts/d1-clerk/password", json={"new_password": NEW_PASSWORD})
            return _outcome_http(r.status_code)

    # --- the pages -----------------------------------------------------------------------

    def page(self, capability: str, username: str) -> str:
        with TestClient(self.app) as client:
            login = client.get("/login")
            token = _csrf(login.text)
            r = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token,
                                            "next": "/"}, follow_redirects=False)
            assert r.status_code == 303, r.text
            rid = self.rid
            home = client.get("/")
            csrf = _csrf(home.text) if 'name="csrf_token"' in home.text else _csrf(client.get("/notifications").text)
            if capability == "view":
                r = client.get(f"/records/{rid}")
            elif capability == "stats":
                r = client.get(f"/orgs/{TARGET}/annex2.html")
            elif capability == "enter":
                r = client.post(f"/records/{rid}/purchases", data={
                    "paid_at": "2021-10-20T10:00", "channel": "ygh", "amount": "100", "people": "2",
                    "order_no": "MATRIX-PAGE", "csrf_token": csrf}, follow_redirects=False)
            elif capability == "decide":
                r = client.post(f"/records/{rid}/fire", data={
                    "trigger": "accept", "seen_version": str(self.version), "csrf_token": csrf},
                    follow_redirects=False)
            elif capability == "chase":
                r = client.get(f"/orgs/{TARGET}/chase.xlsx")
            elif capability == "audit":
                r = client.get("/audit-log", params={"org": TARGET})
            elif capability == "add_account":
                r = client.post(f"/admin/orgs/{TARGET}/accounts", data={
                    "username": f"{username}-new", "display_name": "第二审核人", "role": "reviewer",
                    "new_password": NEW_PASSWORD, "csrf_token": csrf}, follow_redirects=False)
            else:
                r = client.post("/accounts/d1-clerk/reset", data={"new_password": NEW_PASSWORD, "csrf_token": csrf},
                                follow_redirects=False)
            return _outcome_http(r.status_code)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


MUTATING = frozenset({"enter", "decide", "reset", "add_account"})
ANSWERS: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("access-work")


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_cell(cell: Cell, prepared: dict[str, Prepared], workspace: Path, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    source = prepared[states.SUBMITTED if cell.capability == "decide" else states.PURCHASED]
    work = workspace / "bangfu.db"
    answers: dict[str, str] = {}
    run: dict[str, Callable[[Edges], str]] = {
        "cli": lambda e: e.cli(cell.capability, cell.username, tmp_path),
        "api": lambda e: e.api(cell.capability, cell.username),
        "page": lambda e: e.page(cell.capability, cell.username),
    }
    edges: Edges | None = None
    for edge in EDGES:
        if edges is None or cell.capability in MUTATING:
            if edges is not None:
                edges.close()
            _restore(source.path, work)
            edges = Edges(work, source.tokens, monkeypatch, capsys)
        answers[edge] = run[edge](edges)
    assert edges is not None
    edges.close()
    ANSWERS[cell.id] = answers
    want = expected(cell.capability, cell.relation, cell.role)
    assert answers == {edge: want for edge in EDGES}, f"{cell.id}: expected {want} on every edge"


def test_matrix_covers_every_cell(capsys: pytest.CaptureFixture[str]) -> None:
    """Runs after the cells: the matrix is whole and its allowed cells are the written ones."""
    assert len(CELLS) == len(CAPABILITIES) * len(RELATIONS) * len(ROLES) == 336
    allowed = {c.id for c in CELLS if expected(c.capability, c.relation, c.role) == "ok"}
    # view and stats: 3 visible relations × 4 business roles each; enter 2; decide 1; chase 3 × 2;
    # reset 1 + the system administrator from 3; audit: the auditor from 3; add_account: the own
    # and the parent reviewer + the system administrator from 3.
    assert len(allowed) == 12 + 12 + 2 + 1 + 6 + (1 + 3) + 3 + (2 + 3)
    with capsys.disabled():
        print(f"\naccess matrix: {len(CELLS)} cells × {len(EDGES)} edges = {len(CELLS) * len(EDGES)} answers, "
              f"{len(allowed)} cells allowed, {len(ANSWERS)} run")
