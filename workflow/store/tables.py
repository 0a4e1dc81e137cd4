"""Tables, engines, sessions and migrations: the module that talks SQL.

Money and people are 64-bit integers (a province sum is ~10¹² fen). Instants are stored in UTC
through :class:`UTCDateTime`, which keeps them aware on the way out even on SQLite; where bulk SQL
needs a calendar day, the China date is stored beside the instant (``paid_on``).

On SQLite (the embedded default, shared by a web server, a worker and the CLI) every connection
runs in WAL mode with a busy timeout, and write transactions begin IMMEDIATE, so two writers
queue instead of failing half-way with "database is locked".
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy import true as sa_true
from sqlmodel import Field, SQLModel

# The engine lives apart (SQLAlchemy alone); its names stay importable from here.
from workflow.store.engine import MIGRATIONS_DIR as MIGRATIONS_DIR
from workflow.store.engine import POOL_RECYCLE_SECONDS as POOL_RECYCLE_SECONDS
from workflow.store.engine import Database as Database
from workflow.store.engine import alembic_config as alembic_config
from workflow.store.engine import is_sqlite as is_sqlite
from workflow.store.engine import make_engine as make_engine
from workflow.store.engine import upgrade as upgrade
from workflow.store.types import PersonalText as PersonalText
from workflow.store.types import UTCDateTime as UTCDateTime


def _money(**kw: Any) -> Any:
    return Field(sa_type=BigInteger, **kw)


def _instant(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


# --- organisations, people, policy ----------------------------------------------------------


class Organisation(SQLModel, table=True):
    """A node of the union tree. ``path`` is the materialised path of ids (``/1/7/42/``) so a
    subtree is one indexed prefix match."""

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(sa_type=String(64), unique=True, index=True)
    name: str = Field(sa_type=String(200))
    kind: str = Field(sa_type=String(64), index=True)
    parent_id: int | None = Field(default=None, foreign_key="organisation.id", index=True)
    path: str = Field(default="/", sa_type=String(512), index=True)
    depth: int = 0
    phone: str | None = Field(default=None, sa_type=PersonalText)
    # Observer bodies (乡村振兴部门) sit outside the tree: no parent, no record.
    is_observer: bool = False


class User(SQLModel, table=True):
    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_type=String(64), unique=True, index=True)
    display_name: str = Field(sa_type=String(100))
    email: str | None = Field(default=None, sa_type=PersonalText)
    phone: str | None = Field(default=None, sa_type=PersonalText)
    password_hash: str | None = Field(default=None, sa_type=String(200))
    is_active: bool = True
    # Channels the user chose, comma separated: inbox, email, sms.
    channels: str = Field(default="inbox,email", sa_type=String(100))
    created_at: datetime | None = _instant()
    # Bumped by logout (and by a reset or handover): a session carries the generation it was
    # opened under, so a copied cookie stops working once its holder logs out.
    session_gen: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Password and login rules (workflow.domain.security): when the password was last set, whether
    # its holder must choose a new one before anything else (set by a reset, a handover, an
    # import with a password), failed logins in a row and when the account was locked.
    password_changed_at: datetime | None = _instant()
    must_change_password: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    failed_logins: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    locked_at: datetime | None = _instant()
    # The second factor (TOTP, RFC 6238), encrypted at rest like the phones when the setting says so.
    totp_secret: str | None = Field(default=None, sa_type=PersonalText)


class PasswordHistory(SQLModel, table=True):
    """The hashes of a user's earlier passwords: a new password may not repeat the last ones."""

    __tablename__ = "password_history"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    password_hash: str = Field(sa_type=String(200))
    at: datetime = Field(sa_type=UTCDateTime)


class Membership(SQLModel, table=True):
    """A user's role in an organisation. An observer's membership names the root of the subtree
    it may read."""

    __table_args__ = (UniqueConstraint("user_id", "org_id", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    org_id: int = Field(foreign_key="organisation.id", index=True)
    role: str = Field(sa_type=String(32))


class PolicyDoc(SQLModel, table=True):
    """A loaded policy file, kept verbatim so every process reads the same numbers."""

    __tablename__ = "policy"

    code: str = Field(sa_type=String(64), primary_key=True)
    document: str = Field(sa_type=String(200))
    title: str = Field(sa_type=String(300))
    digest: str = Field(sa_type=String(32))
    source_text: str = Field(sa_type=Text)
    loaded_at: datetime | None = _instant()


class Round(SQLModel, table=True):
    """One reporting year of a policy. Deadlines are the next day's 00:00 China time, in UTC."""

    __table_args__ = (UniqueConstraint("policy_code", "year"),)

    id: int | None = Field(default=None, primary_key=True)
    policy_code: str = Field(foreign_key="policy.code", sa_type=String(64))
    year: int
    label: str = Field(sa_type=String(100))
    quota_deadline: datetime = Field(sa_type=UTCDateTime)
    report_deadline_reporting_unit: datetime = Field(sa_type=UTCDateTime)
    report_deadline_default: datetime = Field(sa_type=UTCDateTime)
    entry_cutoff: datetime = Field(sa_type=UTCDateTime)
    cap_fen_per_member: int = _money()
    scope_org_id: int | None = Field(default=None, foreign_key="organisation.id")
    lapsed_at: datetime | None = _instant()
    # The policy's four-eyes switch, copied here when the policy is loaded so that deciding a
    # record reads no policy document.
    four_eyes: bool = Field(default=True, sa_column_kwargs={"server_default": sa_true()})


class MemberCount(SQLModel, table=True):
    __tablename__ = "member_count"

    org_id: int = Field(foreign_key="organisation.id", primary_key=True)
    round_id: int = Field(foreign_key="round.id", primary_key=True)
    members: int = _money()


# --- the yearly record ----------------------------------------------------------------------


class Record(SQLModel, table=True):
    """One organisation's record for one round (the receiving province has none)."""

    __table_args__ = (
        UniqueConstraint("org_id", "round_id"),
        Index("ix_record_round_state", "round_id", "state"),
        # The sweep's deadline checks (overdue, report reminders per deadline) find their few
        # records by round and deadline instead of joining the whole round.
        Index("ix_record_round_deadline", "round_id", "report_deadline"),
    )

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organisation.id", index=True)
    round_id: int = Field(foreign_key="round.id")
    # The parent organisation's record in the same round (None under the receiver).
    parent_id: int | None = Field(default=None, foreign_key="record.id", index=True)
    state: str = Field(default="planned", sa_type=String(32))
    version: int = 1
    is_grassroots: bool = False
    is_reporting_unit: bool = False
    amount_per_member_fen: int | None = Field(default=None, sa_type=BigInteger)
    members: int | None = Field(default=None, sa_type=BigInteger)
    quota_fen: int = _money(default=0)
    report_deadline: datetime = Field(sa_type=UTCDateTime)
    reporter: str | None = Field(default=None, sa_type=String(100))
    phone: str | None = Field(default=None, sa_type=PersonalText)
    fill_date: date | None = None
    work_experience: str | None = Field(default=None, sa_type=Text)
    work_highlights: str | None = Field(default=None, sa_type=Text)
    snapshot_id: int | None = Field(default=None, index=True)
    snapshot_stale: bool = False
    submitted_at: datetime | None = _instant()
    decided_at: datetime | None = _instant()
    last_reason: str | None = Field(default=None, sa_type=Text)
    is_overdue: bool = False
    is_late: bool = False
    lapsed_fen: int | None = Field(default=None, sa_type=BigInteger)
    updated_at: datetime | None = _instant()


class Rollup(SQLModel, table=True):
    """The overview's figures kept current: per round and organisation, the round's records
    below the organisation (its subtree without its own record), counted per state and per the
    flags the figures read, with the accepted records' snapshot totals. Leaves have no rows.

    Maintained in the transaction of every change of a record's key (a transition, a deadline
    change: one upsert over the organisation's ancestors, in the record's shard of each: the top
    levels' counters are split so that no row is written by every transaction of the province), recomputed set-based after bulk
    changes (sweeps, imports, opening records) and by ``bangfu rollup-rebuild``. Overdue is read
    at any instant from ``is_overdue`` and ``report_deadline``, so nothing goes stale with time.
    """

    __tablename__ = "rollup"

    round_id: int = Field(primary_key=True)
    org_id: int = Field(primary_key=True)
    shard: int = Field(default=0, sa_type=SmallInteger, primary_key=True)  # see workflow.store.rollup.SHARDS
    state: str = Field(sa_type=String(32), primary_key=True)
    is_grassroots: bool = Field(primary_key=True)
    is_overdue: bool = Field(primary_key=True)
    is_late: bool = Field(primary_key=True)
    has_snapshot: bool = Field(primary_key=True)
    report_deadline: datetime = Field(sa_type=UTCDateTime, primary_key=True)
    n: int = Field(default=0, sa_type=BigInteger)
    people: int = _money(default=0)  # accepted records' snapshot people
    amount_fen: int = _money(default=0)  # accepted records' snapshot amount


class Purchase(SQLModel, table=True):
    """One line of the purchase ledger. Refunds are negative rows linked to their order.

    A line entered wrongly is *voided* (who, when, why), never deleted: it stays visible and
    counts nowhere. The key (record, channel, order, line) is unique among live lines only, so
    the corrected line can be entered under the same order number."""

    __table_args__ = (
        Index("uq_purchase_live_key", "record_id", "channel", "order_no", "line_no", unique=True,
              sqlite_where=text("voided_at IS NULL"), postgresql_where=text("voided_at IS NULL")),
        Index("ix_purchase_record_channel", "record_id", "channel"),
        # The cross-union lookup: which records hold an order (channel, order number) live.
        Index("ix_purchase_live_order", "channel", "order_no", "record_id",
              sqlite_where=text("voided_at IS NULL"), postgresql_where=text("voided_at IS NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="record.id")
    paid_at: datetime = Field(sa_type=UTCDateTime)
    paid_on: date  # the China date of paid_at
    channel: str = Field(sa_type=String(32))
    amount_fen: int = _money()
    people: int = _money(default=0)
    holiday: str | None = Field(default=None, sa_type=String(32))
    product: str = Field(default="", sa_type=String(300))
    product_form: str | None = Field(default=None, sa_type=String(64))
    origin_region: str | None = Field(default=None, sa_type=String(100))
    order_no: str = Field(sa_type=String(100))
    line_no: int = 1
    # extra_quota | ordinary_gift | collective_welfare | hardship | member_activity
    budget: str = Field(default="extra_quota", sa_type=String(32))
    refund_of_id: int | None = Field(default=None, foreign_key="purchase.id")
    entered_by_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    entered_at: datetime | None = _instant()
    on_behalf: bool = False
    source: str = Field(default="manual", sa_type=String(200))
    voided_at: datetime | None = _instant()
    voided_by_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    void_reason: str | None = Field(default=None, sa_type=Text)
    # A server default too: bulk loaders that predate voiding insert without the column.
    void_on_behalf: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})


class OrderClaimNote(SQLModel, table=True):
    """A reviewer's explanation of an order (channel + platform order number) held live by two or
    more unions' records in one round: who, when, why, and which records it covered
    (``record_ids``: ``,12,57,``). A union that claims the order later is not covered, so it is
    flagged again until the order is explained anew (the row is then rewritten; each explanation
    also leaves a history row on every record it covered)."""

    __tablename__ = "order_claim_note"
    __table_args__ = (UniqueConstraint("round_id", "channel", "order_no", name="uq_order_claim_note"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="round.id")
    channel: str = Field(sa_type=String(32))
    order_no: str = Field(sa_type=String(100))
    record_ids: str = Field(default=",", sa_type=Text)
    explained_by_user_id: int = Field(foreign_key="app_user.id")
    explained_at: datetime = Field(sa_type=UTCDateTime)
    reason: str = Field(sa_type=Text)


class History(SQLModel, table=True):
    """Append-only: PostgreSQL refuses UPDATE and DELETE on this table (a trigger). Each row is
    chained to its record's previous one by a keyed hash (:mod:`workflow.store.chain`): ``seq``
    1, 2, 3 … per record, unique, so two writers cannot both append after the same row."""

    __table_args__ = (Index("uq_history_record_seq", "record_id", "seq", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="record.id")
    at: datetime = Field(sa_type=UTCDateTime)
    # None for the system actor (sweeps: overdue, late, lapse).
    actor_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    actor_role: str = Field(sa_type=String(32))
    actor_org_id: int | None = Field(default=None, foreign_key="organisation.id")
    on_behalf: bool = False
    from_state: str = Field(sa_type=String(32))
    to_state: str = Field(sa_type=String(32))
    trigger: str = Field(sa_type=String(64))
    reason: str | None = Field(default=None, sa_type=Text)
    detail: str | None = Field(default=None, sa_type=Text)  # JSON
    # The chain (NULL only in a row nobody sealed: audit-verify names it).
    seq: int | None = None
    prev_hash: str | None = Field(default=None, sa_type=String(64))
    row_hash: str | None = Field(default=None, sa_type=String(64))


class OpLog(SQLModel, table=True):
    """The operation audit log: every write, login, logout and contact-data reveal by anybody
    (:mod:`workflow.store.oplog`). Append-only like ``history`` (the same triggers) and chained
    the same way, as one chain of its own: ``seq`` 1, 2, 3 … over the whole table (unique),
    ``prev_hash`` the row before's ``row_hash``, ``row_hash`` the keyed hash of the row."""

    __tablename__ = "oplog"
    __table_args__ = (
        Index("uq_oplog_seq", "seq", unique=True),
        Index("ix_oplog_at", "at"),
        Index("ix_oplog_actor_at", "actor_user_id", "at"),
        Index("ix_oplog_action_at", "action", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(sa_type=BigInteger)
    at: datetime = Field(sa_type=UTCDateTime)
    # None for the system (a sweep) or an operator on the command line without an account.
    actor_user_id: int | None = Field(default=None)
    actor_name: str | None = Field(default=None, sa_type=String(64))  # the username as typed
    actor_role: str | None = Field(default=None, sa_type=String(100))  # roles held, comma separated
    actor_org_id: int | None = Field(default=None)
    action: str = Field(sa_type=String(64))  # workflow.domain.oplog.ACTIONS
    object: str | None = Field(default=None, sa_type=String(200))  # "record:12", "user:gd-clerk" …
    outcome: str = Field(sa_type=String(16))  # ok | refused | failed
    channel: str | None = Field(default=None, sa_type=String(16))  # web | api | cli | worker
    address: str | None = Field(default=None, sa_type=String(64))  # the client's address
    detail: str | None = Field(default=None, sa_type=Text)  # JSON
    prev_hash: str | None = Field(default=None, sa_type=String(64))
    row_hash: str = Field(sa_type=String(64))


class Snapshot(SQLModel, table=True):
    """The frozen Annex 2 numbers of a record at ``summarize``; exports and roll-ups of
    submitted and accepted records read these only."""

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="record.id", index=True)
    taken_at: datetime = Field(sa_type=UTCDateTime)
    as_of: date  # 填表时间 of the numbers
    people_total: int = _money(default=0)
    amount_total_fen: int = _money(default=0)
    missing_children: str = Field(default="[]", sa_type=Text)  # JSON list of org codes


class SnapshotLine(SQLModel, table=True):
    """Per channel (the Annex 2 row and the official share both derive from the channel)."""

    __tablename__ = "snapshot_line"

    snapshot_id: int = Field(foreign_key="snapshot.id", primary_key=True)
    channel: str = Field(sa_type=String(32), primary_key=True)
    people: int = _money(default=0)
    amount_fen: int = _money(default=0)


class Supplement(SQLModel, table=True):
    """补报: the figures of children accepted after ``record_id`` had sent its report up (a late
    union, or a child's supplement accepted after that). The sent report is not reopened; the
    supplement travels up the same chain, decided by the record's parent's reviewers. ``state``:
    ``submitted`` (waiting for the parent), ``accepted`` (the parent counts it, and forwards it
    as its own supplement when its report is sent), ``superseded`` (the record's report was
    withdrawn, returned or revoked: its next summary holds these figures)."""

    __table_args__ = (UniqueConstraint("record_id", "seq"), Index("ix_supplement_record_state", "record_id", "state"))

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="record.id")
    seq: int  # 补报 1, 2, … of this record
    state: str = Field(default="submitted", sa_type=String(16))
    people_total: int = _money(default=0)
    amount_total_fen: int = _money(default=0)
    # JSON list of [org code, org name] of the units that came late (the grassroots or lower
    # federations whose figures this supplement carries).
    late_units: str = Field(default="[]", sa_type=Text)
    # Where its figures come from: the late child's record, or the child's supplement forwarded.
    source_record_id: int | None = Field(default=None, foreign_key="record.id")
    source_supplement_id: int | None = Field(default=None, foreign_key="supplement.id")
    created_at: datetime = Field(sa_type=UTCDateTime)
    decided_at: datetime | None = _instant()
    decided_by_user_id: int | None = Field(default=None, foreign_key="app_user.id")


class SupplementLine(SQLModel, table=True):
    """A supplement's figures per channel (as :class:`SnapshotLine`)."""

    __tablename__ = "supplement_line"

    supplement_id: int = Field(foreign_key="supplement.id", primary_key=True)
    channel: str = Field(sa_type=String(32), primary_key=True)
    people: int = _money(default=0)
    amount_fen: int = _money(default=0)


class Delegation(SQLModel, table=True):
    """代理: a reviewer's stand-in for a date range (China dates, both days included). While it
    runs the stand-in decides what the reviewer of ``org_id`` decides; the history says on whose
    behalf."""

    __table_args__ = (Index("ix_delegation_standin", "standin_user_id", "starts_on"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organisation.id")
    delegator_user_id: int = Field(foreign_key="app_user.id")
    standin_user_id: int = Field(foreign_key="app_user.id")
    starts_on: date
    ends_on: date
    created_by_user_id: int = Field(foreign_key="app_user.id")
    created_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = _instant()


class Notification(SQLModel, table=True):
    """The outbox and the in-app inbox. One row per (recipient, channel, source): a second
    sweep, a retried task or a killed worker cannot create a second one."""

    __table_args__ = (
        UniqueConstraint("user_id", "channel", "source", name="uq_notification_key"),
        Index("ix_notification_pending", "status", "lease_until"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    channel: str = Field(sa_type=String(16))
    # "history:<id>" for events; "reminder:<round>:<kind>:<org>:<due date>" for reminders.
    source: str = Field(sa_type=String(200))
    kind: str = Field(sa_type=String(32))
    record_id: int | None = Field(default=None, foreign_key="record.id")
    payload: str = Field(default="{}", sa_type=Text)  # JSON context for the template
    status: str = Field(default="pending", sa_type=String(16))  # pending|sent|failed|skipped
    attempts: int = 0
    lease_until: datetime | None = _instant()
    created_at: datetime | None = _instant()
    # When the row became deliverable, on the machine (real) clock, whatever business time
    # (BANGFU_NOW) wrote ``created_at``: the outbox's age is measured from it.
    available_at: datetime | None = _instant()
    sent_at: datetime | None = _instant()
    read_at: datetime | None = _instant()
    last_error: str | None = Field(default=None, sa_type=Text)
    # Who holds the lease: "<worker id>:<claim id>"; a mark succeeds only while it still holds.
    claim: str | None = Field(default=None, sa_type=String(120))

    @property
    def key(self) -> str:
        return f"{self.user_id}:{self.channel}:{self.source}"


# --- scheduler ---


class ReminderRun(SQLModel, table=True):
    """What the daily sweep decided for one reminder offset of one deadline: ``sent`` (its rows
    were written) or ``skipped`` (the sweep did not run while it was the latest one due, and a
    later offset superseded it). One row per (round, group, deadline day, offset)."""

    __tablename__ = "reminder_run"
    __table_args__ = (UniqueConstraint("round_id", "grp", "last_day", "offset_days"),)

    id: int | None = Field(default=None, primary_key=True)
    round_id: int = Field(foreign_key="round.id")
    grp: str = Field(sa_type=String(16))  # quota | report
    last_day: date
    offset_days: int
    due_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(sa_type=String(16))  # sent | skipped
    at: datetime = Field(sa_type=UTCDateTime)


class SchedulerLock(SQLModel, table=True):
    """A named lock with an expiry, taken by the sweep so that two beats run one sweep (the
    SQLite way; PostgreSQL takes an advisory lock as well)."""

    __tablename__ = "scheduler_lock"

    name: str = Field(sa_type=String(64), primary_key=True)
    holder: str = Field(sa_type=String(120))
    until: datetime = Field(sa_type=UTCDateTime)
    info: str | None = Field(default=None, sa_type=Text)  # JSON: the last run's figures


class OutboxEvent(SQLModel, table=True):
    """Audit of what an operator did to the outbox (``bangfu outbox retry``, the admin page)."""

    __tablename__ = "outbox_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime)
    actor: str = Field(sa_type=String(120))
    action: str = Field(sa_type=String(32))  # retry
    rows: int = 0
    detail: str | None = Field(default=None, sa_type=Text)  # JSON: the selection


class OrgRobot(SQLModel, table=True):
    """A federation's group robot (WeCom or DingTalk webhook URL, token included). Robots carry
    federation digests and overdue notices, never personal reminders."""

    __tablename__ = "org_robot"
    __table_args__ = (UniqueConstraint("org_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    org_id: int = Field(foreign_key="organisation.id", index=True)
    kind: str = Field(sa_type=String(16))  # wecom | dingtalk
    url: str = Field(sa_type=Text)

# --- reports ---


class AggregateLine(SQLModel, table=True):
    """A federation's aggregate figure entered directly (a channel, people, amount and where the
    numbers come from), for spending it knows only as a total. It counts in the federation's
    own live sums and in its snapshot, like its purchases."""

    __tablename__ = "aggregate_line"

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="record.id", index=True)
    channel: str = Field(sa_type=String(32))
    people: int = _money(default=0)
    amount_fen: int = _money()
    note: str = Field(sa_type=Text)
    entered_by_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    entered_at: datetime | None = _instant()

# --- web ------------------------------------------------------------------------------------


class ApiToken(SQLModel, table=True):
    """A bearer token for a machine client. Only the SHA-256 of the token is stored: tokens are
    long random strings, so a fast hash is enough and a stolen table reveals no usable token."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True)
    name: str = Field(default="", sa_type=String(100))
    token_hash: str = Field(sa_type=String(64), unique=True, index=True)
    created_at: datetime | None = _instant()
    last_used_at: datetime | None = _instant()
    revoked_at: datetime | None = _instant()


class LoginFailure(SQLModel, table=True):
    """One failed login, kept for the throttle window (per username and client address). A
    table, not process memory, so every web worker sees the same count."""

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_key", "username", "client_ip", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_type=String(64))
    client_ip: str = Field(sa_type=String(64))
    at: datetime = Field(sa_type=UTCDateTime)


class LoginThrottle(SQLModel, table=True):
    """The throttle's counter per (username, client address): one row, incremented atomically
    (INSERT … ON CONFLICT DO UPDATE … RETURNING) before the password is checked, so concurrent
    guesses cannot all read the same old count."""

    __tablename__ = "login_throttle"

    username: str = Field(sa_type=String(64), primary_key=True)
    client_ip: str = Field(sa_type=String(64), primary_key=True)
    window_start: datetime = Field(sa_type=UTCDateTime)
    attempts: int = 0


class AccountEvent(SQLModel, table=True):
    """Audit of account changes made by a reviewer: password resets and handovers."""

    __tablename__ = "account_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime)
    actor_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    target_user_id: int = Field(foreign_key="app_user.id", index=True)
    action: str = Field(sa_type=String(32))  # password_reset | handover
    detail: str | None = Field(default=None, sa_type=Text)  # JSON


class Attachment(SQLModel, table=True):
    """A file attached to a record (the sealed Annex 2 scan, invoices), kept in the database so
    a backup of the database is a backup of everything. Size and type are checked on upload."""

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="record.id", index=True)
    kind: str = Field(sa_type=String(32))  # annex2_scan | invoice | other
    filename: str = Field(sa_type=String(200))
    content_type: str = Field(sa_type=String(100))
    size: int = _money()
    sha256: str = Field(sa_type=String(64))
    data: bytes = Field(sa_type=LargeBinary)
    uploaded_by_user_id: int | None = Field(default=None, foreign_key="app_user.id")
    uploaded_at: datetime | None = _instant()
    on_behalf: bool = False


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _pg_refusing_function(table: str) -> str:
    """The PostgreSQL trigger function that refuses a change of an append-only ``table``."""
    return f"""
    CREATE OR REPLACE FUNCTION bangfu_{table}_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '{table} is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$ LANGUAGE plpgsql
    """


# Statements the append-only history needs on PostgreSQL; the migration runs them.
PG_HISTORY_APPEND_ONLY = [
    _pg_refusing_function("history"),
    "DROP TRIGGER IF EXISTS history_append_only ON history",
    """
    CREATE TRIGGER history_append_only BEFORE UPDATE OR DELETE ON history
    FOR EACH ROW EXECUTE FUNCTION bangfu_history_append_only()
    """,
]
SQLITE_HISTORY_APPEND_ONLY = [
    """
    CREATE TRIGGER IF NOT EXISTS history_no_update BEFORE UPDATE ON history
    BEGIN SELECT RAISE(ABORT, 'history is append-only: UPDATE refused'); END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS history_no_delete BEFORE DELETE ON history
    BEGIN SELECT RAISE(ABORT, 'history is append-only: DELETE refused'); END
    """,
]


def history_guard_statements(dialect: str) -> list[Any]:
    stmts = PG_HISTORY_APPEND_ONLY if dialect == "postgresql" else SQLITE_HISTORY_APPEND_ONLY
    return [text(s) for s in stmts]


# Revision 0008 closes the two ways around the guards above: on SQLite ``INSERT OR REPLACE`` /
# ``REPLACE INTO`` delete the old row without firing DELETE triggers, so a BEFORE INSERT trigger
# refuses an id that exists; on PostgreSQL ``TRUNCATE`` fires no row trigger, so a statement
# trigger refuses it. (``INSERT … ON CONFLICT DO UPDATE`` fires the UPDATE triggers on both.)
PG_HISTORY_NO_TRUNCATE = [
    "DROP TRIGGER IF EXISTS history_no_truncate ON history",
    """
    CREATE TRIGGER history_no_truncate BEFORE TRUNCATE ON history
    FOR EACH STATEMENT EXECUTE FUNCTION bangfu_history_append_only()
    """,
]
SQLITE_HISTORY_NO_REPLACE = [
    """
    CREATE TRIGGER IF NOT EXISTS history_no_replace BEFORE INSERT ON history
    WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM history WHERE id = NEW.id)
    BEGIN SELECT RAISE(ABORT, 'history is append-only: REPLACE refused'); END
    """,
]


def history_tamper_guard_statements(dialect: str) -> list[Any]:
    stmts = PG_HISTORY_NO_TRUNCATE if dialect == "postgresql" else SQLITE_HISTORY_NO_REPLACE
    return [text(s) for s in stmts]


# The operation log (revision 0017) is guarded like the history: no UPDATE, DELETE, TRUNCATE or
# REPLACE.
PG_OPLOG_APPEND_ONLY = [
    _pg_refusing_function("oplog"),
    "DROP TRIGGER IF EXISTS oplog_append_only ON oplog",
    """
    CREATE TRIGGER oplog_append_only BEFORE UPDATE OR DELETE ON oplog
    FOR EACH ROW EXECUTE FUNCTION bangfu_oplog_append_only()
    """,
    "DROP TRIGGER IF EXISTS oplog_no_truncate ON oplog",
    """
    CREATE TRIGGER oplog_no_truncate BEFORE TRUNCATE ON oplog
    FOR EACH STATEMENT EXECUTE FUNCTION bangfu_oplog_append_only()
    """,
]
SQLITE_OPLOG_APPEND_ONLY = [
    """
    CREATE TRIGGER IF NOT EXISTS oplog_no_update BEFORE UPDATE ON oplog
    BEGIN SELECT RAISE(ABORT, 'oplog is append-only: UPDATE refused'); END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS oplog_no_delete BEFORE DELETE ON oplog
    BEGIN SELECT RAISE(ABORT, 'oplog is append-only: DELETE refused'); END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS oplog_no_replace BEFORE INSERT ON oplog
    WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM oplog WHERE id = NEW.id)
    BEGIN SELECT RAISE(ABORT, 'oplog is append-only: REPLACE refused'); END
    """,
]


def oplog_guard_statements(dialect: str) -> list[Any]:
    stmts = PG_OPLOG_APPEND_ONLY if dialect == "postgresql" else SQLITE_OPLOG_APPEND_ONLY
    return [text(s) for s in stmts]
