"""Issue 21 point 4: personal data. Phones are masked in lists, pages and exports for those who
do not dial them; the 催报 list and the record's own chain of federations show them whole, and
each such reveal is a row of the operation log. No phone or e-mail address reaches a log line.
A setting encrypts phones and e-mail addresses at rest (AES-256-GCM or SM4, the key outside the
database)."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.conftest import World, build_world
from tests.entrypoints.web.conftest import NOW_TEXT
from workflow.app import directory, reporting
from workflow.domain.privacy import mask_email, mask_phone, redact
from workflow.logs import JsonFormatter
from workflow.settings import get_settings
from workflow.store.engine import Database
from workflow.store.oplog import Filters
from workflow.store.uow import UnitOfWork

CLERK_PHONE, CLERK_EMAIL = "13800000001", "g1-clerk@example.test"
REPORT_PHONE = "13812345678"


def _give_contacts(world: World) -> None:
    csv = f"username,display_name,org_code,role,email,phone\ng1-clerk,G1填报员,G1,clerk,{CLERK_EMAIL},{CLERK_PHONE}\n"
    directory.import_users(UnitOfWork(world.db), data=csv.encode())


def _actions(world: World, action: str) -> list[tuple[str | None, str | None]]:
    with world.uow(True) as uow:
        return [(r.actor_name, r.object) for r in uow.oplog.search(Filters(action=action), limit=None)]


def test_masks() -> None:
    assert mask_phone("13800000001") == "138****0001"
    assert mask_phone("020-83871234") == "020****1234"
    assert mask_email("zhang.san@example.cn") == "z***@example.cn"
    assert redact("寄给 13800000001 与 a.b@x.cn，订单 2021110100000001") == "寄给 138****0001 与 a***@x.cn，订单 2021110100000001"


def test_the_accounts_list_masks_phones_and_addresses(web_world: World, login: Callable[[str], TestClient]) -> None:
    _give_contacts(web_world)
    page = login("d1-reviewer").get("/accounts").text
    assert "138****0001" in page and CLERK_PHONE not in page and CLERK_EMAIL not in page
    api = login("d1-reviewer").get("/api/accounts").json()
    assert {a["username"]: a["phone"] for a in api}["g1-clerk"] == "138****0001"


def test_the_record_chain_sees_the_phone_and_each_reveal_is_logged(
    web_world: World, login: Callable[[str], TestClient]
) -> None:
    web_world.info("G1", phone=REPORT_PHONE)
    rid = web_world.rid("G1")
    # The clerk sees the number they typed: not a reveal.
    assert REPORT_PHONE in login("g1-clerk").get(f"/records/{rid}").text
    assert _actions(web_world, "contacts.reveal") == []
    # The district reviewer (the chain) sees it whole, and the log says so.
    reviewer = login("d1-reviewer")
    assert REPORT_PHONE in reviewer.get(f"/records/{rid}").text
    assert _actions(web_world, "contacts.reveal") == [("d1-reviewer", f"record:{rid}")]
    # A report export shows it masked.
    csv = reviewer.get(f"/records/{rid}/annex2.csv").content.decode("utf-8-sig")
    assert "138****5678" in csv and REPORT_PHONE not in csv


def test_the_chase_list_shows_phones_whole_and_is_logged(web_world: World, login: Callable[[str], TestClient]) -> None:
    _give_contacts(web_world)
    resp = login("d1-reviewer").get("/orgs/D1/chase.xlsx")
    assert resp.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(resp.content)).active
    assert CLERK_PHONE in [str(c.value) for row in sheet.iter_rows() for c in row]
    assert _actions(web_world, "contacts.export") == [("d1-reviewer", "org:D1")]


def test_no_phone_or_address_reaches_the_logs(
    web_world: World, login: Callable[[str], TestClient], caplog: pytest.LogCaptureFixture
) -> None:
    """A flow that handles phones and addresses everywhere: import, handover, report info, the
    chase list, a failed login with a phone number as the user name; every record logged by
    any logger, formatted as the service formats it, holds none of them."""
    caplog.set_level(logging.DEBUG)
    _give_contacts(web_world)
    reviewer = login("d1-reviewer")
    csrf = reviewer.get("/api/me")  # noqa: F841 - a request through the middleware
    reviewer.get("/orgs/D1/chase.xlsx")
    web_world.info("G1", phone=REPORT_PHONE)
    reviewer.get(f"/records/{web_world.rid('G1')}")
    TestClient(reviewer.app).post("/api/session", json={"username": CLERK_PHONE, "password": "x" * 8})
    logging.getLogger("bangfu.delivery").warning("SMTP refused <%s>: mailbox %s", CLERK_EMAIL, CLERK_PHONE)
    formatter = JsonFormatter()
    lines = [formatter.format(r) for r in caplog.records]
    assert lines, "the flow logged nothing at all"
    for secret in (CLERK_PHONE, CLERK_EMAIL, REPORT_PHONE):
        assert not any(secret in line for line in lines), secret
    assert any("g***@example.test" in line for line in lines)  # redacted, not dropped


# --- at rest ---------------------------------------------------------------------------------

KEYS = {"aes-gcm": "11" * 32, "sm4": "22" * 16}


@pytest.fixture(params=sorted(KEYS))
def encrypted(request: pytest.FixtureRequest, any_db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("BANGFU_PII_CIPHER", request.param)
    monkeypatch.setenv("BANGFU_PII_KEY", KEYS[request.param])
    monkeypatch.setenv("BANGFU_NOW", NOW_TEXT)
    get_settings.cache_clear()
    try:
        yield build_world(any_db)
    finally:
        get_settings.cache_clear()


def test_phones_and_addresses_are_encrypted_at_rest(encrypted: World) -> None:
    w = encrypted
    _give_contacts(w)
    w.info("G1", phone=REPORT_PHONE)
    with w.uow(True) as uow:
        raw = uow.session.execute(text("SELECT email, phone FROM app_user WHERE username = 'g1-clerk'")).one()
        record_phone = uow.session.execute(text("SELECT phone FROM record WHERE id = :id"), {"id": w.rid("G1")}).scalar_one()
        other_email = uow.session.execute(text("SELECT email FROM app_user WHERE username = 'd1-reviewer'")).scalar_one()
    cipher = get_settings().pii_cipher
    mark = "aes1:" if cipher == "aes-gcm" else "sm41:"
    for stored, plain in ((raw.email, CLERK_EMAIL), (raw.phone, CLERK_PHONE), (record_phone, REPORT_PHONE),
                          (other_email, "d1-reviewer@example.test")):
        assert stored.startswith(mark) and plain not in stored
    # Read back in clear wherever the application reads them.
    with w.uow(True) as uow:
        user = uow.directory.user_by_name("g1-clerk")
        assert (user.email, user.phone) == (CLERK_EMAIL, CLERK_PHONE)
        assert uow.records.get(w.rid("G1")).phone == REPORT_PHONE
    rows, _xlsx = reporting.chase(w.uow(True), user_id=w.uid("d1-reviewer"), org_code="D1")
    assert any(CLERK_PHONE in str(cell) for row in rows for cell in row)


def test_a_value_written_in_clear_before_the_setting_is_still_read(encrypted: World) -> None:
    w = encrypted
    with w.uow() as uow:
        uow.session.execute(text("UPDATE app_user SET phone = '13900000009' WHERE username = 'g2-clerk'"))
        uow.commit()
    with w.uow(True) as uow:
        assert uow.directory.user_by_name("g2-clerk").phone == "13900000009"
