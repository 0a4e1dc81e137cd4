"""hardening: history REPLACE/TRUNCATE guards, login throttle counter, session generation

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import workflow.store.tables

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('login_throttle',
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('client_ip', sa.String(length=64), nullable=False),
    sa.Column('window_start', workflow.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('username', 'client_ip')
    )
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_gen', sa.Integer(), server_default='0', nullable=False))
    with op.batch_alter_table('round', schema=None) as batch_op:
        batch_op.add_column(sa.Column('four_eyes', sa.Boolean(), server_default=sa.true(), nullable=False))
    for stmt in workflow.store.tables.history_tamper_guard_statements(op.get_bind().dialect.name):
        op.execute(stmt)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS history_no_truncate ON history')
    else:
        op.execute('DROP TRIGGER IF EXISTS history_no_replace')
    with op.batch_alter_table('round', schema=None) as batch_op:
        batch_op.drop_column('four_eyes')
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.drop_column('session_gen')
    op.drop_table('login_throttle')
