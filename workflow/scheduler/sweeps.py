"""The daily sweep: reminders before deadlines and the round checks, as set-based SQL.

For each round of each loaded policy the sweep works out from the database what is due at
``now`` and writes it, never one ORM round trip per record:

- **Reminders.** Offset N of a deadline whose last China day is L is due at
  ``at_china_hour(L - N, policy.reminder_hour)``. Of the offsets due and not yet past, only the
  latest is written; earlier ones that never ran are recorded as ``skipped`` in
  ``reminder_run`` (a sweep that sat still from 1 to 29 December sends the 3-day reminder only).
  Three kinds: ``quota_reminder`` to the clerks of grassroots unions with quota left,
  ``report_reminder`` to the clerks of organisations not yet submitted before their own report
  deadline, ``reviewer_digest`` to the reviewers of each parent (and its group robot).
- **代理.** Both people of a stand-in are told when its range starts and ends
  (:func:`_delegation_notices`, keys ``delegation:<id>:start|end``).
- **Round checks.** At the entry cutoff each grassroots record's unused extra quota lapses
  (``lapsed_fen``); at each report deadline, records not submitted are marked overdue (and the
  parent's reviewers told in one digest per parent listing its overdue children); late
  submissions are marked. Each fact is a history row by the
  system actor (no user, role ``system``, state unchanged).

Every row is written by ``INSERT … SELECT … ON CONFLICT DO NOTHING`` under the notification's
unique key (user, channel, source), source ``reminder:<round>:<kind>:<org>:<due date>``, and
every flag update is guarded by the flag itself, so a second sweep, a second beat or a retried
task adds nothing. On PostgreSQL each round's writes lock its ``round`` row first, so two
sweeps at once serialise instead of both writing a history row.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, bindparam, text
from sqlmodel import Session

import states
from workflow.domain import clock
from workflow.domain.policy import Policy
from workflow.scheduler.locks import named_lock
from workflow.settings import get_settings
from workflow.store import chain, rollup
from workflow.store.errors import translated
from workflow.store.tables import Database, Round, UTCDateTime
from workflow.store.uow import ANALYZE_MIN_ROWS, UnitOfWork

log = logging.getLogger("bangfu.sweep")

SYSTEM_ROLE = "system"
NOT_SUBMITTED = (states.PLANNED, states.PURCHASED, states.SUMMARIZED)
#: Overdue and lapse notices go out only for deadlines passed less than this long ago: a
#: sweep started on an old database records the facts of long-closed rounds (flags, history)
#: without flooding inboxes about them.
NOTICE_HORIZON = timedelta(days=30)
#: Records per write transaction for the big reminder statements.
CHUNK = 20_000


@dataclass
class SweepReport:
    """What one sweep wrote.

    Attributes:
        now: the as-of instant of the sweep.
        notifications: rows inserted, by kind (a second sweep inserts none).
        sent_offsets: ``(round_id, group, last_day, offset)`` whose reminders were written.
        skipped_offsets: offsets recorded as skipped by this sweep (catch-up).
        lapsed: grassroots records whose quota lapsed in this sweep.
        overdue: records marked overdue in this sweep.
        late: records marked late in this sweep.
        seconds: wall time per step, summed over rounds.
    """

    now: datetime
    notifications: dict[str, int] = field(default_factory=dict)
    sent_offsets: list[tuple[int, str, date, int]] = field(default_factory=list)
    skipped_offsets: list[tuple[int, str, date, int]] = field(default_factory=list)
    lapsed: int = 0
    overdue: int = 0
    late: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    stood_aside: str | None = None

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - started

    def add(self, kind: str, count: int) -> None:
        self.notifications[kind] = self.notifications.get(kind, 0) + count

    @property
    def total_notifications(self) -> int:
        return sum(self.notifications.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "notifications": dict(self.notifications),
            "sent_offsets": [_offset_dict(o) for o in self.sent_offsets],
            "skipped_offsets": [_offset_dict(o) for o in self.skipped_offsets],
            "lapsed": self.lapsed,
            "overdue": self.overdue,
            "late": self.late,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "stood_aside": self.stood_aside,
        }


def _offset_dict(o: tuple[int, str, date, int]) -> dict[str, Any]:
    return {"round_id": o[0], "group": o[1], "last_day": o[2].isoformat(), "offset": o[3]}


# --- which offset is due (pure) -------------------------------------------------------------


@dataclass(frozen=True)
class DueOffsets:
    """The reminder offset to send now for one deadline, and the earlier ones it supersedes."""

    latest: int | None
    due_at: datetime | None
    superseded: tuple[tuple[int, datetime], ...] = ()


def due_offsets(last_day: date, offsets: Iterable[int], hour: int, now: datetime) -> DueOffsets:
    """Work out which reminder offset of a deadline is due at ``now``.

    Args:
        last_day: the deadline's last China day.
        offsets: days before ``last_day`` (0 = the last day itself).
        hour: the China hour reminders go out.
        now: the as-of instant.

    Returns:
        The latest offset whose due instant has come, unless the deadline has passed, and the
        earlier due offsets it supersedes (with their due instants).
    """
    if now >= clock.deadline_instant(last_day):
        return DueOffsets(None, None)
    due = sorted(
        ((n, clock.at_china_hour(last_day - timedelta(days=n), hour)) for n in set(offsets)),
        key=lambda pair: pair[1],
    )
    due = [(n, at) for n, at in due if at <= now]
    if not due:
        return DueOffsets(None, None)
    latest, at = due[-1]
    return DueOffsets(latest, at, tuple(due[:-1]))


# --- SQL fragments per dialect --------------------------------------------------------------


class _Sql:
    """The few places where SQLite and PostgreSQL spell things differently."""

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"

    def obj(self, *pairs: tuple[str, str]) -> str:
        """A JSON object (as text) from ``(key, SQL expression)`` pairs."""
        inner = ", ".join(f"'{k}', {v}" for k, v in pairs)
        return f"CAST(json_build_object({inner}) AS TEXT)" if self.pg else f"json_object({inner})"

    def agg(self, *pairs: tuple[str, str], where: str, order: str) -> str:
        """A JSON array (as text) of objects, aggregated over the rows matching ``where``."""
        inner = ", ".join(f"'{k}', {v}" for k, v in pairs)
        if self.pg:
            return (f"COALESCE(CAST(json_agg(json_build_object({inner}) ORDER BY {order})"
                    f" FILTER (WHERE {where}) AS TEXT), '[]')")
        return f"COALESCE(json_group_array(json_object({inner})) FILTER (WHERE {where}), '[]')"

    def embed(self, expr: str) -> str:
        """Embed JSON text inside :meth:`obj` as JSON, not as a string."""
        return f"CAST({expr} AS json)" if self.pg else f"json({expr})"

    def lock_round(self, session: Session, round_id: int) -> None:
        if self.pg:
            session.execute(text("SELECT id FROM round WHERE id = :id FOR UPDATE"), {"id": round_id})


def _state_label(column: str) -> str:
    cases = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in states.STATE_LABELS.items())
    return f"(CASE {column} {cases} ELSE {column} END)"


def _bound(sql: str, params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """A statement and the parameters it names; datetimes are bound through
    :class:`UTCDateTime` so SQLite compares them in the stored format."""
    used = {k: v for k, v in params.items() if re.search(rf":{k}\b", sql)}
    stmt = text(sql).bindparams(
        *[bindparam(k, type_=UTCDateTime) for k, v in used.items() if isinstance(v, datetime)]
    )
    return stmt, used


def _exec(session: Session, sql: str, params: dict[str, Any]) -> int:
    """Run one statement (parameters bound by :func:`_bound`); the rows it changed."""
    # ``:avail``: when a notification row became deliverable, on the real clock whatever the
    # business time of the sweep (the outbox's age is measured from it).
    stmt, used = _bound(sql, {"sms_on": int(_SMS_ON.get()), "avail": datetime.now(UTC), **params})
    return session.execute(stmt, used).rowcount or 0


def _select(session: Session, sql: str, params: dict[str, Any]) -> list[Any]:
    """Rows of one query, parameters bound by :func:`_bound`."""
    stmt, used = _bound(sql, params)
    return list(session.execute(stmt, used).all())


def _flag(session: Session, rnd_id: int, column: str, where: str, params: dict[str, Any]) -> int:
    """Set a boolean flag of the records ``where`` selects (as ``r``) and move their rollup
    counts with it, in the caller's transaction: the counts first (grouped, only those
    records), then one UPDATE with the same condition."""
    clause, used = _bound(where, params)
    rollup.shift(session, rnd_id, clause, used, **{column: True})
    return _exec(session, f"UPDATE record AS r SET {column} = TRUE WHERE {where}", params)


# Who receives a personal reminder on which channel: the inbox always, e-mail when chosen and
# the user has an address, SMS when chosen, the user has a phone number and a provider is
# configured (``:sms_on``; without one no SMS row is written, so none waits for ever).
_SMS_ON: ContextVar[bool] = ContextVar("bangfu_sweep_sms_on", default=False)
_CHANNELS = "(SELECT 'inbox' AS ch UNION ALL SELECT 'email' UNION ALL SELECT 'sms')"
_CHANNEL_OK = (
    "(c.ch = 'inbox'"
    " OR (c.ch = 'email' AND u.email IS NOT NULL AND u.email <> ''"
    "     AND (',' || REPLACE(u.channels, ' ', '') || ',') LIKE '%,email,%')"
    " OR (c.ch = 'sms' AND :sms_on = 1 AND u.phone IS NOT NULL AND u.phone <> ''"
    "     AND (',' || REPLACE(u.channels, ' ', '') || ',') LIKE '%,sms,%'))"
)
_INSERT = (
    "INSERT INTO notification (user_id, channel, source, kind, record_id, payload, status,"
    " attempts, created_at, sent_at, available_at)"
)
_ON_CONFLICT = " ON CONFLICT (user_id, channel, source) DO NOTHING"


def _to_people(*, target: str, role: str, source: str, kind: str, record: str,
               payload: str, where: str) -> str:
    """``INSERT … SELECT`` one row per member of ``role`` in the organisation ``target`` and
    chosen channel; the caller replaces ``{from_clause}``."""
    return (
        f"{_INSERT} SELECT u.id, c.ch, {source}, '{kind}', {record}, {payload},"
        " CASE WHEN c.ch = 'inbox' THEN 'sent' ELSE 'pending' END, 0, :now,"
        " CASE WHEN c.ch = 'inbox' THEN :now END, :avail"
        " FROM {from_clause}"
        f" JOIN membership m ON m.org_id = {target} AND m.role = '{role}'"
        " JOIN app_user u ON u.id = m.user_id AND u.is_active"
        f" CROSS JOIN {_CHANNELS} c"
        f" WHERE {where} AND {_CHANNEL_OK}"
        f"{_ON_CONFLICT}"
    )


def _to_robots(*, target: str, source: str, kind: str, record: str, payload: str, where: str) -> str:
    """``INSERT … SELECT`` one row per group robot of ``target``, charged to its first reviewer
    (the outbox key needs a user)."""
    first_reviewer = (f"(SELECT MIN(m.user_id) FROM membership m WHERE m.org_id = {target}"
                      " AND m.role = 'reviewer')")
    return (
        f"{_INSERT} SELECT {first_reviewer}, rb.kind, {source}, '{kind}', {record}, {payload},"
        " 'pending', 0, :now, NULL, :avail"
        " FROM {from_clause}"
        f" JOIN org_robot rb ON rb.org_id = {target}"
        f" WHERE {where} AND {first_reviewer} IS NOT NULL"
        f"{_ON_CONFLICT}"
    )


def _has_robots(session: Session) -> bool:
    """Whether any organisation has a group robot: without one the robot statements (each
    aggregating the round before joining ``org_robot``) would write nothing, so they are not run."""
    return session.execute(text("SELECT 1 FROM org_robot LIMIT 1")).first() is not None


def _source(kind: str, org: str) -> str:
    return f"(CAST(:src_pre AS TEXT) || '{kind}:' || CAST({org} AS TEXT) || CAST(:src_post AS TEXT))"


# --- the sweep ------------------------------------------------------------------------------


@translated()  # the worker retries StoreUnavailable, never a SQLAlchemy name
def run_sweep(database: Database, *, now: datetime, sms: bool | None = None,
              holder: str = "sweep") -> SweepReport:
    """Write every reminder and round check due at ``now``. Idempotent.

    Two sweeps never run at once: the sweep takes the ``sweep`` lock (a PostgreSQL advisory
    lock; a lock row with expiry on SQLite); a second one stands aside, logs it and returns a
    report with ``stood_aside`` set.

    Args:
        database: the database.
        now: the as-of (business) instant, aware.
        sms: write SMS rows (default: when an SMS provider is configured).
        holder: who sweeps (logged, written in the lock row).

    Returns:
        What this sweep wrote.
    """
    report = SweepReport(now=now)
    settings = get_settings()
    started = time.perf_counter()
    with named_lock(database, "sweep", holder=holder,
                    seconds=settings.sweep_lock_seconds) as lock:
        if not lock.held:
            report.stood_aside = lock.holder or "?"
            log.info("sweep stood aside", extra={"event": "sweep_stood_aside",
                                                 "holder": holder, "held_by": lock.holder})
            return report
        token = _SMS_ON.set(bool(settings.sms_url) if sms is None else sms)
        try:
            _sweep(database, now, report)
        finally:
            _SMS_ON.reset(token)
        seconds = time.perf_counter() - started
        lock.finish({"finished": True, "seconds": round(seconds, 3),
                     "rows": report.total_notifications, "now": now.isoformat()})
    log.info("sweep", extra={"event": "sweep", "holder": holder, "now": now.isoformat(),
                             "rows": report.total_notifications,
                             "notifications": json.dumps(report.notifications),
                             "lapsed": report.lapsed, "overdue": report.overdue,
                             "late": report.late, "seconds": round(seconds, 3)})
    return report


def _sweep(database: Database, now: datetime, report: SweepReport) -> None:
    sql = _Sql(database.dialect)
    with UnitOfWork(database, readonly=True) as uow:
        rounds = []
        for r in uow.directory.rounds():
            uow.detach(r)
            rounds.append((r, uow.directory.policy(r.policy_code)))
    for rnd, policy in rounds:
        with report.timed("quota_reminders"):
            _quota_reminders(database, sql, rnd, policy, now, report)
        with report.timed("report_reminders_and_digests"):
            _report_reminders(database, sql, rnd, policy, now, report)
        with report.timed("late"):
            _late(database, sql, rnd, now, report)
        with report.timed("overdue"):
            _overdue(database, sql, rnd, now, report)
        if now >= rnd.entry_cutoff:
            with report.timed("lapse"):
                _lapse(database, sql, rnd, now, report)
    with report.timed("delegations"):
        _delegation_notices(database, sql, now, report)
    with report.timed("outbox_failed"):
        _outbox_failed(database, now, report)
    flagged = report.lapsed + report.overdue + report.late
    # A bulk load of outbox rows, or of history rows and record flags (a catch-up sweep may
    # lapse a whole round without a notice): fresh planner statistics for the next steps
    # (delivery claims, the next sweep's NOT EXISTS checks), for the tables that took them only.
    # History rows are written for flagged records alone: a reminder-only sweep leaves the big
    # history table as it was (sampling it took 0.2-0.4 s a province, beside the outbox's 0.5).
    tables = (("notification", "reminder_run") if report.total_notifications >= ANALYZE_MIN_ROWS else ()) + (
        ("history", "record") if flagged >= ANALYZE_MIN_ROWS else ())
    if tables:
        with UnitOfWork(database) as uow, report.timed("analyze"):
            uow.bulk.analyze(*tables)
            uow.commit()


def _decide(session: Session, rnd: Round, grp: str, last_day: date, policy: Policy,
            now: datetime, report: SweepReport) -> tuple[int, date] | None:
    """Record the offset decision for one deadline; return ``(offset, due date)`` to write, if
    any. An offset once recorded as skipped is never sent (the clock may be set back)."""
    due = due_offsets(last_day, policy.reminder_offsets, policy.reminder_hour, now)
    if due.latest is None or due.due_at is None:
        return None
    rid = rnd.id
    done = {
        (n, status)
        for n, status in session.execute(
            text("SELECT offset_days, status FROM reminder_run"
                 " WHERE round_id = :r AND grp = :g AND last_day = :d"),
            {"r": rid, "g": grp, "d": last_day},
        ).all()
    }
    done_offsets = {n for n, _ in done}
    insert = ("INSERT INTO reminder_run (round_id, grp, last_day, offset_days, due_at, status, at)"
              " VALUES (:r, :g, :d, :n, :due, :status, :now)"
              " ON CONFLICT (round_id, grp, last_day, offset_days) DO NOTHING")
    for n, at in due.superseded:
        if n not in done_offsets:
            _exec(session, insert, {"r": rid, "g": grp, "d": last_day, "n": n, "due": at,
                                    "status": "skipped", "now": now})
            report.skipped_offsets.append((rid or 0, grp, last_day, n))
    if (due.latest, "skipped") in done:
        return None
    if due.latest not in done_offsets:
        _exec(session, insert, {"r": rid, "g": grp, "d": last_day, "n": due.latest,
                                "due": due.due_at, "status": "sent", "now": now})
    report.sent_offsets.append((rid or 0, grp, last_day, due.latest))
    return due.latest, last_day - timedelta(days=due.latest)


def _record_ranges(database: Database, round_id: int) -> list[tuple[int, int]]:
    """The round's record ids cut into ranges of :data:`CHUNK` on SQLite: each range is written
    in its own short transaction, so other writers (the web, the CLI) wait at most one chunk, not
    the whole province. One range on PostgreSQL."""
    with database.session(readonly=True) as session:
        lo, hi = session.execute(text("SELECT MIN(id), MAX(id) FROM record WHERE round_id = :r"),
                                 {"r": round_id}).one()
    if lo is None:
        return []
    if database.dialect == "postgresql":
        # MVCC: a long statement blocks no other writer, and each chunk would rebuild the
        # joins' hash tables over all members (a chunked province sweep took 97 s against 65 s).
        return [(lo, hi)]
    return [(start, min(start + CHUNK - 1, hi)) for start in range(lo, hi + 1, CHUNK)]


def _in_chunks(database: Database, sql: _Sql, rnd: Round, stmt: str, params: dict[str, Any]) -> int:
    """Run ``stmt`` (filtered by ``:lo``/``:hi`` on record ids) chunk by chunk. A sweep killed
    half-way is finished by the next one: the latest offset's statement is re-run every sweep
    until the next offset is due, and the unique key skips what is already written."""
    written = 0
    for lo, hi in _record_ranges(database, rnd.id or 0):
        with database.begin() as session:
            sql.lock_round(session, rnd.id or 0)
            written += _exec(session, stmt, {**params, "lo": lo, "hi": hi})
    return written


def _quota_reminders(database: Database, sql: _Sql, rnd: Round, policy: Policy, now: datetime,
                     report: SweepReport) -> None:
    last_day = clock.deadline_last_day(rnd.quota_deadline)
    with database.begin() as session:
        sql.lock_round(session, rnd.id or 0)
        decided = _decide(session, rnd, "quota", last_day, policy, now, report)
    if decided is None:
        return
    _offset, due_on = decided
    # The round's grassroots records with their extra-quota spending, one id range at a time.
    # The spending is one GROUP BY over the range's purchases, joined: as a correlated
    # subquery in the derived table it was flattened into the outer query and evaluated three
    # times per row (the filter, used_fen, left_fen) — 0.7 million index scans on PostgreSQL.
    from_clause = (
        "(SELECT r.id AS rid, r.org_id, o.name, r.quota_fen, COALESCE(s.used, 0) AS used"
        " FROM record r JOIN organisation o ON o.id = r.org_id"
        " LEFT JOIN (SELECT p.record_id, SUM(p.amount_fen) AS used FROM purchase p"
        "   WHERE p.record_id BETWEEN :lo AND :hi AND p.budget = 'extra_quota'"
        "   AND p.voided_at IS NULL GROUP BY p.record_id) s ON s.record_id = r.id"
        " WHERE r.round_id = :rid AND r.id BETWEEN :lo AND :hi AND r.is_grassroots"
        "  AND r.amount_per_member_fen > 0) t"
    )
    payload = sql.obj(
        ("union_name", "t.name"), ("quota_fen", "t.quota_fen"), ("used_fen", "t.used"),
        ("left_fen", "t.quota_fen - t.used"), ("deadline", "CAST(:last_day AS TEXT)"),
        ("days_left", "CAST(:offset AS INTEGER)"),
        ("path", "'/records/' || CAST(t.rid AS TEXT)"),
    )
    stmt = _to_people(target="t.org_id", role=states.CLERK,
                      source=_source("quota_reminder", "t.org_id"), kind="quota_reminder",
                      record="t.rid", payload=payload, where="t.quota_fen > t.used")
    report.add("quota_reminder", _in_chunks(database, sql, rnd, stmt.replace(
        "{from_clause}", from_clause), {
        "rid": rnd.id, "now": now, "last_day": last_day.isoformat(),
        "offset": _days_left(last_day, now),
        "src_pre": f"reminder:{rnd.id}:", "src_post": f":{due_on.isoformat()}",
    }))


def _report_reminders(database: Database, sql: _Sql, rnd: Round, policy: Policy, now: datetime,
                      report: SweepReport) -> None:
    """Report reminders and reviewer digests, per distinct report deadline of the round (a
    parent may extend a child's deadline, so there can be a few)."""
    with database.session(readonly=True) as session:
        deadlines = [row[0] for row in session.execute(
            text("SELECT DISTINCT report_deadline FROM record WHERE round_id = :rid"),
            {"rid": rnd.id},
        ).all()]
    instants = sorted({_as_instant(d) for d in deadlines})
    for deadline in instants:
        last_day = clock.deadline_last_day(deadline)
        with database.begin() as session:
            sql.lock_round(session, rnd.id or 0)
            decided = _decide(session, rnd, "report", last_day, policy, now, report)
        if decided is None:
            continue
        _offset, due_on = decided
        params = {
            "rid": rnd.id, "now": now, "deadline": deadline, "last_day": last_day.isoformat(),
            "offset": _days_left(last_day, now), "round_label": rnd.label,
            "src_pre": f"reminder:{rnd.id}:", "src_post": f":{due_on.isoformat()}",
        }
        report.add("report_reminder", _in_chunks(database, sql, rnd, _report_stmt(sql), params))
        # Digests group subordinates by parent: one statement (a few hundred rows a province).
        with database.begin() as session:
            sql.lock_round(session, rnd.id or 0)
            people, robots = _digest_stmts(sql)
            for stmt in (people, robots) if _has_robots(session) else (people,):
                report.add("reviewer_digest", _exec(session, stmt, params))


def _days_left(last_day: date, now: datetime) -> int:
    # What the reader sees: whole China days left at the sweep, not the nominal offset (a
    # catch-up sweep may run days after the offset's due date).
    return max((last_day - clock.china_date(now)).days, 0)


def _as_instant(value: Any) -> datetime:
    # Raw SELECTs on SQLite return the stored text; PostgreSQL returns an aware datetime.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    result = UTCDateTime().process_result_value(value, None)  # type: ignore[arg-type]
    assert result is not None
    return result


def _report_stmt(sql: _Sql) -> str:
    from_clause = (
        "record r JOIN organisation o ON o.id = r.org_id"
    )
    payload = sql.obj(
        ("org_name", "o.name"), ("round_label", "CAST(:round_label AS TEXT)"),
        ("state_label", _state_label("r.state")), ("deadline", "CAST(:last_day AS TEXT)"),
        ("days_left", "CAST(:offset AS INTEGER)"), ("path", "'/records/' || CAST(r.id AS TEXT)"),
    )
    where = (f"r.round_id = :rid AND r.id BETWEEN :lo AND :hi AND r.report_deadline = :deadline"
             f" AND r.state IN ({_in(NOT_SUBMITTED)})")
    stmt = _to_people(target="r.org_id", role=states.CLERK,
                      source=_source("report_reminder", "r.org_id"), kind="report_reminder",
                      record="r.id", payload=payload, where=where)
    return stmt.replace("{from_clause}", from_clause)


def _in(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _digest_stmts(sql: _Sql) -> list[str]:
    """Per parent organisation: its subordinates not yet submitted and those awaiting its
    decision, for the reviewers (people) and the group robot."""
    item = (("name", "k.name"), ("state_label", _state_label("k.state")),
            ("path", "'/records/' || CAST(k.id AS TEXT)"))
    waiting = (("name", "k.name"), ("submitted_at", "k.submitted_at"),
               ("path", "'/records/' || CAST(k.id AS TEXT)"))
    not_submitted = sql.agg(*item, where=f"k.state IN ({_in(NOT_SUBMITTED)})", order="k.code")
    awaiting = sql.agg(*waiting, where="k.state = 'submitted'", order="k.code")
    agg = (
        f"(SELECT k.porg, {not_submitted} AS ns, {awaiting} AS aw"
        " FROM (SELECT o.parent_id AS porg, r.id, o.name, o.code, r.state, r.submitted_at"
        "       FROM record r JOIN organisation o ON o.id = r.org_id"
        "       WHERE r.round_id = :rid AND r.report_deadline = :deadline"
        "         AND r.state <> 'accepted' AND o.parent_id IS NOT NULL"
        f"      {'' if sql.pg else 'ORDER BY o.code'}) k"
        " GROUP BY k.porg) a"
        " JOIN organisation po ON po.id = a.porg"
        " LEFT JOIN record pr ON pr.org_id = po.id AND pr.round_id = :rid"
    )
    payload = sql.obj(
        ("reviewer_org_name", "po.name"), ("org_id", "po.id"),
        ("deadline", "CAST(:last_day AS TEXT)"), ("days_left", "CAST(:offset AS INTEGER)"),
        ("not_submitted", sql.embed("a.ns")), ("awaiting_decision", sql.embed("a.aw")),
        ("path", "'/review'"),
    )
    where = "(a.ns <> '[]' OR a.aw <> '[]')"
    source = _source("reviewer_digest", "po.id")
    people = _to_people(target="po.id", role=states.REVIEWER, source=source,
                        kind="reviewer_digest", record="pr.id", payload=payload, where=where)
    robots = _to_robots(target="po.id", source=source, kind="reviewer_digest", record="pr.id",
                        payload=payload, where=where)
    return [people.replace("{from_clause}", agg), robots.replace("{from_clause}", agg)]


# --- 代理: a stand-in's range starts or ends -------------------------------------------------


def _delegation_notices(database: Database, sql: _Sql, now: datetime, report: SweepReport) -> None:
    """Tell both people of a delegation (the reviewer away and the stand-in) when its range
    starts (one named ahead: naming a range that starts today was its start notice, same key) and
    when it ends (on its last day), on the inbox and the channels each chose. Cancelled ones get
    neither (the cancel told them). Keys ``delegation:<id>:start`` / ``delegation:<id>:end``: a
    second sweep adds nothing. A sweep that sat still catches up a start while the range runs and
    an end up to :data:`NOTICE_HORIZON` late."""
    today = clock.china_date(now)
    for event, label, when, text_sql in (
        ("start", "代理开始", "d.starts_on <= :today AND d.ends_on >= :today",
         "su.display_name || '从今天起代' || du.display_name || '审核' || o.name || '的下级报表，至'"
         " || CAST(d.ends_on AS TEXT) || '（含当天）'"),
        ("end", "代理结束", "d.ends_on <= :today AND d.ends_on >= :horizon",
         "su.display_name || '代' || du.display_name || '审核' || o.name || '的下级报表，'"
         " || CAST(d.ends_on AS TEXT) || '（含当天）结束，之后由' || du.display_name || '本人审核'"),
    ):
        payload = sql.obj(("org_name", "o.name"), ("org_code", "o.code"), ("event", f"'{label}'"),
                          ("trigger", "'delegate'"), ("actor_name", "du.display_name"),
                          ("reason", text_sql), ("path", "'/review'"))
        stmt = (
            f"{_INSERT} SELECT u.id, c.ch, 'delegation:' || CAST(d.id AS TEXT) || CAST(:event AS TEXT), 'record_event',"
            f" NULL, {payload}, CASE WHEN c.ch = 'inbox' THEN 'sent' ELSE 'pending' END, 0, :now,"
            " CASE WHEN c.ch = 'inbox' THEN :now END, :avail"
            " FROM delegation d JOIN organisation o ON o.id = d.org_id"
            " JOIN app_user du ON du.id = d.delegator_user_id JOIN app_user su ON su.id = d.standin_user_id"
            " JOIN app_user u ON u.id IN (d.delegator_user_id, d.standin_user_id) AND u.is_active"
            f" CROSS JOIN {_CHANNELS} c"
            f" WHERE d.revoked_at IS NULL AND {when} AND {_CHANNEL_OK}{_ON_CONFLICT}"
        )
        params = {k: v for k, v in {"today": today, "horizon": today - NOTICE_HORIZON, "now": now,
                                    "avail": datetime.now(UTC), "sms_on": int(_SMS_ON.get()),
                                    "event": f":{event}"}.items()
                  if f":{k}" in stmt}
        bound = text(stmt).bindparams(*[bindparam(k, type_=Date if isinstance(v, date) and not isinstance(v, datetime)
                                                  else UTCDateTime) for k, v in params.items() if isinstance(v, date)])
        with database.begin() as session:
            report.add(f"delegation_{event}", session.execute(bound, params).rowcount or 0)


# --- the outbox's failures, to the province's admins ----------------------------------------

_FAILED_LABELS = {"email": "邮件", "sms": "短信", "wecom": "企业微信", "dingtalk": "钉钉"}


def _outbox_failed(database: Database, now: datetime, report: SweepReport) -> None:
    """Once a China day while notifications failed for good: tell the admins of the top of the
    tree (inbox, and e-mail/SMS as they chose), with the counts per channel and a link to the
    admins' outbox page."""
    with database.session(readonly=True) as session:
        counts = session.execute(text(
            "SELECT channel, COUNT(*) FROM notification WHERE status = 'failed'"
            " AND kind <> 'outbox_failed' GROUP BY channel ORDER BY channel")).all()
        roots = session.execute(text(
            "SELECT id, name FROM organisation WHERE parent_id IS NULL AND NOT is_observer")).all()
    total = sum(int(n) for _, n in counts)
    if not total:
        return
    by_channel = [{"label": _FAILED_LABELS.get(str(c), str(c)), "failed": int(n)}
                  for c, n in counts]
    stmt = _to_people(
        target="po.id", role=states.ADMIN, source="CAST(:src AS TEXT)", kind="outbox_failed",
        record="NULL", payload="CAST(:payload AS TEXT)", where="po.id = :root",
    ).replace("{from_clause}", "organisation po")
    with database.begin() as session:
        for root_id, name in roots:
            payload = json.dumps({"org_name": name, "failed": total, "by_channel": by_channel,
                                  "path": "/admin/outbox"}, ensure_ascii=False)
            report.add("outbox_failed", _exec(session, stmt, {
                "src": f"outbox_failed:{clock.china_date(now).isoformat()}",
                "payload": payload, "root": root_id, "now": now}))


# --- round checks ---------------------------------------------------------------------------

def _system_history(session: Session, sql: _Sql, trigger: str, detail: str, from_clause: str, where: str,
                    params: dict[str, Any]) -> int:
    """One history row by the system actor per record ``r`` matching ``where``, chained onto each
    record's chain (:mod:`workflow.store.chain`): the rows and their records' chain heads in one
    SELECT, the hashes in Python, one bulk insert. On PostgreSQL the records are locked first
    (``FOR UPDATE``), so their heads cannot move under the sweep: every other history writer
    holds its record's row lock when it appends."""
    if sql.pg:
        _select(session, f"SELECT r.id FROM {from_clause} WHERE {where} FOR UPDATE OF r", params)
    lock = " FOR UPDATE OF r" if sql.pg else ""
    rows = _select(session, f"SELECT r.id, r.state, {detail}, {chain.head_columns_sql('r.id')}"
                            f" FROM {from_clause} WHERE {where}{lock}", params)
    now = params["now"]
    return chain.append_many(session.connection(), [
        ({"record_id": rid, "at": now, "actor_user_id": None, "actor_role": SYSTEM_ROLE, "actor_org_id": None,
          "on_behalf": False, "from_state": state, "to_state": state, "trigger": trigger, "reason": None,
          "detail": det}, head_seq, head_hash)
        for rid, state, det, head_seq, head_hash in rows
    ])


def _late(database: Database, sql: _Sql, rnd: Round, now: datetime, report: SweepReport) -> None:
    """Submissions made at or after their deadline: ``is_late`` and one ``late`` history row."""
    where = ("r.round_id = :rid AND r.submitted_at IS NOT NULL"
             " AND r.submitted_at >= r.report_deadline"
             " AND NOT EXISTS (SELECT 1 FROM history h WHERE h.record_id = r.id"
             "                 AND h.trigger = 'late')")
    detail = sql.obj(("submitted_at", "r.submitted_at"), ("deadline", "r.report_deadline"))
    with database.begin() as session:
        sql.lock_round(session, rnd.id or 0)
        params = {"rid": rnd.id, "now": now}
        report.late += _system_history(session, sql, "late", detail, "record r", where, params)
        _flag(session, rnd.id or 0, "is_late", "r.round_id = :rid AND NOT r.is_late AND r.submitted_at IS NOT NULL"
                                              " AND r.submitted_at >= r.report_deadline", params)


def _overdue(database: Database, sql: _Sql, rnd: Round, now: datetime, report: SweepReport) -> None:
    """Records past their deadline and not submitted: ``is_overdue`` and an ``overdue``
    history row each; their parents' reviewers (and robots) get one ``overdue_notice`` digest
    per parent listing the children that became overdue, keyed by parent, round and deadline
    day (``reminder:<round>:overdue_digest:<parent>:<day>``), never one notice per child."""
    where = (f"r.round_id = :rid AND r.report_deadline <= :now AND NOT r.is_overdue"
             f" AND r.state IN ({_in(NOT_SUBMITTED)})")
    detail = sql.obj(("deadline", "r.report_deadline"))
    last_day = _last_day_sql(sql, "r.report_deadline")
    children = sql.agg(("child_org_name", "o.name"),
                       ("path", "'/records/' || CAST(r.id AS TEXT)"), where="1 = 1",
                       order="o.code")
    digests = (
        f"(SELECT po.id AS parent_id, po.name AS parent_name, {last_day} AS last_day,"
        f" {children} AS children"
        " FROM record r JOIN organisation o ON o.id = r.org_id"
        " JOIN organisation po ON po.id = o.parent_id"
        f" WHERE {where} AND r.report_deadline > :horizon"
        f" GROUP BY po.id, po.name, {last_day}) d"
        " LEFT JOIN record pr ON pr.org_id = d.parent_id AND pr.round_id = :rid"
    )
    payload = sql.obj(
        ("org_name", "d.parent_name"), ("org_id", "d.parent_id"), ("deadline", "d.last_day"),
        ("children", sql.embed("d.children")), ("path", "'/review'"),
    )
    source = ("(CAST(:src_pre AS TEXT) || 'overdue_digest:' || CAST(d.parent_id AS TEXT) || ':'"
              " || d.last_day)")
    people = _to_people(target="d.parent_id", role=states.REVIEWER, source=source,
                        kind="overdue_notice", record="pr.id", payload=payload, where="1 = 1")
    robots = _to_robots(target="d.parent_id", source=source, kind="overdue_notice",
                        record="pr.id", payload=payload, where="1 = 1")
    with database.begin() as session:
        sql.lock_round(session, rnd.id or 0)
        params = {"rid": rnd.id, "now": now, "src_pre": f"reminder:{rnd.id}:",
                  "horizon": now - NOTICE_HORIZON}
        report.overdue += _system_history(session, sql, "overdue", detail, "record r", where, params)
        for stmt in (people, robots) if _has_robots(session) else (people,):
            report.add("overdue_notice", _exec(session, stmt.replace("{from_clause}", digests),
                                               params))
        _flag(session, rnd.id or 0, "is_overdue", where, params)


#: The round's grassroots records not yet lapsed (``r``) with their extra-quota spending
#: ``s.used`` joined: one ``GROUP BY`` over those records' purchases, not a correlated subquery
#: evaluated per row and per use (filter, detail, payload, UPDATE).
_LAPSE_WHERE = "r.round_id = :rid AND r.is_grassroots AND r.lapsed_fen IS NULL"
_LAPSE_FROM = (
    "record r LEFT JOIN (SELECT p.record_id, SUM(p.amount_fen) AS used FROM purchase p"
    " JOIN record pr ON pr.id = p.record_id"
    " WHERE pr.round_id = :rid AND pr.is_grassroots AND pr.lapsed_fen IS NULL"
    " AND p.budget = 'extra_quota' AND p.voided_at IS NULL GROUP BY p.record_id) s"
    " ON s.record_id = r.id"
)


#: The unused extra quota of ``r`` in :data:`_LAPSE_FROM` (never negative).
_LEFT = ("(CASE WHEN r.quota_fen > COALESCE(s.used, 0) THEN r.quota_fen - COALESCE(s.used, 0)"
         " ELSE 0 END)")


def _last_day_sql(sql: _Sql, column: str) -> str:
    """The China last day (``YYYY-MM-DD``) of a deadline column stored as next day 00:00 China."""
    if sql.pg:
        return (f"to_char(({column} AT TIME ZONE 'Asia/Shanghai') - INTERVAL '1 day',"
                " 'YYYY-MM-DD')")
    return f"date({column}, '+8 hours', '-1 day')"


def _lapse(database: Database, sql: _Sql, rnd: Round, now: datetime, report: SweepReport) -> None:
    """At the entry cutoff: each grassroots record's unused extra quota lapses (``lapsed_fen``,
    a ``lapse`` history row when something lapsed, a ``quota_lapsed`` notice to its clerks)."""
    left = _LEFT
    where = _LAPSE_WHERE
    detail = sql.obj(("lapsed_fen", left), ("quota_fen", "r.quota_fen"))
    last_day = clock.deadline_last_day(rnd.entry_cutoff)
    from_clause = f"{_LAPSE_FROM} JOIN organisation o ON o.id = r.org_id"
    payload = sql.obj(
        ("union_name", "o.name"), ("lapsed_fen", left), ("round_label", "CAST(:round_label AS TEXT)"),
        ("path", "'/records/' || CAST(r.id AS TEXT)"),
    )
    people = _to_people(target="r.org_id", role=states.CLERK,
                        source=_source("quota_lapsed", "r.org_id"), kind="quota_lapsed",
                        record="r.id", payload=payload, where=f"{where} AND {left} > 0")
    # Every grassroots record gets its amount (0 included), in one pass: UPDATE … FROM
    # (PostgreSQL; SQLite since 3.33).
    update = (f"UPDATE record SET lapsed_fen = t.lapsed FROM (SELECT r.id AS rid, {left} AS lapsed"
              f" FROM {_LAPSE_FROM} WHERE {where}) t WHERE record.id = t.rid")
    with database.begin() as session:
        sql.lock_round(session, rnd.id or 0)
        params = {"rid": rnd.id, "now": now, "round_label": rnd.label,
                  "src_pre": f"reminder:{rnd.id}:", "src_post": f":{last_day.isoformat()}"}
        _system_history(session, sql, "lapse", detail, _LAPSE_FROM, f"{where} AND {left} > 0", params)
        if now - rnd.entry_cutoff < NOTICE_HORIZON:
            report.add("quota_lapsed", _exec(session, people.replace("{from_clause}", from_clause),
                                             params))
        report.lapsed += _exec(session, update, params)
        _exec(session, "UPDATE round SET lapsed_at = :now WHERE id = :rid AND lapsed_at IS NULL",
              params)
