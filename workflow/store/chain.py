"""The history chain: every history row carries a keyed hash (HMAC) over its content and the
previous row's hash of the same record, so a row rewritten, deleted or forged by someone who can
write the database but does not hold the key (``BANGFU_AUDIT_KEY``, kept outside the database)
breaks the chain where it was touched.

One chain per record: ``seq`` numbers a record's rows 1, 2, 3 …, ``prev_hash`` is the hash of the
row before (``NULL`` for the first), ``row_hash`` is the HMAC of the row's canonical form
(:func:`canonical`). A unique index on ``(record_id, seq)`` makes a fork impossible: two writers
that read the same head cannot both append after it (the second's ``INSERT … ON CONFLICT DO
NOTHING`` inserts nothing, and it reads the head again). Records' chains are independent, so no
row is written by every transition of the province.

The hash is HMAC-SHA-256 by default, HMAC-SM3 (GB/T 32905-2016) with ``BANGFU_AUDIT_HASH=sm3``
(OpenSSL's SM3 when the interpreter's OpenSSL has it, else :mod:`gmssl`'s).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from workflow.domain.errors import StoreError
from workflow.settings import get_settings
from workflow.store.bulk import bulk_insert, driver_value
from workflow.store.prepared import Prepared
from workflow.store.tables import History, Membership, Organisation, Record, User
from workflow.store.transaction import Transaction

HISTORY = History.__table__  # type: ignore[attr-defined]

#: The canonical form's version tag (a change of :data:`FIELDS` is a new version).
FORMAT = "bangfu-history-v1"
#: The row's content in the canonical form, in this order (``seq`` and ``prev_hash`` included).
FIELDS = ("record_id", "seq", "at", "actor_user_id", "actor_role", "actor_org_id", "on_behalf",
          "from_state", "to_state", "trigger", "reason", "detail", "prev_hash")
#: Columns an append writes (every column but ``id``).
COLUMNS = tuple(c.name for c in HISTORY.columns if c.name != "id")


def instant(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("naive datetime refused: the chain hashes aware UTC instants only")
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


#: One encoder, built once (the operation log's canonical form uses it too) (``json.dumps`` with options builds one per call).
ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def canonical(values: dict[str, Any]) -> bytes:
    """The row as the hash sees it: a JSON array of :data:`FIELDS` after the format tag, in that
    order; instants as UTC ISO text with microseconds, ``None`` as ``null``, booleans as
    ``true``/``false``, text as UTF-8 (not escaped)."""
    g = values.get
    return ENCODER.encode([
        FORMAT, g("record_id"), g("seq"), instant(values["at"]), g("actor_user_id"), g("actor_role"),
        g("actor_org_id"), bool(g("on_behalf")), g("from_state"), g("to_state"), g("trigger"), g("reason"),
        g("detail"), g("prev_hash"),
    ]).encode()


def _sm3_gmssl(data: bytes) -> bytes:
    """SM3 by gmssl (pure Python, slow: ~10 ms for a row), where OpenSSL lacks SM3."""
    # Imported only where OpenSSL lacks SM3 (start-up time; gmssl is never needed otherwise).
    from gmssl import func, sm3
    return bytes.fromhex(sm3.sm3_hash(func.bytes_to_list(data)))


def _hmac_sm3_gmssl(key: bytes, message: bytes) -> bytes:
    """HMAC (RFC 2104) over gmssl's SM3 (block size 64 bytes)."""
    if len(key) > 64:
        key = _sm3_gmssl(key)
    key = key.ljust(64, b"\0")
    inner = _sm3_gmssl(bytes(k ^ 0x36 for k in key) + message)
    return _sm3_gmssl(bytes(k ^ 0x5C for k in key) + inner)


@lru_cache(maxsize=4)
def _openssl_has(name: str) -> bool:
    try:
        hashlib.new(name, b"")
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Sealer:
    """The keyed hash of the chain: ``algorithm`` (``sha256`` | ``sm3``) and the key."""

    algorithm: str
    key: bytes

    def mac(self, message: bytes) -> str:
        if self.algorithm == "sm3" and not _openssl_has("sm3"):
            return _hmac_sm3_gmssl(self.key, message).hex()
        return hmac.digest(self.key, message, self.algorithm).hex()

    def digest(self, message: bytes) -> str:
        """An unkeyed hash (the exported heads' digest: anyone may recompute it)."""
        if self.algorithm == "sm3" and not _openssl_has("sm3"):
            return _sm3_gmssl(message).hex()
        return hashlib.new(self.algorithm, message).hexdigest()

    def seal(self, values: dict[str, Any], head: tuple[int, str | None] | None,
             canon: Callable[[dict[str, Any]], bytes] | None = None) -> dict[str, Any]:
        """``values`` chained after ``head`` (the chain's last ``(seq, row_hash)``, None for
        none): a new dict with ``seq``, ``prev_hash`` and ``row_hash``. ``canon``: the row's
        canonical form (the history's by default; the operation log has its own,
        :func:`workflow.store.oplog.canonical`)."""
        seq, prev = head if head is not None else (0, None)
        row = dict(values, seq=seq + 1, prev_hash=prev)
        row["row_hash"] = self.mac((canon or canonical)(row))
        return row


@lru_cache(maxsize=1)
def sealer() -> Sealer:
    """The process's sealer, from the settings (``BANGFU_AUDIT_KEY``, ``BANGFU_AUDIT_HASH``).
    Tests that change those call ``sealer.cache_clear()``."""
    s = get_settings()
    return Sealer(s.audit_hash, s.audit_key.encode())


# --- appending ---------------------------------------------------------------------------------

_LAST = HISTORY.alias("last")
_HEAD = Prepared(
    select(HISTORY.c.seq, HISTORY.c.row_hash)
    .where(HISTORY.c.record_id == bindparam("record_id"),
           HISTORY.c.seq == select(func.max(_LAST.c.seq)).where(_LAST.c.record_id == bindparam("record_id"))
           .scalar_subquery())
)


_LOCK_RECORD = Prepared(select(Record.__table__.c.id)  # type: ignore[attr-defined]
                        .where(Record.__table__.c.id == bindparam("record_id"))  # type: ignore[attr-defined]
                        .with_for_update())


def _insert(dialect_insert: Any) -> Prepared:
    return Prepared(
        dialect_insert(HISTORY)
        .values({c: bindparam(c) for c in COLUMNS})
        .on_conflict_do_nothing(index_elements=["record_id", "seq"])
        .returning(HISTORY.c.id)
    )


_INSERT = {"postgresql": _insert(postgresql.insert), "sqlite": _insert(sqlite.insert)}

#: Appends one writer tries before giving up (each retry follows a concurrent append).
APPEND_TRIES = 20


def head(conn: Connection, record_id: int) -> tuple[int, str | None] | None:  # noqa: D103
    """The record's last chained row, ``(seq, row_hash)``, or None."""
    rows, _n = _HEAD.run(conn, {"record_id": record_id})
    return (int(rows[0][0]), rows[0][1]) if rows else None


Head = tuple[int, str | None]


def append(conn: Connection, values: dict[str, Any], *, seen: Head | None = None, seen_read: bool = False) -> int:
    """Append one history row (every column but ``id`` and the chain's) to its record's chain;
    its id. ``seen`` with ``seen_read``: the head the caller already read (the transition's
    context statement reads it), else it is read here. A head gone stale (somebody appended
    since) is read again."""
    d = conn.dialect.name
    stmt = _INSERT[d]
    seal = sealer().seal
    if not seen_read and d == "postgresql":
        # The record's row lock orders this append with the set-based writers' (the sweeps lock
        # the records they chain onto); a transition holds it already (its versioned UPDATE).
        _LOCK_RECORD.run(conn, {"record_id": values["record_id"]})
    current = seen if seen_read else head(conn, values["record_id"])
    for _ in range(APPEND_TRIES):
        row = seal(values, current)
        rows, _n = stmt.run(conn, {k: driver_value(d, v) for k, v in row.items()})
        if rows:
            return int(rows[0][0])
        current = head(conn, values["record_id"])
    raise StoreError(f"记录 #{values['record_id']} 的历史链在追加时反复冲突", code="internal")


#: The head of record ``{r}`` as two scalar subqueries (set-based writers select them beside
#: their rows): its last ``seq`` and that row's hash.
def head_columns_sql(record: str) -> str:
    last = f"(SELECT MAX(hh.seq) FROM history hh WHERE hh.record_id = {record})"
    return (f"{last} AS head_seq, (SELECT hh.row_hash FROM history hh WHERE hh.record_id = {record}"
            f" AND hh.seq = {last}) AS head_hash")


def append_many(conn: Connection, rows: Sequence[tuple[dict[str, Any], int | None, str | None]]) -> int:
    """Append rows of distinct records in one bulk insert: each ``(values, head_seq, head_hash)``
    with the head read under the records' locks (see ``workflow.scheduler.sweeps``)."""
    seal = sealer().seal
    sealed = (seal(v, None if s is None else (int(s), h)) for v, s, h in rows)
    return bulk_insert(conn, "history", COLUMNS, ([r[c] for c in COLUMNS] for r in sealed))


# --- reading the chain ---------------------------------------------------------------------------

_O = Organisation.__table__  # type: ignore[attr-defined]
_R = Record.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ChainRow:
    """A history row as the verifier reads it, with its record's organisation (None when the
    record is gone)."""

    id: int
    values: dict[str, Any]
    seq: int | None
    prev_hash: str | None
    row_hash: str | None
    record_exists: bool
    org_name: str | None


def walk(conn: Connection, *, round_id: int | None = None, batch: int = 5_000) -> Iterator[ChainRow]:
    """Every history row (of one round's records), by record, then chain order (rows without a
    ``seq`` last), streamed."""
    h = HISTORY
    stmt = (
        select(h, _R.c.id.label("rec_id"), _O.c.name.label("org_name"))
        .select_from(h.outerjoin(_R, _R.c.id == h.c.record_id).outerjoin(_O, _O.c.id == _R.c.org_id))
        .order_by(h.c.record_id, h.c.seq.is_(None), h.c.seq, h.c.id)
    )
    if round_id is not None:
        stmt = stmt.where(_R.c.round_id == round_id)
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(stmt)
    for m in result.mappings():
        values = {name: m[name] for name in FIELDS if name not in ("seq", "prev_hash")}
        yield ChainRow(id=m["id"], values=values, seq=m["seq"], prev_hash=m["prev_hash"],
                       row_hash=m["row_hash"], record_exists=m["rec_id"] is not None,
                       org_name=m["org_name"])


def heads(conn: Connection) -> list[tuple[int, int, str]]:
    """Every record's chain head ``(record_id, seq, row_hash)``, by record."""
    rows = conn.execute(text(
        "SELECT h.record_id, h.seq, h.row_hash FROM history h"
        " JOIN (SELECT record_id, MAX(seq) AS seq FROM history WHERE seq IS NOT NULL"
        "       GROUP BY record_id) m ON m.record_id = h.record_id AND m.seq = h.seq"
        " ORDER BY h.record_id")).all()
    return [(int(r), int(s), str(x)) for r, s, x in rows]


class Audit:
    """The unit of work's view of the chain: walking it, its heads, who hears of an export."""

    def __init__(self, uow: Transaction) -> None:
        self._uow = uow

    @property
    def sealer(self) -> Sealer:
        return sealer()

    def walk(self, *, round_id: int | None = None) -> Iterator[ChainRow]:
        return walk(self._uow.connection(), round_id=round_id)

    def heads(self) -> list[tuple[int, int, str]]:
        return heads(self._uow.connection())

    def province_admins(self) -> list[User]:
        """Active administrators of the tree's roots (the province): the export's recipients,
        bangfu having no auditor role yet."""
        return list(self._uow.session.execute(
            select(User).join(Membership, Membership.user_id == User.id)  # type: ignore[arg-type]
            .join(Organisation, Organisation.id == Membership.org_id)  # type: ignore[arg-type]
            .where(Organisation.parent_id.is_(None), Organisation.is_observer.is_(False),  # type: ignore[union-attr,attr-defined]
                   Membership.role == "admin", User.is_active.is_(True))  # type: ignore[attr-defined]
            .order_by(User.id).distinct()  # type: ignore[arg-type]
        ).scalars())
