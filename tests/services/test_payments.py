"""Payments end to end with the mock provider: create → open checkout → the payer settles → webhook,
verify and reconciliation, on SQLite and PostgreSQL, with the ledger checked after every scenario."""

import hashlib
import hmac
import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlmodel import func, select

from paytime_app import bus
from paytime_app.db import in_transaction, unit_of_work
from paytime_app.errors import DomainError
from paytime_app.models.base import utcnow
from paytime_app.models.jobs import Job, JobStatus
from paytime_app.models.payments import Payment, PaymentPurpose, PaymentStatus, ProviderEvent
from paytime_app.models.sessions import SessionKind
from paytime_app.models.users import User
from paytime_app.money import Currency
from paytime_app.services import payments
from paytime_app.services.jobs import run_due_jobs
from paytime_app.services.ledger import find_ledger_problems, get_balance
from paytime_app.services.payments import (
    MAX_PAYMENT_MINOR,
    RECONCILE_AFTER,
    create_payment,
    get_payment,
    ingest_webhook,
    list_own_payments,
    list_status_changes,
    open_checkout,
    reconcile_payments,
    schedule_reconciliation,
    verify_payment,
)
from paytime_app.services.providers.base import (
    CheckoutRequest,
    ProviderPayment,
    ProviderPaymentStatus,
    ProviderRefused,
    ProviderUnavailable,
)
from paytime_app.services.providers.mock import SIGNATURE_HEADER, MockProvider
from paytime_app.services.providers.registry import get_provider
from paytime_app.services.providers.resilience import reset_breakers
from paytime_app.services.sessions import ClientInfo, start_browser_session
from paytime_app.services.users import create_user
from paytime_app.services.wallets import WalletKind, wallet_address
from paytime_app.settings import get_settings
from tests.helpers import run_at_once

NGN = Currency.NGN
USD = Currency.USD
SUCCEEDED = ProviderPaymentStatus.SUCCEEDED
FAILED = ProviderPaymentStatus.FAILED
PROCESSING = ProviderPaymentStatus.PROCESSING
RETURN_URL = "http://localhost:3000/wallet"
CLIENT = ClientInfo(ip_address="203.0.113.9", user_agent="Firefox on a laptop")


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(engine):
    """After every scenario: balances equal their entries, transactions balance, nothing negative."""
    yield
    with unit_of_work() as session:
        assert find_ledger_problems(session=session) == []


@pytest.fixture(autouse=True)
def _closed_breakers():
    """The mock's breaker is per process; no test inherits another's open circuit."""
    reset_breakers()
    yield
    reset_breakers()


@pytest.fixture
def user(engine) -> User:
    return in_transaction(create_user, email="ada@example.com", display_name="Ada", password=None, email_verified=True)


@pytest.fixture
def other(engine) -> User:
    return in_transaction(create_user, email="ben@example.com", display_name="Ben", password=None, email_verified=True)


@pytest.fixture
def published(monkeypatch) -> list[dict]:
    """Messages that reached the bus (after their transaction committed)."""
    messages: list[dict] = []
    monkeypatch.setattr(bus, "publish", messages.append)
    return messages


# --- helpers ------------------------------------------------------------------------------------------


def mock() -> MockProvider:
    provider = get_provider("mock")
    assert isinstance(provider, MockProvider)
    return provider


def key() -> str:
    return f"test:{uuid.uuid4()}"


def new_payment(
    user: User,
    *,
    amount_minor: int = 500_000,
    currency: str = "NGN",
    purpose: PaymentPurpose = PaymentPurpose.WALLET_TOPUP,
    provider: str = "mock",
    idempotency_key: str | None = None,
) -> Payment:
    return in_transaction(
        create_payment,
        actor=user,
        purpose=purpose,
        amount_minor=amount_minor,
        currency=currency,
        provider=provider,
        idempotency_key=idempotency_key or key(),
    )


def opened(user: User, **kwargs) -> Payment:
    """A payment whose mock checkout is open (processing)."""
    return open_checkout(payment_id=new_payment(user, **kwargs).id, return_url=RETURN_URL)


def settle(payment: Payment, outcome: ProviderPaymentStatus = SUCCEEDED) -> tuple[dict[str, str], bytes]:
    """The payer clicks Pay / Fail on the mock page; returns the signed webhook the page would post."""
    return mock().settle_checkout(provider_reference=payment.provider_reference, outcome=outcome)


def webhook(payment: Payment, outcome: ProviderPaymentStatus, **overrides) -> tuple[dict[str, str], bytes]:
    """A correctly signed mock webhook announcing `outcome` (event id per payment and outcome)."""
    fields = {
        "provider_reference": payment.provider_reference,
        "reference": payment.reference,
        "outcome": outcome,
        "amount_minor": payment.amount_minor,
        "currency": payment.currency,
    }
    return mock().signed_webhook(**{**fields, **overrides})


def deliver(signed: tuple[dict[str, str], bytes]) -> payments.WebhookOutcome:
    headers, body = signed
    return ingest_webhook(provider="mock", headers=headers, raw_body=body)


def reload(payment: Payment) -> Payment:
    with unit_of_work() as session:
        found = session.get(Payment, payment.id)
        assert found is not None
        return found


def balance(user: User, kind: WalletKind = WalletKind.PRIMARY, currency: Currency = NGN) -> int:
    return in_transaction(get_balance, address=wallet_address(user.id, kind), currency=currency)


def count(model, *where) -> int:
    with unit_of_work() as session:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()


def timeline(payment: Payment) -> list[tuple[str | None, str, str]]:
    with unit_of_work() as session:
        changes = list_status_changes(session=session, payment=payment)
    return [(change.from_status, change.to_status, change.source) for change in changes]


def code_of(call, **kwargs) -> str:
    with pytest.raises(DomainError) as caught:
        call(**kwargs)
    return caught.value.code


def signed_as_mock(body: bytes) -> tuple[dict[str, str], bytes]:
    """Headers for `body` signed now with our mock secret, as the mock signs what it sends."""
    timestamp = int(time.time())
    digest = hmac.new(
        get_settings().mock_webhook_secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return {"content-type": "application/json", SIGNATURE_HEADER: f"t={timestamp},v1={digest}"}, body


def browser_token(user: User) -> str:
    return in_transaction(start_browser_session, user=user, client=CLIENT).token


# --- create_payment ---------------------------------------------------------------------------------


def test_create_payment_is_pending_with_reference(user):
    payment = new_payment(user, amount_minor=125_050, currency="ngn")
    assert payment.status == PaymentStatus.PENDING
    assert payment.reference.startswith("PAY-")
    assert len(payment.reference) == 14
    assert (payment.amount_minor, payment.currency, payment.provider, payment.method) == (
        125_050,
        "NGN",
        "mock",
        "mock",
    )
    assert payment.user_id == user.id
    assert payment.provider_reference is None
    assert payment.checkout_url is None
    assert payment.ledger_transaction_id is None
    assert timeline(payment) == [(None, "pending", "api")]
    assert balance(user) == 0


def test_create_payment_same_key_and_request_returns_same_payment(user):
    first = new_payment(user, idempotency_key="top-up-1")
    again = new_payment(user, idempotency_key="top-up-1")
    assert again.id == first.id
    assert again.reference == first.reference
    assert count(Payment) == 1


def test_create_payment_same_key_other_amount_idempotency_mismatch(user):
    first = new_payment(user, amount_minor=500_000, idempotency_key="top-up-1")
    assert code_of(new_payment, user=user, amount_minor=600_000, idempotency_key="top-up-1") == "idempotency_mismatch"
    assert code_of(new_payment, user=user, currency="USD", idempotency_key="top-up-1") == "idempotency_mismatch"
    assert (
        code_of(new_payment, user=user, purpose=PaymentPurpose.CALL_CREDITS, idempotency_key="top-up-1")
        == "idempotency_mismatch"
    )
    assert count(Payment) == 1
    assert reload(first).amount_minor == 500_000


def test_create_payment_same_key_other_user_is_another_payment(user, other):
    mine = new_payment(user, idempotency_key="top-up-1")
    theirs = new_payment(other, idempotency_key="top-up-1")
    assert mine.id != theirs.id
    assert theirs.user_id == other.id


def test_create_payment_concurrent_same_key_creates_one(user):
    results = run_at_once(10, lambda: new_payment(user, idempotency_key="double-click").id)
    assert len(set(results)) == 1, results
    assert isinstance(results[0], uuid.UUID)
    assert count(Payment) == 1


@pytest.mark.parametrize("amount", [0, -1, -500_000, True, 1.5, "500"])
def test_create_payment_invalid_amount(user, amount):
    assert code_of(new_payment, user=user, amount_minor=amount) == "invalid_amount"
    assert count(Payment) == 0


def test_create_payment_amount_above_limit(user):
    assert code_of(new_payment, user=user, amount_minor=MAX_PAYMENT_MINOR + 1) == "amount_too_large"
    assert new_payment(user, amount_minor=MAX_PAYMENT_MINOR).amount_minor == MAX_PAYMENT_MINOR


@pytest.mark.parametrize("currency", ["EUR", "", "NAIRA"])
def test_create_payment_unsupported_currency(user, currency):
    assert code_of(new_payment, user=user, currency=currency) == "unsupported_currency"
    assert count(Payment) == 0


def test_create_payment_booking_purpose_not_supported(user):
    assert code_of(new_payment, user=user, purpose=PaymentPurpose.BOOKING) == "purpose_not_supported"
    assert count(Payment) == 0


@pytest.mark.parametrize("provider", ["stripe", "monnify", "flutterwave"])
def test_create_payment_unconfigured_provider_unavailable(user, provider):
    # The test settings configure only the mock.
    assert code_of(new_payment, user=user, provider=provider) == "provider_unavailable"
    assert count(Payment) == 0


@pytest.mark.parametrize("provider", ["paypal", ""])
def test_create_payment_unknown_provider_refused_as_bad_input(user, provider):
    assert code_of(new_payment, user=user, provider=provider) == "unknown_provider"
    assert count(Payment) == 0


# --- open_checkout ----------------------------------------------------------------------------------


def test_open_checkout_moves_to_processing_with_checkout(user):
    payment = opened(user)
    assert payment.status == PaymentStatus.PROCESSING
    assert payment.provider_reference.startswith("mock_")
    assert payment.checkout_url == f"http://localhost:3000/pay/mock/{payment.provider_reference}"
    checkout = mock().get_checkout(payment.provider_reference)
    assert (checkout.reference, checkout.amount_minor, checkout.currency) == (payment.reference, 500_000, NGN)
    assert checkout.status is ProviderPaymentStatus.PENDING
    assert timeline(payment) == [(None, "pending", "api"), ("pending", "processing", "api")]
    assert balance(user) == 0


def test_open_checkout_twice_keeps_same_checkout(user):
    first = opened(user)
    again = open_checkout(payment_id=first.id, return_url=RETURN_URL)
    assert (again.provider_reference, again.checkout_url) == (first.provider_reference, first.checkout_url)
    assert len(timeline(first)) == 2


def test_open_checkout_concurrent_calls_share_one_checkout(user):
    payment = new_payment(user)
    results = run_at_once(5, lambda: open_checkout(payment_id=payment.id, return_url=RETURN_URL).checkout_url)
    assert len(set(results)) == 1, results
    assert reload(payment).checkout_url == results[0]
    assert timeline(payment) == [(None, "pending", "api"), ("pending", "processing", "api")]


def test_open_checkout_unknown_payment_not_found(engine):
    assert code_of(open_checkout, payment_id=uuid.uuid4(), return_url=RETURN_URL) == "not_found"


@pytest.mark.parametrize("error", [ProviderUnavailable, ProviderRefused])
def test_open_checkout_provider_down_fails_payment_and_raises(user, monkeypatch, error):
    def down(request):
        raise error(provider="mock")

    monkeypatch.setattr(mock(), "create_checkout", down)
    payment = new_payment(user)
    assert code_of(open_checkout, payment_id=payment.id, return_url=RETURN_URL) == error.code
    failed = reload(payment)
    assert failed.status == PaymentStatus.FAILED
    assert failed.failure_reason == error.code
    assert failed.checkout_url is None
    assert timeline(payment)[-1] == ("pending", "failed", "api")

    # Never "succeeded" afterwards: not by opening again, nor by a (signed) success for its reference.
    monkeypatch.undo()
    assert open_checkout(payment_id=payment.id, return_url=RETURN_URL).status == PaymentStatus.FAILED
    outcome = deliver(webhook(failed, SUCCEEDED, provider_reference="mock_made_up"))
    assert outcome.status == "processed"
    assert reload(payment).status == PaymentStatus.FAILED
    assert reconcile_payments(older_than=timedelta(0)) == 0
    assert reload(payment).status == PaymentStatus.FAILED
    assert balance(user) == 0


def test_open_checkout_failure_after_concurrent_success_keeps_live_checkout(user, monkeypatch):
    adapter = mock()
    real_create_checkout = adapter.create_checkout
    calls: list[str] = []

    def flaky(request):
        calls.append(request.idempotency_key)
        if len(calls) == 1:
            # A second tab opens the checkout while this call's answer is lost on the way back.
            open_checkout(payment_id=payment.id, return_url=RETURN_URL)
            raise ProviderUnavailable(provider="mock")
        return real_create_checkout(request)

    monkeypatch.setattr(adapter, "create_checkout", flaky)
    payment = new_payment(user)
    # The lost answer is not an error: the checkout the other attempt opened is the one to use.
    assert open_checkout(payment_id=payment.id, return_url=RETURN_URL).checkout_url is not None
    live = reload(payment)
    assert live.checkout_url is not None  # the payer has a working page…
    deliver(settle(live, SUCCEEDED))  # …and pays on it
    assert reload(payment).status == PaymentStatus.SUCCEEDED
    assert balance(user) == 500_000


# --- webhooks -----------------------------------------------------------------------------------------


def test_webhook_success_credits_wallet_once(user):
    payment = opened(user, amount_minor=250_000)
    outcome = deliver(settle(payment, SUCCEEDED))
    assert outcome == payments.WebhookOutcome(status="processed", payment_reference=payment.reference)
    done = reload(payment)
    assert done.status == PaymentStatus.SUCCEEDED
    assert done.ledger_transaction_id is not None
    assert balance(user) == 250_000
    assert balance(user, WalletKind.CALL_CREDITS) == 0
    assert in_transaction(get_balance, address="provider:mock:clearing", currency=NGN) == -250_000
    assert timeline(payment)[-1] == ("processing", "succeeded", "webhook")
    with unit_of_work() as session:
        event = session.exec(select(ProviderEvent)).one()
    assert (event.provider, event.event_id, event.event_type) == (
        "mock",
        f"evt_{payment.provider_reference}_succeeded",
        "payment.succeeded",
    )
    assert event.payment_id == payment.id


def test_webhook_call_credits_purpose_credits_call_credits_wallet(user):
    payment = opened(user, amount_minor=3_000, purpose=PaymentPurpose.CALL_CREDITS)
    deliver(settle(payment, SUCCEEDED))
    assert reload(payment).status == PaymentStatus.SUCCEEDED
    assert balance(user, WalletKind.CALL_CREDITS) == 3_000
    assert balance(user, WalletKind.PRIMARY) == 0


def test_webhook_success_in_usd_credits_usd_wallet(user):
    payment = opened(user, amount_minor=1_999, currency="USD")
    deliver(settle(payment, SUCCEEDED))
    assert balance(user, currency=USD) == 1_999
    assert balance(user, currency=NGN) == 0


def test_webhook_failed_outcome_fails_without_credit(user):
    payment = opened(user)
    assert deliver(settle(payment, FAILED)).status == "processed"
    failed = reload(payment)
    assert failed.status == PaymentStatus.FAILED
    assert failed.failure_reason
    assert failed.ledger_transaction_id is None
    assert balance(user) == 0
    assert timeline(payment)[-1] == ("processing", "failed", "webhook")


def test_webhook_success_tells_open_tabs_after_commit(user, published):
    payment = opened(user)
    published.clear()
    signed = settle(payment, SUCCEEDED)
    deliver(signed)
    assert published == [
        {"topic": "payment.updated", "user_id": str(user.id), "payment_id": str(payment.id), "status": "succeeded"},
        {"topic": "payments.staff", "payment_id": str(payment.id), "status": "succeeded"},
    ]
    deliver(signed)  # a duplicate tells nobody anything new
    assert len(published) == 2


def test_webhook_cancelled_outcome_cancels_without_credit(user):
    payment = opened(user)
    deliver(settle(payment, ProviderPaymentStatus.CANCELLED))
    assert reload(payment).status == PaymentStatus.CANCELLED
    assert balance(user) == 0


def _tampered(payment: Payment) -> tuple[dict[str, str], bytes]:
    headers, body = webhook(payment, SUCCEEDED)
    forged = body.replace(b'"amount_minor":500000', b'"amount_minor":900000')
    assert forged != body
    return headers, forged


def _stale(payment: Payment) -> tuple[dict[str, str], bytes]:
    return webhook(payment, SUCCEEDED, timestamp=int(time.time()) - 301)


def _from_the_future(payment: Payment) -> tuple[dict[str, str], bytes]:
    return webhook(payment, SUCCEEDED, timestamp=int(time.time()) + 301)


def _wrong_secret(payment: Payment) -> tuple[dict[str, str], bytes]:
    forger = MockProvider(webhook_secret="not-our-secret", base_url="http://localhost:3000")
    return forger.signed_webhook(
        provider_reference=payment.provider_reference,
        reference=payment.reference,
        outcome=SUCCEEDED,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
    )


def _unsigned(payment: Payment) -> tuple[dict[str, str], bytes]:
    _, body = webhook(payment, SUCCEEDED)
    return {"content-type": "application/json"}, body


@pytest.mark.parametrize("forge", [_tampered, _stale, _from_the_future, _wrong_secret, _unsigned])
def test_webhook_tampered_or_stale_writes_nothing(user, forge):
    payment = opened(user)
    settle(payment, SUCCEEDED)  # the payer paid; only a genuine webhook may say so
    before = reload(payment)
    assert code_of(deliver, signed=forge(payment)) == "webhook_rejected"
    assert count(ProviderEvent) == 0
    after = reload(payment)
    assert (after.status, after.updated_at, after.ledger_transaction_id) == (
        PaymentStatus.PROCESSING,
        before.updated_at,
        None,
    )
    assert len(timeline(payment)) == 2
    assert balance(user) == 0
    # The rejection left no trace that would swallow the genuine delivery.
    assert deliver(webhook(payment, SUCCEEDED)).status == "processed"
    assert balance(user) == 500_000


def test_webhook_unknown_provider_not_found(user):
    payment = opened(user)
    headers, body = webhook(payment, SUCCEEDED)
    assert code_of(ingest_webhook, provider="paypal", headers=headers, raw_body=body) == "not_found"
    assert count(ProviderEvent) == 0


def test_webhook_for_unknown_payment_ignored(user):
    payment = opened(user)
    ghost = webhook(payment, SUCCEEDED, provider_reference="mock_nobody", reference="PAY-NOBODY0000")
    assert deliver(ghost).status == "ignored"
    assert count(ProviderEvent) == 1
    assert reload(payment).status == PaymentStatus.PROCESSING
    assert balance(user) == 0


def test_webhook_duplicate_delivery_credits_once(user):
    payment = opened(user)
    signed = settle(payment, SUCCEEDED)
    assert deliver(signed).status == "processed"
    assert deliver(signed) == payments.WebhookOutcome(status="duplicate")
    # The payer clicking Pay again yields the same event, re-signed later: still the same event.
    assert deliver(settle(payment, SUCCEEDED)).status == "duplicate"
    assert balance(user) == 500_000
    assert count(ProviderEvent) == 1
    assert [change[1] for change in timeline(payment)].count("succeeded") == 1


def test_webhook_twenty_concurrent_deliveries_credit_once(user):
    payment = opened(user)
    headers, body = settle(payment, SUCCEEDED)
    results = run_at_once(20, lambda: ingest_webhook(provider="mock", headers=headers, raw_body=body).status)
    # Every delivery is answered (a busy answer would be retried by the provider), one applies it.
    assert results.count("processed") == 1, results
    assert set(results) <= {"processed", "duplicate", "webhook_busy"}, results
    assert balance(user) == 500_000
    assert count(ProviderEvent) == 1
    assert reload(payment).status == PaymentStatus.SUCCEEDED
    assert [change[1] for change in timeline(payment)].count("succeeded") == 1


def test_webhook_concurrent_distinct_success_events_credit_once(user):
    # Several events announcing the same success under different ids (as a provider's "charge" and
    # "checkout" events would): each is stored, the wallet is credited once.
    payment = opened(user)
    _, body = webhook(payment, SUCCEEDED)
    events = iter([signed_as_mock(body.replace(b"_succeeded", f"_succeeded_{i}".encode(), 1)) for i in range(10)])
    results = run_at_once(10, lambda: deliver(next(events)).status)
    assert set(results) <= {"processed", "webhook_busy"}, results
    assert balance(user) == 500_000
    assert reload(payment).status == PaymentStatus.SUCCEEDED
    assert [change[1] for change in timeline(payment)].count("succeeded") == 1


@pytest.mark.parametrize(
    "order",
    list(itertools.permutations([PROCESSING, SUCCEEDED, FAILED])),
    ids=lambda order: "-".join(outcome.value for outcome in order),
)
def test_webhooks_in_any_order_end_at_first_final_event(user, order):
    payment = opened(user)
    for outcome in order:
        assert deliver(webhook(payment, outcome)).status == "processed"
    # Statuses only move forward: the first final event decides, later contradictions change nothing.
    first_final = next(outcome for outcome in order if outcome is not PROCESSING)
    done = reload(payment)
    assert done.status == PaymentStatus(first_final.value)
    assert balance(user) == (500_000 if first_final is SUCCEEDED else 0)
    assert count(ProviderEvent, ProviderEvent.payment_id == payment.id) == 3
    statuses = [change[1] for change in timeline(payment)]
    assert statuses == ["pending", "processing", first_final.value]


@pytest.mark.parametrize(
    "order",
    list(itertools.permutations([PROCESSING, SUCCEEDED, FAILED])),
    ids=lambda order: "-".join(outcome.value for outcome in order),
)
def test_webhooks_in_any_order_on_pending_payment(user, order):
    # The webhook may beat our own "checkout opened" write: the payment is still pending.
    payment = new_payment(user)
    checkout = mock().create_checkout(
        CheckoutRequest(
            reference=payment.reference,
            amount_minor=payment.amount_minor,
            currency=NGN,
            customer_email=user.email,
            customer_name=user.display_name,
            description="test",
            return_url=RETURN_URL,
            idempotency_key=f"paytime:{payment.id}:checkout",
        )
    )
    for outcome in order:
        signed = webhook(payment, outcome, provider_reference=checkout.provider_reference)
        assert deliver(signed).status == "processed"
    first_final = next(outcome for outcome in order if outcome is not PROCESSING)
    done = reload(payment)
    assert done.status == PaymentStatus(first_final.value)
    assert done.provider_reference == checkout.provider_reference
    assert balance(user) == (500_000 if first_final is SUCCEEDED else 0)
    # Opening the checkout afterwards keeps the final status.
    assert open_checkout(payment_id=payment.id, return_url=RETURN_URL).status == PaymentStatus(first_final.value)


def apply_report(session, payment: Payment, status: ProviderPaymentStatus, *, savepoint: bool = False) -> Payment:
    """Lock the payment and apply the provider's report of `status` for it (in a new savepoint if asked)."""
    locked = session.exec(select(Payment).where(Payment.id == payment.id).with_for_update()).one()
    if savepoint:
        session.begin_nested()
    report = ProviderPayment(
        provider_reference=payment.provider_reference,
        reference=payment.reference,
        status=status,
        amount_minor=payment.amount_minor,
        currency=Currency(payment.currency),
    )
    return payments.apply_provider_report(session=session, payment=locked, report=report, source="webhook")


def test_report_applied_then_savepoint_rolled_back_payment_as_stored(user):
    """A status change written in one statement with the payment's UPDATE, then undone with its
    savepoint: nothing of it stays in the database, and the payment in memory matches its row."""
    payment = opened(user)
    with unit_of_work() as session:
        locked = apply_report(session, payment, SUCCEEDED, savepoint=True)
        savepoint = session.get_nested_transaction()
        assert locked.status == PaymentStatus.SUCCEEDED
        savepoint.rollback()
        assert (locked.status, locked.ledger_transaction_id) == (PaymentStatus.PROCESSING, None)
    assert reload(payment).status == PaymentStatus.PROCESSING
    assert timeline(payment)[-1] == ("pending", "processing", "api")
    assert balance(user) == 0
    # The same report, applied for real afterwards, credits once.
    with unit_of_work() as session:
        apply_report(session, payment, SUCCEEDED)
    assert (reload(payment).status, balance(user)) == (PaymentStatus.SUCCEEDED, payment.amount_minor)


def test_report_applied_then_transaction_rolled_back_payment_as_stored(user):
    """The whole transaction rolled back after the status change: the row and the payment in memory
    (expired, reloaded) are as before."""
    payment = opened(user)
    with unit_of_work() as session:
        locked = apply_report(session, payment, FAILED)
        session.rollback()
        assert locked.status == PaymentStatus.PROCESSING
    assert reload(payment).status == PaymentStatus.PROCESSING
    assert timeline(payment)[-1] == ("pending", "processing", "api")


def test_webhook_processing_event_leaves_payment_processing(user):
    payment = opened(user)
    assert deliver(webhook(payment, PROCESSING)).status == "processed"
    assert reload(payment).status == PaymentStatus.PROCESSING
    assert len(timeline(payment)) == 2


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"amount_minor": 500_001}, "amount_mismatch"),
        ({"amount_minor": 1}, "amount_mismatch"),
        ({"currency": "USD"}, "currency_mismatch"),
    ],
)
def test_webhook_for_other_amount_never_credits(user, overrides, reason):
    payment = opened(user)
    assert deliver(webhook(payment, SUCCEEDED, **overrides)).status == "processed"
    done = reload(payment)
    assert done.status == PaymentStatus.FAILED
    assert done.failure_reason == reason
    assert done.ledger_transaction_id is None
    assert balance(user) == 0
    assert balance(user, currency=USD) == 0


def test_webhook_with_our_provider_reference_but_other_reference_never_credits(user):
    payment = opened(user)
    deliver(webhook(payment, SUCCEEDED, reference="PAY-SOMEONEELS"))
    assert reload(payment).status != PaymentStatus.SUCCEEDED
    assert balance(user) == 0


def test_webhook_verify_and_reconcile_at_once_credit_once(user):
    payment = opened(user)
    headers, body = settle(payment, SUCCEEDED)
    token = browser_token(user)
    calls = iter(
        [lambda: ingest_webhook(provider="mock", headers=headers, raw_body=body).status] * 6
        + [lambda: verify_payment(token=token, kind=SessionKind.BROWSER, payment_id=payment.id).status] * 6
        + [lambda: reconcile_payments(older_than=timedelta(0))] * 3
    )

    def next_caller() -> object:
        return next(calls)()

    results = run_at_once(15, next_caller)
    assert results.count("processed") == 1, results
    assert all(result in {"processed", "duplicate", PaymentStatus.SUCCEEDED, 0, 1} for result in results), results
    assert balance(user) == 500_000
    assert reload(payment).status == PaymentStatus.SUCCEEDED
    assert [change[1] for change in timeline(payment)].count("succeeded") == 1


# --- verify -----------------------------------------------------------------------------------------


def test_verify_other_users_payment_not_found(user, other):
    payment = opened(user)
    settle(payment, SUCCEEDED)
    token = browser_token(other)
    assert code_of(verify_payment, token=token, kind=SessionKind.BROWSER, payment_id=payment.id) == "not_found"
    assert reload(payment).status == PaymentStatus.PROCESSING
    assert balance(user) == 0
    assert balance(other) == 0


@pytest.mark.parametrize("token", [None, "", "not-a-session"])
def test_verify_without_session_refused(user, token):
    payment = opened(user)
    code = code_of(verify_payment, token=token, kind=SessionKind.BROWSER, payment_id=payment.id)
    assert code in {"authentication_required", "session_expired"}
    assert reload(payment).status == PaymentStatus.PROCESSING


def test_verify_unknown_payment_not_found(user):
    token = browser_token(user)
    assert code_of(verify_payment, token=token, kind=SessionKind.BROWSER, payment_id=uuid.uuid4()) == "not_found"


def test_verify_settled_without_webhook_credits_once(user):
    payment = opened(user)
    settle(payment, SUCCEEDED)  # the webhook never arrives
    token = browser_token(user)
    verified = verify_payment(token=token, kind=SessionKind.BROWSER, payment_id=payment.id)
    assert verified.status == PaymentStatus.SUCCEEDED
    assert balance(user) == 500_000
    assert timeline(payment)[-1] == ("processing", "succeeded", "verify")

    again = verify_payment(token=token, kind=SessionKind.BROWSER, payment_id=payment.id)
    assert again.status == PaymentStatus.SUCCEEDED
    assert balance(user) == 500_000
    assert len(timeline(payment)) == 3

    # The late webhook is stored and changes nothing.
    assert deliver(webhook(payment, SUCCEEDED)).status == "processed"
    assert balance(user) == 500_000
    assert len(timeline(payment)) == 3


def test_verify_unsettled_checkout_stays_processing(user):
    payment = opened(user)
    token = browser_token(user)
    assert verify_payment(token=token, kind=SessionKind.BROWSER, payment_id=payment.id).status == (
        PaymentStatus.PROCESSING
    )
    assert len(timeline(payment)) == 2
    assert balance(user) == 0


def test_verify_failed_checkout_fails_payment(user):
    payment = opened(user)
    settle(payment, FAILED)
    token = browser_token(user)
    assert verify_payment(token=token, kind=SessionKind.BROWSER, payment_id=payment.id).status == PaymentStatus.FAILED
    assert balance(user) == 0


def test_verify_provider_down_changes_nothing(user, monkeypatch):
    payment = opened(user)
    settle(payment, SUCCEEDED)

    def down(**kwargs):
        raise ProviderUnavailable(provider="mock")

    monkeypatch.setattr(mock(), "fetch_payment", down)
    token = browser_token(user)
    assert code_of(verify_payment, token=token, kind=SessionKind.BROWSER, payment_id=payment.id) == (
        "provider_unavailable"
    )
    assert reload(payment).status == PaymentStatus.PROCESSING
    assert balance(user) == 0


def test_verify_pending_payment_without_checkout_changes_nothing(user):
    payment = new_payment(user)
    token = browser_token(user)
    assert verify_payment(token=token, kind=SessionKind.BROWSER, payment_id=payment.id).status == (
        PaymentStatus.PENDING
    )


# --- reconciliation ---------------------------------------------------------------------------------


def test_reconcile_completes_stuck_payments_once(user):
    paid = opened(user, amount_minor=100_000)
    declined = opened(user, amount_minor=200_000)
    abandoned = opened(user, amount_minor=300_000)
    settle(paid, SUCCEEDED)  # neither webhook ever arrives
    settle(declined, FAILED)
    with time_machine.travel(utcnow() + RECONCILE_AFTER + timedelta(minutes=1)):
        recent = opened(user, amount_minor=400_000)
        settle(recent, SUCCEEDED)  # its webhook may still be on the way: not stuck yet
        assert reconcile_payments() == 2
        assert reconcile_payments() == 0
    assert reload(paid).status == PaymentStatus.SUCCEEDED
    assert reload(declined).status == PaymentStatus.FAILED
    assert reload(abandoned).status == PaymentStatus.PROCESSING
    assert reload(recent).status == PaymentStatus.PROCESSING
    assert balance(user) == 100_000
    assert timeline(paid) == [
        (None, "pending", "api"),
        ("pending", "processing", "api"),
        ("processing", "succeeded", "reconcile"),
    ]
    assert timeline(declined)[-1] == ("processing", "failed", "reconcile")
    assert len(timeline(abandoned)) == 2


def test_reconcile_twice_changes_nothing_more(user):
    payment = opened(user)
    settle(payment, SUCCEEDED)
    with time_machine.travel(utcnow() + RECONCILE_AFTER + timedelta(minutes=1)):
        assert reconcile_payments() == 1
        first = reload(payment)
        assert reconcile_payments() == 0
        assert reconcile_payments(older_than=timedelta(0)) == 0
    after = reload(payment)
    assert (after.status, after.updated_at, after.ledger_transaction_id) == (
        first.status,
        first.updated_at,
        first.ledger_transaction_id,
    )
    assert balance(user) == 500_000
    assert len(timeline(payment)) == 3


def test_reconcile_then_late_webhook_credits_once(user):
    payment = opened(user)
    signed = settle(payment, SUCCEEDED)
    with time_machine.travel(utcnow() + RECONCILE_AFTER + timedelta(minutes=1)):
        assert reconcile_payments() == 1
    assert deliver(signed).status == "processed"
    assert balance(user) == 500_000
    assert [change[2] for change in timeline(payment)] == ["api", "api", "reconcile"]


def test_reconcile_provider_down_leaves_payment_processing(user, monkeypatch):
    payment = opened(user)
    settle(payment, SUCCEEDED)

    def down(**kwargs):
        raise ProviderUnavailable(provider="mock")

    monkeypatch.setattr(mock(), "fetch_payment", down)
    with time_machine.travel(utcnow() + RECONCILE_AFTER + timedelta(minutes=1)):
        assert reconcile_payments() == 0
    assert reload(payment).status == PaymentStatus.PROCESSING
    assert balance(user) == 0
    monkeypatch.undo()
    with time_machine.travel(utcnow() + RECONCILE_AFTER + timedelta(minutes=1)):
        assert reconcile_payments() == 1
    assert balance(user) == 500_000


def test_reconcile_concurrent_runs_credit_once(user):
    stuck = [opened(user, amount_minor=10_000 * (i + 1)) for i in range(5)]
    for payment in stuck:
        settle(payment, SUCCEEDED)
    with time_machine.travel(utcnow() + RECONCILE_AFTER + timedelta(minutes=1)):
        results = run_at_once(4, reconcile_payments)
    assert all(isinstance(result, int) for result in results), results
    assert balance(user) == sum(p.amount_minor for p in stuck)
    assert all(reload(p).status == PaymentStatus.SUCCEEDED for p in stuck)
    assert all(len(timeline(p)) == 3 for p in stuck)


def test_schedule_reconciliation_books_one_job_per_slot(engine):
    with time_machine.travel(datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC), tick=False):
        in_transaction(schedule_reconciliation)
        in_transaction(schedule_reconciliation)
    assert count(Job, Job.kind == "payments.reconcile") == 1
    with time_machine.travel(datetime(2030, 1, 1, 12, 6, tzinfo=UTC), tick=False):
        in_transaction(schedule_reconciliation)
    assert count(Job, Job.kind == "payments.reconcile") == 2


def test_the_reconcile_job_runs_through_the_job_runner_on_every_backend(engine):
    # On SQLite the job's transaction held the write lock while reconciliation opened its own: the
    # job waited out the busy timeout and died, and every writer in the app stalled meanwhile.
    in_transaction(schedule_reconciliation)
    with time_machine.travel(utcnow() + timedelta(minutes=6), tick=True):
        began = time.monotonic()
        run_due_jobs(worker_id="test")
        elapsed = time.monotonic() - began
    assert count(Job, Job.kind == "payments.reconcile", Job.status == JobStatus.SUCCEEDED) == 1
    assert elapsed < 10


# --- reading ------------------------------------------------------------------------------------------


def test_get_payment_other_users_not_found(user, other):
    payment = new_payment(user)
    with unit_of_work() as session:
        assert get_payment(session=session, actor=user, payment_id=payment.id).id == payment.id
        with pytest.raises(DomainError) as caught:
            get_payment(session=session, actor=other, payment_id=payment.id)
    assert caught.value.code == "not_found"


def test_list_own_payments_only_own_newest_first(user, other):
    start = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    mine = []
    for minutes in range(3):
        with time_machine.travel(start + timedelta(minutes=minutes), tick=False):
            mine.append(new_payment(user, amount_minor=1_000 + minutes))
    new_payment(other)
    with unit_of_work() as session:
        listed = list_own_payments(session=session, actor=user)
        second_page = list_own_payments(session=session, actor=user, page=2, page_size=2)
    assert [p.id for p in listed] == [p.id for p in reversed(mine)]
    assert [p.id for p in second_page] == [mine[0].id]
