"""calls

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 15:53:04.765186
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('call',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('caller_id', sa.Uuid(), nullable=False),
    sa.Column('callee_id', sa.Uuid(), nullable=True),
    sa.Column('callee_phone', sa.String(length=16), nullable=True),
    sa.Column('call_type', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('rate_per_minute_minor', sa.BigInteger(), nullable=False),
    sa.Column('hold_id', sa.Uuid(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('duration_seconds', sa.Integer(), nullable=False),
    sa.Column('cost_minor', sa.BigInteger(), nullable=False),
    sa.Column('end_reason', sa.String(length=20), nullable=True),
    sa.Column('settlement_transaction_id', sa.Uuid(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint("call_type IN ('audio', 'video')", name=op.f('ck_call_call_type')),
    sa.CheckConstraint("end_reason IS NULL OR end_reason IN ('caller_ended', 'callee_ended', 'credits_exhausted', 'declined', 'missed', 'cancelled')", name=op.f('ck_call_end_reason')),
    sa.CheckConstraint("status <> 'active' OR started_at IS NOT NULL", name=op.f('ck_call_active_has_start')),
    sa.CheckConstraint("status IN ('ringing', 'active', 'ended', 'declined', 'missed', 'cancelled')", name=op.f('ck_call_status')),
    sa.CheckConstraint('(callee_id IS NULL) <> (callee_phone IS NULL)', name=op.f('ck_call_one_callee')),
    sa.CheckConstraint('callee_id IS NULL OR callee_id <> caller_id', name=op.f('ck_call_not_self')),
    sa.CheckConstraint('cost_minor >= 0', name=op.f('ck_call_cost_not_negative')),
    sa.CheckConstraint('duration_seconds >= 0', name=op.f('ck_call_duration_not_negative')),
    sa.CheckConstraint('length(currency) = 3 AND currency = upper(currency)', name=op.f('ck_call_currency')),
    sa.CheckConstraint('rate_per_minute_minor > 0', name=op.f('ck_call_rate_positive')),
    sa.ForeignKeyConstraint(['callee_id'], ['user_account.id'], name=op.f('fk_call_callee_id_user_account')),
    sa.ForeignKeyConstraint(['caller_id'], ['user_account.id'], name=op.f('fk_call_caller_id_user_account')),
    sa.ForeignKeyConstraint(['hold_id'], ['ledger_hold.id'], name=op.f('fk_call_hold_id_ledger_hold')),
    sa.ForeignKeyConstraint(['settlement_transaction_id'], ['ledger_transaction.id'], name=op.f('fk_call_settlement_transaction_id_ledger_transaction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call')),
    sa.UniqueConstraint('caller_id', 'idempotency_key', name='uq_call_caller_idempotency_key'),
    sa.UniqueConstraint('hold_id', name=op.f('uq_call_hold_id')),
    sa.UniqueConstraint('settlement_transaction_id', name=op.f('uq_call_settlement_transaction_id'))
    )
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.create_index('ix_call_callee_created_at', ['callee_id', 'created_at'], unique=False)
        batch_op.create_index('ix_call_caller_created_at', ['caller_id', 'created_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('call', schema=None) as batch_op:
        batch_op.drop_index('ix_call_caller_created_at')
        batch_op.drop_index('ix_call_callee_created_at')

    op.drop_table('call')
