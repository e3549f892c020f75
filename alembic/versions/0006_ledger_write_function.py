"""ledger: one-round-trip write function on PostgreSQL; no cached balance where nothing is checked

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 16:20:00

`ledger_write` does on the server what `services/ledger.py` does in Python on SQLite: replay by
idempotency key, create accounts used for the first time, lock the accounts in id order, refuse a
debit the balance cannot cover (returning the refusal instead of raising, so the caller's
transaction stays usable and nothing is written), then insert the transaction and its entries and
move the cached balances. The balance CHECK and the
deferred balanced-transaction triggers of revision 0003 still guard every row it writes.

Accounts allowed below zero keep no cached balance (it stays 0; their balance is the sum of their
entries), so the hot `provider:*:clearing` and `world` rows are never locked.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Accounts allowed below zero (world, provider clearing) no longer cache a balance: every
    # payment moves money through one of them, and a cached balance made that row a global lock.
    op.execute('UPDATE ledger_account SET balance_minor = 0 WHERE allow_negative')
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute("""
        CREATE FUNCTION ledger_write(
            p_id uuid, p_created_at timestamptz, p_reference varchar, p_idempotency_key varchar,
            p_request_hash varchar, p_kind varchar, p_description varchar, p_metadata jsonb,
            p_reverses_id uuid, p_addresses varchar[], p_currencies varchar[], p_amounts bigint[],
            p_posting_indexes integer[], p_allow_negative boolean[]
        ) RETURNS TABLE (outcome text, found_transaction_id uuid, refused_address text, refused_currency text)
        LANGUAGE plpgsql AS $$
        DECLARE
            previous record;
            account record;
            short_address text;
            short_currency text;
        BEGIN
            -- A replay or a twin under the same key is found when its key collides below (LG002).
            -- The exception block is a subtransaction: a refusal raised inside it undoes whatever the
            -- block wrote (accounts created for this movement), so a refused movement writes nothing
            -- and the caller's transaction goes on.
            BEGIN
                -- Accounts used for the first time are created before any account is locked, in
                -- address order: a transaction waiting here on a twin's creation holds no locks.
                INSERT INTO ledger_account (id, created_at, address, currency, allow_negative, balance_minor)
                SELECT gen_random_uuid(), p_created_at, l.address, l.currency, bool_and(l.allow_negative), 0
                FROM unnest(p_addresses, p_currencies, p_allow_negative) AS l(address, currency, allow_negative)
                WHERE NOT EXISTS (
                    SELECT 1 FROM ledger_account a WHERE a.address = l.address AND a.currency = l.currency
                )
                GROUP BY l.address, l.currency
                ORDER BY l.address, l.currency
                ON CONFLICT (address, currency) DO NOTHING;

                -- Lock in ascending id order, so A->B and B->A at once cannot deadlock, and decide on
                -- each balance as it is once locked, never on a value read earlier. Accounts allowed
                -- below zero have nothing to check and no cached balance, so they are not locked.
                FOR account IN
                    SELECT a.address, a.currency, a.balance_minor, d.delta
                    FROM ledger_account a
                    JOIN (
                        SELECT l.address, l.currency, sum(l.amount) AS delta
                        FROM unnest(p_addresses, p_currencies, p_amounts) AS l(address, currency, amount)
                        GROUP BY l.address, l.currency
                    ) d ON a.address = d.address AND a.currency = d.currency
                    WHERE NOT a.allow_negative
                    ORDER BY a.id
                    FOR UPDATE OF a
                LOOP
                    IF short_address IS NULL AND account.delta < 0 AND account.balance_minor + account.delta < 0 THEN
                        short_address := account.address;
                        short_currency := account.currency;
                    END IF;
                END LOOP;
                IF short_address IS NOT NULL THEN
                    -- A replay, a twin under the same key that committed while this waited for the
                    -- locks, or another reversal of the same transaction: that is the answer, not the
                    -- funds.
                    IF EXISTS (SELECT 1 FROM ledger_transaction t WHERE t.idempotency_key = p_idempotency_key)
                            OR EXISTS (SELECT 1 FROM ledger_transaction t WHERE t.reverses_id = p_reverses_id) THEN
                        RAISE EXCEPTION USING ERRCODE = 'LG002', MESSAGE = 'written meanwhile';
                    END IF;
                    RAISE EXCEPTION USING ERRCODE = 'LG001', MESSAGE = short_address, DETAIL = short_currency;
                END IF;

                INSERT INTO ledger_transaction
                    (id, created_at, reference, idempotency_key, request_hash, kind, description, metadata,
                     reverses_id)
                VALUES (p_id, p_created_at, p_reference, p_idempotency_key, p_request_hash, p_kind,
                        p_description, p_metadata, p_reverses_id)
                ON CONFLICT DO NOTHING;
                IF NOT FOUND THEN
                    RAISE EXCEPTION USING ERRCODE = 'LG002', MESSAGE = 'written meanwhile';
                END IF;

                INSERT INTO ledger_entry
                    (id, created_at, transaction_id, account_id, amount_minor, currency, posting_index)
                SELECT gen_random_uuid(), p_created_at, p_id, a.id, l.amount, l.currency, l.posting_index
                FROM unnest(p_addresses, p_currencies, p_amounts, p_posting_indexes)
                    AS l(address, currency, amount, posting_index)
                JOIN ledger_account a ON a.address = l.address AND a.currency = l.currency;

                UPDATE ledger_account a SET balance_minor = a.balance_minor + d.delta
                FROM (
                    SELECT l.address, l.currency, sum(l.amount) AS delta
                    FROM unnest(p_addresses, p_currencies, p_amounts) AS l(address, currency, amount)
                    GROUP BY l.address, l.currency
                ) d
                WHERE a.address = d.address AND a.currency = d.currency AND d.delta <> 0 AND NOT a.allow_negative;
            EXCEPTION
                WHEN SQLSTATE 'LG001' THEN
                    GET STACKED DIAGNOSTICS refused_address = MESSAGE_TEXT, refused_currency = PG_EXCEPTION_DETAIL;
                    RETURN QUERY SELECT 'insufficient_funds', NULL::uuid, refused_address, refused_currency;
                    RETURN;
                WHEN SQLSTATE 'LG002' THEN
                    SELECT t.id, t.request_hash INTO previous
                    FROM ledger_transaction t WHERE t.idempotency_key = p_idempotency_key;
                    IF FOUND THEN
                        RETURN QUERY SELECT
                            CASE WHEN previous.request_hash = p_request_hash THEN 'replayed' ELSE 'mismatch' END,
                            previous.id, NULL::text, NULL::text;
                        RETURN;
                    END IF;
                    SELECT t.id INTO previous FROM ledger_transaction t WHERE t.reverses_id = p_reverses_id;
                    IF FOUND THEN
                        RETURN QUERY SELECT 'already_reversed', previous.id, NULL::text, NULL::text;
                        RETURN;
                    END IF;
                    RAISE EXCEPTION 'ledger transaction reference % is taken', p_reference
                        USING ERRCODE = 'unique_violation';
            END;

            RETURN QUERY SELECT 'created', p_id, NULL::text, NULL::text;
        END;
        $$
    """)


def downgrade() -> None:
    op.execute(
        'UPDATE ledger_account SET balance_minor = coalesce('
        '(SELECT sum(e.amount_minor) FROM ledger_entry e WHERE e.account_id = ledger_account.id), 0)'
        ' WHERE allow_negative'
    )
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute(
        'DROP FUNCTION ledger_write(uuid, timestamptz, varchar, varchar, varchar, varchar, varchar, jsonb, uuid,'
        ' varchar[], varchar[], bigint[], integer[], boolean[])'
    )
