"""outbox: notification.available_at, when a row became deliverable on the machine clock

The outbox's age (``bangfu outbox health``, ``/metrics``) was measured from ``created_at``,
which a sweep run in business time (``BANGFU_NOW``) dates in that time: rows dated 2021-12-01
showed as waiting for years. Rows written from now on carry the real time they were written;
existing rows take their ``created_at``.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 20:15:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import workflow.store.tables

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('notification', sa.Column('available_at', workflow.store.tables.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE notification SET available_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table('notification') as batch:
        batch.drop_column('available_at')
