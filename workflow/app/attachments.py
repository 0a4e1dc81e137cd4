"""Attachments of a record: the sealed Annex 2 scan (附件2盖章扫描件) and invoices.

The type is decided from the file's first bytes, never from its name or the browser's claim:
PDF, JPEG or PNG only, at most :data:`MAX_BYTES`. Who may upload is who may enter the record's
data (its clerk, or the parent's reviewer on its behalf); who may download is who may see it.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import states
from workflow.app import actors
from workflow.app.oplog import audited
from workflow.domain import clock, text
from workflow.domain.errors import BadInput, Refusal, RuleViolation
from workflow.store.tables import Attachment
from workflow.store.uow import UnitOfWork

MAX_BYTES = 10 * 1024 * 1024
KINDS: dict[str, str] = {"annex2_scan": "附件2盖章扫描件", "invoice": "发票", "other": "其他"}
#: Leading bytes -> (content type, extension).
SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
)


@dataclass(frozen=True)
class StoredFile:
    id: int
    filename: str
    content_type: str
    data: bytes


def sniff(data: bytes) -> tuple[str, str] | None:
    """The content type and extension of ``data`` from its first bytes, or None."""
    for magic, ctype, ext in SIGNATURES:
        if data.startswith(magic):
            return ctype, ext
    return None


def clean_filename(name: str, ext: str) -> str:
    """Keep letters (any script), digits, dot, dash, underscore; force the detected extension."""
    name = unicodedata.normalize("NFC", text.writable(name))
    base = re.sub(r"[^\w.\-]+", "_", name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip("._") or "file"
    stem = base.rsplit(".", 1)[0][:120]
    return f"{stem}.{ext}"


def check_upload(filename: str, data: bytes, kind: str) -> tuple[str, str]:
    """Refuse what may not be stored; return (content type, clean file name)."""
    if kind not in KINDS:
        raise BadInput(f"未知附件类别“{kind}”，可选：{'、'.join(KINDS)}", code="attachment.kind")
    if not data:
        raise BadInput("文件是空的", code="attachment.empty")
    if len(data) > MAX_BYTES:
        raise BadInput(f"文件超过 {MAX_BYTES // 1024 // 1024} MB 上限", code="attachment.too_large")
    found = sniff(data)
    if found is None:
        raise BadInput("只接受 PDF、JPG、PNG 文件（按文件内容判断，不看扩展名）", code="attachment.type")
    return found[0], clean_filename(filename, found[1])


@audited('attachment.add', keep=('kind', 'filename'))
def add_attachment(
    uow: UnitOfWork, *, record_id: int, user_id: int, kind: str, filename: str, data: bytes,
    now: datetime | None = None,
) -> int:
    """Store one file on a record. Refused once the record is accepted."""
    now = now or clock.now()
    content_type, name = check_upload(filename, data, kind)
    with uow:
        rec = uow.records.get(record_id)
        actor = actors.actor_for(uow, user_id, rec)
        _role, on_behalf = actors.entry_role(actor, "上传附件")
        if rec.state == states.ACCEPTED:
            raise RuleViolation(Refusal("attachment.record_accepted", "记录已通过，不能再上传附件"))
        row = Attachment(record_id=record_id, kind=kind, filename=name, content_type=content_type,
                         size=len(data), sha256=hashlib.sha256(data).hexdigest(), data=data,
                         uploaded_by_user_id=user_id, uploaded_at=now, on_behalf=on_behalf)
        uow.add(row)
        uow.commit()
        return row.id or 0


def list_attachments(uow: UnitOfWork, *, record_id: int, user_id: int) -> list[dict[str, Any]]:
    with uow:
        rec = uow.records.get(record_id)
        actors.actor_for(uow, user_id, rec)
        rows = uow.records.attachment_list(record_id)
        return [{"id": i, "kind": k, "kind_label": KINDS.get(k, k), "filename": f, "content_type": c,
                 "size": s, "uploaded_at": u, "on_behalf": b} for i, k, f, c, s, u, b in rows]


def get_attachment(uow: UnitOfWork, *, record_id: int, attachment_id: int, user_id: int) -> StoredFile:
    with uow:
        rec = uow.records.get(record_id)
        actors.actor_for(uow, user_id, rec)
        row = uow.records.attachment(record_id, attachment_id)
        return StoredFile(row.id or 0, row.filename, row.content_type, row.data)
