"""The permission matrix: every transition of ``states.TRANSITIONS`` × every role × where the
actor's organisation sits relative to the record.

Each cell puts a fresh copy of the world's record into the transition's source state (built
through the services as the right users), then fires the trigger as a user holding exactly one
role at one organisation. Exactly these cells succeed:

- own-scope triggers: the record's own clerk, or the parent's reviewer on its behalf (代填报,
  recorded in the history), except withdraw (the clerk's own: the parent's reviewer returns);
- parent-scope triggers: the parent's reviewer.

Every other cell is refused: ``NotFound`` (``record.not_found``) when the record lies outside the
actor's subtree (a child, a sibling, another city) or the actor is one of the three separate
administrators (system, security, audit: they see no record), ``PermissionDenied`` with the
scope's code otherwise. A refused cell leaves state, version and history untouched, and ``available_actions``
agrees with ``fire`` in every visible cell.

To stay fast, each (record, source state) is built once into a SQLite file and every cell runs
on a byte copy of it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import states
from tests.conftest import NOW_2021, World, build_world
from workflow.app import directory, lifecycle, record_views
from workflow.domain.errors import NotFound, PermissionDenied
from workflow.store.tables import Database
from workflow.store.uow import UnitOfWork

#: The business roles, then the three separate administrators (三员分立, issue 21): those see
#: no record at all (every cell NotFound), wherever their seat is.
ROLES = ("clerk", "reviewer", "admin", "observer", "system_admin", "security_admin", "auditor")
ADMIN_ROLES = frozenset({"system_admin", "security_admin", "auditor"})

#: For each record under test: relation name -> the organisation the actor belongs to.
RELATIONS: dict[str, dict[str, str]] = {
    "D1": {  # a district federation under C1, with grassroots children
        "own": "D1",
        "parent": "C1",
        "grandparent": "GD",
        "child": "G1",
        "sibling": "D2",
        "another_city": "C2",
    },
    "G1": {  # a grassroots union under D1
        "own": "G1",
        "parent": "D1",
        "grandparent": "C1",
        "sibling": "G2",
        "another_city": "D3",
    },
}
#: Relations whose organisation's subtree does not contain the record.
INVISIBLE = frozenset({"child", "sibling", "another_city"})
PARENT_OF = {"D1": "C1", "G1": "D1"}
REASON = "数据有误，请核对"


@dataclass(frozen=True)
class Cell:
    record: str
    transition: states.Transition
    relation: str
    role: str

    @property
    def actor_org(self) -> str:
        return RELATIONS[self.record][self.relation]

    @property
    def username(self) -> str:
        return f"m-{self.actor_org.lower()}-{self.role}"

    def expected(self) -> tuple[str, str | bool]:
        """("ok", on_behalf) or (exception name, code)."""
        scope = self.transition.scope
        if self.relation in INVISIBLE or self.role in ADMIN_ROLES:
            return ("NotFound", "record.not_found")
        if scope == states.OWN and self.relation == "own" and self.role == states.CLERK:
            return ("ok", False)
        if self.relation == "parent" and self.role == states.REVIEWER and (scope == states.PARENT or self.transition.on_behalf):
            return ("ok", scope == states.OWN)
        code = "permission.not_clerk" if scope == states.OWN else "permission.not_parent_reviewer"
        return ("PermissionDenied", code)

    @property
    def id(self) -> str:
        t = self.transition
        return f"{self.record}-{t.trigger}@{t.source}-{self.relation}-{self.role}"


CELLS: list[Cell] = [
    Cell(record, t, relation, role)
    for record, relations in RELATIONS.items()
    for t in states.TRANSITIONS
    for relation in relations
    for role in ROLES
]
EXPECTED_CELLS = len(states.TRANSITIONS) * len(ROLES) * sum(len(r) for r in RELATIONS.values())
# Per record: own-scope triggers have two allowed cells (own clerk, parent reviewer on behalf),
# parent-scope triggers one (parent reviewer).
# Withdraw is the clerks' own (the reviewer it waits for returns it instead): one allowed cell.
EXPECTED_ALLOWED = len(RELATIONS) * sum(2 if t.scope == states.OWN and t.on_behalf else 1 for t in states.TRANSITIONS)

RESULTS: dict[str, str] = {}


def _matrix_users_csv() -> str:
    orgs = sorted({org for rels in RELATIONS.values() for org in rels.values()})
    rows = ["username,display_name,org_code,role,email"]
    for org in orgs:
        for role in ROLES:
            rows.append(f"m-{org.lower()}-{role},{org}{role},{org},{role},")
    return "\n".join(rows) + "\n"


def drive(w: World, org: str, state: str) -> None:
    """Bring ``org``'s record to ``state`` the way its users would."""
    clerk = f"{org.lower()}-clerk"
    if org.startswith("G"):
        w.plan(org, 30000, 50)
    if state == states.PLANNED:
        return
    w.buy(org, f"{org}-order", 80000, 12)
    w.fire(org, "finish_purchasing", clerk)
    if state == states.PURCHASED:
        return
    w.info(org, work_experience="以购代捐，带动增收", work_highlights="线上线下结合")
    w.fire(org, "summarize", clerk)
    if state == states.SUMMARIZED:
        return
    w.fire(org, "submit", clerk)
    if state == states.SUBMITTED:
        return
    w.fire(org, "accept", f"{PARENT_OF[org].lower()}-reviewer")
    assert w.state(org) == states.ACCEPTED


def template_key(record: str, t: states.Transition) -> tuple[str, str, bool]:
    """The template a cell runs on: the record in the transition's source state, with its
    parent's report already sent when the transition is for a late child (补报)."""
    return (record, t.source, "parent_sent" in t.guards)


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str, bool], Path]:
    """One SQLite file per (record, source state, parent sent), built through the services."""
    out: dict[tuple[str, str, bool], Path] = {}
    base = tmp_path_factory.mktemp("matrix")
    for key in sorted({template_key(record, t) for record in RELATIONS for t in states.TRANSITIONS}):
        record, state, parent_sent = key
        folder = base / f"{record}-{state}-{parent_sent}"
        folder.mkdir()
        path = folder / "bangfu.db"
        database = Database(f"sqlite:///{path}")
        database.upgrade()
        w = build_world(database)
        directory.import_users(UnitOfWork(database), data=_matrix_users_csv().encode(), now=NOW_2021)
        drive(w, record, state)
        if parent_sent:  # the parent sends its report up before this child comes in
            drive(w, PARENT_OF[record], states.SUBMITTED)
        assert w.state(record) == state
        database.dispose()  # no connection left open: the files are consistent
        out[key] = path
    return out


@pytest.fixture(scope="module")
def workspaces(
    templates: dict[tuple[str, str, bool], Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[tuple[str, str, bool], tuple[Path, Database]]]:
    """One working file and one Database per template. Each cell closes the connections,
    restores the file from the template and runs on it; the engine (and its compiled-statement
    cache) is reused, which keeps the matrix fast."""
    base = tmp_path_factory.mktemp("matrix-work")
    out = {}
    for key in templates:
        folder = base / "-".join(map(str, key))
        folder.mkdir()
        path = folder / "bangfu.db"
        out[key] = (path, Database(f"sqlite:///{path}"))
    yield out
    for _path, database in out.values():
        database.dispose()


def _restore(template: Path, dest: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        target = Path(str(dest) + suffix)
        if target.exists():
            target.unlink()
        src = Path(str(template) + suffix)
        if src.exists():
            shutil.copyfile(src, target)


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_cell(
    cell: Cell,
    templates: dict[tuple[str, str, bool], Path],
    workspaces: dict[tuple[str, str, bool], tuple[Path, Database]],
) -> None:
    t = cell.transition
    key = template_key(cell.record, t)
    path, database = workspaces[key]
    database.engine.dispose()  # close every connection before the file is replaced
    _restore(templates[key], path)
    try:
        w = World(db=database)
        rid = w.rid(cell.record)
        uid = w.uid(cell.username)
        before_version = w.version(cell.record)
        with w.uow(True) as uow:
            before_history = len(uow.records.history(rid))
        assert w.state(cell.record) == t.source
        outcome, detail = cell.expected()
        reason = REASON if t.needs_reason else None

        # What the pages would show must agree with what firing does.
        if outcome == "NotFound":
            with pytest.raises(NotFound) as nf:
                record_views.available_actions(w.uow(True), record_id=rid, user_id=uid, now=NOW_2021)
            assert nf.value.code == "record.not_found"
        else:
            actions = record_views.available_actions(w.uow(True), record_id=rid, user_id=uid, now=NOW_2021)
            action = next(a for a in actions if a.trigger == t.trigger)
            assert action.allowed == (outcome == "ok"), action.refusal
            if outcome != "ok":
                assert action.refusal is not None and action.refusal.code == detail

        if outcome == "ok":
            result = lifecycle.fire(w.uow(), record_id=rid, trigger=t.trigger, user_id=uid,
                                   seen_version=before_version, reason=reason, now=NOW_2021)
            assert (result.from_state, result.to_state) == (t.source, t.dest)
            assert result.on_behalf is detail
            assert w.state(cell.record) == t.dest
            assert w.version(cell.record) == before_version + 1
            with w.uow(True) as uow:
                rows = uow.records.history(rid)
                assert len(rows) == before_history + 1
                h = rows[-1]
                acting_org = uow.directory.org_by_code(cell.actor_org).id
                assert (h.trigger, h.from_state, h.to_state) == (t.trigger, t.source, t.dest)
                assert h.actor_user_id == uid
                assert h.actor_role == cell.role
                assert h.on_behalf is detail
                assert h.actor_org_id == acting_org
                assert h.reason == reason
        else:
            error = NotFound if outcome == "NotFound" else PermissionDenied
            with pytest.raises(error) as exc:
                lifecycle.fire(w.uow(), record_id=rid, trigger=t.trigger, user_id=uid,
                              seen_version=before_version, reason=reason, now=NOW_2021)
            assert type(exc.value) is error
            assert exc.value.code == detail
            assert exc.value.message  # a Chinese sentence for the user
            assert w.state(cell.record) == t.source
            assert w.version(cell.record) == before_version
            with w.uow(True) as uow:
                assert len(uow.records.history(rid)) == before_history
        RESULTS[cell.id] = outcome
    finally:
        database.engine.dispose()


def test_matrix_size_and_allowed_cells(capsys: pytest.CaptureFixture[str]) -> None:
    """The matrix covers every transition × role × relation; the allowed count follows the
    table's scopes. Runs after the cells (file order) and reports what they found."""
    assert len(CELLS) == EXPECTED_CELLS
    assert len({c.id for c in CELLS}) == EXPECTED_CELLS
    allowed = [c for c in CELLS if c.expected()[0] == "ok"]
    assert len(allowed) == EXPECTED_ALLOWED
    # Every allowed cell is the own clerk or the parent's reviewer, nobody else.
    assert {(c.relation, c.role) for c in allowed} == {("own", "clerk"), ("parent", "reviewer")}
    if len(RESULTS) == len(CELLS):  # the whole module ran
        assert sum(1 for o in RESULTS.values() if o == "ok") == EXPECTED_ALLOWED
    with capsys.disabled():
        print(f"\npermission matrix: {len(CELLS)} cells "
              f"({len(states.TRANSITIONS)} transitions x {len(ROLES)} roles x relations "
              f"{ {k: len(v) for k, v in RELATIONS.items()} }), {len(allowed)} allowed, "
              f"{len(RESULTS)} run")


# --- four eyes (issue 10 point 13) ----------------------------------------------------------
# The parent's reviewer may enter data on a union's behalf (代填报) and may accept; four eyes
# (a policy switch, on by default) refuses accept by the reviewer who entered on the record's
# behalf or submitted it since the last return. A second reviewer of the parent may accept.

FOUR_EYES_SCENARIOS = ("submitted_on_behalf", "purchase_on_behalf", "clerk_only", "returned_then_clerk",
                       "switch_off")


def _four_eyes_world(tmp_path: Path, record: str, scenario: str) -> World:
    database = Database(f"sqlite:///{tmp_path / 'four-eyes.db'}")
    database.upgrade()
    w = build_world(database)
    directory.import_users(UnitOfWork(database), data=_matrix_users_csv().encode(), now=NOW_2021)
    if scenario == "switch_off":
        from workflow.domain.policy import builtin, parse_policy

        text = builtin().source_text + "\n[review]\nfour_eyes = false\n"
        directory.install_policy(UnitOfWork(database), policy=parse_policy(text), now=NOW_2021)
    parent = f"{PARENT_OF[record].lower()}-reviewer"
    clerk = f"{record.lower()}-clerk"
    filler = parent if scenario in ("submitted_on_behalf", "switch_off") else clerk
    if record.startswith("G"):
        w.plan(record, 30000, 50, user=filler)
    w.buy(record, f"{record}-order", 80000, 12,
          user=parent if scenario in ("purchase_on_behalf", "returned_then_clerk") else filler)
    w.fire(record, "finish_purchasing", filler)
    w.info(record, user=filler, work_experience="以购代捐，带动增收", work_highlights="线上线下结合")
    w.fire(record, "summarize", filler)
    w.fire(record, "submit", filler)
    if scenario == "returned_then_clerk":
        from datetime import timedelta

        later = NOW_2021 + timedelta(hours=1)
        w.fire(record, "return_for_revision", parent, reason=REASON, now=later)
        w.fire(record, "summarize", clerk, now=later)
        w.fire(record, "submit", clerk, now=later)
    assert w.state(record) == states.SUBMITTED
    return w


@pytest.mark.parametrize("record", sorted(RELATIONS))
@pytest.mark.parametrize("scenario", FOUR_EYES_SCENARIOS)
@pytest.mark.parametrize("acceptor", ["same_reviewer", "other_reviewer"])
def test_four_eyes(tmp_path: Path, record: str, scenario: str, acceptor: str) -> None:
    from workflow.domain.errors import RuleViolation

    w = _four_eyes_world(tmp_path, record, scenario)
    parent = PARENT_OF[record]
    user = f"{parent.lower()}-reviewer" if acceptor == "same_reviewer" else f"m-{parent.lower()}-reviewer"
    refused = acceptor == "same_reviewer" and scenario in ("submitted_on_behalf", "purchase_on_behalf")
    rid, uid, version = w.rid(record), w.uid(user), w.version(record)
    actions = record_views.available_actions(w.uow(True), record_id=rid, user_id=uid, now=NOW_2021)
    accept = next(a for a in actions if a.trigger == "accept")
    assert accept.allowed is not refused, accept.refusal
    if refused:
        assert accept.refusal is not None and accept.refusal.code == "review.four_eyes"
        with pytest.raises(RuleViolation) as exc:
            w.fire(record, "accept", user)
        assert exc.value.code == "review.four_eyes" and "代填报的人不能自己审核" in exc.value.message
        assert (w.state(record), w.version(record)) == (states.SUBMITTED, version)
    else:
        w.fire(record, "accept", user)
        assert w.state(record) == states.ACCEPTED
    w.db.dispose()
