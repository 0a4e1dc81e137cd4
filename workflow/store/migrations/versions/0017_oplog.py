"""operation audit log: one append-only, hash-chained table of every write, login, logout and
contact-data reveal (issue 21)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 20:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import workflow.store.tables

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('oplog',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('at', workflow.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('actor_user_id', sa.Integer(), nullable=True),
    sa.Column('actor_name', sa.String(length=64), nullable=True),
    sa.Column('actor_role', sa.String(length=100), nullable=True),
    sa.Column('actor_org_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('object', sa.String(length=200), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=True),
    sa.Column('address', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=True),
    sa.Column('row_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('uq_oplog_seq', 'oplog', ['seq'], unique=True)
    op.create_index('ix_oplog_at', 'oplog', ['at'], unique=False)
    op.create_index('ix_oplog_actor_at', 'oplog', ['actor_user_id', 'at'], unique=False)
    op.create_index('ix_oplog_action_at', 'oplog', ['action', 'at'], unique=False)
    for stmt in workflow.store.tables.oplog_guard_statements(op.get_bind().dialect.name):
        op.execute(stmt)


def downgrade() -> None:
    op.drop_table("oplog")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS bangfu_oplog_append_only()")
