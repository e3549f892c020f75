"""ledger: accounts, append-only transactions and entries, holds

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 15:08:25.126301
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ledger_account',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('address', sa.String(length=200), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('allow_negative', sa.Boolean(), nullable=False),
    sa.Column('balance_minor', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('allow_negative OR balance_minor >= 0', name=op.f('ck_ledger_account_balance_not_negative')),
    sa.CheckConstraint('length(currency) = 3 AND currency = upper(currency)', name=op.f('ck_ledger_account_currency')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_account')),
    sa.UniqueConstraint('address', 'currency', name='uq_ledger_account_address_currency'),
    sa.UniqueConstraint('id', 'currency', name='uq_ledger_account_id_currency')
    )
    op.create_table('ledger_transaction',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('metadata', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('reverses_id', sa.Uuid(), nullable=True),
    sa.CheckConstraint('length(kind) > 0', name=op.f('ck_ledger_transaction_kind')),
    sa.ForeignKeyConstraint(['reverses_id'], ['ledger_transaction.id'], name=op.f('fk_ledger_transaction_reverses_id_ledger_transaction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_transaction')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_ledger_transaction_idempotency_key')),
    sa.UniqueConstraint('reference', name=op.f('uq_ledger_transaction_reference')),
    sa.UniqueConstraint('reverses_id', name=op.f('uq_ledger_transaction_reverses_id'))
    )
    with op.batch_alter_table('ledger_transaction', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_transaction_created_at', ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_transaction_kind'), ['kind'], unique=False)

    op.create_table('ledger_entry',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('transaction_id', sa.Uuid(), nullable=False),
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('posting_index', sa.Integer(), nullable=False),
    sa.CheckConstraint('amount_minor <> 0', name=op.f('ck_ledger_entry_amount_not_zero')),
    sa.CheckConstraint('posting_index >= 0', name=op.f('ck_ledger_entry_posting_index')),
    sa.ForeignKeyConstraint(['account_id', 'currency'], ['ledger_account.id', 'ledger_account.currency'], name='fk_ledger_entry_account_currency'),
    sa.ForeignKeyConstraint(['transaction_id'], ['ledger_transaction.id'], name=op.f('fk_ledger_entry_transaction_id_ledger_transaction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entry'))
    )
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entry_account_history', ['account_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_ledger_entry_transaction_id'), ['transaction_id'], unique=False)

    op.create_table('ledger_hold',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('holding_account_id', sa.Uuid(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('captured_minor', sa.BigInteger(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=False),
    sa.Column('transaction_id', sa.Uuid(), nullable=False),
    sa.Column('resolution_transaction_id', sa.Uuid(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(status = 'active' AND resolved_at IS NULL AND resolution_transaction_id IS NULL) OR (status <> 'active' AND resolved_at IS NOT NULL AND resolution_transaction_id IS NOT NULL)", name=op.f('ck_ledger_hold_resolved_once')),
    sa.CheckConstraint("status = 'captured' OR captured_minor = 0", name=op.f('ck_ledger_hold_captured_only_when_captured')),
    sa.CheckConstraint("status IN ('active', 'captured', 'voided', 'expired')", name=op.f('ck_ledger_hold_status')),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_ledger_hold_amount_positive')),
    sa.CheckConstraint('captured_minor >= 0 AND captured_minor <= amount_minor', name=op.f('ck_ledger_hold_captured_within_amount')),
    sa.ForeignKeyConstraint(['account_id', 'currency'], ['ledger_account.id', 'ledger_account.currency'], name='fk_ledger_hold_account_currency'),
    sa.ForeignKeyConstraint(['holding_account_id', 'currency'], ['ledger_account.id', 'ledger_account.currency'], name='fk_ledger_hold_holding_account_currency'),
    sa.ForeignKeyConstraint(['resolution_transaction_id'], ['ledger_transaction.id'], name=op.f('fk_ledger_hold_resolution_transaction_id_ledger_transaction')),
    sa.ForeignKeyConstraint(['transaction_id'], ['ledger_transaction.id'], name=op.f('fk_ledger_hold_transaction_id_ledger_transaction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_hold')),
    sa.UniqueConstraint('holding_account_id', name=op.f('uq_ledger_hold_holding_account_id')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_ledger_hold_idempotency_key')),
    sa.UniqueConstraint('resolution_transaction_id', name=op.f('uq_ledger_hold_resolution_transaction_id')),
    sa.UniqueConstraint('transaction_id', name=op.f('uq_ledger_hold_transaction_id'))
    )
    with op.batch_alter_table('ledger_hold', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_hold_account_id'), ['account_id'], unique=False)
        batch_op.create_index('ix_ledger_hold_due', ['status', 'expires_at'], unique=False)

    if op.get_context().dialect.name == 'postgresql':
        _create_postgresql_guards()
    else:
        _create_sqlite_guards()


def downgrade() -> None:
    if op.get_context().dialect.name == 'postgresql':
        _drop_postgresql_guards()
    else:
        _drop_sqlite_guards()
    with op.batch_alter_table('ledger_hold', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_hold_due')
        batch_op.drop_index(batch_op.f('ix_ledger_hold_account_id'))

    op.drop_table('ledger_hold')
    with op.batch_alter_table('ledger_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entry_transaction_id'))
        batch_op.drop_index('ix_ledger_entry_account_history')

    op.drop_table('ledger_entry')
    with op.batch_alter_table('ledger_transaction', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_transaction_kind'))
        batch_op.drop_index('ix_ledger_transaction_created_at')

    op.drop_table('ledger_transaction')
    op.drop_table('ledger_account')


# Append-only: entries and transactions are never changed or removed; corrections are reversals.
# (TRUNCATE stays possible for an operator wiping a test database; it needs table ownership.)
APPEND_ONLY_TABLES = ('ledger_transaction', 'ledger_entry')


def _create_postgresql_guards() -> None:
    op.execute("""
        CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'integrity_constraint_violation';
        END;
        $$
    """)
    for table in APPEND_ONLY_TABLES:
        op.execute(f"""
            CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()
        """)
    # Checked at COMMIT, when every entry of the transaction has been written.
    op.execute("""
        CREATE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            unbalanced text;
        BEGIN
            SELECT string_agg(currency || ' ' || total, ', ') INTO unbalanced FROM (
                SELECT currency, sum(amount_minor) AS total FROM ledger_entry
                WHERE transaction_id = NEW.transaction_id
                GROUP BY currency HAVING sum(amount_minor) <> 0
            ) AS off;
            IF unbalanced IS NOT NULL THEN
                RAISE EXCEPTION 'ledger transaction % does not balance: %', NEW.transaction_id, unbalanced
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NULL;
        END;
        $$
    """)
    op.execute("""
        CREATE CONSTRAINT TRIGGER ledger_entry_balanced AFTER INSERT ON ledger_entry
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION ledger_check_balanced()
    """)
    op.execute("""
        CREATE FUNCTION ledger_check_has_entries() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF (SELECT count(*) FROM ledger_entry WHERE transaction_id = NEW.id) < 2 THEN
                RAISE EXCEPTION 'ledger transaction % has fewer than two entries', NEW.id
                    USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NULL;
        END;
        $$
    """)
    op.execute("""
        CREATE CONSTRAINT TRIGGER ledger_transaction_has_entries AFTER INSERT ON ledger_transaction
        DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION ledger_check_has_entries()
    """)


def _drop_postgresql_guards() -> None:
    op.execute('DROP TRIGGER ledger_transaction_has_entries ON ledger_transaction')
    op.execute('DROP FUNCTION ledger_check_has_entries()')
    op.execute('DROP TRIGGER ledger_entry_balanced ON ledger_entry')
    op.execute('DROP FUNCTION ledger_check_balanced()')
    for table in APPEND_ONLY_TABLES:
        op.execute(f'DROP TRIGGER {table}_append_only ON {table}')
    op.execute('DROP FUNCTION ledger_refuse_change()')


def _create_sqlite_guards() -> None:
    # SQLite has no deferred triggers, so balance per currency is checked by the service (and by
    # `find_ledger_problems`); append-only it can enforce.
    for table in APPEND_ONLY_TABLES:
        for operation in ('UPDATE', 'DELETE'):
            op.execute(f"""
                CREATE TRIGGER {table}_no_{operation.lower()} BEFORE {operation} ON {table}
                BEGIN
                    SELECT RAISE(ABORT, '{table} is append-only: {operation} refused');
                END
            """)


def _drop_sqlite_guards() -> None:
    for table in APPEND_ONLY_TABLES:
        for operation in ('UPDATE', 'DELETE'):
            op.execute(f'DROP TRIGGER {table}_no_{operation.lower()}')
