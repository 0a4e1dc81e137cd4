"""Loading the world: policies and their rounds, the organisation tree and users from CSV.

Imports are all-or-nothing: every row is checked first and each bad row is reported by number
and reason; only a clean file is written, in one transaction.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, literal, select, update

import states
from workflow.domain import clock
from workflow.domain.errors import BadInput
from workflow.domain.policy import Policy
from workflow.store.tables import Membership, Organisation, Record, User
from workflow.store.uow import UnitOfWork

ORG_COLUMNS = ("code", "name", "kind", "parent_code")
USER_COLUMNS = ("username", "display_name", "org_code", "role")


@dataclass(frozen=True)
class ImportReport:
    created: int
    updated: int
    records_opened: int


def install_policy(uow: UnitOfWork, *, policy: Policy, now: datetime | None = None) -> dict[str, Any]:
    """Store a policy, create or update its rounds and open their records (idempotent).

    Returns:
        ``{"policy": code, "rounds": [labels], "records_opened": n}``.
    """
    now = now or clock.now()
    with uow:
        uow.save_policy(policy, now=now)
        scope_id = None
        if policy.scope:
            scope_id = uow.org_by_code(policy.scope).id
        opened = 0
        labels = []
        for spec in policy.rounds:
            rnd = uow.upsert_round(
                {
                    "policy_code": policy.code,
                    "year": spec.year,
                    "label": spec.label,
                    "quota_deadline": spec.quota_deadline,
                    "report_deadline_reporting_unit": spec.report_deadline_reporting_unit,
                    "report_deadline_default": spec.report_deadline_default,
                    "entry_cutoff": spec.entry_cutoff,
                    "cap_fen_per_member": spec.cap_fen_per_member,
                    "scope_org_id": scope_id if spec.scope else None,
                }
            )
            opened += uow.open_records(rnd, policy, now=now)
            labels.append(spec.label)
        uow.commit()
    return {"policy": policy.code, "rounds": labels, "records_opened": opened}


def _read_csv(data: bytes, required: tuple[str, ...]) -> list[dict[str, str]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise BadInput("文件编码无法识别：请保存为 UTF-8 或 GBK", code="import.encoding")
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in required if c not in header]
    if missing:
        raise BadInput(f"缺少列：{', '.join(missing)}（需要 {', '.join(required)}）", code="import.header")
    return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]


def import_organisations(uow: UnitOfWork, *, data: bytes, now: datetime | None = None) -> ImportReport:
    """Import or update the organisation tree from CSV (code,name,kind,parent_code[,phone]).

    Parents may come in any order; a cycle, an unknown parent or a duplicate code refuses the
    whole file. New organisations get records in every open round.
    """
    now = now or clock.now()
    rows = _read_csv(data, ORG_COLUMNS)
    errors: list[str] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(rows, start=2):
        if not row["code"] or not row["name"] or not row["kind"]:
            errors.append(f"第 {i} 行：code、name、kind 不能为空")
        if row["code"] in seen:
            errors.append(f"第 {i} 行：单位代码“{row['code']}”与第 {seen[row['code']]} 行重复")
        seen[row["code"]] = i
    with uow:
        existing = {o.code: o for o in uow.session.execute(select(Organisation)).scalars()}
        codes = set(existing) | set(seen)
        for i, row in enumerate(rows, start=2):
            if row["parent_code"] and row["parent_code"] not in codes:
                errors.append(f"第 {i} 行：上级单位“{row['parent_code']}”不存在")
        order: list[dict[str, str]] = []
        # Existing codes being re-imported are placed again in file order.
        placed: set[str] = set(existing) - set(seen)
        pending = list(rows)
        while pending and not errors:
            ready = [r for r in pending if not r["parent_code"] or r["parent_code"] in placed]
            if not ready:
                errors.append("上级关系存在循环：" + "、".join(r["code"] for r in pending[:10]))
                break
            for r in ready:
                order.append(r)
                placed.add(r["code"])
            pending = [r for r in pending if r["code"] not in placed]
        if errors:
            raise BadInput("组织导入失败，未导入任何数据：\n" + "\n".join(errors), code="import.rows")
        created = updated = 0
        ids = {c: o.id for c, o in existing.items()}
        org = Organisation.__table__
        reparented: list[int] = []
        for r in order:
            parent_id = ids.get(r["parent_code"]) if r["parent_code"] else None
            values = {"name": r["name"], "kind": r["kind"], "parent_id": parent_id,
                      "phone": r.get("phone") or None, "is_observer": r.get("observer", "") in ("1", "yes", "是")}
            # Paths are read from the database, not from the start of the import: an ancestor
            # moved earlier in this file has already moved everything below it.
            if parent_id is None:
                parent_path, parent_depth = "/", -1
            else:
                parent_path, parent_depth = uow.session.execute(
                    select(org.c.path, org.c.depth).where(org.c.id == parent_id)
                ).one()
            if r["code"] in existing:
                oid = ids[r["code"]]
                old_path, old_depth, old_parent = uow.session.execute(
                    select(org.c.path, org.c.depth, org.c.parent_id).where(org.c.id == oid)
                ).one()
                if parent_path.startswith(old_path):
                    raise BadInput(
                        f"组织导入失败，未导入任何数据：单位“{r['code']}”不能移到它自己的下级“{r['parent_code']}”之下",
                        code="import.rows",
                    )
                uow.session.execute(update(org).where(org.c.id == oid).values(**values))
                new_path, new_depth = f"{parent_path}{oid}/", parent_depth + 1
                if new_path != old_path:
                    # Move the whole subtree: descendants keep their place below it.
                    uow.session.execute(
                        update(org)
                        .where(org.c.path.like(old_path + "%"), org.c.id != oid)
                        .values(path=literal(new_path) + func.substr(org.c.path, len(old_path) + 1),
                                depth=org.c.depth + (new_depth - old_depth))
                    )
                if old_parent != parent_id:
                    reparented.append(oid)
                updated += 1
            else:
                res = uow.session.execute(insert(Organisation).values(code=r["code"], path="/", depth=0, **values))
                oid = res.inserted_primary_key[0]
                ids[r["code"]] = oid
                new_path, new_depth = f"{parent_path}{oid}/", parent_depth + 1
                created += 1
            uow.session.execute(update(org).where(org.c.id == oid).values(path=new_path, depth=new_depth))
        if reparented:
            # A moved organisation's records now report to its new parent's records.
            rec = Record.__table__
            parent_rec = rec.alias("parent_rec")
            new_parent = (
                select(parent_rec.c.id)
                .join(org, org.c.parent_id == parent_rec.c.org_id)
                .where(org.c.id == rec.c.org_id, parent_rec.c.round_id == rec.c.round_id)
                .scalar_subquery()
            )
            uow.session.execute(update(rec).where(rec.c.org_id.in_(reparented)).values(parent_id=new_parent))
        opened = 0
        for rnd in uow.rounds():
            opened += uow.open_records(rnd, uow.policy(rnd.policy_code), now=now)
        uow.commit()
    return ImportReport(created=created, updated=updated, records_opened=opened)


def import_users(uow: UnitOfWork, *, data: bytes, now: datetime | None = None,
                 hash_password: Any = None) -> ImportReport:
    """Import users and memberships from CSV (username,display_name,org_code,role[,email,phone,password]).

    One line per membership: a user with two roles has two lines.
    """
    now = now or clock.now()
    rows = _read_csv(data, USER_COLUMNS)
    errors: list[str] = []
    with uow:
        orgs = {o.code: o for o in uow.session.execute(select(Organisation)).scalars()}
        for i, row in enumerate(rows, start=2):
            if not row["username"] or not row["display_name"]:
                errors.append(f"第 {i} 行：username、display_name 不能为空")
            if row["org_code"] not in orgs:
                errors.append(f"第 {i} 行：单位“{row['org_code']}”不存在")
            if row["role"] not in states.ROLES:
                errors.append(f"第 {i} 行：角色“{row['role']}”无效，可选 {', '.join(sorted(states.ROLES))}")
        if errors:
            raise BadInput("用户导入失败，未导入任何数据：\n" + "\n".join(errors), code="import.rows")
        created = updated = 0
        existing = {u.username: u for u in uow.session.execute(select(User)).scalars()}
        # Merge the lines per username first (a later line wins, field by field), then write
        # the users and memberships in bulk: a few statements, not a round trip per line.
        merged: dict[str, dict[str, Any]] = {}
        for row in rows:
            name = row["username"]
            if name in merged or name in existing:
                updated += 1
            else:
                created += 1
            old = existing.get(name)
            base = merged.get(name) or {
                "email": old.email if old else None,
                "phone": old.phone if old else None,
                "channels": old.channels if old else "inbox,email",
                "password_hash": old.password_hash if old else None,
            }
            base["display_name"] = row["display_name"]
            base["email"] = row.get("email") or base["email"]
            base["phone"] = row.get("phone") or base["phone"]
            base["channels"] = row.get("channels") or base["channels"]
            if row.get("password") and hash_password is not None:
                base["password_hash"] = hash_password(row["password"])
            merged[name] = base
        table = User.__table__
        fresh = [{"username": n, "is_active": True, "created_at": now, **v}
                 for n, v in merged.items() if n not in existing]
        if fresh:
            uow.session.execute(insert(table), fresh)
        changed = [{"b_username": n, **v} for n, v in merged.items() if n in existing]
        if changed:
            uow.session.execute(
                update(table).where(table.c.username == bindparam("b_username")).values(
                    {k: bindparam(k) for k in ("display_name", "email", "phone", "channels", "password_hash")}
                ).execution_options(synchronize_session=False),
                changed,
            )
        user_ids = {name: uid for name, uid in uow.session.execute(select(table.c.username, table.c.id))}
        have = {
            (u, o, r) for u, o, r in uow.session.execute(
                select(Membership.user_id, Membership.org_id, Membership.role)
            )
        }
        wanted: list[dict[str, Any]] = []
        for row in rows:
            key = (user_ids[row["username"]], orgs[row["org_code"]].id, row["role"])
            if key not in have:
                have.add(key)
                wanted.append({"user_id": key[0], "org_id": key[1], "role": key[2]})
        if wanted:
            uow.session.execute(insert(Membership.__table__), wanted)
        uow.commit()
    return ImportReport(created=created, updated=updated, records_opened=0)


def import_member_counts(uow: UnitOfWork, *, data: bytes, round_label: str) -> ImportReport:
    """Member counts per organisation for a round from CSV (org_code,members). A plan that gives
    no member count uses this one. All-or-nothing like the other imports."""
    rows = _read_csv(data, ("org_code", "members"))
    errors: list[str] = []
    with uow:
        rnd = uow.round_by_label(round_label)
        ids = {o.code: o.id for o in uow.session.execute(select(Organisation)).scalars()}
        counts: dict[int, int] = {}
        for i, row in enumerate(rows, start=2):
            if row["org_code"] not in ids:
                errors.append(f"第 {i} 行：单位“{row['org_code']}”不存在")
                continue
            try:
                members = int(row["members"].replace(",", ""))
            except ValueError:
                errors.append(f"第 {i} 行：会员人数“{row['members']}”不是整数")
                continue
            if not 0 <= members <= 10_000_000:
                errors.append(f"第 {i} 行：会员人数 {members} 超出范围")
                continue
            counts[ids[row["org_code"]] or 0] = members
        if errors:
            raise BadInput("会员人数导入失败，未导入任何数据：\n" + "\n".join(errors), code="import.rows")
        uow.upsert_member_counts(rnd.id or 0, counts)
        uow.commit()
    return ImportReport(created=len(counts), updated=0, records_opened=0)
