"""Issue 10, points 3, 4 and 5: numbers that are not numbers, NUL bytes, amounts that would
overflow a province's sums, chunked uploads. Each answer is 422 (or 409 for a rule cap, 413
for size) with a Chinese message, and nothing is stored."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import World
from workflow.store.tables import Purchase

BIG = 2**63  # one more than a signed 64-bit column holds
MAX64 = 2**63 - 1
_orders = itertools.count(1)


def purchase(**kw: Any) -> dict[str, Any]:
    body = {"paid_at": "2021-10-20T10:00", "channel": "ygh", "amount": "100.00", "people": 2,
            "order_no": f"H-{next(_orders)}"}
    body.update(kw)
    return body


def purchases(w: World) -> int:
    with w.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Purchase)).scalar_one())


def _chinese_422(resp: Any) -> None:
    assert resp.status_code == 422, (resp.status_code, resp.text)
    body = resp.json()
    assert set(body) >= {"code", "message"}
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message"]), body


@pytest.mark.parametrize("body", [
    purchase(people=MAX64), purchase(people=BIG), purchase(line_no=BIG), purchase(line_no=MAX64),
    purchase(amount="92233720368547758.07"), purchase(amount="1e999999999"), purchase(amount="NaN"),
    purchase(amount="1_000"), purchase(amount="1,,2"), purchase(amount="١٢"),
    purchase(paid_at="0001-01-01T00:00"), purchase(paid_at="9999-12-31T23:59"),
    purchase(order_no="A\u0000B"), purchase(product="苹果\u0000"),
])
def test_hostile_purchase_bodies_are_422_and_store_nothing(web_world: World, token_client, body) -> None:  # type: ignore[no-untyped-def]
    client = token_client("g1-clerk")
    rid = web_world.rid("G1")
    resp = client.post(f"/api/records/{rid}/purchases", json=body)
    _chinese_422(resp)
    assert purchases(web_world) == 0
    # The record, its Annex 2 and its limits still answer.
    assert client.get(f"/api/records/{rid}").status_code == 200
    assert client.get(f"/api/records/{rid}/annex2").status_code == 200


def test_lines_beyond_the_policy_caps_are_refused_so_sums_cannot_overflow(web_world: World, token_client) -> None:  # type: ignore[no-untyped-def]
    client = token_client("g1-clerk")
    rid = web_world.rid("G1")
    for body in (purchase(amount="100,000,000.01"), purchase(people=10_000_001), purchase(line_no=1_000_001)):
        resp = client.post(f"/api/records/{rid}/purchases", json=body)
        assert resp.status_code == 409, resp.text
        assert resp.json()["code"].endswith("_over_cap")
        assert "上限" in resp.json()["message"] or "之间" in resp.json()["message"]
    at_cap = client.post(f"/api/records/{rid}/purchases", json=purchase(amount="100,000,000.00", people=10_000_000))
    assert at_cap.status_code == 201, at_cap.text
    assert client.get(f"/api/records/{rid}/annex2").status_code == 200
    assert client.get("/api/orgs/D1/annex2", headers={}).status_code in (200, 403, 404)


@pytest.mark.parametrize("path", [
    f"/api/records/{BIG}", f"/api/records/{MAX64}", f"/api/records/{BIG}/history",
    f"/api/records?page={BIG}", f"/api/records?page={MAX64}", f"/api/records?round={BIG}",
    f"/api/records?per_page={BIG}", f"/api/review/inbox?page={BIG}", f"/api/notifications?page={MAX64}",
    "/api/records?q=%00", "/api/orgs/G1%00/annex2", f"/api/records/{BIG}/annex2",
])
def test_hostile_numbers_and_nul_in_queries_are_422(web_world: World, token_client, path: str) -> None:  # type: ignore[no-untyped-def]
    _chinese_422(token_client("d1-reviewer").get(path))


def test_nul_in_a_login_name_and_report_info_is_422(web_world: World, token_client, anon) -> None:  # type: ignore[no-untyped-def]
    _chinese_422(anon.post("/api/session", json={"username": "g1-clerk\u0000", "password": "x"}))
    client = token_client("g1-clerk")
    rid = web_world.rid("G1")
    version = web_world.version("G1")
    _chinese_422(client.put(f"/api/records/{rid}/report-info",
                            json={"seen_version": version, "reporter": "张\u0000三"}))
    _chinese_422(client.put(f"/api/records/{rid}/report-info",
                            json={"seen_version": version, "fill_date": "0001-01-01"}))
    _chinese_422(client.put(f"/api/records/{rid}/report-info", json={"seen_version": BIG}))
    _chinese_422(client.post(f"/api/records/{rid}/fire", json={"trigger": "finish_purchasing",
                                                                "seen_version": BIG}))
    assert web_world.version("G1") == version


def test_a_chunked_upload_is_refused_once_it_passes_the_limit(app, web_world: World) -> None:  # type: ignore[no-untyped-def]
    """A real uvicorn server and a raw socket sending a chunked body with no Content-Length:
    the 413 arrives while the client is still sending, long before its 50 MB are through."""
    import select
    import socket
    import threading
    import time

    import uvicorn

    from workflow.entrypoints.web.guard import MAX_BODY_BYTES

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(
            f"POST /api/records/{web_world.rid('G1')}/purchases/import HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        chunk = b"0" * (256 * 1024)
        sent = 0
        answer = b""
        try:
            while sent < 50 * 1024 * 1024:
                if select.select([sock], [], [], 0)[0]:
                    answer = sock.recv(65536)
                    break
                sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                sent += len(chunk)
        except OSError:  # the server closed the connection after answering
            pass
        sock.settimeout(5)
        while b"too_large" not in answer:
            try:
                more = sock.recv(65536)
            except OSError:
                break
            if not more:
                break
            answer += more
        sock.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"attachment.too_large" in answer
    assert sent < 50 * 1024 * 1024
    assert sent <= MAX_BODY_BYTES + 8 * 1024 * 1024  # stopped near the limit (socket buffers aside)


# --- point 12: logout ends the session on the server ----------------------------------------


def test_a_copied_cookie_stops_working_after_logout(login, app, web_world: World) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from tests.entrypoints.web.conftest import csrf_from
    from workflow.entrypoints.web.auth import COOKIE

    client = login("g1-clerk")
    stolen = client.cookies.get(COOKIE)
    assert stolen
    thief = TestClient(app)
    thief.cookies.set(COOKIE, stolen)
    assert thief.get("/api/me").status_code == 200
    page = client.get("/")
    assert client.post("/logout", data={"csrf_token": csrf_from(page.text)}, follow_redirects=False).status_code == 303
    assert thief.get("/api/me").status_code == 401
    assert thief.get("/", follow_redirects=False).status_code == 303  # to the login page
    # Logging in again works and gives a fresh, working session.
    again = login("g1-clerk")
    assert again.get("/api/me").status_code == 200
    assert thief.get("/api/me").status_code == 401


# --- point 8: every CSV writer neutralises every formula prefix -----------------------------


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_purchases_csv_neutralises_every_formula_prefix(login, web_world: World, prefix: str) -> None:  # type: ignore[no-untyped-def]
    import csv
    import io

    web_world.plan("G1")
    web_world.buy("G1", f"{prefix}cmd|' /C calc'!A0", 5000, product=f"{prefix}HYPERLINK(\"http://x\")")
    web_world.buy("G1", "N-1", 5000)
    web_world.buy("G1", "R-1", -1000, refund_of="N-1")
    client = login("g1-clerk")
    body = client.get(f"/records/{web_world.rid('G1')}/purchases.csv").content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    cells = [c for row in rows[1:] for c in row]
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) and c != "-10.00" for c in cells), cells
    if prefix.strip():  # order numbers are stored stripped; a tab or CR cannot lead them
        assert any(c.startswith("'") and "cmd|" in c for c in cells)
    assert any(c.startswith("'") and "HYPERLINK" in c for c in cells)
    assert "-10.00" in cells  # a refund's amount stays a number


def test_the_one_csv_neutraliser() -> None:
    from decimal import Decimal

    from workflow.formats.exports import csv_bytes, csv_cell

    for prefix in ("=", "+", "-", "@", "\t", "\r"):
        assert csv_cell(prefix + "1") == "'" + prefix + "1"
    assert csv_cell(Decimal("-15.00")) == Decimal("-15.00") and csv_cell(-3) == -3
    assert csv_bytes([["\t=1"]]).decode("utf-8-sig") == "'\t=1\r\n"


# --- point 6: bulk accept is all-or-nothing per item ----------------------------------------


def test_bulk_accept_with_a_bad_item_after_a_good_one_writes_nothing(token_client, login, web_world: World) -> None:  # type: ignore[no-untyped-def]
    from tests.entrypoints.web.conftest import csrf_from

    web_world.to_submitted("G1")
    good = {"record_id": web_world.rid("G1"), "seen_version": web_world.version("G1")}
    client = token_client("d1-reviewer")
    for bad in ({"record_id": BIG, "seen_version": 1}, {"record_id": 1, "seen_version": BIG},
                {"record_id": 0, "seen_version": 1}):
        _chinese_422(client.post("/api/review/bulk-accept", json={"items": [good, bad]}))
        assert web_world.state("G1") == "submitted"
    pages = login("d1-reviewer")
    csrf = csrf_from(pages.get("/review").text)
    for bad in (f"{BIG}:1", "²:1", "1:١"):
        resp = pages.post("/review/bulk-accept", data={"item": [f"{good['record_id']}:{good['seen_version']}", bad],
                                                        "csrf_token": csrf})
        assert resp.status_code == 422 and "无效的选择" in resp.text
        assert web_world.state("G1") == "submitted"
    assert pages.post("/review/bulk-accept", data={"item": [], "round": "²", "csrf_token": csrf}).status_code == 422


def test_bulk_accept_reports_each_item_with_its_status(token_client, web_world: World) -> None:  # type: ignore[no-untyped-def]
    web_world.to_submitted("G1")
    web_world.to_submitted("G2")
    items = [{"record_id": web_world.rid("G1"), "seen_version": web_world.version("G1")},
             {"record_id": web_world.rid("G2"), "seen_version": web_world.version("G2") - 1},
             {"record_id": 999_999, "seen_version": 1}]
    resp = token_client("d1-reviewer").post("/api/review/bulk-accept", json={"items": items})
    assert resp.status_code == 200
    assert [r["status"] for r in resp.json()["results"]] == ["accepted", "refused", "not_found"]
