"""Issue 21 point 1 through the edges: every write command of the CLI and every write endpoint
of the API leaves its audit row (the action, the actor, the channel, the address), a refusal
too; ``bangfu audit-log`` reads it for an auditor only and writes the CSV; the archive task
writes the new rows to a write-once file."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import NOW_2021, World
from workflow.app import accounts, directory, oplog_archive
from workflow.entrypoints import cli
from workflow.entrypoints.web.app import create_app
from workflow.settings import Settings, get_settings
from workflow.store.oplog import Filters, Row
from workflow.store.uow import UnitOfWork

NOW_TEXT = "2021-11-01T10:00"
FILE_HEADER = "订单号,商品行号,支付时间,实付金额,领取人数,商品名称,商品形态,经费来源,渠道,原订单号"
ADMINS = ("username,display_name,org_code,role,email\n"
          "gd-sysadmin,系统管理员,GD,system_admin,\n"
          "gd-auditor,审计员,GD,auditor,\n"
          "d1-auditor,天河审计员,D1,auditor,\n")


@pytest.fixture()
def w(any_world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[World]:
    directory.import_users(UnitOfWork(any_world.db), data=ADMINS.encode(), now=NOW_2021)
    monkeypatch.setenv("BANGFU_DATABASE_URL", str(any_world.db.engine.url.render_as_string(hide_password=False)))
    monkeypatch.setenv("BANGFU_NOW", NOW_TEXT)
    monkeypatch.setenv("BANGFU_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("BANGFU_USER", raising=False)
    get_settings.cache_clear()
    yield any_world
    get_settings.cache_clear()


def _newest(w: World, action: str | None = None) -> Row | None:
    """The newest row (of ``action``). A successful transition's row is its history row (its
    time the business clock's, BANGFU_NOW here; no channel): looked for by action."""
    with UnitOfWork(w.db, readonly=True) as uow:
        rows = uow.oplog.search(Filters(action=action), limit=1)
    return rows[0] if rows else None


def _last(w: World, action: str | None = None) -> Row:
    row = _newest(w, action)
    assert row is not None
    return row


def _where(action: str, outcome: str, channel: str) -> str | None:
    return None if (action, outcome) == ("record.fire", "ok") else channel


def _cli(*args: str, stdin: str = "") -> int:
    import sys
    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        return cli.main(list(args))
    finally:
        sys.stdin = saved


def test_every_cli_write_leaves_its_row(w: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = tmp_path / "g2.csv"
    ledger.write_text(FILE_HEADER + "\nG2-F1,1,2021-10-20 10:00,100,2,油,实物,额外额度,ygh,\n", encoding="utf-8")
    orgs = tmp_path / "orgs.csv"
    orgs.write_text("code,name,kind,parent_code\nG8,天河八号工会,grassroots,D1\n", encoding="utf-8")
    users = tmp_path / "users.csv"
    users.write_text("username,display_name,org_code,role\ng8-clerk,八号填报员,G8,clerk\n", encoding="utf-8")
    members = tmp_path / "members.csv"
    members.write_text("org_code,members\nG8,30\n", encoding="utf-8")
    steps: list[tuple[tuple[str, ...], str, str, str]] = [
        # (command line, expected action, expected actor, expected outcome)
        (("plan", "G1", "--amount", "600", "--members", "100", "--as", "g1-clerk"), "record.plan", "g1-clerk", "ok"),
        (("purchase-add", "G1", "--paid-at", "2021-10-20T10:00", "--channel", "ygh", "--amount", "1200",
          "--people", "20", "--order", "G1-1", "--as", "g1-clerk"), "purchase.enter", "g1-clerk", "ok"),
        (("purchase-add", "G1", "--paid-at", "2021-10-20T10:00", "--channel", "ygh", "--amount", "50",
          "--people", "1", "--order", "G1-2", "--as", "d1-reviewer"), "purchase.enter", "d1-reviewer", "ok"),
        (("purchase-void", "G1", "--id", "2", "--reason", "录重了", "--as", "g1-clerk"), "purchase.void", "g1-clerk", "ok"),
        (("report-info", "G1", "--reporter", "张三", "--phone", "13812345678", "--as", "g1-clerk"),
         "record.report_info", "g1-clerk", "ok"),
        (("fire", "G1", "finish_purchasing", "--as", "g1-clerk"), "record.fire", "g1-clerk", "ok"),
        (("fire", "G1", "accept", "--as", "g1-clerk"), "record.fire", "g1-clerk", "refused"),
        (("plan", "G2", "--amount", "600", "--members", "40", "--as", "g2-clerk"), "record.plan", "g2-clerk", "ok"),
        (("import-purchases", "G2", str(ledger), "--as", "g2-clerk"), "purchase.import", "g2-clerk", "ok"),
        (("plan", "D1", "--amount", "0", "--members", "0", "--as", "d1-clerk"), "record.plan", "d1-clerk", "ok"),
        (("aggregate-add", "D1", "--channel", "ygh", "--people", "3", "--amount", "300", "--note", "下级汇总",
          "--as", "d1-clerk"), "aggregate.add", "d1-clerk", "ok"),
        (("token-create", "g1-clerk", "--name", "脚本"), "token.create", "", "ok"),
        (("password-reset", "g1-clerk", "--as", "d1-reviewer"), "user.reset_password", "d1-reviewer", "ok"),
        (("org-import", str(orgs)), "org.import", "", "ok"),
        (("user-import", str(users)), "user.import", "", "ok"),
        (("members-import", str(members), "--round", "2021"), "members.import", "", "ok"),
        (("rollup-rebuild",), "rollup.rebuild", "", "ok"),
        (("policy-load", "yuegongzong-2021-17"), "policy.install", "", "ok"),
        (("audit-export-head",), "history.export_heads", "", "ok"),
    ]
    problems = []
    for args, action, actor, outcome in steps:
        capsys.readouterr()
        code = _cli(*args, "--json", stdin="New-Password-2021\n")
        out, err = capsys.readouterr()
        row = _last(w, action)
        got = (row.action, row.actor_name if actor else "", row.outcome, row.channel)
        if got != (action, actor, outcome, _where(action, outcome, "cli")) or (outcome == "ok") != (code == 0):
            problems.append(f"{' '.join(args[:2])}: exit {code} {(out + err).strip()[:200]} → {got}")
        if not actor:  # an operator without an account: the OS user at this host
            assert row.actor_user_id is None and row.actor_name and "@" in (row.address or "")
    assert problems == []


def test_every_api_write_leaves_its_row(w: World) -> None:
    app = create_app(w.db, Settings(env="test", secret_key="oplog-secret-" + "x" * 32))

    def client(username: str) -> TestClient:
        c = TestClient(app)
        c.headers["Authorization"] = "Bearer " + accounts.create_token(UnitOfWork(w.db), username=username)
        return c

    clerk, reviewer = client("g1-clerk"), client("d1-reviewer")
    rid = w.rid("G1")

    def v(org_rid: int) -> int:
        with UnitOfWork(w.db, readonly=True) as uow:
            return uow.records.get(org_rid).version

    purchase = {"paid_at": "2021-10-20T10:00", "channel": "ygh", "amount": "1200", "people": 20, "order_no": "API-1"}
    steps: list[tuple[Callable[[], object], str, str, str]] = [
        (lambda: clerk.put(f"/api/records/{rid}/plan", json={"seen_version": v(rid), "amount": "600", "members": 100}),
         "record.plan", "g1-clerk", "ok"),
        (lambda: clerk.post(f"/api/records/{rid}/purchases", json=purchase), "purchase.enter", "g1-clerk", "ok"),
        (lambda: clerk.post(f"/api/records/{rid}/purchases", json=dict(purchase, order_no="API-2", amount="10", people=1)),
         "purchase.enter", "g1-clerk", "ok"),
        (lambda: clerk.post(f"/api/records/{rid}/purchases/2/void", json={"reason": "重复"}), "purchase.void",
         "g1-clerk", "ok"),
        (lambda: clerk.post(f"/api/records/{rid}/attachments", files={"file": ("a.pdf", b"%PDF-1.4\n%%EOF\n")},
                            data={"kind": "invoice"}), "attachment.add", "g1-clerk", "ok"),
        (lambda: clerk.post(f"/api/records/{rid}/purchases/import", files={"file": (
            "l.csv", (FILE_HEADER + "\nAPI-F,1,2021-10-20 10:00,100,2,油,实物,额外额度,ygh,\n").encode())}), "purchase.import", "g1-clerk", "ok"),
        (lambda: clerk.post(f"/api/records/{rid}/fire", json={"trigger": "finish_purchasing", "seen_version": v(rid)}),
         "record.fire", "g1-clerk", "ok"),
        (lambda: clerk.put(f"/api/records/{rid}/report-info", json={"seen_version": v(rid), "reporter": "张三",
                                                                    "phone": "13812345678"}),
         "record.report_info", "g1-clerk", "ok"),
        (lambda: clerk.post(f"/api/records/{rid}/fire", json={"trigger": "summarize", "seen_version": v(rid)}),
         "record.fire", "g1-clerk", "ok"),
        (lambda: clerk.post(f"/api/records/{rid}/fire", json={"trigger": "submit", "seen_version": v(rid)}),
         "record.fire", "g1-clerk", "ok"),
        (lambda: reviewer.post("/api/review/bulk-accept", json={"items": [{"record_id": rid, "seen_version": v(rid)}]}),
         "record.fire", "d1-reviewer", "ok"),
        (lambda: reviewer.put(f"/api/records/{w.rid('G2')}/deadline", json={"seen_version": v(w.rid("G2")),
                                                                           "last_day": "2021-12-30"}),
         "round.deadline", "d1-reviewer", "ok"),
        (lambda: reviewer.post("/api/accounts/g2-clerk/password", json={"new_password": "Reset-By-Api-1"}),
         "user.reset_password", "d1-reviewer", "ok"),
        (lambda: reviewer.post("/api/accounts/g2-clerk/handover", json={
            "display_name": "新人", "new_password": "Handover-Api-2", "phone": "13900000000"}),
         "user.handover", "d1-reviewer", "ok"),
        (lambda: client("d1-clerk").post(f"/api/records/{rid}/purchases", json=purchase), "purchase.enter",
         "d1-clerk", "refused"),
        (lambda: client("gd-sysadmin").post("/api/orgs/G2/accounts", json={
            "username": "g2-clerk2", "display_name": "二号", "role": "clerk", "new_password": "Clerk-Api-22"}),
         "user.add", "gd-sysadmin", "ok"),
    ]
    problems = []
    for call, action, actor, outcome in steps:
        prior = _newest(w, action)
        before = prior.seq if prior is not None and action != "record.fire" else None
        r = call()
        row = _last(w, action)
        got = (row.action, row.actor_name, row.outcome, row.channel, row.address)
        channel = _where(action, outcome, "api")
        if got != (action, actor, outcome, channel, channel and "testclient") or row.seq == before:
            problems.append(f"{action}: HTTP {getattr(r, 'status_code', '?')} {getattr(r, 'text', '')[:120]} → {got}")
    assert problems == []
    # The handover's new phone is in nobody's log.
    with UnitOfWork(w.db, readonly=True) as uow:
        assert all("13900000000" not in json.dumps(r.detail, ensure_ascii=False)
                   for r in uow.oplog.search(Filters(), limit=None))


def test_audit_log_cli_is_for_auditors_and_writes_csv(w: World, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    w.plan("G1", 60000, 100)
    w.plan("G3", 60000, 100)
    capsys.readouterr()
    assert _cli("audit-log", "--as", "gd-sysadmin") == 3
    assert "审计员" in capsys.readouterr().err
    assert _cli("audit-log", "--action", "record.plan", "--as", "gd-auditor") == 0
    out = capsys.readouterr().out
    assert "g1-clerk" in out and "g3-clerk" in out and "填写年度计划" in out and "共 2 条" in out
    # A district's auditor reads its own subtree's actors only.
    assert _cli("audit-log", "--action", "record.plan", "--as", "d1-auditor") == 0
    out = capsys.readouterr().out
    assert "g1-clerk" in out and "g3-clerk" not in out
    target = tmp_path / "log.csv"
    assert _cli("audit-log", "--actor", "g1-clerk", "--from", "2000-01-01", "--csv", str(target), "--as", "gd-auditor") == 0
    text = target.read_bytes().decode("utf-8-sig")
    assert text.splitlines()[0].startswith("序号,时间,操作人账号") and "g1-clerk" in text
    assert _last(w).action == "oplog.export" and _last(w).actor_name == "gd-auditor"


def test_archive_writes_new_rows_once_to_files_never_rewritten(w: World, tmp_path: Path) -> None:
    var = tmp_path / "arch"
    first = oplog_archive.archive(UnitOfWork(w.db), var_dir=var)
    assert first["rows"] >= 4 and first["first_seq"] == 1
    w.plan("G1", 60000, 100)
    second = oplog_archive.archive(UnitOfWork(w.db), var_dir=var)
    # The second file starts where the first ended (its own archive row included).
    assert second["first_seq"] == first["last_seq"] + 1
    lines = (var / "oplog" / second["file"]).read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["action"] for x in lines] == ["oplog.archive", "record.plan"]
    assert (var / "oplog" / first["file"]).stat().st_mode & 0o222 == 0  # written once, read-only
    log = (var / "oplog" / "archive.log").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["last_seq"] for x in log] == [first["last_seq"], second["last_seq"]]
    status = oplog_archive.status(UnitOfWork(w.db, readonly=True), var_dir=var, retention_days=180)
    assert status["old_rows_archived"] is True
