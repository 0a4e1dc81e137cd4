"""Attachments: type decided by content, size limit, who may upload and download."""

from __future__ import annotations

import pytest

from tests.conftest import World
from tests.entrypoints.web.conftest import csrf_from
from workflow.app import attachments

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_clerk_uploads_the_sealed_scan_and_the_reviewer_downloads_it(token_client, web_world: World) -> None:
    rid = web_world.rid("G1")
    resp = token_client("g1-clerk").post(f"/api/records/{rid}/attachments", data={"kind": "annex2_scan"},
                                         files={"file": ("附件2 盖章.pdf", PDF, "application/pdf")})
    assert resp.status_code == 201, resp.text
    aid = resp.json()["attachment_id"]
    listing = token_client("d1-reviewer").get(f"/api/records/{rid}/attachments").json()
    assert [(a["kind"], a["filename"], a["size"]) for a in listing] == [("annex2_scan", "附件2_盖章.pdf", len(PDF))]
    got = token_client("d1-reviewer").get(f"/api/records/{rid}/attachments/{aid}")
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert "attachment;" in got.headers["content-disposition"]
    assert token_client("d3-reviewer").get(f"/api/records/{rid}/attachments/{aid}").status_code == 404
    # The id of another record's attachment does not open through this record.
    other = web_world.rid("G2")
    assert token_client("d1-reviewer").get(f"/api/records/{other}/attachments/{aid}").status_code == 404


@pytest.mark.parametrize(("name", "data", "code"), [
    ("invoice.pdf", b"<html><script>alert(1)</script></html>", "attachment.type"),  # named .pdf, is HTML
    ("photo.png", b"MZ\x90\x00 an exe", "attachment.type"),
    ("empty.pdf", b"", "attachment.empty"),
    ("big.pdf", b"%PDF-" + b"0" * attachments.MAX_BYTES, "attachment.too_large"),
])
def test_wrong_type_empty_or_oversized_uploads_are_refused(token_client, web_world: World, name, data, code) -> None:  # type: ignore[no-untyped-def]
    rid = web_world.rid("G1")
    resp = token_client("g1-clerk").post(f"/api/records/{rid}/attachments", data={"kind": "invoice"},
                                         files={"file": (name, data, "application/pdf")})
    assert resp.status_code == 422
    assert resp.json()["code"] == code
    assert token_client("g1-clerk").get(f"/api/records/{rid}/attachments").json() == []


def test_upload_permissions_follow_data_entry(token_client, web_world: World) -> None:
    rid = web_world.rid("G1")

    def up(user: str) -> int:
        return token_client(user).post(f"/api/records/{rid}/attachments", data={"kind": "invoice"},
                                       files={"file": ("a.png", PNG, "image/png")}).status_code

    assert [up(u) for u in ("g1-clerk", "d1-reviewer", "d1-clerk", "observer", "g2-clerk")] == [201, 201, 403, 403, 404]
    listing = token_client("g1-clerk").get(f"/api/records/{rid}/attachments").json()
    assert [a["on_behalf"] for a in listing] == [False, True]


def test_upload_form_shows_the_refusal_on_the_page(login, web_world: World) -> None:
    client = login("g1-clerk")
    rid = web_world.rid("G1")
    csrf = csrf_from(client.get(f"/records/{rid}").text)
    page = client.post(f"/records/{rid}/attachments", data={"kind": "invoice", "csrf_token": csrf},
                       files={"file": ("x.pdf", b"GIF89a", "application/pdf")})
    assert page.status_code == 422
    assert "只接受 PDF、JPG、PNG 文件" in page.text
    ok = client.post(f"/records/{rid}/attachments", data={"kind": "invoice", "csrf_token": csrf},
                     files={"file": ("发票.png", PNG, "image/png")}, follow_redirects=True)
    assert "已上传附件 发票.png" in ok.text and "发票.png" in ok.text


def test_an_oversized_request_is_refused_before_its_body_is_read(token_client, web_world: World) -> None:
    rid = web_world.rid("G1")
    resp = token_client("g1-clerk").post(
        f"/api/records/{rid}/attachments", data={"kind": "invoice"},
        files={"file": ("huge.pdf", b"%PDF-" + b"0" * (attachments.MAX_BYTES + 200_000), "application/pdf")})
    assert resp.status_code == 413
    assert resp.json() == {"code": "attachment.too_large", "message": "上传内容超过 10 MB 上限"}
