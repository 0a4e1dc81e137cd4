"""The history chain's two jobs: verifying it (``bangfu audit-verify``) and exporting its heads
where the database's owner cannot rewrite them (``bangfu audit-export-head``, a daily beat task).

Verifying walks every record's chain (:mod:`workflow.store.chain`) and names, per record, the
first row that breaks it: content that does not match its keyed hash (rewritten, or forged
without the key), a row missing before it (deleted), a row nobody sealed (forged), a row whose
record is gone (``DELETE FROM record`` with foreign keys off). A rewritten or deleted *tail*
leaves a consistent shorter chain; the last export catches it: each record's head at export time
must still be in its chain, unchanged.

An export appends one line to ``var/audit/heads.log`` (opened ``O_APPEND``; never rewritten)
— the time, the number of chains and rows, the hash function and the digest of the heads file
written beside it (``heads-<time>.tsv``: record, seq, row hash, one line per record) — and e-mails
the same line to the province's administrators (bangfu has no auditor role yet; when it has, the
auditors receive it instead).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import states
from workflow.app.lifecycle import EVENT_LABELS
from workflow.app.oplog import audited
from workflow.domain import clock
from workflow.store import chain
from workflow.store.uow import UnitOfWork

#: Under the var dir: the heads log and the heads files.
AUDIT_DIR = "audit"
HEADS_LOG = "heads.log"
SYSTEM_LABELS = {"late": "迟报（系统）", "overdue": "逾期（系统）", "lapse": "额度失效（系统）",
                 "change_deadline": "调整报送截止日期"}


@dataclass(frozen=True)
class Break:
    """The first row that breaks one record's chain."""

    record_id: int
    org_name: str | None
    history_id: int | None
    seq: int | None
    at: datetime | None
    trigger: str | None
    problem: str

    def line(self) -> str:
        who = self.org_name or f"记录 #{self.record_id}（记录已不存在）"
        when = f"{self.at.astimezone(clock.CHINA):%Y-%m-%d %H:%M:%S}" if self.at else "—"
        what = _label(self.trigger) if self.trigger else "—"
        row = f"历史行 #{self.history_id}" if self.history_id is not None else "历史行"
        seq = f"（第 {self.seq} 条）" if self.seq is not None else ""
        return f"{who}：{row}{seq}，时间 {when}，操作“{what}”：{self.problem}"


@dataclass
class VerifyReport:
    algorithm: str
    records: int = 0
    rows: int = 0
    breaks: list[Break] = field(default_factory=list)
    #: The export compared against (its time), or None when there was none.
    export_at: str | None = None
    export_problem: str | None = None

    @property
    def ok(self) -> bool:
        return not self.breaks and self.export_problem is None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        d["breaks"] = [dict(asdict(b), line=b.line()) for b in self.breaks]
        return d


def _label(trigger: str) -> str:
    return states.TRIGGER_LABELS.get(trigger) or EVENT_LABELS.get(trigger) or SYSTEM_LABELS.get(trigger, trigger)


def _by_record(rows: Iterator[chain.ChainRow]) -> Iterator[list[chain.ChainRow]]:
    group: list[chain.ChainRow] = []
    for row in rows:
        if group and row.values["record_id"] != group[0].values["record_id"]:
            yield group
            group = []
        group.append(row)
    if group:
        yield group


def _first_break(rows: list[chain.ChainRow], mac: Any, exported: tuple[int, str] | None) -> Break | None:
    """The first row of one record's chain that breaks it (or its exported head gone)."""
    prev: str | None = None
    for expected, row in enumerate(rows, start=1):
        def broken(problem: str, row: chain.ChainRow = row) -> Break:
            return Break(row.values["record_id"], row.org_name, row.id, row.seq, row.values["at"],
                         row.values["trigger"], problem)
        if not row.record_exists:
            return broken("所属记录已被删除（孤立的历史行）")
        if row.seq is None or row.row_hash is None:
            return broken("没有链哈希：不是系统写入的（伪造或绕过系统插入）")
        if row.seq > expected:
            gone = f"第 {expected} 条" if row.seq == expected + 1 else f"第 {expected}–{row.seq - 1} 条"
            return broken(f"之前的{gone}历史已被删除")
        if row.seq < expected:
            return broken("序号重复：链被分叉或插入了伪造行")
        if row.prev_hash != prev:
            return broken("与前一条历史的哈希不衔接：前一条被删除或改写")
        if mac(chain.canonical(dict(row.values, seq=row.seq, prev_hash=row.prev_hash))) != row.row_hash:
            return broken("内容与链哈希不符：此行被改写（或在没有密钥的情况下伪造）")
        if exported is not None and row.seq == exported[0] and row.row_hash != exported[1]:
            return broken("与上次导出的链头不符：链尾被改写")
        prev = row.row_hash
    if exported is not None and exported[0] > len(rows):
        last = rows[-1]
        return Break(last.values["record_id"], last.org_name, None, exported[0], None, None,
                     f"上次导出时有 {exported[0]} 条历史，现在只有 {len(rows)} 条：链尾被删除")
    return None


def _audit_dir(var_dir: Path) -> Path:
    return var_dir / AUDIT_DIR


def last_export(var_dir: Path, sealer: chain.Sealer) -> tuple[dict[str, Any] | None, dict[int, tuple[int, str]], str | None]:
    """The last line of the heads log, the heads it names (record → (seq, hash)), and a problem
    with them (the heads file missing, or not matching the digest the log holds)."""
    log = _audit_dir(var_dir) / HEADS_LOG
    if not log.exists():
        return None, {}, None
    lines = [x for x in log.read_text(encoding="utf-8").splitlines() if x.strip()]
    if not lines:
        return None, {}, None
    entry = json.loads(lines[-1])
    path = _audit_dir(var_dir) / entry["heads_file"]
    if not path.exists():
        return entry, {}, f"上次导出的链头文件 {path.name} 不见了"
    data = path.read_bytes()
    if sealer.digest(data) != entry["digest"]:
        return entry, {}, f"上次导出的链头文件 {path.name} 与日志中的摘要不符（被改动）"
    heads: dict[int, tuple[int, str]] = {}
    for raw in data.decode().splitlines():
        rid, seq, h = raw.split("\t")
        heads[int(rid)] = (int(seq), h)
    return entry, heads, None


def verify(uow: UnitOfWork, *, var_dir: Path, round_label: str | None = None) -> VerifyReport:
    """Walk every chain (of one round with ``round_label``); the first break of each record,
    and the tail check against the last export."""
    with uow:
        sealer = uow.audit.sealer
        report = VerifyReport(algorithm=sealer.algorithm)
        entry, exported, problem = last_export(var_dir, sealer)
        if entry is not None:
            report.export_at = entry.get("at")
        report.export_problem = problem
        round_id = uow.directory.round_by_label(round_label).id if round_label else None
        mac, seen = sealer.mac, set()
        for rows in _by_record(uow.audit.walk(round_id=round_id)):
            rid = rows[0].values["record_id"]
            seen.add(rid)
            report.records += 1
            report.rows += len(rows)
            if (b := _first_break(rows, mac, exported.get(rid))) is not None:
                report.breaks.append(b)
        if round_id is None:
            for rid in sorted(set(exported) - seen):
                seq, _h = exported[rid]
                report.breaks.append(Break(rid, None, None, seq, None, None,
                                           f"上次导出时有 {seq} 条历史，现在一条也没有：整条链被删除"))
    return report


def verify_text(report: VerifyReport) -> str:
    head = f"核对了 {report.records} 条记录的 {report.rows} 条历史（{report.algorithm.upper()} 链）"
    if report.export_at:
        head += f"，并与 {report.export_at} 导出的链头比对"
    else:
        head += "；还没有导出过链头（bangfu audit-export-head），链尾被删改无法发现"
    lines = [head]
    if report.export_problem:
        lines.append(f"链头导出有问题：{report.export_problem}")
    if report.ok:
        lines.append("历史记录链完整，没有发现改动。")
    else:
        lines.append(f"发现 {len(report.breaks)} 条记录的历史被改动（每条记录列出第一处断点）：")
        lines.extend(f"  {b.line()}" for b in report.breaks)
    return "\n".join(lines) + "\n"


def _write(path: Path, data: bytes, flags: int, mode: int) -> None:
    """Write and fsync through ``os.open`` with exactly these flags (never a truncating open)."""
    fd = os.open(path, os.O_WRONLY | flags, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _append(path: Path, data: bytes) -> None:
    """Append-only: the log is opened ``O_APPEND`` (never truncated, never rewritten)."""
    _write(path, data, os.O_APPEND | os.O_CREAT, 0o640)


def _write_new(path: Path, data: bytes) -> None:
    """A file written once: ``O_EXCL`` refuses one that exists."""
    _write(path, data, os.O_CREAT | os.O_EXCL, 0o440)


@audited('history.export_heads')
def export_head(uow: UnitOfWork, *, var_dir: Path, now: datetime | None = None) -> dict[str, Any]:
    """Write the heads file, append its line to the heads log, and queue it by e-mail to the
    province's administrators. Returns the line."""
    now = now or datetime.now(UTC)  # the real clock: an operation, not business time
    folder = _audit_dir(var_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with uow:
        sealer = uow.audit.sealer
        heads = uow.audit.heads()
        data = "".join(f"{rid}\t{seq}\t{h}\n" for rid, seq, h in heads).encode()
        stamp = f"{now:%Y%m%dT%H%M%S%fZ}"
        entry: dict[str, Any] = {"at": now.astimezone(clock.CHINA).isoformat(timespec="seconds"), "algorithm": sealer.algorithm,
                 "records": len(heads), "rows": sum(seq for _r, seq, _h in heads),
                 "digest": sealer.digest(data), "heads_file": f"heads-{stamp}.tsv"}
        _write_new(folder / entry["heads_file"], data)
        _append(folder / HEADS_LOG, (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode())
        admins = uow.audit.province_admins()
        payload = json.dumps(dict(entry, path="/"), ensure_ascii=False, sort_keys=True)
        rows = [{"user_id": u.id, "channel": ch, "source": f"audit_head:{stamp}", "kind": "audit_head",
                 "record_id": None, "payload": payload, "status": "sent" if ch == "inbox" else "pending",
                 "attempts": 0, "created_at": now, "sent_at": now if ch == "inbox" else None}
                for u in admins for ch in (("inbox", "email") if u.email else ("inbox",))]
        entry["notified"] = uow.notifications.add(rows)
        uow.commit()
    return entry


def export_text(entry: dict[str, Any]) -> str:
    return (f"已导出链头：{entry['records']} 条记录、{entry['rows']} 条历史，摘要 {entry['algorithm'].upper()} "
            f"{entry['digest']}\n写入 {AUDIT_DIR}/{HEADS_LOG} 和 {AUDIT_DIR}/{entry['heads_file']}；"
            f"已通知省总工会管理员 {entry['notified']} 条（站内信和邮件）\n")
