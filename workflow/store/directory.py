"""The directory: organisations, users and their memberships, the loaded policies, rounds and
member counts; and the directory import's set-based statements (users as plain rows, their
updates in one executemany, memberships as keys)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, func, insert, select, update

from workflow.domain.errors import NotFound
from workflow.domain.policy import Policy, parse_policy
from workflow.store.errors import not_found
from workflow.store.tables import MemberCount, Membership, Organisation, PolicyDoc, Round, User
from workflow.store.transaction import Transaction

#: The user fields an import may change.
USER_FIELDS = ("display_name", "email", "phone", "channels", "password_hash")

_MEMBERSHIPS = (
    select(Organisation, Membership.role)
    .join(Membership, Membership.org_id == Organisation.id)
    .where(Membership.user_id == bindparam("user_id"))
)
_USER_WITH_MEMBERSHIPS = (
    select(User, Organisation, Membership.role)
    .outerjoin(Membership, Membership.user_id == User.id)
    .outerjoin(Organisation, Organisation.id == Membership.org_id)
    .where(User.id == bindparam("user_id"))
)
_USERS_WITH_ROLE = (
    select(User)
    .join(Membership, Membership.user_id == User.id)
    .where(Membership.org_id == bindparam("org_id"), Membership.role == bindparam("role"),
           User.is_active.is_(True))  # type: ignore[attr-defined]
    .order_by(User.id)
)


#: Policies parsed, by digest (a process parses each document once).
_PARSED: dict[str, Policy] = {}


def parsed_policy(digest: str, text: str) -> Policy:
    """A policy document parsed once per digest."""
    policy = _PARSED.get(digest)
    if policy is None:
        policy = _PARSED[digest] = parse_policy(text, source=f"policy:{digest}")
    return policy




class Directory:
    """The directory: organisations, users, memberships, policies, rounds and member counts."""

    def __init__(self, uow: Transaction) -> None:
        self._uow = uow

    def org_ids_by_code(self) -> dict[str, int]:
        o = Organisation.__table__
        return {code: int(i) for code, i in self._uow.session.execute(select(o.c.code, o.c.id)).all()}

    def user_rows(self) -> dict[str, Any]:
        """Every user by name: (username, id, email, phone, channels, password_hash)."""
        u = User.__table__
        return {r.username: r for r in self._uow.session.execute(
            select(u.c.username, u.c.id, u.c.email, u.c.phone, u.c.channels, u.c.password_hash)).all()}

    def update_users(self, changed: list[dict[str, Any]]) -> None:
        """``changed``: dicts with ``b_username`` and every field of :data:`USER_FIELDS`."""
        if not changed:
            return
        table = User.__table__
        self._uow.session.execute(
            update(table).where(table.c.username == bindparam("b_username"))
            .values({k: bindparam(k) for k in USER_FIELDS})
            .execution_options(synchronize_session=False),
            changed,
        )

    def membership_keys(self) -> set[tuple[int, int, str]]:
        """Every membership as (user id, org id, role)."""
        return {(u, o, r) for u, o, r in self._uow.session.execute(
            select(Membership.user_id, Membership.org_id, Membership.role))}

    def org(self, org_id: int) -> Organisation:
        org = self._uow.session.get(Organisation, org_id)
        if org is None:
            raise not_found("org", org_id)
        return org

    def org_by_code(self, code: str) -> Organisation:
        org = self._uow.session.exec(select(Organisation).where(Organisation.code == code)).scalar_one_or_none()  # type: ignore[call-overload]
        if org is None:
            raise not_found("org_code", code)
        return org

    def user(self, user_id: int) -> User:
        user = self._uow.session.get(User, user_id)
        if user is None or not user.is_active:
            raise not_found("user", user_id)
        return user

    def user_by_name(self, username: str) -> User:
        user = self._uow.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
        if user is None or not user.is_active:
            raise not_found("username", username)
        return user

    def user_with_memberships(self, user_id: int) -> tuple[User, list[tuple[Organisation, str]]]:
        """The active user and their memberships, in one query."""
        rows = self._uow.session.execute(_USER_WITH_MEMBERSHIPS, {"user_id": user_id}).all()
        if not rows or not rows[0][0].is_active:
            raise not_found("user", user_id)
        return rows[0][0], [(o, r) for _u, o, r in rows if o is not None]

    def memberships(self, user_id: int) -> list[tuple[Organisation, str]]:
        rows = self._uow.session.execute(_MEMBERSHIPS, {"user_id": user_id}).all()
        return [(o, r) for o, r in rows]

    def users_with_role(self, org_id: int, role: str) -> list[User]:
        return list(self._uow.session.execute(_USERS_WITH_ROLE, {"org_id": org_id, "role": role}).scalars())

    def active_user_ids(self, org_id: int, role: str) -> set[int]:
        """The ids of the active users holding ``role`` at an organisation."""
        return {int(u.id or 0) for u in self.users_with_role(org_id, role)}

    def save_policy(self, policy: Policy, *, now: datetime) -> None:
        doc = self._uow.session.get(PolicyDoc, policy.code)
        if doc is None:
            doc = PolicyDoc(code=policy.code, document=policy.document, title=policy.title,
                            digest=policy.digest, source_text=policy.source_text, loaded_at=now)
        else:
            doc.document, doc.title = policy.document, policy.title
            doc.digest, doc.source_text, doc.loaded_at = policy.digest, policy.source_text, now
        self._uow.session.add(doc)
        self._uow.session.flush()

    def round(self, round_id: int) -> Round:
        rnd = self._uow.session.get(Round, round_id)
        if rnd is None:
            raise not_found("round", round_id)
        return rnd

    def rounds(self) -> list[Round]:
        return list(self._uow.session.execute(select(Round).order_by(Round.year, Round.id)).scalars())

    def round_by_label(self, label: str) -> Round:
        rows = list(self._uow.session.execute(
            select(Round).where((Round.label == label) | (func.cast(Round.year, String) == label))
            .order_by(Round.id.desc())  # type: ignore[union-attr]
        ).scalars())
        if not rows:
            raise not_found("round_label", label)
        return rows[0]

    def upsert_round(self, values: dict[str, Any]) -> Round:
        existing = self._uow.session.execute(
            select(Round).where(Round.policy_code == values["policy_code"], Round.year == values["year"])
        ).scalar_one_or_none()
        rnd = existing or Round(**values)
        for k, v in values.items():
            setattr(rnd, k, v)
        self._uow.session.add(rnd)
        self._uow.session.flush()
        return rnd

    def member_count(self, org_id: int, round_id: int) -> int | None:
        row = self._uow.session.get(MemberCount, (org_id, round_id))
        return None if row is None else row.members

    def upsert_member_counts(self, round_id: int, counts: dict[int, int]) -> None:
        """Set members per organisation for a round, set-based (delete + insert)."""
        table = MemberCount.__table__
        ids = list(counts)
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            self._uow.session.execute(table.delete().where(table.c.round_id == round_id, table.c.org_id.in_(chunk)))
            self._uow.session.execute(
                insert(table), [{"org_id": o, "round_id": round_id, "members": counts[o]} for o in chunk]
            )

    def org_rows(self) -> list[Any]:
        """Every organisation as a plain row (id, code, name, kind, parent_id, path, depth, phone,
        is_observer): a province is 215,000 of them, no ORM objects."""
        o = Organisation.__table__
        return list(self._uow.session.execute(
            select(o.c.id, o.c.code, o.c.name, o.c.kind, o.c.parent_id, o.c.path, o.c.depth, o.c.phone,
                   o.c.is_observer)).all())

    def display_names(self, user_ids: Iterable[int]) -> dict[int, str]:
        ids = list(user_ids)
        if not ids:
            return {}
        return {i: n for i, n in self._uow.execute(select(User.id, User.display_name).where(User.id.in_(ids)))}

    def policy(self, code: str) -> Policy:
        """The loaded policy ``code``, parsed once per digest."""
        doc = self._uow.execute(select(PolicyDoc.digest, PolicyDoc.source_text).where(PolicyDoc.code == code)).first()
        if doc is None:
            raise NotFound(f"未加载策略“{code}”", code="policy.not_found")
        return parsed_policy(doc.digest, doc.source_text)

    def set_missing_passwords(self, password_hash: str) -> None:
        """Give every user without a password this one (the demo's shared password)."""
        u = User.__table__
        self._uow.execute(update(u).where(u.c.password_hash.is_(None)).values(password_hash=password_hash))

    # --- the system administrator's pages ------------------------------------------------------

    def children(self, org_id: int, *, limit: int = 200) -> list[Organisation]:
        """The organisations directly under ``org_id``, by code (at most ``limit``)."""
        return list(self._uow.session.execute(
            select(Organisation).where(Organisation.parent_id == org_id)  # type: ignore[arg-type]
            .order_by(Organisation.code).limit(limit)).scalars())

    def accounts_at(self, org_id: int) -> list[tuple[User, str]]:
        """The accounts holding a seat at ``org_id``, with the seat's role, by username."""
        return [(u, r) for u, r in self._uow.session.execute(
            select(User, Membership.role).join(Membership, Membership.user_id == User.id)  # type: ignore[arg-type]
            .where(Membership.org_id == org_id).order_by(User.username, Membership.role)).all()]
