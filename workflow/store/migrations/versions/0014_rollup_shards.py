"""rollup: sharded counters (a ``shard`` column in the key), so no row is written by every
transaction of the province; the rows are recomputed from the records

The rollup is derived data: the table is recreated with its new key (the one way that is the
same on SQLite and PostgreSQL) and refilled from the records, round by round, in this transaction.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 20:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import workflow.store.types

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _create(with_shard: bool) -> None:
    op.create_table('rollup',
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Integer(), nullable=False),
    *([sa.Column('shard', sa.SmallInteger(), nullable=False)] if with_shard else []),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('is_grassroots', sa.Boolean(), nullable=False),
    sa.Column('is_overdue', sa.Boolean(), nullable=False),
    sa.Column('is_late', sa.Boolean(), nullable=False),
    sa.Column('has_snapshot', sa.Boolean(), nullable=False),
    sa.Column('report_deadline', workflow.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.Column('people', sa.BigInteger(), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('round_id', 'org_id', *(['shard'] if with_shard else []), 'state', 'is_grassroots',
                            'is_overdue', 'is_late', 'has_snapshot', 'report_deadline')
    )


def _refill() -> None:
    from sqlmodel import Session

    from workflow.store import rollup

    bind = op.get_bind()
    with Session(bind=bind) as session:
        for (round_id,) in bind.execute(sa.text('SELECT id FROM round ORDER BY id')).all():
            rollup.rebuild(session, int(round_id))


def upgrade() -> None:
    op.drop_table('rollup')
    _create(with_shard=True)
    _refill()


def downgrade() -> None:
    op.drop_table('rollup')
    _create(with_shard=False)
    # Run ``bangfu rollup-rebuild`` with the older release to refill the unsharded rows.
