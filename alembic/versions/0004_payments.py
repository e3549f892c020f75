"""payments

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 15:21:43.166652
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('payment',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('purpose', sa.String(length=20), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('method', sa.String(length=20), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('provider_reference', sa.String(length=120), nullable=True),
    sa.Column('checkout_url', sa.Text(), nullable=True),
    sa.Column('failure_reason', sa.String(length=200), nullable=True),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('ledger_transaction_id', sa.Uuid(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("purpose IN ('wallet_topup', 'call_credits', 'booking')", name=op.f('ck_payment_purpose')),
    sa.CheckConstraint("status IN ('pending', 'processing', 'succeeded', 'failed', 'cancelled', 'refunded', 'partially_refunded')", name=op.f('ck_payment_status')),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_payment_amount_positive')),
    sa.ForeignKeyConstraint(['ledger_transaction_id'], ['ledger_transaction.id'], name=op.f('fk_payment_ledger_transaction_id_ledger_transaction')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_payment_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment')),
    sa.UniqueConstraint('provider', 'provider_reference', name='uq_payment_provider_reference'),
    sa.UniqueConstraint('reference', name=op.f('uq_payment_reference')),
    sa.UniqueConstraint('user_id', 'idempotency_key', name='uq_payment_user_idempotency_key')
    )
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.create_index('ix_payment_status_created_at', ['status', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_user_id'), ['user_id'], unique=False)

    op.create_table('payment_status_change',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('payment_id', sa.Uuid(), nullable=False),
    sa.Column('from_status', sa.String(length=20), nullable=True),
    sa.Column('to_status', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], name=op.f('fk_payment_status_change_payment_id_payment')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_status_change'))
    )
    with op.batch_alter_table('payment_status_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_status_change_payment_id'), ['payment_id'], unique=False)

    op.create_table('provider_event',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('event_type', sa.String(length=80), nullable=False),
    sa.Column('payment_id', sa.Uuid(), nullable=True),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['payment_id'], ['payment.id'], name=op.f('fk_provider_event_payment_id_payment')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_event')),
    sa.UniqueConstraint('provider', 'event_id', name='uq_provider_event_provider_event_id')
    )
    with op.batch_alter_table('provider_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provider_event_payment_id'), ['payment_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('provider_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provider_event_payment_id'))

    op.drop_table('provider_event')
    with op.batch_alter_table('payment_status_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_status_change_payment_id'))

    op.drop_table('payment_status_change')
    with op.batch_alter_table('payment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_user_id'))
        batch_op.drop_index('ix_payment_status_created_at')

    op.drop_table('payment')
