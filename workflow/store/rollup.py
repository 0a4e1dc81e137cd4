"""The rollup table: per round and organisation, the round's records *below* the organisation
(its subtree without its own record) counted per key, kept current in the transaction of every
change. An organisation's whole figures are its rows plus its own record; leaves have no rows,
so a province is a few hundred federations' rows, not one row per grassroots union.

A record's *key* is what the overview and the completeness figures group by: its state, whether
it is grassroots, its overdue and late flags, whether it has a snapshot, and its report deadline
(overdue is judged at any instant from the flag and the deadline). Its *measures* are one
record and, while accepted, its snapshot's people and amount.

- :func:`move` — a record changed key: one upsert of ``-1`` at the old key and ``+1`` at the new
  one for every ancestor of its organisation (the ids of the materialised path above it), in the
  record's shard of each, rows sorted so concurrent transitions lock them in one order (no
  deadlock on PostgreSQL). Callers make it the last write before the commit, so the rows are
  held for the commit only.
- :func:`computed` — the rollup recomputed from the records (one GROUP BY per parent
  organisation, key and shard, expanded to the parent's ancestors in memory); :func:`rebuild`
  replaces a round's rows with it (after set-based changes: sweeps, imports, opening records;
  ``bangfu rollup-rebuild``).
- :func:`stored` — the rows as kept, zero rows dropped (the test compares it with :func:`computed`).
- :func:`read` — an organisation's figures per key, the shards summed by the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from itertools import chain
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import case, delete, func, select
from sqlalchemy.engine import Connection

import states
from workflow.store.bulk import bulk_insert, driver_value_cached
from workflow.store.engine import driver_execute
from workflow.store.tables import Organisation, Record, Rollup, Snapshot

ORGANISATION, RECORD, ROLLUP, SNAPSHOT = (Organisation.__table__, Record.__table__, Rollup.__table__,  # type: ignore[attr-defined]
                                          Snapshot.__table__)  # type: ignore[attr-defined]

if TYPE_CHECKING:
    from sqlmodel import Session

COLUMNS = ("round_id", "org_id", "shard", "state", "is_grassroots", "is_overdue", "is_late", "has_snapshot",
           "report_deadline", "n", "people", "amount_fen")
_KEY = COLUMNS[:9]

#: Shards per key of an organisation at each depth (the last applies deeper). Each divides the
#: first, so one ``record_id % SHARDS[0]`` grouping serves every level when recomputing.
SHARDS = (32, 16, 8)
_FINE = SHARDS[0]


def shard(depth: int, record_id: int) -> int:
    """The shard a record counts in at an ancestor of this depth."""
    return record_id % SHARDS[min(depth, len(SHARDS) - 1)]


class Key(NamedTuple):
    """What a record is counted under (besides round and organisation)."""

    state: str
    is_grassroots: bool
    is_overdue: bool
    is_late: bool
    has_snapshot: bool
    report_deadline: datetime


class Entry(NamedTuple):
    """One record's key and measures."""

    key: Key
    people: int  # the accepted record's snapshot people, else 0
    amount_fen: int


def entry(*, state: str, is_grassroots: bool, is_overdue: bool, is_late: bool, has_snapshot: bool,
          report_deadline: datetime, snapshot_people: int | None, snapshot_fen: int | None) -> Entry:
    accepted = state == states.ACCEPTED
    return Entry(Key(state, bool(is_grassroots), bool(is_overdue), bool(is_late), bool(has_snapshot),
                     report_deadline.astimezone(UTC)),
                 int(snapshot_people or 0) if accepted else 0, int(snapshot_fen or 0) if accepted else 0)


def ancestors(path: str) -> list[int]:
    """The organisation ids of a materialised path, root first (``/1/7/42/`` -> 1, 7, 42)."""
    return [int(x) for x in path.split("/") if x]


def above(path: str) -> list[int]:
    """The ancestors of the organisation whose path this is, itself excluded (``/1/7/42/`` -> 1, 7)."""
    return ancestors(path)[:-1]


@lru_cache(maxsize=64)
def _upsert_sql(dialect: str, rows: int) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    one = "(" + ", ".join([mark] * len(COLUMNS)) + ")"
    keys = ", ".join(_KEY)
    return (f"INSERT INTO rollup ({', '.join(COLUMNS)}) VALUES {', '.join([one] * rows)}"
            f" ON CONFLICT ({keys}) DO UPDATE SET n = rollup.n + excluded.n,"
            " people = rollup.people + excluded.people, amount_fen = rollup.amount_fen + excluded.amount_fen")


def move_rows(record_id: int, round_id: int, path: str, old: Entry | None, new: Entry | None,
              ready: Callable[[Key], tuple[Any, ...]] | None = None) -> list[tuple[Any, ...]]:
    """The delta rows of a record going from ``old`` to ``new`` (None: not counted), sorted.
    ``ready`` turns a key into the values the driver takes (once per key, not per row)."""
    if old == new:
        return []
    orgs = [(org_id, shard(depth, record_id)) for depth, org_id in enumerate(above(path))]
    out: dict[tuple[Any, ...], list[int]] = {}
    for sign, e in ((-1, old), (1, new)):
        if e is None:
            continue
        key = e.key if ready is None else ready(e.key)
        for org_id, part in orgs:
            acc = out.setdefault((round_id, org_id, part, *key), [0, 0, 0])
            acc[0] += sign
            acc[1] += sign * e.people
            acc[2] += sign * e.amount_fen
    return sorted((*k, *v) for k, v in out.items() if v != [0, 0, 0])


@lru_cache(maxsize=256)
def _sqlite_key(key: Key) -> tuple[Any, ...]:
    """A key as SQLite's driver takes it (bools as 0/1, the deadline as stored text); the
    order of keys is kept (the text sorts as the instants do)."""
    return tuple(driver_value_cached(v) for v in key)


def move(conn: Connection, record_id: int, round_id: int, path: str, old: Entry | None, new: Entry | None,
         run: Any) -> None:
    """Apply a record's change of key to its organisation and ancestors: one upsert statement.
    ``run(conn, sql, args)`` executes driver SQL (the unit of work's cursor path)."""
    dialect = conn.dialect.name
    rows = move_rows(record_id, round_id, path, old, new, _sqlite_key if dialect == "sqlite" else None)
    if not rows:
        return
    run(conn, _upsert_sql(dialect, len(rows)), tuple(chain.from_iterable(rows)))


def move_many(conn: Connection, moves: Iterable[tuple[int, int, str, Entry | None, Entry | None]], run: Any) -> None:
    """:func:`move` for many records (record id, round, path, old, new): their delta rows
    summed per key (one row per key: an upsert may not touch a row twice), in key order (the
    order every writer takes the counter rows in), as one upsert per 500 rows."""
    dialect = conn.dialect.name
    ready = _sqlite_key if dialect == "sqlite" else None
    total: dict[tuple[Any, ...], list[int]] = {}
    for record_id, round_id, path, old, new in moves:
        for row in move_rows(record_id, round_id, path, old, new, ready):
            acc = total.setdefault(tuple(row[:-3]), [0, 0, 0])
            for i in range(3):
                acc[i] += row[-3 + i]
    rows = sorted((*k, *v) for k, v in total.items() if v != [0, 0, 0])
    for start in range(0, len(rows), 500):
        part = rows[start:start + 500]
        run(conn, _upsert_sql(dialect, len(part)), tuple(chain.from_iterable(part)))


def computed(session: Session, round_id: int, where: Any = None, params: dict[str, Any] | None = None,
             ) -> dict[tuple[Any, ...], tuple[int, int, int]]:
    """The round's rollup recomputed from its records: (org_id, shard, *key) -> (n, people, fen).
    One GROUP BY per parent organisation's path, key and finest shard, each group added to the
    parent and the parent's ancestors in their own (coarser) shard. ``where`` (a SQL clause over
    the records as ``r``, with ``params``) counts only some records (:func:`shift`)."""
    rec, org, snap = RECORD.alias("r"), ORGANISATION, SNAPSHOT
    parent = org.alias("parent_org")
    accepted = rec.c.state == states.ACCEPTED
    has_snapshot = case((rec.c.snapshot_id.is_not(None), 1), else_=0)
    keys = (parent.c.path, rec.c.state, rec.c.is_grassroots, rec.c.is_overdue, rec.c.is_late, has_snapshot,
            rec.c.report_deadline, rec.c.id % _FINE)
    q = (
        select(*keys, func.count(),
               func.sum(case((accepted, func.coalesce(snap.c.people_total, 0)), else_=0)),
               func.sum(case((accepted, func.coalesce(snap.c.amount_total_fen, 0)), else_=0)))
        .select_from(rec.join(org, org.c.id == rec.c.org_id).join(parent, parent.c.id == org.c.parent_id)
                     .outerjoin(snap, snap.c.id == rec.c.snapshot_id))
        .where(rec.c.round_id == round_id, *([] if where is None else [where]))
        .group_by(*keys)
    )
    out: dict[tuple[Any, ...], list[int]] = {}
    levels: dict[str, list[tuple[int, int]]] = {}  # path -> (org id, shards) root first
    for path, state, gr, overdue, late, has, deadline, fine, n, people, fen in session.execute(q, params or {}):
        key = (state, bool(gr), bool(overdue), bool(late), bool(has), deadline.astimezone(UTC))
        if (orgs := levels.get(path)) is None:
            orgs = levels[path] = [(org_id, SHARDS[min(d, len(SHARDS) - 1)]) for d, org_id in enumerate(ancestors(path))]
        for org_id, shards in orgs:
            acc = out.setdefault((org_id, int(fine) % shards, *key), [0, 0, 0])
            acc[0] += int(n)
            acc[1] += int(people or 0)
            acc[2] += int(fen or 0)
    return {k: (v[0], v[1], v[2]) for k, v in out.items() if v != [0, 0, 0]}


def shift(session: Session, round_id: int, where: Any, params: dict[str, Any], **change: Any) -> int:
    """Records of a round (those ``where`` selects, as ``r``) are about to change key by
    ``change`` (``is_overdue=True``) in one set-based UPDATE: move their counts, grouped, from
    the old key to the new one before it runs (in its transaction). The cost follows the records
    that change, not the round (a sweep marking 40 records overdue reads 40, not 215,000).
    Returns the delta rows written."""
    fields = Key._fields
    deltas: dict[tuple[Any, ...], list[int]] = {}
    for (org_id, part, *key), (n, people, fen) in computed(session, round_id, where, params).items():
        new = Key(*key)._replace(**change)
        for sign, k in ((-1, tuple(key)), (1, tuple(new))):
            acc = deltas.setdefault((round_id, org_id, part, *k), [0, 0, 0])
            acc[0] += sign * n
            acc[1] += sign * people
            acc[2] += sign * fen
    assert set(change) <= set(fields), change
    rows = sorted((*k, *v) for k, v in deltas.items() if v != [0, 0, 0])
    conn = session.connection()
    dialect = conn.dialect.name
    for start in range(0, len(rows), 500):
        chunk = rows[start:start + 500]
        if dialect == "sqlite":
            chunk = [(*r[:3], *_sqlite_key(Key(*r[3:9])), *r[9:]) for r in chunk]
        driver_execute(conn, _upsert_sql(dialect, len(chunk)), tuple(chain.from_iterable(chunk)))
    return len(rows)


def stored(session: Session, round_id: int) -> dict[tuple[Any, ...], tuple[int, int, int]]:
    """The round's rollup rows as kept, rows whose measures are all zero dropped."""
    t = ROLLUP
    return {
        (org_id, part, state, bool(gr), bool(od), bool(late), bool(has), deadline.astimezone(UTC)): (int(n), int(p), int(f))
        for org_id, part, state, gr, od, late, has, deadline, n, p, f in session.execute(
            select(t.c.org_id, t.c.shard, t.c.state, t.c.is_grassroots, t.c.is_overdue, t.c.is_late, t.c.has_snapshot,
                   t.c.report_deadline, t.c.n, t.c.people, t.c.amount_fen).where(t.c.round_id == round_id))
        if (n, p, f) != (0, 0, 0)
    }


def rebuild(session: Session, round_id: int) -> int:
    """Replace the round's rows by :func:`computed` (one bulk insert); returns the rows written."""
    rows = computed(session, round_id)
    session.execute(delete(ROLLUP).where(ROLLUP.c.round_id == round_id))
    return bulk_insert(session.connection(), "rollup", COLUMNS,
                       ((round_id, *k, *v) for k, v in sorted(rows.items())))


def read(session: Session, round_id: int, org_ids: Sequence[int]) -> dict[int, list[tuple[Key, int, int, int]]]:
    """The figures of some organisations, shards summed: org_id -> [(key, n, people, fen)]."""
    t = ROLLUP
    out: dict[int, list[tuple[Key, int, int, int]]] = {o: [] for o in org_ids}
    ids = list(org_ids)
    keys = (t.c.org_id, t.c.state, t.c.is_grassroots, t.c.is_overdue, t.c.is_late, t.c.has_snapshot,
            t.c.report_deadline)
    for start in range(0, len(ids), 500):
        for org_id, state, gr, od, late, has, deadline, n, p, f in session.execute(
            select(*keys, func.sum(t.c.n), func.sum(t.c.people), func.sum(t.c.amount_fen))
            .where(t.c.round_id == round_id, t.c.org_id.in_(ids[start:start + 500]), t.c.n != 0)
            .group_by(*keys)
        ):
            out[org_id].append((Key(state, bool(gr), bool(od), bool(late), bool(has), deadline.astimezone(UTC)),
                                int(n), int(p), int(f)))
    return out
