"""rollup: the overview's figures per organisation, maintained with every transition

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 01:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import workflow.store.tables

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('rollup',
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('is_grassroots', sa.Boolean(), nullable=False),
    sa.Column('is_overdue', sa.Boolean(), nullable=False),
    sa.Column('is_late', sa.Boolean(), nullable=False),
    sa.Column('has_snapshot', sa.Boolean(), nullable=False),
    sa.Column('report_deadline', workflow.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.Column('people', sa.BigInteger(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('round_id', 'org_id', 'state', 'is_grassroots', 'is_overdue', 'is_late',
                            'has_snapshot', 'report_deadline')
    )


def downgrade() -> None:
    op.drop_table('rollup')
