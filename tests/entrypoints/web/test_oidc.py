"""Issue 21 point 5: single sign-on with OpenID Connect against a real provider — npm's
``oidc-provider`` (the certified Node implementation), started here as a Node process with one
static client. The test drives the whole authorization-code flow: bangfu sends the browser to
the provider, the provider's development interaction logs a test user in and consents, the
browser comes back with a code, bangfu exchanges it (a real HTTP call to the provider), checks
the signed ID token and logs the mapped account in. Skipped only without Node.js (failing
instead with REQUIRE_SERVICES=1, as in CI)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import World, need
from workflow.entrypoints.web.app import create_app
from workflow.settings import Settings
from workflow.store.oplog import Filters

OIDC_DIR = Path(__file__).resolve().parents[2] / "oidc"
CLIENT_ID, CLIENT_SECRET = "bangfu-test", "bangfu-test-client-secret-0123456789"
BASE_URL = "http://127.0.0.1:8000"
REDIRECT_URI = f"{BASE_URL}/login/sso/callback"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    need("Node.js", node is not None and npm is not None)
    assert node and npm
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():  # `make test` installs it first
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=OIDC_DIR, check=True, timeout=300,
                       capture_output=True)
    port = _free_port()
    proc = subprocess.Popen([node, "provider.mjs", str(port), CLIENT_ID, CLIENT_SECRET, REDIRECT_URI],
                            cwd=OIDC_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = threading.Event()

    def watch() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "ready":
                ready.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        assert ready.wait(30), "the OpenID provider did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture()
def sso_app(web_world: World, provider: str):  # type: ignore[no-untyped-def]
    return create_app(web_world.db, Settings(
        env="test", secret_key="test-secret-" + "x" * 32, base_url=BASE_URL, oidc_issuer=provider,
        oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET))


def _sign_on_at_provider(start: str, account: str) -> str:
    """Play the browser at the provider: log in as ``account`` in its development interaction,
    consent, and return the address it sends the browser back to (bangfu's callback)."""
    with httpx.Client(timeout=10) as browser:
        url = start
        for _ in range(12):  # bounded: login, consent and their redirects
            if url.startswith(REDIRECT_URI):
                return url
            resp = browser.get(url)
            if resp.is_redirect:
                url = urljoin(url, resp.headers["location"])
                continue
            form = re.search(r'action="([^"]+)"', resp.text)
            prompt = re.search(r'name="prompt" value="(\w+)"', resp.text)
            assert form and prompt, resp.text[:500]
            data = {"prompt": prompt.group(1)}
            if prompt.group(1) == "login":
                data.update(login=account, password="any")
            posted = browser.post(urljoin(url, form.group(1)), data=data)
            assert posted.is_redirect, posted.text[:500]
            url = urljoin(url, posted.headers["location"])
    raise AssertionError("the provider never sent the browser back")


def _callback_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_a_clerk_signs_on_through_the_openid_provider(web_world: World, sso_app) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(sso_app)
    assert "统一身份认证登录" in client.get("/login").text
    start = client.get("/login/sso?next=/notifications", follow_redirects=False)
    assert start.status_code == 303 and start.headers["location"].startswith(sso_app.state.settings.oidc_issuer)
    back = _sign_on_at_provider(start.headers["location"], "g1-clerk")
    done = client.get(_callback_path(back), follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/notifications"
    me = client.get("/api/me").json()
    assert me["username"] == "g1-clerk"
    assert "G1填报员" in client.get("/notifications").text
    with web_world.uow(True) as uow:
        (row,) = uow.oplog.search(Filters(action="auth.login"), limit=None)
    assert row.actor_name == "g1-clerk" and row.detail["via"] == sso_app.state.settings.oidc_issuer


def test_a_provider_account_without_a_bangfu_account_is_not_let_in(sso_app) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(sso_app)
    start = client.get("/login/sso", follow_redirects=False)
    back = _sign_on_at_provider(start.headers["location"], "stranger")
    refused = client.get(_callback_path(back))
    assert "没有对应的有效账号" in refused.text
    assert client.get("/api/me").status_code == 401


def test_a_callback_with_another_state_is_refused(sso_app) -> None:  # type: ignore[no-untyped-def]
    victim = TestClient(sso_app)
    attacker = TestClient(sso_app)
    start = attacker.get("/login/sso", follow_redirects=False)
    back = _sign_on_at_provider(start.headers["location"], "g1-clerk")
    victim.get("/login/sso", follow_redirects=False)  # the victim's own, different state
    refused = victim.get(_callback_path(back))
    assert "没有完成" in refused.text
    assert victim.get("/api/me").status_code == 401


def test_without_an_issuer_there_is_no_sign_on(app) -> None:  # type: ignore[no-untyped-def]
    client = TestClient(app)
    assert "统一身份认证登录" not in client.get("/login").text
    assert client.get("/login/sso", follow_redirects=False).status_code == 404
