"""sweep: an index on record (round_id, report_deadline) for the deadline checks

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 06:15:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_record_round_deadline', 'record', ['round_id', 'report_deadline'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_record_round_deadline', table_name='record')
