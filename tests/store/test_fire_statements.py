"""lifecycle.fire does its work in a bounded number of SQL statements (W1 found it reading the
same rows several times), and still writes state, history and outbox rows together."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event, text

from tests.conftest import NOW_2021, World
from workflow.app import lifecycle
from workflow.store.uow import UnitOfWork


@contextmanager
def counted(w: World) -> Iterator[list[str]]:
    seen: list[str] = []

    def before(_conn, _cursor, statement, _params, _context, _executemany) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(w.db.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(w.db.engine, "before_cursor_execute", before)


def _work(statements: list[str]) -> list[str]:
    """The statements that touch tables (SQLite's BEGIN IMMEDIATE is not one)."""
    return [s for s in statements if not s.upper().startswith("BEGIN")]


def _rows(w: World, sql: str) -> int:
    with w.db.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar() or 0)


def test_submit_and_accept_each_take_a_handful_of_statements(any_world: World) -> None:
    w = any_world
    w.plan("G1")
    w.buy("G1", "G1-1", 120000, 20)
    w.fire("G1", "finish_purchasing", "g1-clerk")
    w.info("G1")
    w.fire("G1", "summarize", "g1-clerk")
    rid, clerk, reviewer = w.rid("G1"), w.uid("g1-clerk"), w.uid("d1-reviewer")
    version = w.version("G1")
    with counted(w) as submit_sql:
        done = lifecycle.fire(UnitOfWork(w.db), record_id=rid, trigger="submit", user_id=clerk,
                             seen_version=version, now=NOW_2021)
    # Record+org+round cap+parent state+snapshot totals+user+seats (1), the versioned UPDATE,
    # the rollup upsert over the organisation and its ancestors, INSERT history, INSERT … SELECT
    # of the outbox rows (recipients and channels in SQL), then COMMIT; plus BEGIN on SQLite.
    # No pre-ping, no ORM flush, nothing read twice.
    assert _work(submit_sql)[:1] and _work(submit_sql)[0].lstrip().upper().startswith("SELECT")
    assert sum(s.lstrip().upper().startswith("SELECT") for s in _work(submit_sql)) == 1, "\n".join(submit_sql)
    assert len(_work(submit_sql)) <= 5, "\n".join(submit_sql)
    assert done.to_state == "submitted" and done.notifications == 2  # d1-reviewer: inbox + e-mail
    with counted(w) as accept_sql:
        done = lifecycle.fire(UnitOfWork(w.db), record_id=rid, trigger="accept", user_id=reviewer,
                             seen_version=version + 1, now=NOW_2021)
    # accept adds the parent's stale-snapshot UPDATE.
    assert len(_work(accept_sql)) <= 6, "\n".join(accept_sql)
    # g1-clerk and, since issue 22, d1-clerk (it compiles the district's report): inbox + e-mail each,
    # still one INSERT … SELECT.
    assert done.to_state == "accepted" and done.notifications == 4
    assert w.state("G1") == "accepted"
    assert _rows(w, f"SELECT count(*) FROM history WHERE record_id = {rid} AND trigger IN ('submit', 'accept')") == 2
    assert _rows(w, f"SELECT count(*) FROM notification WHERE record_id = {rid}") == 6


def test_a_repeated_history_source_inserts_no_second_notification(any_world: World) -> None:
    w = any_world
    row = {"user_id": w.uid("g1-clerk"), "channel": "inbox", "source": "history:999999", "kind": "record_event",
           "record_id": w.rid("G1"), "payload": "{}", "status": "sent", "attempts": 0}
    with UnitOfWork(w.db) as uow:
        assert uow.notifications.add([row, {**row, "channel": "email", "status": "pending"}]) == 2
        assert uow.notifications.add([row]) == 0
        uow.commit()


def test_users_without_membership_or_inactive_are_refused_as_before(any_world: World) -> None:
    import pytest
    from sqlalchemy import update

    from workflow.domain.errors import NotFound
    from workflow.store.tables import User

    w = any_world
    with w.db.begin() as s:
        s.add(User(username="nobody", display_name="无单位用户"))
    rid = w.rid("G1")
    with pytest.raises(NotFound) as lost:
        lifecycle.fire(UnitOfWork(w.db), record_id=rid, trigger="finish_purchasing", user_id=w.uid("nobody"),
                      seen_version=w.version("G1"), now=NOW_2021)
    assert lost.value.code == "record.not_found"
    clerk = w.uid("g1-clerk")
    with w.db.begin() as s:
        s.execute(update(User).where(User.id == clerk).values(is_active=False))
    with pytest.raises(NotFound) as gone:
        lifecycle.fire(UnitOfWork(w.db), record_id=rid, trigger="finish_purchasing", user_id=clerk,
                      seen_version=w.version("G1"), now=NOW_2021)
    assert gone.value.code == "user.not_found"
    assert w.state("G1") == "planned"


def test_the_outbox_insert_select_matches_the_channels_each_user_chose(any_world: World) -> None:
    """fire writes its outbox rows with one INSERT … SELECT; they are the rows
    lifecycle.notification_rows makes for the same users: the inbox always, e-mail only with an
    address, SMS when chosen, spaces ignored, inactive members and the actor left out."""
    from sqlalchemy import select

    from workflow.store.tables import Membership, Notification, Organisation, User

    w = any_world
    with w.db.begin() as s:
        d1 = s.execute(select(Organisation.id).where(Organisation.code == "D1")).scalar_one()
        extra = [
            User(username="rv-inbox", display_name="甲", email="a@example.cn", channels="inbox"),
            User(username="rv-noaddr", display_name="乙", email=None, channels="inbox,email"),
            User(username="rv-sms", display_name="丙", email="", channels=" sms , email "),
            User(username="rv-gone", display_name="丁", email="d@example.cn", channels="inbox,email", is_active=False),
        ]
        s.add_all(extra)
        s.flush()
        s.add_all([Membership(user_id=u.id or 0, org_id=d1, role="reviewer") for u in extra])
    w.to_submitted("G1")
    with w.uow(True) as uow:
        h = uow.records.history(w.rid("G1"))[-1]
        got = sorted((r.user_id, r.channel, r.status) for r in uow.session.execute(
            select(Notification).where(Notification.source == f"history:{h.id}")).scalars())
        reviewers = uow.directory.users_with_role(d1, "reviewer")
        want = sorted((r["user_id"], r["channel"], r["status"]) for r in lifecycle.notification_rows(
            reviewers, kind="record_event", source="x", record_id=None, payload={}, now=NOW_2021,
            exclude_user_id=h.actor_user_id))
    assert got == want
    assert (w.uid("rv-sms"), "sms", "pending") in got and (w.uid("rv-sms"), "email", "pending") not in got
    assert not any(u == w.uid("rv-noaddr") and ch == "email" for u, ch, _ in got)


def test_four_eyes_counts_only_this_records_returns(any_world: World) -> None:
    """The context statement asks whether the actor filled *this* record since *its* last
    return: a return of another record later does not clear the actor's on-behalf submit."""
    import pytest

    from workflow.domain.errors import RuleViolation

    w = any_world
    w.plan("G1")
    w.buy("G1", "G1-1", 120000, 20)
    w.fire("G1", "finish_purchasing", "g1-clerk")
    w.info("G1")
    w.fire("G1", "summarize", "g1-clerk")
    w.fire("G1", "submit", "d1-reviewer")  # on the clerk's behalf (代填报)
    w.to_submitted("G2")
    w.fire("G2", "return_for_revision", "d1-reviewer", reason="请补充发票")
    with pytest.raises(RuleViolation) as refused:
        w.fire("G1", "accept", "d1-reviewer")
    assert refused.value.code == "review.four_eyes"
    assert w.state("G1") == "submitted"
