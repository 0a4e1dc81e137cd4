"""history chain: seq, prev_hash, row_hash per row, unique (record_id, seq); existing rows sealed

Rows written before this revision are chained here, in id order per record, with the key of the
environment that runs the upgrade (``BANGFU_AUDIT_KEY``): the migration vouches for the history
as it finds it. The append-only triggers are lifted for that one UPDATE and put back.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 18:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _seal_existing() -> None:
    from workflow.store import chain, tables

    bind = op.get_bind()
    h = chain.HISTORY
    rows = bind.execute(sa.select(h).order_by(h.c.record_id, h.c.id)).mappings().all()
    if not rows:
        return
    dialect = bind.dialect.name
    if dialect == 'postgresql':
        op.execute('ALTER TABLE history DISABLE TRIGGER history_append_only')
    else:
        op.execute('DROP TRIGGER IF EXISTS history_no_update')
    seal = chain.sealer().seal
    head: tuple[int, str | None] | None = None
    last_record = None
    update = sa.text('UPDATE history SET seq = :seq, prev_hash = :prev_hash, row_hash = :row_hash WHERE id = :id')
    for m in rows:
        if m['record_id'] != last_record:
            head, last_record = None, m['record_id']
        sealed = seal({c: m[c] for c in chain.FIELDS if c not in ('seq', 'prev_hash')}, head)
        bind.execute(update, {'seq': sealed['seq'], 'prev_hash': sealed['prev_hash'],
                              'row_hash': sealed['row_hash'], 'id': m['id']})
        head = (sealed['seq'], sealed['row_hash'])
    if dialect == 'postgresql':
        op.execute('ALTER TABLE history ENABLE TRIGGER history_append_only')
    else:
        for stmt in tables.history_guard_statements(dialect):
            op.execute(stmt)


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy on SQLite: that would drop the append-only triggers).
    op.add_column('history', sa.Column('seq', sa.Integer(), nullable=True))
    op.add_column('history', sa.Column('prev_hash', sa.String(length=64), nullable=True))
    op.add_column('history', sa.Column('row_hash', sa.String(length=64), nullable=True))
    _seal_existing()
    op.drop_index('ix_history_record_id', table_name='history')
    op.create_index('uq_history_record_seq', 'history', ['record_id', 'seq'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_history_record_seq', table_name='history')
    op.create_index('ix_history_record_id', 'history', ['record_id'], unique=False)
    if op.get_bind().dialect.name == 'postgresql':
        for col in ('row_hash', 'prev_hash', 'seq'):
            op.drop_column('history', col)
    # SQLite keeps the columns (dropping one would copy the table and lose its triggers).
