"""Issue 10 point 2 at the edges: a refused import lists the first 200 bad rows and counts
the rest, in the JSON API, the page and the CLI."""

from __future__ import annotations

from tests.app.test_import_bounds import _bad_rows
from tests.conftest import World
from tests.entrypoints.web.conftest import csrf_from
from workflow.entrypoints import cli
from workflow.settings import get_settings


def test_api_page_and_cli_show_200_and_the_count(web_world: World, token_client, login, tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    web_world.plan("G1")
    data = _bad_rows(1_000)
    rid = web_world.rid("G1")
    api = token_client("g1-clerk").post(f"/api/records/{rid}/purchases/import",
                                        files={"file": ("bad.csv", data, "text/csv")})
    assert api.status_code == 422
    body = api.json()
    assert (len(body["errors"]), body["total_errors"], body["more_errors"]) == (200, 1_000, 800)
    assert len(api.content) < 100_000
    client = login("g1-clerk")
    csrf = csrf_from(client.get(f"/records/{rid}").text)
    page = client.post(f"/records/{rid}/purchases/import", files={"file": ("bad.csv", data, "text/csv")},
                       data={"csrf_token": csrf})
    assert page.status_code == 422 and "另有 800 处错误未列出" in page.text
    path = tmp_path / "bad.csv"
    path.write_bytes(data)
    monkeypatch.setenv("BANGFU_DATABASE_URL", web_world.db.engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    try:
        capsys.readouterr()
        code = cli.main(["import-purchases", "G1", str(path), "--as", "g1-clerk"])
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert code == 2 and "另有 800 处错误未列出" in err and err.count("\n") <= 203


def test_api_and_page_refuse_a_shared_strings_bomb_with_nothing_written(web_world: World, token_client, login) -> None:  # type: ignore[no-untyped-def]
    """Issue 20 point 5 at the edges: the workbook is measured in the parse child and refused
    (422, the file's refusal listed) in seconds; nothing is written."""
    import time

    from bench.xlsx_bomb import shared_strings_bomb

    web_world.plan("G1")
    rid = web_world.rid("G1")
    data = shared_strings_bomb(11_000_000)
    started = time.monotonic()
    api = token_client("g1-clerk").post(f"/api/records/{rid}/purchases/import",
                                        files={"file": ("bomb.xlsx", data, "application/octet-stream")})
    assert time.monotonic() - started < 15
    assert api.status_code == 422
    body = api.json()
    assert body["code"] == "import.refused" and body["errors"][0].startswith("XLSX 文件解压后超过 50 MB 上限")
    client = login("g1-clerk")
    csrf = csrf_from(client.get(f"/records/{rid}").text)
    page = client.post(f"/records/{rid}/purchases/import", files={"file": ("bomb.xlsx", data, "application/octet-stream")},
                       data={"csrf_token": csrf})
    assert page.status_code == 422 and "XLSX 文件解压后超过 50 MB 上限" in page.text
    with web_world.uow(True) as uow:
        assert uow.purchases.count(rid) == 0
