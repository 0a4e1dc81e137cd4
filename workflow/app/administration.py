"""The system administrator's and the reviewers' account and organisation work (issue 21,
三员分立): add, rename and move organisations; add a clerk or a second reviewer to a union or a
federation; deactivate an account; import the organisation and user CSVs from the page.

One rule in one place: every change to the tree goes through
:func:`workflow.app.directory.import_organisations` (a one-line file for a single change), so a
moved organisation moves its subtree, its records follow their new parents and the rollup is
rebuilt the same way as for a province's file; every new account through
:func:`workflow.app.directory.import_users`. Who may do what is
:mod:`workflow.domain.access` (``directory_refusal``, ``account_add_refusal``,
``admin_account_refusal``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from workflow.app import directory, passwords
from workflow.app.accounts import check_password, revoke_tokens
from workflow.app.oplog import audited
from workflow.domain import access, clock, text
from workflow.domain.errors import BadInput, NotFound, PermissionDenied, Refusal
from workflow.store.tables import Organisation
from workflow.store.uow import UnitOfWork

#: Organisation kinds a page may add (the tree's own words).
KIND_LABELS = {"city_federation": "市总工会", "district_federation": "区县总工会", "industry_union": "产业工会",
               "grassroots": "基层工会"}
ROLE_LABELS = {"clerk": "填报员", "reviewer": "审核人", "admin": "管理员", "observer": "观察员",
               access.SYSTEM_ADMIN: "系统管理员", access.SECURITY_ADMIN: "安全管理员", access.AUDITOR: "审计员"}


def _deny(refusal: Refusal | None) -> None:
    if refusal is not None:
        raise PermissionDenied(refusal.message, code=refusal.code)


def _csv(header: tuple[str, ...], row: tuple[str, ...]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)
    w.writerow(row)
    return out.getvalue().encode()


def _org(uow: UnitOfWork, code: str) -> Organisation:
    try:
        return uow.directory.org_by_code(code.strip())
    except NotFound:
        raise NotFound(f"找不到单位“{code}”", code="org.not_found") from None


def _parent_code(uow: UnitOfWork, org: Organisation) -> str:
    return uow.directory.org(org.parent_id).code if org.parent_id is not None else ""


def _check_name(name: str) -> str:
    name = text.clean_text(name, field="单位名称")
    if not name:
        raise BadInput("请填写单位名称", code="org.name_missing")
    if len(name) > 200:
        raise BadInput("单位名称不能超过 200 个字符", code="org.name_missing")
    return name


@audited("org.add", keep=("name", "kind", "parent_code"))
def add_org(uow: UnitOfWork, *, user_id: int, org_code: str, name: str, kind: str, parent_code: str,
            now: datetime | None = None) -> directory.ImportReport:
    """A new organisation under ``parent_code`` (records opened in every open round)."""
    name = _check_name(name)
    org_code = text.clean_text(org_code, field="单位代码")
    if not org_code or len(org_code) > 64 or any(c.isspace() or c == "," for c in org_code):
        raise BadInput("单位代码不能为空，最多 64 个字符，且不能含空格或逗号", code="org.code_invalid")
    if kind not in KIND_LABELS:
        raise BadInput(f"单位类型应为 {'、'.join(KIND_LABELS.values())} 之一", code="org.kind")
    with uow:
        parent = _org(uow, parent_code)
        _deny(access.directory_refusal(uow.directory.memberships(user_id), parent))
        if org_code in uow.directory.org_ids_by_code():
            raise BadInput(f"单位代码“{org_code}”已存在", code="org.exists")
    return directory.import_organisations(uow, data=_csv(directory.ORG_COLUMNS, (org_code, name, kind, parent.code)),
                                          now=now)


@audited("org.rename", keep=("name",))
def rename_org(uow: UnitOfWork, *, user_id: int, org_code: str, name: str,
               now: datetime | None = None) -> directory.ImportReport:
    name = _check_name(name)
    with uow:
        org = _org(uow, org_code)
        _deny(access.directory_refusal(uow.directory.memberships(user_id), org))
        uow.oplog.note(before={"name": org.name})
        row = (org.code, name, org.kind, _parent_code(uow, org))
    return directory.import_organisations(uow, data=_csv(directory.ORG_COLUMNS, row), now=now)


@audited("org.move", keep=("parent_code",))
def move_org(uow: UnitOfWork, *, user_id: int, org_code: str, parent_code: str,
             now: datetime | None = None) -> directory.ImportReport:
    """Move an organisation and its whole subtree under ``parent_code``; the records follow and
    the rollup of every round is rebuilt (by the import)."""
    with uow:
        org = _org(uow, org_code)
        parent = _org(uow, parent_code)
        _deny(access.directory_refusal(uow.directory.memberships(user_id), org, parent))
        if org.parent_id is None:
            raise BadInput("省总工会不能移动", code="org.root_move")
        uow.oplog.note(before={"parent_code": _parent_code(uow, org)})
        row = (org.code, org.name, org.kind, parent.code)
    return directory.import_organisations(uow, data=_csv(directory.ORG_COLUMNS, row), now=now)


def _root_admin(uow: UnitOfWork, user_id: int) -> None:
    """A whole file may touch any organisation: a system administrator of a root only."""
    seats = uow.directory.memberships(user_id)
    if not any(r == access.SYSTEM_ADMIN and o.parent_id is None for o, r in seats):
        raise PermissionDenied("只有省级系统管理员可以导入整个名单文件", code="permission.not_system_admin")


@audited("org.import")
def import_organisations(uow: UnitOfWork, *, user_id: int, data: bytes,
                         now: datetime | None = None) -> directory.ImportReport:
    """The organisation CSV uploaded on the page (the same import as ``bangfu org-import``)."""
    with uow:
        _root_admin(uow, user_id)
    return directory.import_organisations(uow, data=data, now=now)


@audited("user.import")
def import_users(uow: UnitOfWork, *, user_id: int, data: bytes, now: datetime | None = None) -> directory.ImportReport:
    """The user CSV uploaded on the page (the same import as ``bangfu user-import``; a
    ``password`` column sets initial passwords)."""
    with uow:
        _root_admin(uow, user_id)
    return directory.import_users(uow, data=data, now=now, hash_password=passwords.hash_password)


@audited("user.add", keep=("org_code", "role", "new_username", "display_name"),
         subject=lambda kw: f"user:{kw.get('new_username', '')}")
def add_account(uow: UnitOfWork, *, user_id: int, org_code: str, role: str, new_username: str, display_name: str,
                new_password: str, email: str = "", phone: str = "", now: datetime | None = None) -> None:
    """A new clerk or reviewer account at ``org_code`` (a second reviewer of a federation, a
    union's clerk): by a system administrator covering it, or a reviewer of it or its parent."""
    new_username = text.clean_text(new_username, field="用户名")
    display_name = text.clean_text(display_name, field="姓名")
    if not new_username or not display_name:
        raise BadInput("请填写用户名和姓名", code="account.fields_missing")
    if len(new_username) > 64 or any(c.isspace() or c == "," for c in new_username):
        raise BadInput("用户名不能超过 64 个字符，且不能含空格或逗号", code="account.fields_missing")
    if len(display_name) > 100 or len(email) > 200 or len(phone) > 64:
        raise BadInput("姓名最多 100 个字符，邮箱最多 200 个，手机最多 64 个", code="account.fields_missing")
    directory_password_rule(new_password)
    with uow:
        org = _org(uow, org_code)
        seats = uow.directory.memberships(user_id)
        if not access.can_view(seats, org) and access.directory_refusal(seats, org) is not None:
            raise NotFound(f"找不到单位“{org_code}”", code="org.not_found")
        _deny(access.account_add_refusal(seats, org, role))
        if uow.accounts.user_named(new_username) is not None:
            raise BadInput(f"用户名“{new_username}”已被使用", code="account.exists")
    data = _csv(("username", "display_name", "org_code", "role", "email", "phone", "password"),
                (new_username, display_name, org.code, role, email.strip(), phone.strip(), new_password))
    directory.import_users(uow, data=data, now=now or clock.now(), hash_password=passwords.hash_password)


def directory_password_rule(password: str) -> None:
    """The password rule of :mod:`workflow.app.accounts` (one rule; an account added with a
    password must choose its own at the first login)."""
    check_password(password)


@audited("user.deactivate")
def deactivate_account(uow: UnitOfWork, *, user_id: int, username: str, now: datetime | None = None) -> None:
    """Deactivate an account: it can no longer log in; its sessions and tokens end. A system
    administrator covering its seats, or the direct parent's reviewer of a clerk."""
    now = now or clock.now()
    with uow:
        target = uow.accounts.user_named(username.strip())
        if target is None:
            raise NotFound(f"找不到用户“{username}”", code="user.not_found")
        actor_seats = uow.directory.memberships(user_id)
        target_seats = uow.directory.memberships(target.id or 0)
        if (access.admin_account_refusal(actor_seats, target_seats) is not None
                and access.account_refusal(actor_seats, target_seats) is not None):
            if not access.can_view_account(actor_seats, target_seats):
                raise NotFound(f"找不到用户“{username}”", code="user.not_found")
            _deny(access.admin_account_refusal(actor_seats, target_seats)
                  if any(r == access.SYSTEM_ADMIN for _o, r in actor_seats)
                  else access.account_refusal(actor_seats, target_seats))
        target.is_active = False
        target.session_gen = (target.session_gen or 0) + 1
        uow.accounts.save_user(target)
        revoke_tokens(uow, target.id or 0, now)
        uow.commit()


# --- reading, for the pages --------------------------------------------------------------------


@dataclass(frozen=True)
class OrgPage:
    org: dict[str, Any]
    parent: dict[str, Any] | None
    children: list[dict[str, Any]]
    accounts: list[dict[str, Any]]
    may_edit: bool
    may_add_account: bool


def _org_dict(o: Organisation) -> dict[str, Any]:
    return {"code": o.code, "name": o.name, "kind": o.kind, "kind_label": KIND_LABELS.get(o.kind, "省总工会"),
            "depth": o.depth}


def admin_orgs(uow: UnitOfWork, *, user_id: int, org_code: str | None = None) -> OrgPage:
    """One organisation of the administrator's (or reviewer's) tree: its children and its
    accounts. Default: the user's top seat."""
    with uow:
        seats = uow.directory.memberships(user_id)
        managing = [(o, r) for o, r in seats if r in (access.SYSTEM_ADMIN, "reviewer")]
        if not managing:
            raise PermissionDenied("只有系统管理员和审核人可以维护单位和账号", code="permission.not_system_admin")
        if org_code:
            org = _org(uow, org_code)
            if not any(o.path and org.path.startswith(o.path) for o, _r in managing):
                raise NotFound(f"找不到单位“{org_code}”", code="org.not_found")
        else:
            org = min((o for o, _r in managing), key=lambda o: (o.depth, o.code))
        parent = uow.directory.org(org.parent_id) if org.parent_id is not None else None
        children = [_org_dict(c) for c in uow.directory.children(org.id or 0)]
        accounts = [{"username": u.username, "display_name": u.display_name, "role": r,
                     "role_label": ROLE_LABELS.get(r, r), "active": u.is_active}
                    for u, r in uow.directory.accounts_at(org.id or 0)]
        return OrgPage(org=_org_dict(org), parent=_org_dict(parent) if parent else None, children=children,
                       accounts=accounts, may_edit=access.directory_refusal(seats, org) is None,
                       may_add_account=access.account_add_refusal(seats, org, "reviewer") is None)
