"""The purchases CSV is named in Chinese like every other download."""

from __future__ import annotations

from urllib.parse import unquote

from tests.conftest import World


def test_the_purchases_csv_has_a_chinese_file_name_with_an_ascii_fallback(login, web_world: World) -> None:  # type: ignore[no-untyped-def]
    web_world.plan("G1")
    web_world.buy("G1", "N-1", 5000)
    resp = login("g1-clerk").get(f"/records/{web_world.rid('G1')}/purchases.csv")
    assert resp.status_code == 200
    disposition = resp.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="')
    assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == "天河一中工会2021年度采购明细.csv"
    fallback = disposition.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback.isascii() and fallback.endswith(".csv")  # the shared helper's fallback
    assert "purchases-" not in disposition and "G1" not in disposition
    assert "N-1" in resp.content.decode("utf-8-sig")
