"""W1: submit → accept pairs on distinct records, one process, beside the raw-SQL floor.

The engine side fires ``submit`` as the record's clerk and ``accept`` as the parent's reviewer
through :func:`workflow.app.lifecycle.fire` (membership, rules, the version check, state + history +
outbox in one transaction each). The floor executes the same writes directly on the driver's
connection, one transaction per transition, without reading anything: ``UPDATE record … WHERE
id = ? AND version = ?``, ``INSERT history … RETURNING id``, ``INSERT notification … ON CONFLICT
DO NOTHING`` (and, for accept, the parent's stale-snapshot ``UPDATE``), and the overview's
rollup upsert over the organisation and its ancestors (``INSERT … ON CONFLICT DO UPDATE``). Both sides run on equally
prepared records: summarized, a fresh snapshot with its lines, reporter and phone filled, made
set-based before the timed loop.

The ratio engine/floor is the price of doing the checks inside the engine.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Date, bindparam, text

import states
from bench.generate import NOW, GeneratedInfo, _sqlite_value
from workflow.app import lifecycle
from workflow.domain import clock, rules
from workflow.store import rollup
from workflow.store.tables import Database, UTCDateTime
from workflow.store.uow import UnitOfWork

PICK_TABLE = "bench_w1_pick"
_SORT = "cumulative"
#: Pairs per scale when none is asked for.
DEFAULT_PAIRS = {"tiny": 200, "small": 1_000, "province": 10_000}


@dataclass
class W1Result:
    dialect: str
    pairs: int
    shared_records: bool  # engine and floor ran on the same records, re-prepared in between
    engine_seconds: float
    floor_seconds: float
    engine_tps: float
    floor_tps: float
    ratio: float  # engine time / floor time (= floor tx/s / engine tx/s): how many times slower
    #: This process's CPU per transition (µs): the Python cost, robust to a busy machine. On
    #: SQLite it includes the database's own work; on PostgreSQL the server's CPU is elsewhere.
    engine_cpu_us: float
    floor_cpu_us: float
    engine_history_rows: int
    floor_history_rows: int
    engine_notifications: int
    floor_notifications: int
    engine_accepted: int
    floor_accepted: int
    profile: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Work:
    record_id: int
    version: int
    org_id: int
    org_code: str
    org_name: str
    parent_org_id: int
    parent_record_id: int | None
    report_deadline: datetime
    clerk: tuple[int, str]  # (user id, display name)
    reviewer: tuple[int, str]
    clerks: tuple[tuple[int, str | None, str], ...]  # (user id, email, channels) of the org
    reviewers: tuple[tuple[int, str | None, str], ...]  # of the parent org
    org_path: str = "/"
    is_grassroots: bool = True
    #: The parent organisation's clerks: told of an acceptance (they compile the parent's report).
    parent_clerks: tuple[tuple[int, str | None, str], ...] = ()


def _pick(database: Database, info: GeneratedInfo, pairs: int) -> tuple[int, bool]:
    """Choose the records: grassroots, of the round, whose parent is neither submitted nor
    accepted (an accept would be locked). Two disjoint sets when there are enough, else one set
    used by both sides. Returns (pairs, shared)."""
    with database.engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {PICK_TABLE}"))
        conn.execute(text(f"CREATE TABLE {PICK_TABLE} (record_id INTEGER PRIMARY KEY, side VARCHAR(8) NOT NULL)"))
        ids = [int(r) for (r,) in conn.execute(text(
            "SELECT r.id FROM record r JOIN record p ON p.id = r.parent_id"
            " WHERE r.round_id = :r AND r.is_grassroots = :t AND p.state NOT IN ('submitted', 'accepted')"
            " ORDER BY r.id"), {"r": info.round_id, "t": True})]
        shared = len(ids) < 2 * pairs
        pairs = min(pairs, len(ids))
        if shared:
            rows = [{"id": i, "side": "both"} for i in ids[:pairs]]
        else:
            # Alternate, so both sides draw from the same districts and provincial unions.
            rows = [{"id": i, "side": "engine" if k % 2 == 0 else "floor"} for k, i in enumerate(ids[: 2 * pairs])]
        conn.execute(text(f"INSERT INTO {PICK_TABLE} (record_id, side) VALUES (:id, :side)"), rows)
    return pairs, shared


def prepare(database: Database, side: str, now: datetime = NOW) -> None:
    """Set-based: the side's records become summarized with a fresh snapshot (+ lines per
    channel) of their purchases, reporter, phone and fill date filled, version bumped."""
    as_of = clock.china_date(now)
    typed = (bindparam("now", type_=UTCDateTime), bindparam("as_of", type_=Date()))
    picked = f"SELECT record_id FROM {PICK_TABLE} WHERE side = :side"
    with database.begin() as s:
        before = int(s.execute(text("SELECT coalesce(max(id), 0) FROM snapshot")).scalar() or 0)
        s.execute(text(
            "INSERT INTO snapshot (record_id, taken_at, as_of, people_total, amount_total_fen, missing_children)"
            " SELECT r.id, :now, :as_of, coalesce(sum(p.people), 0), coalesce(sum(p.amount_fen), 0), '[]'"
            f" FROM record r LEFT JOIN purchase p ON p.record_id = r.id WHERE r.id IN ({picked})"
            " GROUP BY r.id").bindparams(*typed), {"now": now, "as_of": as_of, "side": side})
        s.execute(text(
            "INSERT INTO snapshot_line (snapshot_id, channel, people, amount_fen)"
            " SELECT s.id, p.channel, sum(p.people), sum(p.amount_fen)"
            " FROM snapshot s JOIN purchase p ON p.record_id = s.record_id WHERE s.id > :before"
            " GROUP BY s.id, p.channel"), {"before": before})
        s.execute(text(
            "UPDATE record SET state = 'summarized', version = version + 1,"
            " snapshot_id = (SELECT max(s.id) FROM snapshot s WHERE s.record_id = record.id),"
            " snapshot_stale = :f, reporter = '张三', phone = '13812345678', fill_date = :as_of,"
            " submitted_at = NULL, decided_at = NULL, last_reason = NULL, is_late = :f,"
            f" is_overdue = :f, updated_at = :now WHERE id IN ({picked})").bindparams(*typed),
            {"now": now, "as_of": as_of, "side": side, "f": False})


def _work(database: Database, side: str) -> list[_Work]:
    """What each side needs to know up front (the floor reads nothing while it is timed)."""
    with database.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT r.id, r.version, r.org_id, o.code, o.name, o.parent_id, r.parent_id, r.report_deadline,"
            " o.path, r.is_grassroots"
            f" FROM record r JOIN {PICK_TABLE} k ON k.record_id = r.id AND k.side = :side"
            " JOIN organisation o ON o.id = r.org_id ORDER BY r.id"
        ).columns(report_deadline=UTCDateTime), {"side": side}).all()
        people: dict[tuple[int, str], list[tuple[int, str | None, str, str]]] = {}
        for org_id, role, uid, email, channels, name in conn.execute(text(
            "SELECT m.org_id, m.role, u.id, u.email, u.channels, u.display_name FROM membership m"
            " JOIN app_user u ON u.id = m.user_id WHERE u.is_active = :t AND m.role IN ('clerk', 'reviewer')"
            " ORDER BY u.id"), {"t": True}):
            people.setdefault((org_id, role), []).append((uid, email, channels, name))
    out = []
    for rid, version, org_id, code, name, parent_org, parent_rec, deadline, path, grassroots in rows:
        clerks = people[(org_id, states.CLERK)]
        reviewers = people[(parent_org, states.REVIEWER)]
        out.append(_Work(
            record_id=rid, version=version, org_id=org_id, org_code=code, org_name=name,
            parent_org_id=parent_org, parent_record_id=parent_rec, report_deadline=deadline,
            clerk=(clerks[0][0], clerks[0][3]), reviewer=(reviewers[0][0], reviewers[0][3]),
            clerks=tuple((u, e, c) for u, e, c, _n in clerks),
            reviewers=tuple((u, e, c) for u, e, c, _n in reviewers),
            org_path=path, is_grassroots=bool(grassroots),
            parent_clerks=tuple((u, e, c) for u, e, c, _n in people.get((parent_org, states.CLERK), [])),
        ))
    return out


# --- the engine -----------------------------------------------------------------------------


def run_engine(database: Database, work: list[_Work], now: datetime = NOW) -> tuple[float, float]:
    """Submit then accept each record through lifecycle.fire; returns (wall, client CPU) seconds."""
    t0, c0 = time.perf_counter(), time.process_time()
    for w in work:
        lifecycle.fire(UnitOfWork(database), record_id=w.record_id, trigger="submit",
                      user_id=w.clerk[0], seen_version=w.version, now=now)
        lifecycle.fire(UnitOfWork(database), record_id=w.record_id, trigger="accept",
                      user_id=w.reviewer[0], seen_version=w.version + 1, now=now)
    return time.perf_counter() - t0, time.process_time() - c0


# --- the floor ------------------------------------------------------------------------------

_SUBMIT = ("UPDATE record SET state = %s, version = version + 1, updated_at = %s, submitted_at = %s,"
           " is_late = %s, is_overdue = %s WHERE id = %s AND version = %s")
_ACCEPT = ("UPDATE record SET state = %s, version = version + 1, updated_at = %s, decided_at = %s,"
           " last_reason = NULL WHERE id = %s AND version = %s")
_HISTORY = ("INSERT INTO history (record_id, at, actor_user_id, actor_role, actor_org_id, on_behalf,"
            " from_state, to_state, trigger, reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id")
_STALE = ("UPDATE record SET snapshot_stale = %s WHERE id = %s AND state = %s AND snapshot_id IS NOT NULL")
_NOTIFY = ("INSERT INTO notification (user_id, channel, source, kind, record_id, payload, status, attempts,"
           " created_at, sent_at) VALUES {values} ON CONFLICT DO NOTHING")
_NOTIFY_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


def _channels(email: str | None, chosen: str) -> list[str]:
    out = ["inbox"]
    for c in (x.strip() for x in chosen.split(",")):
        if c and c not in out and not (c == "email" and not email):
            out.append(c)
    return out


def run_floor(database: Database, work: list[_Work], now: datetime = NOW) -> tuple[float, float]:
    """The same writes as the engine, straight on the driver; returns (wall, client CPU) seconds."""
    lite = database.dialect == "sqlite"

    def sql(s: str) -> str:
        return s.replace("%s", "?") if lite else s

    def val(v: Any) -> Any:
        return _sqlite_value(v) if lite else v

    submit, accept, hist, stale = sql(_SUBMIT), sql(_ACCEPT), sql(_HISTORY), sql(_STALE)
    raw = database.engine.raw_connection()
    cur = raw.cursor()
    n_now = val(now)

    def begin() -> None:
        if lite:
            cur.execute("BEGIN IMMEDIATE")

    def commit() -> None:
        if lite:
            cur.execute("COMMIT")
        else:
            raw.commit()

    def notify(w: _Work, recipients: tuple[tuple[int, str | None, str], ...], actor: tuple[int, str],
               trigger: str, history_id: int) -> None:
        payload = json.dumps({
            "org_name": w.org_name, "org_code": w.org_code, "event": states.TRIGGER_LABELS[trigger],
            "trigger": trigger, "actor_name": actor[1], "reason": None, "path": f"/records/{w.record_id}",
        }, ensure_ascii=False, sort_keys=True)
        params: list[Any] = []
        for uid, email, chosen in recipients:
            if uid == actor[0]:
                continue
            for ch in _channels(email, chosen):
                inbox = ch == "inbox"
                params += [uid, ch, f"history:{history_id}", "record_event", w.record_id, payload,
                           "sent" if inbox else "pending", 0, n_now, n_now if inbox else None]
        if params:
            rows = ", ".join([_NOTIFY_ROW] * (len(params) // 10))
            cur.execute(sql(_NOTIFY.format(values=rows)), params)

    def move(w: _Work, old: rollup.Entry, new: rollup.Entry) -> None:
        """The overview's rollup upsert over the organisation and its ancestors (bangfu's)."""
        rows = rollup.move_rows(w.record_id, w_round[w.record_id], w.org_path, old, new)
        cur.execute(rollup._upsert_sql(database.dialect, len(rows)), [val(v) for r in rows for v in r])

    with database.engine.connect() as conn:  # read before timing: snapshot totals and rounds
        ids = [w.record_id for w in work]
        snap: dict[int, tuple[int, int]] = {}
        w_round: dict[int, int] = {}
        for start in range(0, len(ids), 500):
            for rid, rnd, people, fen in conn.execute(text(
                "SELECT r.id, r.round_id, s.people_total, s.amount_total_fen FROM record r"
                " JOIN snapshot s ON s.id = r.snapshot_id WHERE r.id IN :ids"
            ).bindparams(bindparam("ids", expanding=True)), {"ids": ids[start:start + 500]}):
                snap[rid], w_round[rid] = (int(people), int(fen)), int(rnd)
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        for w in work:
            late = rules.is_late(now, w.report_deadline)
            begin()
            cur.execute(submit, ("submitted", n_now, n_now, val(late), val(False), w.record_id, w.version))
            if cur.rowcount != 1:
                raise RuntimeError(f"floor: version conflict on record {w.record_id}")
            cur.execute(hist, (w.record_id, n_now, w.clerk[0], "clerk", w.org_id, val(False),
                               "summarized", "submitted", "submit", None))
            hid = cur.fetchone()[0]
            notify(w, w.reviewers, w.clerk, "submit", hid)
            move(w, rollup.Entry(rollup.Key("summarized", w.is_grassroots, False, False, True, w.report_deadline), 0, 0),
                 rollup.Entry(rollup.Key("submitted", w.is_grassroots, False, late, True, w.report_deadline), 0, 0))
            commit()
            begin()
            cur.execute(accept, ("accepted", n_now, n_now, w.record_id, w.version + 1))
            if cur.rowcount != 1:
                raise RuntimeError(f"floor: version conflict on record {w.record_id}")
            cur.execute(hist, (w.record_id, n_now, w.reviewer[0], "reviewer", w.parent_org_id, val(False),
                               "submitted", "accepted", "accept", None))
            hid = cur.fetchone()[0]
            if w.parent_record_id is not None:
                cur.execute(stale, (val(True), w.parent_record_id, "summarized"))
            notify(w, w.clerks + w.parent_clerks, w.reviewer, "accept", hid)
            people, fen = snap[w.record_id]
            move(w, rollup.Entry(rollup.Key("submitted", w.is_grassroots, False, late, True, w.report_deadline), 0, 0),
                 rollup.Entry(rollup.Key("accepted", w.is_grassroots, False, late, True, w.report_deadline), people, fen))
            commit()
        return time.perf_counter() - t0, time.process_time() - c0
    finally:
        cur.close()
        raw.close()


# --- the workload ---------------------------------------------------------------------------


def _count_after(database: Database, side: str, marks: tuple[int, int]) -> tuple[int, int, int]:
    with database.engine.connect() as conn:
        p = {"side": side, "h": marks[0], "n": marks[1]}
        picked = f"SELECT record_id FROM {PICK_TABLE} WHERE side = :side"
        hist = conn.execute(text(
            f"SELECT count(*) FROM history WHERE id > :h AND record_id IN ({picked})"), p).scalar()
        notes = conn.execute(text(
            f"SELECT count(*) FROM notification WHERE id > :n AND record_id IN ({picked})"), p).scalar()
        accepted = conn.execute(text(
            f"SELECT count(*) FROM record WHERE state = 'accepted' AND id IN ({picked})"), p).scalar()
    return int(hist or 0), int(notes or 0), int(accepted or 0)


def _marks(database: Database) -> tuple[int, int]:
    with database.engine.connect() as conn:
        h = conn.execute(text("SELECT coalesce(max(id), 0) FROM history")).scalar()
        n = conn.execute(text("SELECT coalesce(max(id), 0) FROM notification")).scalar()
    return int(h or 0), int(n or 0)


def run(database: Database, info: GeneratedInfo, pairs: int | None = None, *, profile: bool = False,
        log: Callable[[str], None] | None = None) -> W1Result:
    """W1 on a generated data set.

    Args:
        database: the database :func:`bench.generate.generate` filled.
        info: what the generator made.
        pairs: submit→accept pairs per side (default by scale: tiny 200, province 10,000).
        profile: run the engine side under cProfile and keep the top of the report.
        log: called with progress lines.

    Returns:
        Transitions per second of both sides, their ratio, and the rows each side wrote.
    """
    say = log or (lambda _line: None)
    pairs = pairs or DEFAULT_PAIRS.get(info.scale, 1_000)
    pairs, shared = _pick(database, info, pairs)
    engine_side, floor_side = ("both", "both") if shared else ("engine", "floor")

    prepare(database, engine_side)
    work = _work(database, engine_side)
    marks = _marks(database)
    prof = cProfile.Profile() if profile else None
    if prof:
        prof.enable()
    engine_s, engine_cpu = run_engine(database, work)
    if prof:
        prof.disable()
    e_hist, e_notes, e_acc = _count_after(database, engine_side, marks)
    say(f"  engine: {2 * pairs:,} transitions in {engine_s:.2f} s = {2 * pairs / engine_s:,.0f} tx/s,"
        f" client CPU {engine_cpu / (2 * pairs) * 1e6:,.0f} µs/tx")

    prepare(database, floor_side)
    work = _work(database, floor_side)
    marks = _marks(database)
    floor_s, floor_cpu = run_floor(database, work)
    f_hist, f_notes, f_acc = _count_after(database, floor_side, marks)
    say(f"  floor:  {2 * pairs:,} transitions in {floor_s:.2f} s = {2 * pairs / floor_s:,.0f} tx/s,"
        f" client CPU {floor_cpu / (2 * pairs) * 1e6:,.0f} µs/tx")

    with database.engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {PICK_TABLE}"))
    report = None
    if prof:
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats(_SORT).print_stats(40)
        report = buf.getvalue()
    engine_tps, floor_tps = 2 * pairs / engine_s, 2 * pairs / floor_s
    return W1Result(
        dialect=database.dialect, pairs=pairs, shared_records=shared,
        engine_seconds=engine_s, floor_seconds=floor_s, engine_tps=engine_tps, floor_tps=floor_tps,
        ratio=floor_tps / engine_tps, engine_cpu_us=engine_cpu / (2 * pairs) * 1e6,
        floor_cpu_us=floor_cpu / (2 * pairs) * 1e6, engine_history_rows=e_hist, floor_history_rows=f_hist,
        engine_notifications=e_notes, floor_notifications=f_notes, engine_accepted=e_acc,
        floor_accepted=f_acc, profile=report,
    )


__all__ = ["DEFAULT_PAIRS", "W1Result", "prepare", "run", "run_engine", "run_floor"]
