"""Operations endpoints (issue 11.6): /healthz, /readyz, /metrics."""

from __future__ import annotations

import dataclasses

from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import REDIS_URL, World, need, port_open
from tests.scheduler.conftest import DEC_1_0900
from workflow.entrypoints.web.app import create_app
from workflow.scheduler.sweeps import run_sweep
from workflow.settings import from_env


def test_healthz_and_readyz_answer(anon: TestClient, web_world: World) -> None:
    assert anon.get("/healthz").text == "ok"
    ready = anon.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"ready": True, "database": "ok", "broker": "ok"}


def test_readyz_says_the_migrations_are_behind(anon: TestClient, web_world: World) -> None:
    with web_world.db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0006'"))
    try:
        ready = anon.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["database"].startswith("migrations: at 0006")
    finally:
        with web_world.db.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :h"),
                         {"h": _head(web_world)})


def _head(w: World) -> str:
    from alembic.script import ScriptDirectory

    from workflow.store.tables import alembic_config

    return str(ScriptDirectory.from_config(alembic_config(w.db.engine)).get_current_head())


def test_readyz_fails_when_the_broker_does_not_answer(web_world: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.notifications.conftest import free_port

    settings = dataclasses.replace(from_env(), var_dir=tmp_path,
                                   broker_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(web_world.db, settings)) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["broker"].startswith("broker:")


def test_readyz_with_a_real_redis(web_world: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    need("Redis", port_open("127.0.0.1", 6379))
    settings = dataclasses.replace(from_env(), var_dir=tmp_path, broker_url=REDIS_URL)
    with TestClient(create_app(web_world.db, settings)) as client:
        assert client.get("/readyz").json()["broker"] == "ok"


def test_metrics_show_the_outbox_transitions_and_latency(anon: TestClient,
                                                         web_world: World) -> None:
    web_world.to_submitted("G3")
    run_sweep(web_world.db, now=DEC_1_0900)
    anon.get("/healthz")
    body = anon.get("/metrics").text
    assert 'bangfu_outbox_rows{channel="email",status="pending"}' in body
    assert "bangfu_outbox_oldest_pending_seconds" in body
    assert 'bangfu_deliveries_total{channel="email"} 0.0' in body
    assert "bangfu_transitions_total{trigger=\"submit\"}" in body, body
    assert "bangfu_sweep_last_seconds" in body and "bangfu_sweep_last_rows" in body
    assert 'bangfu_request_seconds_count{method="GET",route="/healthz"} 1.0' in body


def test_the_province_admins_outbox_page_lists_failed_rows_and_retries_them(
    web_world: World, login  # type: ignore[no-untyped-def]
) -> None:
    from tests.entrypoints.web.conftest import csrf_from

    w = web_world
    w.to_submitted("G3")
    run_sweep(w.db, now=DEC_1_0900)
    with w.db.engine.begin() as conn:
        gd = conn.execute(text("SELECT id FROM organisation WHERE code = 'GD'")).scalar()
        conn.execute(text("INSERT INTO membership (user_id, org_id, role) SELECT id, :o, 'admin'"
                          " FROM app_user WHERE username = 'gd-reviewer'"), {"o": gd})
        failed_id = conn.execute(text("SELECT MIN(id) FROM notification WHERE channel = 'email'")).scalar()
        conn.execute(text("UPDATE notification SET status = 'failed', attempts = 8,"
                          " last_error = 'SMTP 550: no such mailbox' WHERE id = :i"), {"i": failed_id})
    assert login("d1-reviewer").get("/admin/outbox").status_code == 403
    admin = login("gd-reviewer")
    page = admin.get("/admin/outbox")
    assert page.status_code == 200 and "发送失败的通知" in page.text
    assert "SMTP 550: no such mailbox" in page.text and "失败 1 条" in page.text
    done = admin.post("/admin/outbox/retry", data={"csrf_token": csrf_from(page.text),
                                                   "ids": [str(failed_id)]})
    assert done.status_code == 200 and "已将 1 条失败的通知重新排队" in done.text
    assert "没有发送失败的通知" in done.text
    with w.db.engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM notification WHERE id = :i"),
                            {"i": failed_id}).scalar() == "pending"
        assert conn.execute(text("SELECT actor FROM outbox_event")).scalar() == "web:gd-reviewer"
    refused = admin.post("/admin/outbox/retry", data={"csrf_token": "wrong", "all_failed": "1"})
    assert refused.status_code == 403


# --- issue 25.5: /metrics behind a token or an allow-list, ages in real time -----------------


def test_metrics_need_the_token_or_an_allowed_address(web_world: World, tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = dataclasses.replace(from_env(), var_dir=tmp_path, env="production",
                               secret_key="s" * 40, audit_key="a" * 40)
    guarded = dataclasses.replace(base, metrics_token="scrape-secret")
    with TestClient(create_app(web_world.db, guarded)) as client:
        assert client.get("/metrics").status_code == 403
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
        ok = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
        assert ok.status_code == 200 and "bangfu_outbox_oldest_pending_seconds" in ok.text
    # An allow-list: the test client's address is not on it, then its network is.
    listed = dataclasses.replace(base, metrics_allow=("10.0.0.0/8",))
    with TestClient(create_app(web_world.db, listed), client=("192.168.1.9", 5000)) as client:
        assert client.get("/metrics").status_code == 403
    with TestClient(create_app(web_world.db, listed), client=("10.1.2.3", 5000)) as client:
        assert client.get("/metrics").status_code == 200
    # Neither set in production: loopback only.
    with TestClient(create_app(web_world.db, base), client=("192.168.1.9", 5000)) as client:
        assert client.get("/metrics").status_code == 403
    with TestClient(create_app(web_world.db, base), client=("127.0.0.1", 5000)) as client:
        assert client.get("/metrics").status_code == 200


def test_metrics_and_outbox_health_agree_after_a_sweep_in_business_time(
    anon: TestClient, web_world: World, monkeypatch  # type: ignore[no-untyped-def]
) -> None:
    import re

    from workflow.scheduler import operations

    run_sweep(web_world.db, now=DEC_1_0900)  # rows dated 1 December 2021
    monkeypatch.setenv("BANGFU_NOW", "2021-12-01T09:00")  # the server in business time
    body = anon.get("/metrics").text
    monkeypatch.delenv("BANGFU_NOW")
    [age] = re.findall(r"^bangfu_outbox_oldest_pending_seconds (\S+)$", body, re.MULTILINE)
    healthy, status = operations.healthy(web_world.db, max_age=600)
    # Both measured on the real clock from when the rows were written: seconds, not years.
    assert healthy and 0 <= float(age) < 600
    assert status.oldest_pending_seconds is not None
    assert abs(status.oldest_pending_seconds - float(age)) < 60
