"""Web fixtures: the app over the small world, clients logged in by password or by token."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import World
from workflow.app import accounts
from workflow.entrypoints.web.app import create_app
from workflow.settings import Settings
from workflow.store.uow import UnitOfWork

PASSWORD = "demo1234"
# Inside the 2021 round (China time), the same instant as tests.conftest.NOW_2021.
NOW_TEXT = "2021-11-01T10:00"


@pytest.fixture(autouse=True)
def _cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 with its smallest cost: the tests check who may log in, not the hash's strength
    (workflow.app.passwords keeps the library's defaults)."""
    from argon2 import PasswordHasher

    from workflow.app import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture()
def web_world(any_world: World, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("BANGFU_NOW", NOW_TEXT)
    return any_world


@pytest.fixture()
def app(web_world: World):  # type: ignore[no-untyped-def]
    return create_app(web_world.db, Settings(env="test", secret_key="test-secret-" + "x" * 32))


@pytest.fixture()
def anon(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        yield client


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "page has no CSRF field"
    return match.group(1)


@pytest.fixture()
def login(app, web_world: World) -> Callable[[str], TestClient]:  # type: ignore[no-untyped-def]
    """A client logged in through the login form as ``username`` (password set on demand)."""
    made: set[str] = set()

    def _login(username: str) -> TestClient:
        if username not in made:
            accounts.set_password(UnitOfWork(web_world.db), username=username, new_password=PASSWORD)
            made.add(username)
        client = TestClient(app)
        page = client.get("/login")
        resp = client.post("/login", data={"username": username, "password": PASSWORD,
                                           "csrf_token": csrf_from(page.text), "next": "/"},
                           follow_redirects=False)
        assert resp.status_code == 303, resp.text
        return client

    return _login


@pytest.fixture()
def token_client(app, web_world: World) -> Callable[[str], TestClient]:  # type: ignore[no-untyped-def]
    """A client authenticated with a bearer token for ``username`` (no cookie, no CSRF)."""

    def _client(username: str) -> TestClient:
        token = accounts.create_token(UnitOfWork(web_world.db), username=username, name="test")
        client = TestClient(app)
        client.headers["Authorization"] = f"Bearer {token}"
        return client

    return _client
