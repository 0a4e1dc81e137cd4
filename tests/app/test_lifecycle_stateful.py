"""Random sequences of user actions on one city's subtree (hypothesis stateful testing).

After every step, for every record:

- its state is the ``to_state`` of its last history row, and the history is a walk along the
  lifecycle table (each row leaves the state the previous one entered);
- its version counts exactly the writes that succeeded; a refused action changed nothing;
- no child was accepted or revoked while its parent was submitted or accepted;
- a snapshot that is summarized and not stale, or submitted, or accepted, still equals what
  summarizing now would freeze (the locks and the stale flag keep roll-ups honest), together
  with the record's sent supplements (补报: late children accepted after it sent its report);
- the rollup table (kept by each transition and deadline change in its transaction, and moved
  by the sweeps' overdue and late flags at any day of the round) equals its
  full recomputation from the records, and the completeness figures read from it equal those
  of the full scan, for the province's units and for the city's.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import states
from tests.conftest import NOW_2021, World, build_world
from workflow.app import lifecycle, oversight, supplements
from workflow.domain import clock
from workflow.domain.errors import BangfuError
from workflow.domain.figures import add_lines
from workflow.scheduler import sweeps
from workflow.store import rollup
from workflow.store.tables import Database

ORGS = ("C1", "D1", "D2", "G1", "G2", "G3")
PARENT = {"C1": None, "D1": "C1", "D2": "C1", "G1": "D1", "G2": "D1", "G3": "D2"}
GRASSROOTS = ("G1", "G2", "G3")
CHANNELS = ("ygh", "gdg", "p832", "local_hall")

#: The sweeps' history rows: facts about a record, not transitions.
SYSTEM_FACTS = ("overdue", "late", "lapse")

_template: Path | None = None


def _template_db() -> Path:
    """The small world, built once and copied for every example."""
    global _template
    if _template is None:
        folder = Path(tempfile.mkdtemp(prefix="bangfu-stateful-"))
        database = Database(f"sqlite:///{folder / 'bangfu.db'}")
        database.upgrade()
        build_world(database)
        database.dispose()
        _template = folder / "bangfu.db"
    return _template


def _users(org: str) -> list[str]:
    users = [f"{org.lower()}-clerk"]
    if PARENT[org]:
        users.append(f"{PARENT[org].lower()}-reviewer")  # type: ignore[union-attr]
    return users


class RecordsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="bangfu-example-"))
        template = _template_db()
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(template) + suffix)
            if src.exists():
                shutil.copyfile(src, self.folder / ("bangfu.db" + suffix))
        self.db = Database(f"sqlite:///{self.folder / 'bangfu.db'}")
        self.w = World(db=self.db)
        self.rid = {org: self.w.rid(org) for org in ORGS}
        self.expected_version = {org: 1 for org in ORGS}
        self.order = 0

    def teardown(self) -> None:
        self.db.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _snapshot_state(self, org: str) -> tuple[str, int]:
        with self.w.uow(True) as uow:
            rec = uow.records.get(self.rid[org])
            return rec.state, rec.version

    # --- actions ------------------------------------------------------------------------------

    @rule(org=st.sampled_from(ORGS), trigger=st.sampled_from(states.TRIGGERS), actor=st.integers(0, 1),
          reason=st.sampled_from([None, "请核对"]))
    def fire(self, org: str, trigger: str, actor: int, reason: str | None) -> None:
        users = _users(org)
        self._fire(org, trigger, users[actor % len(users)], reason)

    @rule(orgs=st.lists(st.sampled_from(ORGS), min_size=1, max_size=6))
    def advance(self, orgs: list[str]) -> None:
        """The next step forward as the right users (random firing rarely gets far)."""
        for org in orgs:
            self._advance(org)

    def _advance(self, org: str) -> None:
        state, _ = self._snapshot_state(org)
        clerk = f"{org.lower()}-clerk"
        if state == states.PLANNED:
            if org in GRASSROOTS:
                self.plan(org, 30000, 50)
            self._fire(org, "finish_purchasing", clerk, None)
        elif state == states.PURCHASED:
            self.info(org, True)
            self._fire(org, "summarize", clerk, None)
        elif state == states.SUMMARIZED:
            self._fire(org, "submit", clerk, None)
        elif state == states.SUBMITTED and PARENT[org]:
            late = self._snapshot_state(PARENT[org])[0] in (states.SUBMITTED, states.ACCEPTED)
            self._fire(org, "accept_late" if late else "accept", _users(org)[1], None)

    @rule(org=st.sampled_from(ORGS[1:]),
          trigger=st.sampled_from(["accept", "accept_late", "return_for_revision", "revoke_acceptance", "withdraw"]))
    def review(self, org: str, trigger: str) -> None:
        """A decision by the parent's reviewer (or the clerk's withdraw), with a reason."""
        user = _users(org)[0 if trigger == "withdraw" else 1]
        self._fire(org, trigger, user, "请核对")

    def _fire(self, org: str, trigger: str, user: str, reason: str | None) -> None:
        before_state, before_version = self._snapshot_state(org)
        parent = PARENT[org]
        parent_state = self._snapshot_state(parent)[0] if parent else None
        try:
            result = self.w.fire(org, trigger, user, reason=reason)
        except BangfuError:
            assert self._snapshot_state(org) == (before_state, before_version)
            return
        t = states.find(trigger, before_state)
        assert t is not None and result.to_state == t.dest
        event(f"fired {trigger}")
        if trigger in ("accept", "revoke_acceptance"):
            assert parent_state not in (states.SUBMITTED, states.ACCEPTED)
        if trigger == "accept_late":  # 补报: only past a parent that has sent its report
            assert parent_state in (states.SUBMITTED, states.ACCEPTED)
        if t.needs_reason:
            assert reason
        self.expected_version[org] += 1

    @rule(org=st.sampled_from(ORGS[:3]), actor=st.integers(0, 1))
    def decide_supplement(self, org: str, actor: int) -> None:
        """The parent's reviewer (or somebody else) accepts a federation's oldest pending 补报."""
        with self.w.uow(True) as uow:
            pending = [s for s in uow.supplements.for_record(self.rid[org]) if s.state == "submitted"]
        if not pending:
            return
        user = "gd-reviewer" if actor == 0 and PARENT[org] is None else _users(org)[actor % len(_users(org))]
        try:
            supplements.accept(self.w.uow(), supplement_id=pending[0].id, user_id=self.w.uid(user), now=NOW_2021)
        except BangfuError:
            return
        event("accepted a supplement")
        assert self._snapshot_state(org)[0] == states.ACCEPTED

    @rule(org=st.sampled_from(GRASSROOTS), amount=st.sampled_from([0, 100, 30000, 60000, 60001]),
          members=st.sampled_from([0, 1, 50, 50_000]))
    def plan(self, org: str, amount: int, members: int) -> None:
        try:
            self.w.plan(org, amount, members)
        except BangfuError:
            return
        self.expected_version[org] += 1

    @rule(org=st.sampled_from(ORGS), amount=st.integers(1, 10**7), people=st.integers(0, 500),
          channel=st.sampled_from(CHANNELS))
    def buy(self, org: str, amount: int, people: int, channel: str) -> None:
        self.order += 1
        state, _ = self._snapshot_state(org)
        try:
            self.w.buy(org, f"O-{self.order}", amount, people, channel=channel)
        except BangfuError as exc:
            if state in (states.SUBMITTED, states.ACCEPTED):
                assert exc.code == "purchase.record_locked"
            else:  # a purchase for 0 人次 is refused (Annex 2 counts people who received goods)
                assert people == 0 and exc.code == "purchase.people_zero", exc.code

    @rule(org=st.sampled_from(ORGS[1:]), days=st.integers(-3, 40))
    def move_deadline(self, org: str, days: int) -> None:
        """The parent's reviewer moves the child's deadline (lifting an overdue flag)."""
        parent = PARENT[org]
        assert parent is not None
        try:
            oversight.set_report_deadline(
                self.w.uow(), record_id=self.rid[org], user_id=self.w.uid(f"{parent.lower()}-reviewer"),
                seen_version=self._snapshot_state(org)[1], last_day=clock.china_date(NOW_2021) + timedelta(days=days),
                now=NOW_2021)
            self.expected_version[org] += 1
        except BangfuError:
            event("deadline refused")

    @rule(days=st.integers(0, 75))
    def sweep(self, days: int) -> None:
        """The daily sweep at some day of the round: overdue and late flags, lapses, reminders
        (facts in the history, never a state or a version)."""
        sweeps.run_sweep(self.db, now=NOW_2021 + timedelta(days=days))

    @rule(org=st.sampled_from(ORGS), texts=st.booleans())
    def info(self, org: str, texts: bool) -> None:
        kw = {"work_experience": "经验", "work_highlights": "亮点"} if texts else {}
        try:
            self.w.info(org, **kw)
        except BangfuError as exc:
            assert exc.code == "report.locked"
            return
        self.expected_version[org] += 1

    # --- invariants ---------------------------------------------------------------------------

    @invariant()
    def history_is_a_walk_along_the_table(self) -> None:
        with self.w.uow(True) as uow:
            for org in ORGS:
                rec = uow.records.get(self.rid[org])
                state = states.INITIAL
                for h in uow.records.history(self.rid[org]):
                    assert h.from_state == state
                    # A deadline change, a system fact and a 补报 keep the state.
                    if h.trigger in (oversight.DEADLINE_TRIGGER, *SYSTEM_FACTS, *lifecycle.EVENT_LABELS):
                        assert h.to_state == state
                        continue
                    t = states.find(h.trigger, h.from_state)
                    assert t is not None and t.dest == h.to_state
                    state = h.to_state
                assert rec.state == state
                assert rec.version == self.expected_version[org]

    @invariant()
    def the_rollup_equals_its_recomputation_and_the_full_scan(self) -> None:
        with self.w.uow(True) as uow:
            for rnd in uow.directory.rounds():
                assert rollup.stored(uow.session, rnd.id or 0) == rollup.computed(uow.session, rnd.id or 0)
            rnd_id = uow.records.get(self.rid["C1"]).round_id
            # The province's units (no root) and the city's districts; two months on, every
            # record not submitted is overdue by its deadline.
            for under, when in ((None, NOW_2021), (uow.directory.org_by_code("C1").id, NOW_2021 + timedelta(days=60))):
                fast = uow.reports.completeness(rnd_id, now=when, scope="subtree",
                                               under_org_id=under, check_snapshots=False)
                full = uow.reports.completeness(rnd_id, now=when, scope="subtree",
                                               under_org_id=under, check_snapshots=False, use_rollup=False)
                assert [r.to_dict() for r in fast] == [r.to_dict() for r in full], (under, when)

    @invariant()
    def frozen_snapshots_match_what_summarizing_would_freeze(self) -> None:
        with self.w.uow(True) as uow:
            for org in ORGS:
                rec = uow.records.get(self.rid[org])
                frozen = rec.state in (states.SUBMITTED, states.ACCEPTED) or (
                    rec.state == states.SUMMARIZED and not rec.snapshot_stale)
                if not frozen:
                    continue
                assert rec.snapshot_id is not None
                _snap, lines = uow.records.snapshot(rec.snapshot_id)
                stored = {ln.channel: (ln.people, ln.amount_fen) for ln in lines}
                # A sent report and its sent supplements (补报) together hold every accepted part.
                sent = [s.lines for s in uow.supplements.for_record(self.rid[org]) if s.state in ("submitted", "accepted")]
                if sent:
                    assert rec.state in (states.SUBMITTED, states.ACCEPTED), (org, rec.state)
                now, _missing = uow.reports.snapshot_lines(self.rid[org])
                assert add_lines(stored, *sent) == now, (org, rec.state)


RecordsMachine.TestCase.settings = settings(
    max_examples=30, stateful_step_count=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRecordsMachine = RecordsMachine.TestCase

