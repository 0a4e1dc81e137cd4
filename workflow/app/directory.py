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

from workflow.app.oplog import audited
from workflow.domain import access, clock, text
from workflow.domain.errors import BadInput
from workflow.domain.policy import Policy
from workflow.store import directory as directory_store
from workflow.store.bulk import driver_value
from workflow.store.types import seal
from workflow.store.uow import ANALYZE_MIN_ROWS, UnitOfWork

ORG_COLUMNS = ("code", "name", "kind", "parent_code")
USER_COLUMNS = ("username", "display_name", "org_code", "role")
#: The organisation fields an import sets, in the order of ``values`` in :func:`import_organisations`.
ORG_FIELDS = ("name", "kind", "parent_id", "phone", "is_observer")


@dataclass(frozen=True)
class ImportReport:
    created: int
    updated: int
    records_opened: int


@audited('policy.install')
def install_policy(uow: UnitOfWork, *, policy: Policy, now: datetime | None = None) -> dict[str, Any]:
    """Store a policy, create or update its rounds and open their records (idempotent).

    Returns:
        ``{"policy": code, "rounds": [labels], "records_opened": n}``.
    """
    now = now or clock.now()
    with uow:
        uow.directory.save_policy(policy, now=now)
        scope_id = None
        if policy.scope:
            scope_id = uow.directory.org_by_code(policy.scope).id
        opened = 0
        labels = []
        for spec in policy.rounds:
            rnd = uow.directory.upsert_round(
                {
                    "policy_code": policy.code,
                    "year": spec.year,
                    "label": spec.label,
                    "quota_deadline": spec.quota_deadline,
                    "report_deadline_reporting_unit": spec.report_deadline_reporting_unit,
                    "report_deadline_default": spec.report_deadline_default,
                    "entry_cutoff": spec.entry_cutoff,
                    "cap_fen_per_member": spec.cap_fen_per_member,
                    "four_eyes": policy.four_eyes,
                    "scope_org_id": scope_id if spec.scope else None,
                }
            )
            opened += uow.records.open_records(rnd, policy, now=now)
            uow.records.rollup_rebuild(rnd.id)
            labels.append(spec.label)
        if opened >= ANALYZE_MIN_ROWS:
            uow.bulk.analyze("record", "rollup")
        uow.commit()
    return {"policy": policy.code, "rounds": labels, "records_opened": opened}


def _read_csv(data: bytes, required: tuple[str, ...]) -> list[dict[str, str]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            decoded = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise BadInput("文件编码无法识别：请保存为 UTF-8 或 GBK", code="import.encoding")
    reader = csv.reader(io.StringIO(decoded))
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise BadInput(f"缺少列：{', '.join(missing)}（需要 {', '.join(required)}）", code="import.header")
    width = len(header)
    pad = [""] * width
    # A short line has its missing cells empty; cells beyond the header are ignored.
    rows = [dict(zip(header, map(str.strip, row if len(row) >= width else row + pad[len(row):]), strict=False))
            for row in reader if row]
    # Every cell passes the free-text rule (one line each), then is normalised to NFC.
    errors: list[str] = []
    code = "import.rows"
    for i, row in enumerate(rows, start=2):
        for column, value in row.items():
            if refusal := text.text_refusal(value, field=column):
                code = refusal.code
                errors.append(f"第 {i} 行：{refusal.message}")
                break
        else:
            row.update((column, text.normalise(value)) for column, value in row.items())
        if len(errors) >= 200:
            break
    if errors:
        raise BadInput("文件有错误的行，未导入任何数据：\n" + "\n".join(errors), code=code)
    return rows


@audited('rollup.rebuild')
def rebuild_rollup(uow: UnitOfWork, *, round_label: str | None = None) -> str:
    """Recompute the overview's rollup table from the records (one round, or every round), in
    one transaction: a repair after writes made outside bangfu. Returns the message to show."""
    with uow:
        rounds = [uow.directory.round_by_label(round_label)] if round_label else uow.directory.rounds()
        rows = sum(uow.records.rollup_rebuild(rnd.id) for rnd in rounds)
        uow.bulk.analyze("rollup")
        uow.commit()
    return f"已重建汇总表：{'、'.join(r.label for r in rounds) or '无年度'}，共 {rows} 行"


@audited('org.import')
def import_organisations(uow: UnitOfWork, *, data: bytes, now: datetime | None = None) -> ImportReport:
    """Import or update the organisation tree from CSV (code,name,kind,parent_code[,phone]).

    Parents may come in any order; a cycle, an unknown parent or a duplicate code refuses the
    whole file. New organisations get records in every open round.

    Set-based: the tree after the import is worked out in memory (every organisation's parent,
    then its materialised path and depth), so a moved organisation moves its whole subtree and
    an organisation placed below its own descendant is refused before anything is written; then
    one bulk insert of the new organisations (explicit ids, final paths), one executemany of the
    changed ones, the record parents of moved organisations in one UPDATE, the missing records
    opened set-based, and ANALYZE. A province (215,000 organisations) is one pass.
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
        existing = {r.code: r for r in uow.directory.org_rows()}
        codes = set(existing) | set(seen)
        for i, row in enumerate(rows, start=2):
            if row["parent_code"] and row["parent_code"] not in codes:
                errors.append(f"第 {i} 行：上级单位“{row['parent_code']}”不存在")
        if not errors:
            errors += _cycles_among_new(rows, existing)
        if errors:
            raise BadInput("组织导入失败，未导入任何数据：\n" + "\n".join(errors), code="import.rows")
        code_of = {r.id: c for c, r in existing.items()}
        parent_of: dict[str, str | None] = {c: code_of.get(r.parent_id) if r.parent_id else None
                                            for c, r in existing.items()}
        for r in rows:
            parent_of[r["code"]] = r["parent_code"] or None
        _refuse_moves_below_descendants(rows, existing, parent_of)
        fresh = [r for r in rows if r["code"] not in existing]
        ids = {c: r.id for c, r in existing.items()}
        ids.update(zip((r["code"] for r in fresh), uow.bulk.reserve_ids("organisation", len(fresh)), strict=True))
        paths = _paths(parent_of, ids)
        # Parents before their children (SQLite checks the parent key row by row).
        fresh.sort(key=lambda r: paths[r["code"]][1])

        def values(r: dict[str, str]) -> tuple[Any, ...]:
            """(name, kind, parent_id, phone, is_observer) of a row."""
            parent = r["parent_code"] or None
            return (r["name"], r["kind"], ids[parent] if parent else None, r.get("phone") or None,
                    r.get("observer", "") in ("1", "yes", "是"))

        flag = {b: driver_value(uow.dialect, b) for b in (True, False)}
        with uow.bulk.deferred_indexes("organisation"):  # the first load of a tree: indexes built once
            uow.bulk.insert("organisation", ("id", "code", "name", "kind", "parent_id", "phone", "is_observer",
                                             "path", "depth"),
                            ((ids[r["code"]], r["code"], *v[:3], seal(v[3]), flag[v[4]], *paths[r["code"]])
                             for r in fresh for v in (values(r),)), ready=True)
        changed: list[dict[str, Any]] = []
        reparented: list[int] = []
        for r in rows:
            old = existing.get(r["code"])
            if old is None:
                continue
            v = values(r)
            if (old.name, old.kind, old.parent_id, old.phone, bool(old.is_observer)) != v:
                changed.append({"id": old.id, **dict(zip(ORG_FIELDS, v, strict=True))})
            if old.parent_id != v[2]:
                reparented.append(old.id)
        uow.bulk.update("organisation", ORG_FIELDS, changed)
        # Paths and depths that differ from the stored ones: moved organisations and their
        # whole subtrees.
        uow.bulk.update("organisation", ("path", "depth"), [
            {"id": r.id, "path": paths[c][0], "depth": paths[c][1]}
            for c, r in existing.items() if (r.path, r.depth) != paths[c]])
        if reparented:
            uow.records.reparent_records(reparented)
        moved = any((r.path, r.depth) != paths[c] for c, r in existing.items())
        rounds = uow.directory.rounds()
        with uow.bulk.deferred_indexes("record"):  # no record yet: the rounds' records, indexes built once
            news = [uow.records.open_records(rnd, uow.directory.policy(rnd.policy_code), now=now, link=False) for rnd in rounds]
        for rnd in rounds:
            uow.records.link_record_parents(rnd.id or 0)
        opened = sum(news)
        # The statistics of the loaded tables before the rollup's GROUP BY reads them.
        if len(fresh) + len(changed) + opened >= ANALYZE_MIN_ROWS:
            uow.bulk.analyze("organisation", "record")
        for rnd, created in zip(rounds, news, strict=True):
            if created or moved:  # new records, or records now below other ancestors
                uow.records.rollup_rebuild(rnd.id)
        uow.commit()
    return ImportReport(created=len(fresh), updated=len(rows) - len(fresh), records_opened=opened)


def _cycles_among_new(rows: list[dict[str, str]], existing: dict[str, Any]) -> list[str]:
    """Rows whose parents never resolve to the existing tree: a cycle within the file."""
    placed = set(existing) - {r["code"] for r in rows}
    pending = list(rows)
    while pending:
        ready = {r["code"] for r in pending if not r["parent_code"] or r["parent_code"] in placed}
        if not ready:
            return ["上级关系存在循环：" + "、".join(r["code"] for r in pending[:10])]
        placed |= ready
        pending = [r for r in pending if r["code"] not in placed]
    return []


def _refuse_moves_below_descendants(rows: list[dict[str, str]], existing: dict[str, Any],
                                    parent_of: dict[str, str | None]) -> None:
    """An existing organisation given a parent inside its own subtree would make a cycle."""
    for r in rows:
        code = r["code"]
        if code not in existing or not r["parent_code"]:
            continue
        at: str | None = r["parent_code"]
        steps = 0
        while at is not None and steps <= len(parent_of):
            if at == code:
                raise BadInput(
                    f"组织导入失败，未导入任何数据：单位“{code}”不能移到它自己的下级“{r['parent_code']}”之下",
                    code="import.rows",
                )
            at = parent_of.get(at)
            steps += 1


def _paths(parent_of: dict[str, str | None], ids: dict[str, int]) -> dict[str, tuple[str, int]]:
    """Every organisation's materialised path (``/1/7/42/``) and depth, from its parent."""
    out: dict[str, tuple[str, int]] = {}
    for start in parent_of:
        chain: list[str] = []
        at: str | None = start
        while at is not None and at not in out:
            chain.append(at)
            at = parent_of[at]
        path, depth = out[at] if at is not None else ("/", -1)
        for code in reversed(chain):
            path, depth = f"{path}{ids[code]}/", depth + 1
            out[code] = (path, depth)
    return out


@audited('user.import')
def import_users(uow: UnitOfWork, *, data: bytes, now: datetime | None = None,
                 hash_password: Any = None, first_login_change: bool = True) -> ImportReport:
    """Import users and memberships from CSV (username,display_name,org_code,role[,email,phone,password]).

    One line per membership: a user with two roles has two lines. A new user given a password
    here must choose their own at the first login (``first_login_change``; the demo's seeded
    accounts are spared).
    """
    now = now or clock.now()
    rows = _read_csv(data, USER_COLUMNS)
    errors: list[str] = []
    with uow:
        orgs = uow.directory.org_ids_by_code()
        roles = access.ALL_ROLES
        # One quick pass finds the bad lines; only those are looked at again for the messages.
        bad = [i for i, row in enumerate(rows) if not row["username"] or not row["display_name"]
               or row["org_code"] not in orgs or row["role"] not in roles]
        for i, row in ((i + 2, rows[i]) for i in bad):
            if not row["username"] or not row["display_name"]:
                errors.append(f"第 {i} 行：username、display_name 不能为空")
            if row["org_code"] not in orgs:
                errors.append(f"第 {i} 行：单位“{row['org_code']}”不存在")
            if row["role"] not in roles:
                errors.append(f"第 {i} 行：角色“{row['role']}”无效，可选 {', '.join(sorted(roles))}")
        if errors:
            raise BadInput("用户导入失败，未导入任何数据：\n" + "\n".join(errors), code="import.rows")
        existing = uow.directory.user_rows()
        # Merge the lines per username first (a later line wins, field by field), then write
        # the users and memberships in bulk: a few statements, not a round trip per line.
        # A user's fields: display_name, email, phone, channels, password_hash.
        # Every line has every column of the header (see _read_csv): the optional ones present.
        optional = [(k, c) for k, c in ((1, "email"), (2, "phone"), (3, "channels")) if c in rows[0]] if rows else []
        hashing = bool(rows) and "password" in rows[0] and hash_password is not None
        merged: dict[str, list[Any]] = {}
        for row in rows:
            name = row["username"]
            v = merged.get(name)
            if v is None:
                old = existing.get(name)
                v = merged[name] = ([None, old.email, old.phone, old.channels, old.password_hash] if old
                                    else [None, None, None, "inbox,email", None])
            v[0] = row["display_name"]
            for k, c in optional:
                if row[c]:
                    v[k] = row[c]
            if hashing and row["password"]:
                v[4] = hash_password(row["password"])
        fresh = [n for n in merged if n not in existing]
        created = len(fresh)
        updated = len(rows) - created
        columns = ("id", "username", "display_name", "email", "phone", "channels", "password_hash", "is_active",
                   "created_at", "must_change_password", "password_changed_at")
        active, created_at = driver_value(uow.dialect, True), driver_value(uow.dialect, now)
        user_ids = {n: int(r.id) for n, r in existing.items()}
        user_ids.update(zip(fresh, uow.bulk.reserve_ids("app_user", len(fresh)), strict=True))
        with uow.bulk.deferred_indexes("app_user", "membership"):  # a first load: indexes built once
            forced, unforced = driver_value(uow.dialect, first_login_change), driver_value(uow.dialect, False)
            uow.bulk.insert("app_user", columns, (
                (user_ids[n], n, v[0], seal(v[1]), seal(v[2]), *v[3:], active, created_at,
                 forced if v[4] else unforced, created_at if v[4] and first_login_change else None)
                for n in fresh for v in (merged[n],)), ready=True)
            uow.directory.update_users([
                {"b_username": n, **dict(zip(directory_store.USER_FIELDS, v, strict=True))}
                for n, v in merged.items() if n in existing])
            have = uow.directory.membership_keys()
            wanted: list[tuple[int, int, str]] = []
            for row in rows:
                key = (user_ids[row["username"]], orgs[row["org_code"]], row["role"])
                if key not in have:
                    have.add(key)
                    wanted.append(key)
            uow.bulk.insert("membership", ("user_id", "org_id", "role"), wanted, ready=True)
        if created + len(wanted) >= ANALYZE_MIN_ROWS:
            uow.bulk.analyze("app_user", "membership")
        uow.commit()
    return ImportReport(created=created, updated=updated, records_opened=0)


@audited('members.import')
def import_member_counts(uow: UnitOfWork, *, data: bytes, round_label: str) -> ImportReport:
    """Member counts per organisation for a round from CSV (org_code,members). A plan that gives
    no member count uses this one. All-or-nothing like the other imports."""
    rows = _read_csv(data, ("org_code", "members"))
    errors: list[str] = []
    with uow:
        rnd = uow.directory.round_by_label(round_label)
        ids = uow.directory.org_ids_by_code()
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
        uow.directory.upsert_member_counts(rnd.id or 0, counts)
        if len(counts) >= ANALYZE_MIN_ROWS:
            uow.bulk.analyze("member_count")
        uow.commit()
    return ImportReport(created=len(counts), updated=0, records_opened=0)
