"""password and session rules, personal data at rest: password date, forced change, lockout, TOTP
secret and password history on users; phones and e-mail addresses widened for their ciphertext

Existing users' passwords are dated at the upgrade, so the expiry clock starts then.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 20:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import workflow.store.types

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PERSONAL = (('app_user', 'email', 200), ('app_user', 'phone', 64), ('organisation', 'phone', 64),
             ('record', 'phone', 64))


def upgrade() -> None:
    op.create_table('password_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('at', workflow.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['app_user.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('password_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_password_history_user_id'), ['user_id'], unique=False)
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_changed_at', workflow.store.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('must_change_password', sa.Boolean(), nullable=False, server_default=sa.text('false')))
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('locked_at', workflow.store.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('totp_secret', sa.String(length=400), nullable=True))
    for table, column, length in _PERSONAL:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.String(length=length), type_=sa.String(length=400),
                                  existing_nullable=True)
    op.execute(sa.text('UPDATE app_user SET password_changed_at = CURRENT_TIMESTAMP WHERE password_hash IS NOT NULL'))


def downgrade() -> None:
    for table, column, length in _PERSONAL:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.String(length=400), type_=sa.String(length=length),
                                  existing_nullable=True)
    with op.batch_alter_table('app_user', schema=None) as batch_op:
        batch_op.drop_column('totp_secret')
        batch_op.drop_column('locked_at')
        batch_op.drop_column('failed_logins')
        batch_op.drop_column('must_change_password')
        batch_op.drop_column('password_changed_at')
    with op.batch_alter_table('password_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_password_history_user_id'))
    op.drop_table('password_history')
