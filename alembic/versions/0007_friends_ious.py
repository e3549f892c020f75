"""friends, IOUs, notifications; step-up challenges for large transfers

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 15:50:07.651132
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_PURPOSES_BEFORE = "purpose IN ('verify_email', 'reset_password', 'new_device', 'second_factor', 'session_ticket')"
_PURPOSES = (
    "purpose IN ('verify_email', 'reset_password', 'new_device', 'second_factor', 'session_ticket', 'step_up')"
)


def upgrade() -> None:
    with op.batch_alter_table('auth_challenge', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_auth_challenge_purpose'), type_='check')
        batch_op.create_check_constraint(op.f('ck_auth_challenge_purpose'), _PURPOSES)
    op.create_table('friend_code',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_friend_code_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_friend_code')),
    sa.UniqueConstraint('code', name=op.f('uq_friend_code_code')),
    sa.UniqueConstraint('user_id', name=op.f('uq_friend_code_user_id'))
    )
    op.create_table('friendship',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user_low_id', sa.Uuid(), nullable=False),
    sa.Column('user_high_id', sa.Uuid(), nullable=False),
    sa.Column('requester_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('responded_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'accepted', 'declined', 'cancelled', 'removed', 'blocked')", name=op.f('ck_friendship_status')),
    sa.CheckConstraint('requester_id = user_low_id OR requester_id = user_high_id', name=op.f('ck_friendship_requester_in_pair')),
    sa.CheckConstraint('user_low_id < user_high_id', name=op.f('ck_friendship_ordered_pair')),
    sa.ForeignKeyConstraint(['requester_id'], ['user_account.id'], name=op.f('fk_friendship_requester_id_user_account')),
    sa.ForeignKeyConstraint(['user_high_id'], ['user_account.id'], name=op.f('fk_friendship_user_high_id_user_account')),
    sa.ForeignKeyConstraint(['user_low_id'], ['user_account.id'], name=op.f('fk_friendship_user_low_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_friendship')),
    sa.UniqueConstraint('user_low_id', 'user_high_id', name='uq_friendship_pair')
    )
    with op.batch_alter_table('friendship', schema=None) as batch_op:
        batch_op.create_index('ix_friendship_user_high_id', ['user_high_id'], unique=False)

    op.create_table('iou',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reference', sa.String(length=16), nullable=False),
    sa.Column('borrower_id', sa.Uuid(), nullable=False),
    sa.Column('lender_id', sa.Uuid(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('method', sa.String(length=12), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('note', sa.String(length=200), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cash_claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cash_disputed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paid_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('paid_via', sa.String(length=12), nullable=True),
    sa.Column('settlement_transaction_id', sa.Uuid(), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_by_id', sa.Uuid(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.CheckConstraint("method IN ('cash', 'wallet', 'auto_wallet')", name=op.f('ck_iou_method')),
    sa.CheckConstraint("paid_via <> 'cash' OR settlement_transaction_id IS NULL", name=op.f('ck_iou_cash_moves_no_money')),
    sa.CheckConstraint("paid_via IS NULL OR paid_via IN ('cash', 'wallet', 'auto_wallet')", name=op.f('ck_iou_paid_via')),
    sa.CheckConstraint("status <> 'paid' OR (paid_at IS NOT NULL AND paid_via IS NOT NULL)", name=op.f('ck_iou_paid_has_when')),
    sa.CheckConstraint("status IN ('pending', 'paid', 'overdue', 'cancelled')", name=op.f('ck_iou_status')),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_iou_amount_positive')),
    sa.CheckConstraint('borrower_id <> lender_id', name=op.f('ck_iou_two_people')),
    sa.CheckConstraint('length(currency) = 3 AND currency = upper(currency)', name=op.f('ck_iou_currency')),
    sa.ForeignKeyConstraint(['borrower_id'], ['user_account.id'], name=op.f('fk_iou_borrower_id_user_account')),
    sa.ForeignKeyConstraint(['cancelled_by_id'], ['user_account.id'], name=op.f('fk_iou_cancelled_by_id_user_account')),
    sa.ForeignKeyConstraint(['lender_id'], ['user_account.id'], name=op.f('fk_iou_lender_id_user_account')),
    sa.ForeignKeyConstraint(['settlement_transaction_id'], ['ledger_transaction.id'], name=op.f('fk_iou_settlement_transaction_id_ledger_transaction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_iou')),
    sa.UniqueConstraint('borrower_id', 'idempotency_key', name='uq_iou_borrower_idempotency_key'),
    sa.UniqueConstraint('reference', name=op.f('uq_iou_reference')),
    sa.UniqueConstraint('settlement_transaction_id', name=op.f('uq_iou_settlement_transaction_id'))
    )
    with op.batch_alter_table('iou', schema=None) as batch_op:
        batch_op.create_index('ix_iou_borrower_created_at', ['borrower_id', 'created_at'], unique=False)
        batch_op.create_index('ix_iou_lender_created_at', ['lender_id', 'created_at'], unique=False)

    op.create_table('notification',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recipient_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['recipient_id'], ['user_account.id'], name=op.f('fk_notification_recipient_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification'))
    )
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.create_index('ix_notification_recipient_created_at', ['recipient_id', 'created_at'], unique=False)



def downgrade() -> None:
    op.execute("DELETE FROM auth_challenge WHERE purpose = 'step_up'")
    with op.batch_alter_table('auth_challenge', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_auth_challenge_purpose'), type_='check')
        batch_op.create_check_constraint(op.f('ck_auth_challenge_purpose'), _PURPOSES_BEFORE)
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_recipient_created_at')

    op.drop_table('notification')
    with op.batch_alter_table('iou', schema=None) as batch_op:
        batch_op.drop_index('ix_iou_lender_created_at')
        batch_op.drop_index('ix_iou_borrower_created_at')

    op.drop_table('iou')
    with op.batch_alter_table('friendship', schema=None) as batch_op:
        batch_op.drop_index('ix_friendship_user_high_id')

    op.drop_table('friendship')
    op.drop_table('friend_code')
