"""purchase lines can be voided: who, when, why; the order key is unique among live lines

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import workflow.store.tables

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ['record_id', 'channel', 'order_no', 'line_no']
LIVE = sa.text('voided_at IS NULL')
# 0001 created the key as an unnamed UNIQUE constraint; name it when reflecting (SQLite) the way
# PostgreSQL named it.
CONVENTION = {'uq': '%(table_name)s_%(column_0_N_name)s_key'}


def upgrade() -> None:
    with op.batch_alter_table('purchase', schema=None, naming_convention=CONVENTION) as batch_op:
        batch_op.add_column(sa.Column('voided_at', workflow.store.tables.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('voided_by_user_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('void_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('void_on_behalf', sa.Boolean(), nullable=False, server_default=sa.text('false')))
        batch_op.create_foreign_key('fk_purchase_voided_by_user_id', 'app_user', ['voided_by_user_id'], ['id'])
        batch_op.drop_constraint('purchase_record_id_channel_order_no_line_no_key', type_='unique')
        batch_op.create_index('uq_purchase_live_key', KEY, unique=True,
                              sqlite_where=LIVE, postgresql_where=LIVE)


def downgrade() -> None:
    op.execute('DELETE FROM purchase WHERE voided_at IS NOT NULL')
    with op.batch_alter_table('purchase', schema=None) as batch_op:
        batch_op.drop_index('uq_purchase_live_key')
        batch_op.create_unique_constraint('purchase_record_id_channel_order_no_line_no_key', KEY)
        batch_op.drop_constraint('fk_purchase_voided_by_user_id', type_='foreignkey')
        batch_op.drop_column('void_on_behalf')
        batch_op.drop_column('void_reason')
        batch_op.drop_column('voided_by_user_id')
        batch_op.drop_column('voided_at')
