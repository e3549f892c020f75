"""`refund` on every adapter: against the fake provider APIs (and the mock's own stores), once per key,
never beyond what was paid."""

from __future__ import annotations

import uuid
from decimal import Decimal
from urllib.parse import parse_qs

import pytest

from paytime_app.money import Currency
from paytime_app.services.providers.base import (
    ProviderPaymentStatus,
    ProviderRefundStatus,
    ProviderRefused,
    ProviderUnavailable,
    RefundRequest,
)
from paytime_app.services.providers.flutterwave import FlutterwaveProvider
from paytime_app.services.providers.mock import MemoryMockStore, MockProvider, RedisMockStore
from paytime_app.services.providers.monnify import MonnifyProvider
from paytime_app.services.providers.stripe_provider import StripeProvider
from tests.fake_payment_providers import (
    FLUTTERWAVE_SECRET_HASH,
    FLUTTERWAVE_SECRET_KEY,
    MONNIFY_API_KEY,
    MONNIFY_CONTRACT_CODE,
    MONNIFY_SECRET_KEY,
    STRIPE_SECRET_KEY,
    STRIPE_WEBHOOK_SECRET,
)
from tests.services.providers.builders import checkout_request
from tests.services.providers.test_mock import redis_settings  # noqa: F401  fixture


def refund_request(provider_reference: str, amount_minor: int, key: str = "refund-1", **kw) -> RefundRequest:
    return RefundRequest(
        provider_reference=provider_reference,
        reference=kw.get("reference", "PAY-TEST0001"),
        refund_reference=f"RF-{key}",
        amount_minor=amount_minor,
        currency=kw.get("currency", Currency.NGN),
        reason="customer asked",
        idempotency_key=key,
    )


# --- mock -------------------------------------------------------------------------------------------


def _paid_mock(store) -> tuple[MockProvider, str]:
    mock = MockProvider(webhook_secret="s" * 32, base_url="http://x", store=store)
    session = mock.create_checkout(checkout_request(reference=f"PAY-{uuid.uuid4().hex[:10]}", amount_minor=10_000))
    mock.settle_checkout(provider_reference=session.provider_reference, outcome=ProviderPaymentStatus.SUCCEEDED)
    return mock, session.provider_reference


def test_mock_refund_partial_then_rest_then_nothing_left():
    mock, reference = _paid_mock(MemoryMockStore())
    first = mock.refund(refund_request(reference, 4_000, "k1"))
    assert first.status is ProviderRefundStatus.SUCCEEDED
    mock.refund(refund_request(reference, 6_000, "k2"))
    with pytest.raises(ProviderRefused):
        mock.refund(refund_request(reference, 1, "k3"))


def test_mock_refund_same_key_refunds_once():
    mock, reference = _paid_mock(MemoryMockStore())
    first = mock.refund(refund_request(reference, 10_000, "same"))
    again = mock.refund(refund_request(reference, 10_000, "same"))
    assert again.provider_refund_reference == first.provider_refund_reference


def test_mock_refund_of_unpaid_checkout_refused():
    mock = MockProvider(webhook_secret="s" * 32, base_url="http://x", store=MemoryMockStore())
    session = mock.create_checkout(checkout_request())
    with pytest.raises(ProviderRefused):
        mock.refund(refund_request(session.provider_reference, 100))


def test_mock_refund_with_redis_store_is_bounded_and_keyed(redis_settings):  # noqa: F811  fixture
    mock, reference = _paid_mock(RedisMockStore(redis_settings))
    first = mock.refund(refund_request(reference, 7_000, f"r-{reference}-1"))
    assert mock.refund(refund_request(reference, 7_000, f"r-{reference}-1")) == first
    with pytest.raises(ProviderRefused):
        mock.refund(refund_request(reference, 3_001, f"r-{reference}-2"))
    mock.refund(refund_request(reference, 3_000, f"r-{reference}-3"))


# --- stripe -----------------------------------------------------------------------------------------


@pytest.fixture
def stripe_provider(fake_providers, quick_policy) -> StripeProvider:
    return StripeProvider(
        secret_key=STRIPE_SECRET_KEY,
        webhook_secret=STRIPE_WEBHOOK_SECRET,
        api_base=fake_providers.base_url,
        policy=quick_policy,
    )


def test_stripe_refund_uses_payment_intent_amount_and_idempotency_key(stripe_provider, fake_providers):
    session = stripe_provider.create_checkout(checkout_request(amount_minor=50_000))
    fake_providers.stripe_complete(session.provider_reference)
    refund = stripe_provider.refund(refund_request(session.provider_reference, 20_000, "paytime:refund:1"))
    assert refund.status is ProviderRefundStatus.SUCCEEDED
    (sent,) = [r for r in fake_providers.requests if r.route == "stripe.refund"]
    form = {name: values[0] for name, values in parse_qs(sent.body.decode()).items()}
    assert form["amount"] == "20000"
    assert form["payment_intent"] == fake_providers.stripe_sessions[session.provider_reference]["payment_intent"]
    assert sent.headers["idempotency-key"] == "paytime:refund:1"


def test_stripe_refund_retried_after_5xx_refunds_once(stripe_provider, fake_providers):
    session = stripe_provider.create_checkout(checkout_request(amount_minor=50_000))
    fake_providers.stripe_complete(session.provider_reference)
    fake_providers.fail("stripe.refund", times=2)
    stripe_provider.refund(refund_request(session.provider_reference, 50_000, "paytime:refund:2"))
    assert fake_providers.count("stripe.refund") == 3
    assert len(fake_providers.stripe_refunds) == 1


def test_stripe_refund_beyond_amount_refused(stripe_provider, fake_providers):
    session = stripe_provider.create_checkout(checkout_request(amount_minor=50_000))
    fake_providers.stripe_complete(session.provider_reference)
    with pytest.raises(ProviderRefused):
        stripe_provider.refund(refund_request(session.provider_reference, 50_001))


def test_stripe_refund_of_unpaid_session_refused(stripe_provider):
    session = stripe_provider.create_checkout(checkout_request())
    with pytest.raises(ProviderRefused):
        stripe_provider.refund(refund_request(session.provider_reference, 100))


# --- monnify ----------------------------------------------------------------------------------------


@pytest.fixture
def monnify_provider(fake_providers, quick_policy) -> MonnifyProvider:
    return MonnifyProvider(
        api_key=MONNIFY_API_KEY,
        secret_key=MONNIFY_SECRET_KEY,
        contract_code=MONNIFY_CONTRACT_CODE,
        base_url=fake_providers.base_url,
        policy=quick_policy,
    )


def test_monnify_refund_sends_major_units_and_our_reference(monnify_provider, fake_providers):
    session = monnify_provider.create_checkout(checkout_request(amount_minor=125_050))
    fake_providers.monnify_settle(session.provider_reference)
    refund = monnify_provider.refund(refund_request(session.provider_reference, 25_050, "k-m1"))
    assert refund.status is ProviderRefundStatus.SUCCEEDED
    assert fake_providers.monnify_refunds["RF-k-m1"]["refundAmount"] == "250.50"


def test_monnify_refund_retry_after_lost_answer_finds_the_first(monnify_provider, fake_providers):
    session = monnify_provider.create_checkout(checkout_request(amount_minor=125_050))
    fake_providers.monnify_settle(session.provider_reference)
    monnify_provider.refund(refund_request(session.provider_reference, 10_000, "k-m2"))
    again = monnify_provider.refund(refund_request(session.provider_reference, 10_000, "k-m2"))
    assert again.provider_refund_reference == "RF-k-m2"
    assert len(fake_providers.monnify_refunds) == 1


def test_monnify_refund_beyond_amount_refused(monnify_provider, fake_providers):
    session = monnify_provider.create_checkout(checkout_request(amount_minor=10_000))
    fake_providers.monnify_settle(session.provider_reference)
    with pytest.raises(ProviderRefused):
        monnify_provider.refund(refund_request(session.provider_reference, 10_001, "k-m3"))


# --- flutterwave ------------------------------------------------------------------------------------


@pytest.fixture
def flutterwave_provider(fake_providers, quick_policy) -> FlutterwaveProvider:
    return FlutterwaveProvider(
        secret_key=FLUTTERWAVE_SECRET_KEY,
        secret_hash=FLUTTERWAVE_SECRET_HASH,
        base_url=fake_providers.base_url,
        policy=quick_policy,
    )


def test_flutterwave_refund_finds_transaction_and_refunds_major_units(flutterwave_provider, fake_providers):
    flutterwave_provider.create_checkout(checkout_request(amount_minor=125_050))
    transaction_id = fake_providers.flutterwave_pay("PAY-TEST0001")
    refund = flutterwave_provider.refund(refund_request("PAY-TEST0001", 50_000))
    assert refund.status is ProviderRefundStatus.SUCCEEDED
    (recorded,) = fake_providers.flutterwave_refunds
    assert recorded["transaction_id"] == transaction_id
    assert recorded["amount"] == Decimal("500")


def test_flutterwave_refund_not_retried_once_sent(flutterwave_provider, fake_providers):
    flutterwave_provider.create_checkout(checkout_request(amount_minor=125_050))
    fake_providers.flutterwave_pay("PAY-TEST0001")
    fake_providers.fail("flutterwave.refund", times=1)
    with pytest.raises(ProviderUnavailable):
        flutterwave_provider.refund(refund_request("PAY-TEST0001", 50_000))
    assert fake_providers.count("flutterwave.refund") == 1


def test_flutterwave_refund_of_unpaid_link_refused(flutterwave_provider):
    flutterwave_provider.create_checkout(checkout_request(amount_minor=125_050))
    with pytest.raises(ProviderRefused):
        flutterwave_provider.refund(refund_request("PAY-TEST0001", 100))
