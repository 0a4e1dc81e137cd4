"""order claims: an index for the cross-union lookup of live lines by (channel, order number),
and reviewers' explanations of an order held by two or more unions

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 07:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import workflow.store.tables

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text('voided_at IS NULL')


def upgrade() -> None:
    op.create_index('ix_purchase_live_order', 'purchase', ['channel', 'order_no', 'record_id'], unique=False,
                    sqlite_where=LIVE, postgresql_where=LIVE)
    op.create_table('order_claim_note',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('order_no', sa.String(length=100), nullable=False),
    sa.Column('record_ids', sa.Text(), nullable=False),
    sa.Column('explained_by_user_id', sa.Integer(), nullable=False),
    sa.Column('explained_at', workflow.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['explained_by_user_id'], ['app_user.id'], ),
    sa.ForeignKeyConstraint(['round_id'], ['round.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('round_id', 'channel', 'order_no', name='uq_order_claim_note')
    )


def downgrade() -> None:
    op.drop_table('order_claim_note')
    op.drop_index('ix_purchase_live_order', table_name='purchase')
