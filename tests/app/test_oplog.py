"""Issue 21 point 1: the operation audit log. Every write use case leaves a row (who, role,
organisation, when, where from, what, outcome), refusals too; the rows form one keyed-hash
chain; the table refuses UPDATE and DELETE."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import World
from workflow.app import oplog, purchases
from workflow.domain import oplog as catalogue
from workflow.domain.errors import BangfuError
from workflow.store import chain
from workflow.store import oplog as store
from workflow.store.oplog import Filters

APP = Path(__file__).resolve().parents[2] / "workflow" / "app"

#: Functions of workflow.app that commit without the decorator, and why.
EXEMPT = {
    # Its commits count the attempt before the password is checked: the login seam (web and
    # API) writes auth.login / auth.login_failed / auth.lockout with oplog.log.
    "accounts.authenticate",
    # Single sign-on's login: writes auth.login / auth.login_failed itself, naming the provider.
    "accounts.sso_login",
    # A sign-on the provider did not complete: writes auth.login_failed itself.
    "accounts.sso_failed",
    # The writer itself.
    "oplog.log",
    "oplog._after",
}


def _committing_functions() -> dict[str, ast.FunctionDef]:
    found: dict[str, ast.FunctionDef] = {}
    for path in sorted(APP.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "commit"
                    for n in ast.walk(node)):
                found[f"{path.stem}.{node.name}"] = node
    return found


def _decorator_action(node: ast.FunctionDef) -> str | None:
    for d in node.decorator_list:
        if isinstance(d, ast.Call) and getattr(d.func, "id", None) == "audited":
            arg = d.args[0]
            assert isinstance(arg, ast.Constant)
            return str(arg.value)
    return None


def test_every_committing_use_case_is_audited_with_a_catalogued_action() -> None:
    functions = _committing_functions()
    assert len(functions) >= 20  # the walk found the use cases
    missing = [name for name, node in functions.items() if name not in EXEMPT and _decorator_action(node) is None]
    assert missing == []
    for name, node in functions.items():
        action = _decorator_action(node)
        assert action is None or action in catalogue.ACTIONS, name


def _rows(w: World, **f: object) -> list[store.Row]:
    with w.uow(True) as uow:
        return list(reversed(uow.oplog.search(Filters(**f), limit=None)))  # type: ignore[arg-type]


def test_writes_and_refusals_leave_rows_with_actor_role_org_and_outcome(any_world: World) -> None:
    w = any_world
    # Building the world was three operator imports on the command line's behalf.
    assert [r.action for r in _rows(w)] == ["org.import", "user.import", "policy.install"]
    w.plan("G1", 60000, 100)
    w.plan("G1", 30000, 100)  # 600 → 300 元
    with oplog.acting_from("web", "10.1.2.3"):
        w.plan("G2", 60000, 40, user="d1-reviewer")  # 代填报 by the parent's reviewer
    w.buy("G1", "G1-1", 120000, 20)
    with pytest.raises(BangfuError):
        w.plan("G3", 60000, 10, user="g1-clerk")  # not G3's clerk: refused (and not visible)
    rows = _rows(w, action="record.plan")
    assert [(r.actor_name, r.outcome) for r in rows] == [
        ("g1-clerk", "ok"), ("g1-clerk", "ok"), ("d1-reviewer", "ok"), ("g1-clerk", "refused")]
    second = rows[1]
    assert second.detail["amount_per_member_fen"] == 30000
    assert second.detail["before"] == {"amount_per_member_fen": 60000, "members": 100}
    assert second.actor_role == "clerk" and second.org_code == "G1"
    assert second.object == f"record:{w.rid('G1')}"
    behalf = rows[2]
    assert behalf.detail["on_behalf"] is True and behalf.actor_role == "reviewer" and behalf.org_code == "D1"
    assert (behalf.channel, behalf.address) == ("web", "10.1.2.3")
    assert rows[3].detail["code"] == "record.not_found"
    (entered,) = _rows(w, action="purchase.enter")
    assert entered.detail["purchase"]["order_no"] == "G1-1" and entered.outcome == "ok"
    # filters: by actor, by org subtree, by prefix
    assert {r.action for r in _rows(w, actor="d1-reviewer")} == {"record.plan"}
    with w.uow(True) as uow:
        d1_path = uow.directory.org_by_code("D1").path
    assert {r.actor_name for r in _rows(w, org_paths=(d1_path,))} == {"g1-clerk", "d1-reviewer"}
    assert {r.action for r in _rows(w, action="record.")} == {"record.plan"}


def test_a_refused_write_leaves_no_change_but_its_row(any_world: World) -> None:
    w = any_world
    w.to_submitted("G1")
    with pytest.raises(BangfuError):
        purchases.void_purchase(w.uow(), record_id=w.rid("G1"), purchase_id=1, user_id=w.uid("g1-clerk"),
                                reason="录错")
    (void,) = _rows(w, action="purchase.void")
    assert void.outcome == "refused" and void.detail["reason"] == "录错"
    fires = _rows(w, action="record.fire")
    assert [r.detail["trigger"] for r in fires] == ["finish_purchasing", "summarize", "submit"]


def test_the_rows_form_one_keyed_chain_and_the_table_is_append_only(any_world: World) -> None:
    w = any_world
    w.plan("G1", 60000, 100)
    with w.uow(True) as uow:
        rows = list(uow.oplog.walk())
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    mac = chain.sealer().mac
    prev = None
    for r in rows:
        assert r["prev_hash"] == prev
        assert mac(store.canonical(r)) == r["row_hash"]
        prev = r["row_hash"]
    for sql in ("UPDATE oplog SET outcome = 'ok'", "DELETE FROM oplog"):
        with pytest.raises(Exception, match="append-only"), w.db.engine.begin() as conn:
            conn.execute(text(sql))
    assert len(_rows(w)) == len(rows)


def test_an_unknown_action_is_a_programming_error(any_world: World) -> None:
    with pytest.raises(ValueError, match="unknown oplog action"):
        oplog.log(any_world.db, action="nope")
    seq = oplog.log(any_world.db, action="auth.login_failed", actor_name="nobody", outcome=oplog.REFUSED,
                    address="10.9.9.9", detail={"code": "login.failed"})
    (row,) = _rows(any_world, action="auth.login_failed")
    assert (row.seq, row.actor_name, row.address, row.actor_user_id) == (seq, "nobody", "10.9.9.9", None)



def test_verify_names_the_first_row_rewritten_behind_the_triggers(any_world: World) -> None:
    w = any_world
    w.plan("G1", 60000, 100)
    assert oplog.verify_chain(w.uow(True)).problem is None
    with w.db.engine.begin() as conn:
        if w.db.dialect == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))  # the owner lifts the triggers
        else:
            conn.execute(text("DROP TRIGGER oplog_no_update"))
        conn.execute(text("UPDATE oplog SET actor_name = 'someone-else' WHERE seq = 2"))
    check = oplog.verify_chain(w.uow(True))
    assert check.problem is not None and "第 2 条" in check.problem and "改写" in check.problem
