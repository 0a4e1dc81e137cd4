"""Orders claimed by more than one union: the same platform order (channel + order number) held
by live positive purchase lines of two or more records of one round, and the reviewers'
explanations of such orders (:class:`~workflow.store.tables.OrderClaimNote`).

Every statement is set-based and reads the partial index ``ix_purchase_live_order`` (channel,
order number, record; live lines only): a record's own claims are one self-join, a subtree's
suspects one GROUP BY over the subtree's live lines, whatever its size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as lite_insert

from workflow.store.records import OrgRef
from workflow.store.tables import OrderClaimNote, Organisation, Purchase, Record, User
from workflow.store.transaction import Transaction

PURCHASE = Purchase.__table__  # type: ignore[attr-defined]
RECORD = Record.__table__  # type: ignore[attr-defined]
ORG = Organisation.__table__  # type: ignore[attr-defined]
NOTE = OrderClaimNote.__table__  # type: ignore[attr-defined]
USER = User.__table__  # type: ignore[attr-defined]
#: Built once: an alias builds a proxy per column (with its foreign keys' event listeners) when
#: first used, ~20 ms on every purchase entered when it was made per call.
_MINE, _OTHER = PURCHASE.alias("mine"), PURCHASE.alias("other")


def covered_ids(record_ids: str | None) -> frozenset[int]:
    """The record ids an explanation covered (stored as ``,12,57,``)."""
    return frozenset(int(x) for x in (record_ids or "").split(",") if x.strip())


def record_ids_text(ids: set[int] | frozenset[int] | list[int]) -> str:
    return "," + ",".join(str(i) for i in sorted(set(ids))) + ","


@dataclass(frozen=True)
class OtherClaim:
    """Another record of the round holding one of a record's orders live."""

    channel: str
    order_no: str
    record_id: int
    org_id: int
    org_name: str
    org_parent_id: int | None
    explained: bool  # an explanation covers both records


@dataclass(frozen=True)
class Holder:
    """One record holding an order live, with its organisation and its lines' sums."""

    channel: str
    order_no: str
    record_id: int
    state: str
    org_id: int
    org_code: str
    org_name: str
    org_path: str
    org_parent_id: int | None
    amount_fen: int
    people: int
    lines: int

    @property
    def org(self) -> OrgRef:
        """The holder's organisation as the access policy reads it."""
        return OrgRef(self.org_id, self.org_path, self.org_parent_id)


@dataclass(frozen=True)
class Note:
    round_id: int
    channel: str
    order_no: str
    record_ids: frozenset[int]
    explained_by: str
    explained_by_user_id: int
    explained_at: datetime
    reason: str


def _live_claims() -> Any:
    """Live positive lines (a refund is not a claim of an order)."""
    return and_(PURCHASE.c.voided_at.is_(None), PURCHASE.c.amount_fen > 0)


class OrderClaims:
    """Cross-union order lookups and the explanations."""

    def __init__(self, uow: Transaction) -> None:
        self._uow = uow

    def others_of_record(self, record_id: int, round_id: int) -> list[OtherClaim]:
        """Every (order, other record) where another record of the round holds one of this
        record's live orders: one self-join on the live-order index."""
        mine, other = _MINE, _OTHER
        stmt = (
            select(mine.c.channel, mine.c.order_no, other.c.record_id, ORG.c.id, ORG.c.name, ORG.c.parent_id,
                   NOTE.c.record_ids, ORG.c.code)
            .select_from(mine)
            .join(other, and_(other.c.channel == mine.c.channel, other.c.order_no == mine.c.order_no,
                              other.c.record_id != mine.c.record_id, other.c.voided_at.is_(None),
                              other.c.amount_fen > 0))
            .join(RECORD, RECORD.c.id == other.c.record_id)
            .join(ORG, ORG.c.id == RECORD.c.org_id)
            .outerjoin(NOTE, and_(NOTE.c.round_id == round_id, NOTE.c.channel == mine.c.channel,
                                  NOTE.c.order_no == mine.c.order_no))
            .where(mine.c.record_id == record_id, mine.c.voided_at.is_(None), mine.c.amount_fen > 0,
                   RECORD.c.round_id == round_id)
            .distinct()
            .order_by(mine.c.channel, mine.c.order_no, ORG.c.code)
        )
        out = []
        for channel, order_no, rid, org_id, name, parent_id, ids, _code in self._uow.execute(stmt).all():
            covered = covered_ids(ids)
            out.append(OtherClaim(channel, order_no, int(rid), int(org_id), name, parent_id,
                                  record_id in covered and int(rid) in covered))
        return out

    def holders(self, round_id: int, channel: str, order_no: str) -> list[Holder]:
        """The records of the round holding the order live, with their sums."""
        p = PURCHASE
        stmt = (
            select(p.c.record_id, RECORD.c.state, ORG.c.id, ORG.c.code, ORG.c.name, ORG.c.path, ORG.c.parent_id,
                   func.sum(p.c.amount_fen), func.sum(p.c.people), func.count())
            .join(RECORD, RECORD.c.id == p.c.record_id)
            .join(ORG, ORG.c.id == RECORD.c.org_id)
            .where(p.c.channel == channel, p.c.order_no == order_no, _live_claims(), RECORD.c.round_id == round_id)
            .group_by(p.c.record_id, RECORD.c.state, ORG.c.id, ORG.c.code, ORG.c.name, ORG.c.path, ORG.c.parent_id)
            .order_by(ORG.c.code)
        )
        return [Holder(channel, order_no, int(r[0]), r[1], int(r[2]), r[3], r[4], r[5], r[6], int(r[7] or 0),
                       int(r[8] or 0), int(r[9])) for r in self._uow.execute(stmt).all()]

    def suspects(self, round_id: int, path_prefix: str, *, limit: int) -> list[tuple[Holder, Note | None]]:
        """Within the subtree at ``path_prefix``: every order held live by two or more of its
        records in the round (at most ``limit`` orders), each holder with its sums and the
        order's explanation if any. Two GROUP BYs over the subtree's live lines, in one statement."""
        p = PURCHASE
        claims = (
            select(p.c.channel, p.c.order_no, p.c.record_id, func.sum(p.c.amount_fen).label("amount_fen"),
                   func.sum(p.c.people).label("people"), func.count().label("lines"))
            .join(RECORD, RECORD.c.id == p.c.record_id)
            .join(ORG, ORG.c.id == RECORD.c.org_id)
            .where(RECORD.c.round_id == round_id, ORG.c.path.startswith(path_prefix, autoescape=True),
                   _live_claims())
            .group_by(p.c.channel, p.c.order_no, p.c.record_id)
            .cte("claims")
        )
        dups = (
            select(claims.c.channel, claims.c.order_no)
            .group_by(claims.c.channel, claims.c.order_no)
            .having(func.count() > 1)
            .order_by(claims.c.channel, claims.c.order_no)
            .limit(limit)
            .cte("dups")
        )
        stmt = (
            select(claims.c.channel, claims.c.order_no, claims.c.record_id, RECORD.c.state, ORG.c.id, ORG.c.code,
                   ORG.c.name, ORG.c.path, ORG.c.parent_id, claims.c.amount_fen, claims.c.people, claims.c.lines,
                   NOTE.c.record_ids, NOTE.c.explained_by_user_id, USER.c.display_name, NOTE.c.explained_at,
                   NOTE.c.reason)
            .join(dups, and_(dups.c.channel == claims.c.channel, dups.c.order_no == claims.c.order_no))
            .join(RECORD, RECORD.c.id == claims.c.record_id)
            .join(ORG, ORG.c.id == RECORD.c.org_id)
            .outerjoin(NOTE, and_(NOTE.c.round_id == round_id, NOTE.c.channel == claims.c.channel,
                                  NOTE.c.order_no == claims.c.order_no))
            .outerjoin(USER, USER.c.id == NOTE.c.explained_by_user_id)
            .order_by(claims.c.channel, claims.c.order_no, ORG.c.code)
        )
        out: list[tuple[Holder, Note | None]] = []
        for r in self._uow.execute(stmt).all():
            holder = Holder(r[0], r[1], int(r[2]), r[3], int(r[4]), r[5], r[6], r[7], r[8], int(r[9] or 0),
                            int(r[10] or 0), int(r[11]))
            note = None if r[12] is None else Note(round_id, r[0], r[1], covered_ids(r[12]), r[14] or "",
                                                   int(r[13]), r[15], r[16])
            out.append((holder, note))
        return out

    def note(self, round_id: int, channel: str, order_no: str) -> Note | None:
        row = self._uow.execute(
            select(NOTE.c.record_ids, NOTE.c.explained_by_user_id, USER.c.display_name, NOTE.c.explained_at,
                   NOTE.c.reason)
            .outerjoin(USER, USER.c.id == NOTE.c.explained_by_user_id)
            .where(NOTE.c.round_id == round_id, NOTE.c.channel == channel, NOTE.c.order_no == order_no)
        ).first()
        if row is None:
            return None
        return Note(round_id, channel, order_no, covered_ids(row[0]), row[2] or "", int(row[1]), row[3], row[4])

    def save_note(self, *, round_id: int, channel: str, order_no: str, record_ids: set[int], user_id: int,
                  reason: str, now: datetime) -> None:
        """Record (or rewrite) the explanation of an order: one row per round, channel and order."""
        values = {"round_id": round_id, "channel": channel, "order_no": order_no,
                  "record_ids": record_ids_text(record_ids), "explained_by_user_id": user_id,
                  "explained_at": now, "reason": reason}
        changed = {k: values[k] for k in ("record_ids", "explained_by_user_id", "explained_at", "reason")}
        if self._uow.dialect == "postgresql":
            stmt: Any = pg_insert(NOTE).values(values).on_conflict_do_update(
                constraint="uq_order_claim_note", set_=changed)
            self._uow.execute(stmt)
        elif self._uow.dialect == "sqlite":
            stmt = lite_insert(NOTE).values(values).on_conflict_do_update(
                index_elements=["round_id", "channel", "order_no"], set_=changed)
            self._uow.execute(stmt)
        else:  # pragma: no cover - other databases are not supported deployments
            if not self._uow.execute(update(NOTE).where(
                    NOTE.c.round_id == round_id, NOTE.c.channel == channel, NOTE.c.order_no == order_no)
                    .values(changed)).rowcount:
                self._uow.execute(NOTE.insert().values(values))
