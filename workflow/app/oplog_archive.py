"""Archiving the operation audit log to files the application never deletes (a daily beat task,
``bangfu audit-log-archive``).

Each run writes the rows not archived yet (after the last archived ``seq``) to one new file,
``var/oplog/oplog-<first>-<last>.jsonl`` (created ``O_EXCL``, mode 0440, fsync'd: never
rewritten), one JSON object per row exactly as stored (chain fields included, so the file can
be verified with the key alone), and appends one line to ``var/oplog/archive.log`` (``O_APPEND``):
the time, the seq range, the number of rows, the last row's hash and the digest of the file.
Nothing in bangfu deletes a file there or a row of the table (the table refuses DELETE).

Retention: ``BANGFU_OPLOG_RETENTION_DAYS`` (default 180, refused below 180: 网络安全法 §21) is
the least the database keeps. :func:`status` tells whether every row older than that is in the
archive, which is what a database administrator checks before moving old rows out of the
database by hand (docs/compliance.md); bangfu itself never removes one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from workflow.app.audit import _append, _write_new
from workflow.app.oplog import audited
from workflow.domain import clock
from workflow.store.uow import UnitOfWork

ARCHIVE_DIR = "oplog"
ARCHIVE_LOG = "archive.log"


def _folder(var_dir: Path) -> Path:
    return var_dir / ARCHIVE_DIR


def last_archived(var_dir: Path) -> dict[str, Any] | None:
    """The archive log's last line (None: nothing archived yet)."""
    path = _folder(var_dir) / ARCHIVE_LOG
    if not path.exists():
        return None
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return json.loads(lines[-1]) if lines else None


@audited("oplog.archive")
def archive(uow: UnitOfWork, *, var_dir: Path, now: datetime | None = None) -> dict[str, Any]:
    """Write the rows after the last archived one to a new file; the archive log's new line
    (``rows`` 0 and no file when there was nothing new)."""
    now = now or datetime.now(UTC)  # the real clock: an operation, not business time
    folder = _folder(var_dir)
    folder.mkdir(parents=True, exist_ok=True)
    last = last_archived(var_dir)
    after = int(last["last_seq"]) if last else 0
    with uow:
        sealer = uow.audit.sealer
        rows = list(uow.oplog.walk(after_seq=after))
    entry: dict[str, Any] = {"at": now.astimezone(clock.CHINA).isoformat(timespec="seconds"), "rows": len(rows),
                             "first_seq": after + 1 if rows else None, "last_seq": rows[-1]["seq"] if rows else after,
                             "last_hash": rows[-1]["row_hash"] if rows else (last or {}).get("last_hash"),
                             "algorithm": sealer.algorithm}
    if rows:
        data = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True, default=_instant) + "\n" for r in rows).encode()
        name = f"oplog-{after + 1:012d}-{rows[-1]['seq']:012d}.jsonl"
        _write_new(folder / name, data)
        entry.update(file=name, digest=sealer.digest(data))
        _append(folder / ARCHIVE_LOG, (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode())
    with uow:
        uow.oplog.note(**{k: v for k, v in entry.items() if k in ("rows", "first_seq", "last_seq", "file")})
    return entry


def _instant(value: Any) -> str:
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else str(value)


def status(uow: UnitOfWork, *, var_dir: Path, retention_days: int, now: datetime | None = None) -> dict[str, Any]:
    """The log's rows, the archived-through seq, and whether every row older than the
    retention is archived."""
    now = now or datetime.now(UTC)
    last = last_archived(var_dir)
    archived = int(last["last_seq"]) if last else 0
    with uow:
        head = uow.oplog.head()
        old = uow.oplog.last_seq_before(now - timedelta(days=retention_days))
    return {"rows": head[0] if head else 0, "archived_through": archived, "retention_days": retention_days,
            "old_rows_archived": old is None or old <= archived}


def archive_text(entry: dict[str, Any]) -> str:
    if not entry["rows"]:
        return "审计日志没有新的记录需要归档\n"
    return (f"已归档审计日志第 {entry['first_seq']}–{entry['last_seq']} 条（{entry['rows']} 条）到 "
            f"{ARCHIVE_DIR}/{entry['file']}，摘要 {entry['algorithm'].upper()} {entry['digest']}\n")
