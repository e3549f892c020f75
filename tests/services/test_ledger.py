import random
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta

import psycopg
import pytest
import time_machine
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlmodel import func, select

from paytime_app.db import in_transaction, unit_of_work
from paytime_app.errors import DomainError
from paytime_app.models.base import utcnow
from paytime_app.models.jobs import Job
from paytime_app.models.ledger import HoldStatus, LedgerAccount, LedgerEntry, LedgerHold, LedgerTransaction
from paytime_app.money import Currency
from paytime_app.services import identifiers
from paytime_app.services.jobs import run_due_jobs
from paytime_app.services.ledger import (
    EXPIRE_HOLDS_JOB,
    InsufficientFunds,
    LedgerError,
    Posting,
    capture_hold,
    expire_holds,
    extend_hold,
    find_ledger_problems,
    get_balance,
    get_hold,
    list_entries,
    place_hold,
    post_transaction,
    reverse_transaction,
    transfer,
    void_hold,
)

NGN = Currency.NGN
USD = Currency.USD


def wallet(name: str) -> str:
    return f"user:{name}:wallet"


ADA, BEN, CY = wallet("ada"), wallet("ben"), wallet("cy")


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(engine):
    """After every scenario: each cached balance equals the sum of its entries, and every other invariant."""
    yield
    with unit_of_work() as session:
        assert find_ledger_problems(session=session) == []


def key() -> str:
    return f"test:{uuid.uuid4()}"


def balance(address: str, currency: Currency = NGN) -> int:
    return in_transaction(get_balance, address=address, currency=currency)


def top_up(address: str, amount: int, currency: Currency = NGN) -> LedgerTransaction:
    return in_transaction(
        transfer,
        source="world",
        destination=address,
        amount_minor=amount,
        currency=currency,
        idempotency_key=key(),
        kind="top_up",
    )


def refusal(service, **kwargs) -> DomainError:
    with pytest.raises(DomainError) as caught:
        in_transaction(service, **kwargs)
    return caught.value


def row_counts() -> tuple[int, ...]:
    with unit_of_work() as session:
        return tuple(
            session.exec(select(func.count()).select_from(model)).one()
            for model in (LedgerAccount, LedgerTransaction, LedgerEntry, LedgerHold)
        )


def entries_of(transaction_id) -> list[tuple[str, int, str]]:
    with unit_of_work() as session:
        rows = session.exec(
            select(LedgerAccount.address, LedgerEntry.amount_minor, LedgerEntry.currency)
            .join(LedgerAccount, LedgerEntry.account_id == LedgerAccount.id)
            .where(LedgerEntry.transaction_id == transaction_id)
        ).all()
    return sorted(rows)


# --- transactions -----------------------------------------------------------------------------------


def test_transfer_moves_money_in_one_balanced_transaction(engine):
    top_up(ADA, 10_000)
    moved = in_transaction(
        transfer, source=ADA, destination=BEN, amount_minor=2_500, currency=NGN, idempotency_key=key()
    )
    assert moved.reference.startswith("TX-")
    assert moved.kind == "transfer"
    assert entries_of(moved.id) == [(ADA, -2_500, "NGN"), (BEN, 2_500, "NGN")]
    assert (balance(ADA), balance(BEN), balance("world")) == (7_500, 2_500, -10_000)


def test_post_transaction_balances_per_currency(engine):
    top_up(ADA, 10_000)
    top_up(ADA, 500, USD)
    split = in_transaction(
        post_transaction,
        postings=[
            Posting(ADA, "seller:s1:earnings", 9_000, NGN),
            Posting(ADA, "platform:fees", 1_000, NGN),
            Posting(ADA, BEN, 500, USD),
        ],
        kind="booking",
        idempotency_key=key(),
        description="Booking BK-1",
        metadata={"booking": "BK-1"},
    )
    with unit_of_work() as session:
        stored = session.get(LedgerTransaction, split.id)
        assert stored.metadata_ == {"booking": "BK-1"}
        assert stored.description == "Booking BK-1"
        sums = session.exec(
            select(LedgerEntry.currency, func.sum(LedgerEntry.amount_minor))
            .where(LedgerEntry.transaction_id == split.id)
            .group_by(LedgerEntry.currency)
        ).all()
    assert dict(sums) == {"NGN": 0, "USD": 0}
    assert balance(ADA) == 0
    assert balance(ADA, USD) == 0
    assert balance("seller:s1:earnings") == 9_000
    assert balance("platform:fees") == 1_000
    assert balance(BEN, USD) == 500


def test_transfer_insufficient_funds_writes_nothing(engine):
    top_up(ADA, 1_000)
    before = row_counts()
    error = refusal(transfer, source=ADA, destination=CY, amount_minor=1_001, currency=NGN, idempotency_key=key())
    assert isinstance(error, InsufficientFunds)
    assert (error.code, error.status_code) == ("insufficient_funds", 409)
    assert row_counts() == before
    assert (balance(ADA), balance(CY)) == (1_000, 0)


def test_insufficient_funds_caught_by_caller_leaves_nothing_in_its_transaction(engine):
    top_up(ADA, 1_000)
    before = row_counts()
    with unit_of_work() as session, pytest.raises(InsufficientFunds):
        post_transaction(
            session=session,
            postings=[Posting(ADA, CY, 600, NGN), Posting(ADA, "platform:fees", 600, NGN)],
            kind="transfer",
            idempotency_key=key(),
        )
        # The caller carries on and commits: the refused movement must not be part of it.
    assert row_counts() == before
    assert balance(ADA) == 1_000


def test_transfer_retried_with_same_key_returns_the_first_transaction(engine):
    top_up(ADA, 10_000)
    request = {"source": ADA, "destination": BEN, "amount_minor": 700, "currency": NGN, "idempotency_key": key()}
    first = in_transaction(transfer, **request)
    again = in_transaction(transfer, **request)
    assert again.id == first.id
    assert (balance(ADA), balance(BEN)) == (9_300, 700)


def test_transfer_same_key_different_request_is_refused(engine):
    top_up(ADA, 10_000)
    reused = key()
    in_transaction(transfer, source=ADA, destination=BEN, amount_minor=700, currency=NGN, idempotency_key=reused)
    before = row_counts()
    error = refusal(transfer, source=ADA, destination=BEN, amount_minor=701, currency=NGN, idempotency_key=reused)
    assert (error.code, error.status_code) == ("idempotency_mismatch", 409)
    error = refusal(transfer, source=ADA, destination=CY, amount_minor=700, currency=NGN, idempotency_key=reused)
    assert error.code == "idempotency_mismatch"
    assert row_counts() == before


@pytest.mark.parametrize("amount", [0, -5, True, 1.5, "100", 10**16])
def test_transfer_invalid_amount(engine, amount):
    with pytest.raises(DomainError) as caught:
        in_transaction(transfer, source=ADA, destination=BEN, amount_minor=amount, currency=NGN, idempotency_key=key())
    assert caught.value.code == "invalid_amount"


@pytest.mark.parametrize(
    ("posting", "kind"),
    [
        (Posting(ADA, ADA, 5, NGN), "transfer"),
        (Posting(ADA, "hold:123", 5, NGN), "transfer"),
        (Posting(ADA, "User Wallet", 5, NGN), "transfer"),
        (Posting(ADA, BEN, 5, NGN), "reversal"),
        (Posting(ADA, BEN, 5, NGN), "capture"),
    ],
)
def test_post_transaction_refuses_malformed_postings(engine, posting, kind):
    with pytest.raises(DomainError) as caught:
        in_transaction(post_transaction, postings=[posting], kind=kind, idempotency_key=key())
    assert caught.value.code == "invalid_posting"


def test_post_transaction_unsupported_currency(engine):
    with pytest.raises(DomainError) as caught:
        in_transaction(
            post_transaction, postings=[Posting("world", ADA, 5, "EUR")], kind="top_up", idempotency_key=key()
        )
    assert caught.value.code == "unsupported_currency"


def test_only_world_and_provider_clearing_accounts_may_go_negative(engine):
    in_transaction(
        transfer,
        source="provider:stripe:clearing",
        destination=ADA,
        amount_minor=300,
        currency=USD,
        idempotency_key=key(),
    )
    assert balance("provider:stripe:clearing", USD) == -300
    for source in ("platform:fees", "seller:s1:earnings", "provider:stripe:payouts"):
        error = refusal(transfer, source=source, destination=ADA, amount_minor=1, currency=USD, idempotency_key=key())
        assert error.code == "insufficient_funds"
    with unit_of_work() as session:
        flags = dict(session.exec(select(LedgerAccount.address, LedgerAccount.allow_negative)).all())
    assert flags == {"provider:stripe:clearing": True, ADA: False}


def test_reverse_transaction_once(engine):
    top_up(ADA, 10_000)
    original = in_transaction(
        transfer, source=ADA, destination=BEN, amount_minor=4_000, currency=NGN, idempotency_key=key()
    )
    reversal_key = key()
    reversal = in_transaction(reverse_transaction, transaction_id=original.id, idempotency_key=reversal_key)
    assert reversal.reverses_id == original.id
    assert reversal.kind == "reversal"
    assert entries_of(reversal.id) == [(ADA, 4_000, "NGN"), (BEN, -4_000, "NGN")]
    assert (balance(ADA), balance(BEN)) == (10_000, 0)
    assert (
        in_transaction(reverse_transaction, transaction_id=original.id, idempotency_key=reversal_key).id == reversal.id
    )
    error = refusal(reverse_transaction, transaction_id=original.id, idempotency_key=key())
    assert (error.code, error.status_code) == ("already_reversed", 409)
    assert refusal(reverse_transaction, transaction_id=reversal.id, idempotency_key=key()).code == "not_reversible"
    assert (balance(ADA), balance(BEN)) == (10_000, 0)


def test_reverse_transaction_after_the_money_was_spent(engine):
    top_up(ADA, 1_000)
    original = in_transaction(
        transfer, source=ADA, destination=BEN, amount_minor=1_000, currency=NGN, idempotency_key=key()
    )
    in_transaction(transfer, source=BEN, destination=CY, amount_minor=600, currency=NGN, idempotency_key=key())
    before = row_counts()
    assert refusal(reverse_transaction, transaction_id=original.id, idempotency_key=key()).code == "insufficient_funds"
    assert row_counts() == before


def test_reverse_unknown_transaction(engine):
    assert refusal(reverse_transaction, transaction_id=uuid.uuid4(), idempotency_key=key()).code == "not_found"


def test_concurrent_reversals_under_different_keys_reverse_once(engine):
    top_up(ADA, 10_000)
    original = in_transaction(
        transfer, source=ADA, destination=BEN, amount_minor=3_000, currency=NGN, idempotency_key=key()
    )
    outcomes = race(8, lambda: in_transaction(reverse_transaction, transaction_id=original.id, idempotency_key=key()))
    assert sorted(outcome for outcome in outcomes if isinstance(outcome, str)) == ["already_reversed"] * 7
    assert (balance(ADA), balance(BEN)) == (10_000, 0)


def test_list_entries_pages_newest_first(engine):
    top_up(ADA, 10_000)
    for amount in (100, 200, 300):
        in_transaction(
            transfer,
            source=ADA,
            destination=BEN,
            amount_minor=amount,
            currency=NGN,
            idempotency_key=key(),
            description=f"to Ben {amount}",
        )
    rows, total = in_transaction(list_entries, address=ADA, currency=NGN, page=1, page_size=2)
    assert total == 4
    assert [(entry.amount_minor, tx.description) for entry, tx in rows] == [(-300, "to Ben 300"), (-200, "to Ben 200")]
    rows, _ = in_transaction(list_entries, address=ADA, currency=NGN, page=2, page_size=2)
    assert [(entry.amount_minor, tx.kind) for entry, tx in rows] == [(-100, "transfer"), (10_000, "top_up")]
    assert in_transaction(list_entries, address=CY, currency=NGN) == ([], 0)


# --- holds ------------------------------------------------------------------------------------------


def hold_on(address: str, amount: int, *, minutes: int = 15, hold_key: str | None = None) -> LedgerHold:
    return in_transaction(
        place_hold,
        address=address,
        currency=NGN,
        amount_minor=amount,
        expires_at=utcnow() + timedelta(minutes=minutes),
        idempotency_key=hold_key or key(),
        kind="call",
    )


def hold_row(hold_id) -> LedgerHold:
    return in_transaction(get_hold, hold_id=hold_id)


def test_place_hold_reserves_from_the_available_balance(engine):
    top_up(ADA, 10_000)
    hold = hold_on(ADA, 4_000)
    assert hold.status == HoldStatus.ACTIVE
    assert balance(ADA) == 6_000
    assert balance(f"hold:{hold.id}") == 4_000
    assert refusal(
        transfer, source=ADA, destination=BEN, amount_minor=6_001, currency=NGN, idempotency_key=key()
    ).code == ("insufficient_funds")


def test_place_hold_insufficient_funds_writes_nothing(engine):
    top_up(ADA, 1_000)
    before = row_counts()
    with pytest.raises(InsufficientFunds):
        hold_on(ADA, 1_001)
    assert row_counts() == before


def test_place_hold_retried_with_same_key_returns_the_first_hold(engine):
    top_up(ADA, 10_000)
    hold_key = key()
    first = hold_on(ADA, 1_000, hold_key=hold_key)
    again = hold_on(ADA, 1_000, minutes=20, hold_key=hold_key)
    assert again.id == first.id
    assert balance(ADA) == 9_000
    with pytest.raises(LedgerError) as caught:
        hold_on(ADA, 1_500, hold_key=hold_key)
    assert caught.value.code == "idempotency_mismatch"


def test_capture_hold_partial_posts_and_releases_rest_in_one_transaction(engine):
    top_up(ADA, 10_000)
    hold = hold_on(ADA, 4_000)
    capture_key = key()
    captured = in_transaction(
        capture_hold, hold_id=hold.id, amount_minor=1_500, destination="platform:calls", idempotency_key=capture_key
    )
    assert captured.kind == "capture"
    assert entries_of(captured.id) == sorted(
        [
            (f"hold:{hold.id}", -1_500, "NGN"),
            ("platform:calls", 1_500, "NGN"),
            (f"hold:{hold.id}", -2_500, "NGN"),
            (ADA, 2_500, "NGN"),
        ]
    )
    resolved = hold_row(hold.id)
    assert (resolved.status, resolved.captured_minor, resolved.resolution_transaction_id) == (
        HoldStatus.CAPTURED,
        1_500,
        captured.id,
    )
    assert resolved.resolved_at is not None
    assert (balance(ADA), balance("platform:calls"), balance(f"hold:{hold.id}")) == (8_500, 1_500, 0)
    # The retry returns the capture; any other resolution is refused.
    again = in_transaction(
        capture_hold, hold_id=hold.id, amount_minor=1_500, destination="platform:calls", idempotency_key=capture_key
    )
    assert again.id == captured.id
    error = refusal(
        capture_hold, hold_id=hold.id, amount_minor=100, destination="platform:calls", idempotency_key=key()
    )
    assert (error.code, error.status_code) == ("hold_not_active", 409)
    assert refusal(void_hold, hold_id=hold.id, idempotency_key=key()).code == "hold_not_active"
    assert balance(ADA) == 8_500


def test_capture_hold_in_full_releases_nothing(engine):
    top_up(ADA, 1_000)
    hold = hold_on(ADA, 1_000)
    captured = in_transaction(capture_hold, hold_id=hold.id, amount_minor=1_000, destination=BEN, idempotency_key=key())
    assert entries_of(captured.id) == [(f"hold:{hold.id}", -1_000, "NGN"), (BEN, 1_000, "NGN")]
    assert (balance(ADA), balance(BEN)) == (0, 1_000)


def test_capture_more_than_the_hold_is_refused(engine):
    top_up(ADA, 5_000)
    hold = hold_on(ADA, 1_000)
    error = refusal(capture_hold, hold_id=hold.id, amount_minor=1_001, destination=BEN, idempotency_key=key())
    assert error.code == "capture_exceeds_hold"
    assert hold_row(hold.id).status == HoldStatus.ACTIVE


def test_void_hold_releases_everything(engine):
    top_up(ADA, 5_000)
    hold = hold_on(ADA, 2_000)
    void_key = key()
    released = in_transaction(void_hold, hold_id=hold.id, idempotency_key=void_key)
    assert released.kind == "release"
    assert hold_row(hold.id).status == HoldStatus.VOIDED
    assert balance(ADA) == 5_000
    assert in_transaction(void_hold, hold_id=hold.id, idempotency_key=void_key).id == released.id
    error = refusal(capture_hold, hold_id=hold.id, amount_minor=1, destination=BEN, idempotency_key=key())
    assert error.code == "hold_not_active"
    assert refusal(void_hold, hold_id=uuid.uuid4(), idempotency_key=key()).code == "not_found"


def test_extend_hold_reserves_more_if_funds_allow(engine):
    top_up(ADA, 5_000)
    hold = hold_on(ADA, 1_000)
    later = utcnow() + timedelta(hours=1)
    extend_key = key()
    extended = in_transaction(
        extend_hold, hold_id=hold.id, amount_minor=1_500, idempotency_key=extend_key, expires_at=later
    )
    assert (extended.amount_minor, extended.expires_at) == (2_500, later)
    assert (
        in_transaction(extend_hold, hold_id=hold.id, amount_minor=1_500, idempotency_key=extend_key).amount_minor
        == 2_500
    )
    assert (balance(ADA), balance(f"hold:{hold.id}")) == (2_500, 2_500)
    before = row_counts()
    assert refusal(extend_hold, hold_id=hold.id, amount_minor=2_501, idempotency_key=key()).code == "insufficient_funds"
    assert row_counts() == before
    assert hold_row(hold.id).amount_minor == 2_500
    in_transaction(
        capture_hold, hold_id=hold.id, amount_minor=2_000, destination="platform:calls", idempotency_key=key()
    )
    assert (balance(ADA), balance("platform:calls")) == (3_000, 2_000)
    assert refusal(extend_hold, hold_id=hold.id, amount_minor=1, idempotency_key=key()).code == "hold_not_active"


def test_expire_holds_releases_expired_holds_once(engine):
    top_up(ADA, 10_000)
    soon = hold_on(ADA, 1_000, minutes=5)
    late = hold_on(ADA, 2_000, minutes=60)
    assert in_transaction(expire_holds) == 0
    in_ten_minutes = utcnow() + timedelta(minutes=10)
    assert in_transaction(expire_holds, now=in_ten_minutes) == 1
    assert in_transaction(expire_holds, now=in_ten_minutes) == 0
    assert hold_row(soon.id).status == HoldStatus.EXPIRED
    assert hold_row(late.id).status == HoldStatus.ACTIVE
    assert balance(ADA) == 8_000
    assert refusal(void_hold, hold_id=soon.id, idempotency_key=key()).code == "hold_not_active"


def test_hold_past_its_expiry_cannot_be_captured(engine):
    top_up(ADA, 10_000)
    hold = hold_on(ADA, 1_000, minutes=5)
    with time_machine.travel(utcnow() + timedelta(minutes=6)):
        error = refusal(capture_hold, hold_id=hold.id, amount_minor=500, destination=BEN, idempotency_key=key())
        assert error.code == "hold_expired"
        # Voiding an expired hold is fine: the money goes back either way.
        in_transaction(void_hold, hold_id=hold.id, idempotency_key=key())
    assert balance(ADA) == 10_000


def test_holds_expire_by_themselves_through_the_job_queue(engine):
    top_up(ADA, 10_000)
    hold = hold_on(ADA, 1_000, minutes=15)
    with unit_of_work() as session:
        assert session.exec(select(Job.kind).where(Job.kind == EXPIRE_HOLDS_JOB)).all() == [EXPIRE_HOLDS_JOB]
    assert run_due_jobs(worker_id="w1") == 0
    with time_machine.travel(utcnow() + timedelta(minutes=16)):
        assert run_due_jobs(worker_id="w1") == 1
    assert hold_row(hold.id).status == HoldStatus.EXPIRED
    assert balance(ADA) == 10_000


def race(threads: int, action) -> list:
    """Run `action` in `threads` threads released at once; each outcome is its result or its error code."""
    barrier = threading.Barrier(threads)
    outcomes: list = [None] * threads

    def run(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = action()
        except LedgerError as error:
            outcomes[index] = error.code

    workers = [threading.Thread(target=run, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return outcomes


def test_concurrent_capture_and_void_resolve_a_hold_once(engine):
    top_up(ADA, 10_000)
    hold = hold_on(ADA, 4_000)
    actions = [
        lambda: in_transaction(
            capture_hold, hold_id=hold.id, amount_minor=3_000, destination=BEN, idempotency_key=key()
        ),
        lambda: in_transaction(void_hold, hold_id=hold.id, idempotency_key=key()),
    ] * 3
    counter = iter(range(len(actions)))
    lock = threading.Lock()

    def next_action():
        with lock:
            index = next(counter)
        return actions[index]()

    outcomes = race(len(actions), next_action)
    winners = [outcome for outcome in outcomes if isinstance(outcome, LedgerTransaction)]
    assert len(winners) == 1
    assert sorted(outcome for outcome in outcomes if isinstance(outcome, str)) == ["hold_not_active"] * 5
    resolved = hold_row(hold.id)
    assert resolved.resolution_transaction_id == winners[0].id
    expected = {HoldStatus.CAPTURED: (7_000, 3_000), HoldStatus.VOIDED: (10_000, 0)}[resolved.status]
    assert (balance(ADA), balance(BEN)) == expected


def test_concurrent_same_key_transfers_apply_once(engine):
    top_up(ADA, 10_000)
    shared = key()
    outcomes = race(
        8,
        lambda: in_transaction(
            transfer, source=ADA, destination=BEN, amount_minor=1_000, currency=NGN, idempotency_key=shared
        ),
    )
    assert len({outcome.id for outcome in outcomes}) == 1
    assert (balance(ADA), balance(BEN)) == (9_000, 1_000)


# --- what the database enforces -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entry SET amount_minor = amount_minor * 2",
        "DELETE FROM ledger_entry",
        "UPDATE ledger_transaction SET description = 'edited'",
        "DELETE FROM ledger_transaction",
    ],
)
def test_ledger_rows_are_append_only(engine, statement):
    top_up(ADA, 1_000)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement))
    assert balance(ADA) == 1_000


def test_balance_check_constraint_refuses_a_negative_wallet(engine):
    top_up(ADA, 1_000)
    with pytest.raises(DBAPIError, match="balance_not_negative"), engine.begin() as connection:
        connection.execute(text("UPDATE ledger_account SET balance_minor = -1 WHERE address = :a"), {"a": ADA})


def test_entry_currency_must_be_its_accounts(engine):
    top_up(ADA, 1_000)
    with unit_of_work() as session:
        account = session.exec(select(LedgerAccount).where(LedgerAccount.address == ADA)).one()
        tx = session.exec(select(LedgerTransaction)).one()
    with pytest.raises(DBAPIError), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO ledger_entry (id, created_at, transaction_id, account_id, amount_minor, currency,"
                " posting_index) VALUES (:id, :now, :tx, :account, 5, 'USD', 0)"
            ),
            {
                "id": uuid_param(engine),
                "now": utcnow(),
                "tx": uuid_value(engine, tx.id),
                "account": uuid_value(engine, account.id),
            },
        )


def uuid_value(engine: Engine, value: uuid.UUID):
    # SQLAlchemy stores Uuid as 32 hex characters on SQLite and as a native uuid on PostgreSQL.
    return value if engine.dialect.name == "postgresql" else value.hex


def uuid_param(engine: Engine):
    return uuid_value(engine, uuid.uuid4())


def test_unbalanced_transaction_is_refused_at_commit_on_postgresql(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no deferred triggers; the service and find_ledger_problems check balance there")
    top_up(ADA, 1_000)
    with unit_of_work() as session:
        account_id = session.exec(select(LedgerAccount.id).where(LedgerAccount.address == ADA)).one()
    tx_id = uuid.uuid4()
    insert_tx = text(
        "INSERT INTO ledger_transaction (id, created_at, reference, idempotency_key, request_hash, kind, description,"
        " metadata) VALUES (:id, now(), :ref, :key, 'x', 'transfer', '', '{}')"
    )
    insert_entry = text(
        "INSERT INTO ledger_entry (id, created_at, transaction_id, account_id, amount_minor, currency, posting_index)"
        " VALUES (gen_random_uuid(), now(), :tx, :account, :amount, 'NGN', 0)"
    )
    with pytest.raises(DBAPIError, match="does not balance"), engine.begin() as connection:
        connection.execute(insert_tx, {"id": tx_id, "ref": "TX-UNBALANCED", "key": key()})
        connection.execute(insert_entry, {"tx": tx_id, "account": account_id, "amount": 500})
        connection.execute(insert_entry, {"tx": tx_id, "account": account_id, "amount": -400})
        # Both statements were accepted: the check runs when the transaction commits.
    with pytest.raises(DBAPIError, match="fewer than two entries"), engine.begin() as connection:
        connection.execute(insert_tx, {"id": uuid.uuid4(), "ref": "TX-EMPTY", "key": key()})
    assert row_counts()[1] == 1


def test_find_ledger_problems_reports_a_tampered_balance(engine):
    top_up(ADA, 1_000)
    with engine.begin() as connection:
        connection.execute(text("UPDATE ledger_account SET balance_minor = 1001 WHERE address = :a"), {"a": ADA})
    with unit_of_work() as session:
        problems = find_ledger_problems(session=session)
    assert problems == [f"{ADA} NGN: cached balance 1001 != sum of entries 1000"]
    with engine.begin() as connection:
        connection.execute(text("UPDATE ledger_account SET balance_minor = 1000 WHERE address = :a"), {"a": ADA})


# --- concurrency on PostgreSQL ----------------------------------------------------------------------------

HOT = [wallet(name) for name in ("hot1", "hot2", "hot3", "hot4")]
START_BALANCE = 10_000


def transfer_invariant_problems(*, initial: dict[str, int], acknowledged: dict[str, tuple]) -> list[str]:
    """What a client who kept its receipts would see wrong: `acknowledged` maps key → (tx id, source, dest, amount)."""
    problems = []
    expected = dict(initial)
    for _tx_id, source, destination, amount in acknowledged.values():
        expected[source] -= amount
        expected[destination] += amount
    with unit_of_work() as session:
        actual = {address: get_balance(session=session, address=address, currency=NGN) for address in initial}
        stored = session.exec(
            select(LedgerTransaction.idempotency_key, LedgerTransaction.id).where(LedgerTransaction.kind == "transfer")
        ).all()
        problems += find_ledger_problems(session=session)
    if sum(actual.values()) != sum(initial.values()):
        problems.append(f"money created or destroyed: {sum(actual.values())} != {sum(initial.values())}")
    problems += [f"{address} is negative: {amount}" for address, amount in actual.items() if amount < 0]
    problems += [
        f"{address}: {actual[address]} != expected {expected[address]}"
        for address in initial
        if actual[address] != expected[address]
    ]
    per_key = Counter(idempotency_key for idempotency_key, _ in stored)
    problems += [f"{k} stored {n} times" for k, n in per_key.items() if n != 1]
    stored_ids = dict(stored)
    problems += [f"acknowledged {k} missing" for k in acknowledged if k not in stored_ids]
    problems += [
        f"acknowledged {k} as another transaction"
        for k, ack in acknowledged.items()
        if k in stored_ids and stored_ids[k] != ack[0]
    ]
    problems += [f"unacknowledged transaction {k}" for k in stored_ids if k not in acknowledged]
    return problems


def fund_hot_accounts() -> dict[str, int]:
    for address in HOT:
        top_up(address, START_BALANCE)
    return dict.fromkeys(HOT, START_BALANCE)


def test_transfer_invariant_check_catches_a_double_application(engine):
    """Negative control: the checker used below must notice a transfer applied twice."""
    initial = fund_hot_accounts()
    tx = in_transaction(
        transfer, source=HOT[0], destination=HOT[1], amount_minor=300, currency=NGN, idempotency_key="k1"
    )
    acknowledged = {"k1": (tx.id, HOT[0], HOT[1], 300)}
    assert transfer_invariant_problems(initial=initial, acknowledged=acknowledged) == []
    # What a broken idempotency check would do: the retry of k1 applied again under a fresh key.
    in_transaction(
        transfer, source=HOT[0], destination=HOT[1], amount_minor=300, currency=NGN, idempotency_key="k1-again"
    )
    problems = transfer_invariant_problems(initial=initial, acknowledged=acknowledged)
    assert f"{HOT[0]}: 9400 != expected 9700" in problems
    assert "unacknowledged transaction k1-again" in problems


def connection_killer(engine: Engine, stop: threading.Event, kills: list[int]) -> None:
    """Terminate one of the test database's other connections every few milliseconds."""
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    rng = random.Random(7)
    with psycopg.connect(url, autocommit=True) as admin:
        while not stop.is_set():
            pids = [
                row[0]
                for row in admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND backend_type = 'client backend'"
                ).fetchall()
            ]
            if pids and admin.execute("SELECT pg_terminate_backend(%s)", (rng.choice(pids),)).fetchone()[0]:
                kills.append(1)
            time.sleep(rng.uniform(0.005, 0.03))


def test_accounts_allowed_below_zero_are_not_locked_by_a_movement_in_progress(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite serialises writers")
    top_up(ADA, 1)  # the world account exists before the two movements below
    with unit_of_work() as session:
        transfer(
            session=session, source="world", destination=ADA, amount_minor=500, currency=NGN, idempotency_key=key()
        )
        # Still uncommitted: another payment from the same outside account must not wait for it.
        with unit_of_work() as second:
            second.connection().execute(text("SET LOCAL lock_timeout = '1s'"))
            transfer(
                session=second, source="world", destination=BEN, amount_minor=700, currency=NGN, idempotency_key=key()
            )
    assert (balance(ADA), balance(BEN), balance("world")) == (501, 700, -1_201)
    with unit_of_work() as session:
        cached = session.exec(select(LedgerAccount.balance_minor).where(LedgerAccount.address == "world")).one()
    assert cached == 0  # nothing is checked against it, so nothing is cached or locked


def test_a_movement_finds_its_accounts_by_key_not_by_scanning_on_postgresql(engine):
    """Its cost must not grow with the number of accounts: every account is read through the
    (address, currency) index, whatever plan the planner would guess for a handful of legs."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's path reads accounts by key in Python")
    top_up(ADA, 1_000)
    # The backend's counts not yet reported, which may include earlier transactions': compare.
    scans = text("SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'ledger_account'")
    with unit_of_work() as session:
        before = session.connection().execute(scans).scalar_one()
        transfer(session=session, source=ADA, destination=BEN, amount_minor=300, currency=NGN, idempotency_key=key())
        assert session.connection().execute(scans).scalar_one() == before


def test_reference_collision_is_an_integrity_error(engine, monkeypatch):
    """On PostgreSQL the write goes to the driver's cursor directly; a constraint it trips must
    still reach callers as SQLAlchemy's IntegrityError, as from any other statement."""
    monkeypatch.setattr(identifiers, "human_reference", lambda prefix, length: f"{prefix}-SAMEREFERENCE")
    top_up(ADA, 1_000)
    with pytest.raises(IntegrityError):
        in_transaction(transfer, source=ADA, destination=BEN, amount_minor=300, currency=NGN, idempotency_key=key())
    assert (balance(ADA), balance(BEN)) == (1_000, 0)


def test_ledger_write_on_a_dead_connection_is_a_lost_connection_on_postgresql(engine):
    """The write goes to the driver's cursor directly: its error must still reach callers as
    SQLAlchemy's, with the connection invalidated, so `unit_of_work` reports a lost connection (the
    retry signal) and the pool does not hand the dead connection out again."""
    if engine.dialect.name != "postgresql":
        pytest.skip("terminating a backend is PostgreSQL's")
    top_up(ADA, 1_000)
    admin_url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def transfer_after_the_server_hung_up(*, session):
        pid = session.connection().connection.dbapi_connection.info.backend_pid
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
                time.sleep(0.01)
        return transfer(
            session=session, source=ADA, destination=BEN, amount_minor=300, currency=NGN, idempotency_key=key()
        )

    with pytest.raises(DBAPIError) as caught:
        in_transaction(transfer_after_the_server_hung_up)
    assert caught.value.connection_invalidated
    retried = in_transaction(
        transfer, source=ADA, destination=BEN, amount_minor=300, currency=NGN, idempotency_key=key()
    )
    assert retried.kind == "transfer"
    assert (balance(ADA), balance(BEN)) == (700, 300)


def test_concurrent_transfers_between_hot_accounts_on_postgresql(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("row-level concurrency is PostgreSQL's; SQLite serialises writers")
    initial = fund_hot_accounts()
    rng = random.Random(2024)
    requests = []
    for index in range(360):
        # Every fourth request is a pair in both directions, sent at once: A→B and B→A.
        source, destination = rng.sample(HOT, 2)
        requests.append((f"hot:{index}", source, destination, rng.randint(1, 2_500)))
        if index % 4 == 0:
            requests.append((f"hot:{index}:back", destination, source, rng.randint(1, 2_500)))
    threads = 12
    queues: list[list[tuple]] = [[] for _ in range(threads)]
    for position, request in enumerate(requests):
        queues[position % threads].append(request)
        if position % 5 == 0:  # a client retrying the same request from another worker
            queues[(position + 1) % threads].append(request)
    for queue in queues:
        rng.shuffle(queue)

    acknowledged: dict[str, tuple] = {}
    receipts: list[tuple[str, uuid.UUID]] = []
    errors: list[str] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads + 1)

    def worker(queue: list[tuple]) -> None:
        barrier.wait()
        for idempotency_key, source, destination, amount in queue:
            for _attempt in range(100):
                try:
                    tx = in_transaction(
                        transfer,
                        source=source,
                        destination=destination,
                        amount_minor=amount,
                        currency=NGN,
                        idempotency_key=idempotency_key,
                    )
                except InsufficientFunds:
                    break
                except DBAPIError as error:
                    # Connection killed (maybe after COMMIT): retry with the same key, as a client would.
                    with lock:
                        errors.append(getattr(error.orig, "sqlstate", None) or type(error.orig).__name__)
                    continue
                except BaseException as error:
                    failures.append(error)
                    return
                with lock:
                    receipts.append((idempotency_key, tx.id))
                    acknowledged[idempotency_key] = (tx.id, source, destination, amount)
                break
            else:
                failures.append(RuntimeError(f"{idempotency_key} never got an answer"))

    stop, kills = threading.Event(), []
    killer = threading.Thread(target=connection_killer, args=(engine, stop, kills))
    workers = [threading.Thread(target=worker, args=(queue,)) for queue in queues]
    for thread in workers:
        thread.start()
    killer.start()
    barrier.wait()
    for thread in workers:
        thread.join()
    stop.set()
    killer.join()

    assert failures == [], f"retried errors: {Counter(errors)}"
    assert "40P01" not in errors, "deadlock: accounts were not locked in a consistent order"
    assert kills, "the killer terminated no connection"
    # Every receipt for one key names the same transaction: retries were answered with the first result.
    by_key: dict[str, set] = {}
    for idempotency_key, tx_id in receipts:
        by_key.setdefault(idempotency_key, set()).add(tx_id)
    assert all(len(ids) == 1 for ids in by_key.values())
    assert len(receipts) > len(acknowledged), "some requests were answered twice (retries)"
    assert len(acknowledged) > len(requests) // 2
    assert transfer_invariant_problems(initial=initial, acknowledged=acknowledged) == []
