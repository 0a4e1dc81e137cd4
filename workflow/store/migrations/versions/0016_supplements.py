"""supplements (补报): a sent report's late figures, travelling up the chain without reopening it;
delegations (代理): a reviewer's stand-in for a date range

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 20:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import workflow.store.tables

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('supplement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('people_total', sa.BigInteger(), nullable=False),
    sa.Column('amount_total_fen', sa.BigInteger(), nullable=False),
    sa.Column('late_units', sa.Text(), nullable=False),
    sa.Column('source_record_id', sa.Integer(), nullable=True),
    sa.Column('source_supplement_id', sa.Integer(), nullable=True),
    sa.Column('created_at', workflow.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', workflow.store.tables.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decided_by_user_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['decided_by_user_id'], ['app_user.id'], ),
    sa.ForeignKeyConstraint(['record_id'], ['record.id'], ),
    sa.ForeignKeyConstraint(['source_record_id'], ['record.id'], ),
    sa.ForeignKeyConstraint(['source_supplement_id'], ['supplement.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('record_id', 'seq')
    )
    op.create_index('ix_supplement_record_state', 'supplement', ['record_id', 'state'], unique=False)
    op.create_table('supplement_line',
    sa.Column('supplement_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=32), nullable=False),
    sa.Column('people', sa.BigInteger(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['supplement_id'], ['supplement.id'], ),
    sa.PrimaryKeyConstraint('supplement_id', 'channel')
    )


    op.create_table('delegation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    sa.Column('delegator_user_id', sa.Integer(), nullable=False),
    sa.Column('standin_user_id', sa.Integer(), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=False),
    sa.Column('created_by_user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', workflow.store.tables.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', workflow.store.tables.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['app_user.id'], ),
    sa.ForeignKeyConstraint(['delegator_user_id'], ['app_user.id'], ),
    sa.ForeignKeyConstraint(['org_id'], ['organisation.id'], ),
    sa.ForeignKeyConstraint(['standin_user_id'], ['app_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_delegation_standin', 'delegation', ['standin_user_id', 'starts_on'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_delegation_standin', table_name='delegation')
    op.drop_table('delegation')
    op.drop_table('supplement_line')
    op.drop_index('ix_supplement_record_state', table_name='supplement')
    op.drop_table('supplement')
