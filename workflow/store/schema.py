"""The tables as SQLAlchemy Core sees them: names, columns and column types, no ORM.

The clerk's everyday commands (``show``, ``purchase-add``, ``purchase-list``, ``fire``) and the
transition's hot path read and write through these with Core statements, so a process that runs
only them never imports SQLModel nor builds the ORM's mapped classes (CLI start-up time: the
SQLModel classes of :mod:`workflow.store.tables` cost more CPU to build than such a command's
whole work). :mod:`workflow.store.tables` stays the schema's definition (the ORM, the
migrations' metadata); ``tests/store/test_schema.py`` checks that every table here has exactly
the columns, in order and with the types, of its SQLModel class.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Integer, String, Text, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import TableClause, column, table


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC; refuses naive values so no local time slips in."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: bangfu stores aware UTC instants only")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


INT, BIG, STR, TEXT, BOOL, DATE, INSTANT = Integer(), BigInteger(), String(), Text(), Boolean(), Date(), UTCDateTime()


def _table(table_name: str, /, **columns: Any) -> TableClause:
    return table(table_name, *(column(key, type_) for key, type_ in columns.items()))


ORGANISATION = _table("organisation", id=INT, code=STR, name=STR, kind=STR, parent_id=INT, path=STR,
                      depth=INT, phone=STR, is_observer=BOOL)
USER = _table("app_user", id=INT, username=STR, display_name=STR, email=STR, phone=STR,
              password_hash=STR, is_active=BOOL, channels=STR, created_at=INSTANT, session_gen=INT)
MEMBERSHIP = _table("membership", id=INT, user_id=INT, org_id=INT, role=STR)
POLICY = _table("policy", code=STR, document=STR, title=STR, digest=STR, source_text=TEXT,
                loaded_at=INSTANT)
ROUND = _table("round", id=INT, policy_code=STR, year=INT, label=STR, quota_deadline=INSTANT,
               report_deadline_reporting_unit=INSTANT, report_deadline_default=INSTANT,
               entry_cutoff=INSTANT, cap_fen_per_member=BIG, scope_org_id=INT, lapsed_at=INSTANT,
               four_eyes=BOOL)
MEMBER_COUNT = _table("member_count", org_id=INT, round_id=INT, members=BIG)
RECORD = _table("record", id=INT, org_id=INT, round_id=INT, parent_id=INT, state=STR, version=INT,
                is_grassroots=BOOL, is_reporting_unit=BOOL, amount_per_member_fen=BIG, members=BIG,
                quota_fen=BIG, report_deadline=INSTANT, reporter=STR, phone=STR, fill_date=DATE,
                work_experience=TEXT, work_highlights=TEXT, snapshot_id=INT, snapshot_stale=BOOL,
                submitted_at=INSTANT, decided_at=INSTANT, last_reason=TEXT, is_overdue=BOOL,
                is_late=BOOL, lapsed_fen=BIG, updated_at=INSTANT)
ROLLUP = _table("rollup", round_id=INT, org_id=INT, state=STR, is_grassroots=BOOL, is_overdue=BOOL,
                is_late=BOOL, has_snapshot=BOOL, report_deadline=INSTANT, n=BIG, people=BIG,
                amount_fen=BIG)
PURCHASE = _table("purchase", id=INT, record_id=INT, paid_at=INSTANT, paid_on=DATE, channel=STR,
                  amount_fen=BIG, people=BIG, holiday=STR, product=STR, product_form=STR,
                  origin_region=STR, order_no=STR, line_no=INT, budget=STR, refund_of_id=INT,
                  entered_by_user_id=INT, entered_at=INSTANT, on_behalf=BOOL, source=STR,
                  voided_at=INSTANT, voided_by_user_id=INT, void_reason=TEXT, void_on_behalf=BOOL)
HISTORY = _table("history", id=INT, record_id=INT, at=INSTANT, actor_user_id=INT, actor_role=STR,
                 actor_org_id=INT, on_behalf=BOOL, from_state=STR, to_state=STR, trigger=STR,
                 reason=TEXT, detail=TEXT)
SNAPSHOT = _table("snapshot", id=INT, record_id=INT, taken_at=INSTANT, as_of=DATE, people_total=BIG,
                  amount_total_fen=BIG, missing_children=TEXT)
SNAPSHOT_LINE = _table("snapshot_line", snapshot_id=INT, channel=STR, people=BIG, amount_fen=BIG)
AGGREGATE_LINE = _table("aggregate_line", id=INT, record_id=INT, channel=STR, people=BIG,
                        amount_fen=BIG, note=TEXT, entered_by_user_id=INT, entered_at=INSTANT)
