"""The Stripe adapter: the real SDK against a fake Stripe API on loopback, and Stripe's signature scheme."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import parse_qs

import pytest
import stripe

from paytime_app.money import Currency, Money
from paytime_app.services.providers.base import (
    ProviderPaymentStatus,
    ProviderRefused,
    ProviderUnavailable,
    WebhookRejected,
)
from paytime_app.services.providers.stripe_provider import StripeProvider
from tests.fake_payment_providers import STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET
from tests.services.providers.builders import checkout_request, naira


@pytest.fixture
def provider(fake_providers, quick_policy) -> StripeProvider:
    return StripeProvider(
        secret_key=STRIPE_SECRET_KEY,
        webhook_secret=STRIPE_WEBHOOK_SECRET,
        api_base=fake_providers.base_url,
        policy=quick_policy,
    )


def _form(body: bytes) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(body.decode()).items()}


def test_create_checkout_minor_units_lowercase_currency_and_reference(provider, fake_providers):
    session = provider.create_checkout(checkout_request(amount_minor=125_050, currency=Currency.NGN))
    assert session.provider_reference.startswith("cs_test_")
    assert session.checkout_url.endswith(f"/stripe-checkout/{session.provider_reference}")
    (request,) = fake_providers.requests
    assert request.headers["authorization"] == f"Bearer {STRIPE_SECRET_KEY}"
    assert request.headers["idempotency-key"] == "intent-PAY-TEST0001"
    form = _form(request.body)
    assert form["line_items[0][price_data][unit_amount]"] == "125050"
    assert form["line_items[0][price_data][currency]"] == "ngn"
    assert form["metadata[reference]"] == "PAY-TEST0001"
    assert form["client_reference_id"] == "PAY-TEST0001"
    assert form["payment_intent_data[metadata][reference]"] == "PAY-TEST0001"
    assert form["success_url"] == "http://localhost:3000/payments/return?session_id={CHECKOUT_SESSION_ID}"
    assert form["cancel_url"] == "http://localhost:3000/payments/return?cancelled=1"


def test_create_checkout_5xx_retried_with_same_idempotency_key(provider, fake_providers, sleeps):
    fake_providers.fail("stripe.create", times=2)
    session = provider.create_checkout(checkout_request())
    assert fake_providers.count("stripe.create") == 3
    assert {r.headers["idempotency-key"] for r in fake_providers.requests} == {"intent-PAY-TEST0001"}
    assert list(fake_providers.stripe_sessions) == [session.provider_reference]
    assert len(sleeps) == 2


def test_create_checkout_lost_response_retried_creates_one_session(fake_providers, quick_policy):
    fake_providers.hang("stripe.create")
    fake_providers.hang_seconds = 1.0
    provider = StripeProvider(
        secret_key=STRIPE_SECRET_KEY,
        webhook_secret=STRIPE_WEBHOOK_SECRET,
        api_base=fake_providers.base_url,
        timeout=(0.5, 0.3),
        policy=quick_policy,
    )
    session = provider.create_checkout(checkout_request())
    assert fake_providers.count("stripe.create") == 2
    assert list(fake_providers.stripe_sessions) == [session.provider_reference]


def test_create_checkout_persistent_5xx_unavailable(provider, fake_providers):
    fake_providers.fail("stripe.create", times=10)
    with pytest.raises(ProviderUnavailable):
        provider.create_checkout(checkout_request())
    assert fake_providers.count("stripe.create") == 3
    assert fake_providers.stripe_sessions == {}


def test_create_checkout_bad_key_refused_without_retry(fake_providers, quick_policy):
    provider = StripeProvider(
        secret_key="sk_test_wrong", webhook_secret="whsec_x", api_base=fake_providers.base_url, policy=quick_policy
    )
    with pytest.raises(ProviderRefused) as caught:
        provider.create_checkout(checkout_request())
    assert caught.value.details["status"] == 401
    assert fake_providers.count("stripe.create") == 1


def test_create_checkout_same_key_other_payload_refused(provider, fake_providers):
    provider.create_checkout(checkout_request(amount_minor=100, idempotency_key="intent-x"))
    with pytest.raises(ProviderRefused):
        provider.create_checkout(checkout_request(amount_minor=999, idempotency_key="intent-x"))
    assert len(fake_providers.stripe_sessions) == 1


def test_circuit_opens_after_repeated_failures_fails_fast(provider, fake_providers):
    fake_providers.fail("stripe.create", times=100)
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            provider.create_checkout(checkout_request())
    assert fake_providers.count("stripe.create") == 5
    with pytest.raises(ProviderUnavailable) as caught:
        provider.fetch_payment(provider_reference="cs_test_x", reference="PAY-TEST0001", expected=naira())
    assert caught.value.details["reason"] == "circuit_open"
    assert len(fake_providers.requests) == 5


@pytest.mark.parametrize(
    ("status", "payment_status", "expected_status"),
    [
        ("open", "unpaid", ProviderPaymentStatus.PENDING),
        ("complete", "paid", ProviderPaymentStatus.SUCCEEDED),
        ("complete", "unpaid", ProviderPaymentStatus.PROCESSING),
        ("complete", "no_payment_required", ProviderPaymentStatus.PROCESSING),
        ("expired", "unpaid", ProviderPaymentStatus.CANCELLED),
    ],
)
def test_fetch_payment_session_state_mapped(provider, fake_providers, status, payment_status, expected_status):
    session = provider.create_checkout(checkout_request())
    fake_providers.stripe_complete(session.provider_reference, status=status, payment_status=payment_status)
    payment = provider.fetch_payment(
        provider_reference=session.provider_reference, reference="PAY-TEST0001", expected=naira()
    )
    assert payment.status is expected_status
    assert (payment.reference, payment.amount_minor, payment.currency) == ("PAY-TEST0001", 125_050, Currency.NGN)


def test_fetch_payment_paid_other_amount_failed(provider, fake_providers):
    session = provider.create_checkout(checkout_request(amount_minor=100))
    fake_providers.stripe_complete(session.provider_reference)
    payment = provider.fetch_payment(
        provider_reference=session.provider_reference, reference="PAY-TEST0001", expected=Money(10_000, Currency.NGN)
    )
    assert payment.status is ProviderPaymentStatus.FAILED
    assert payment.failure_reason == "amount_mismatch"


def test_fetch_payment_unknown_session_refused(provider):
    with pytest.raises(ProviderRefused):
        provider.fetch_payment(provider_reference="cs_test_missing", reference="PAY-1", expected=naira())


# -- webhooks ---------------------------------------------------------------------------------------


def _stripe_header(payload: bytes, timestamp: int, secret: str = STRIPE_WEBHOOK_SECRET) -> str:
    """Stripe's documented scheme, computed here without the SDK: v1 = HMAC-SHA256(secret, "t.payload")."""
    signature = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={signature}"


def _event(event_type: str, obj: dict) -> bytes:
    return json.dumps(
        {
            "id": "evt_1PayTime",
            "object": "event",
            "api_version": "2025-01-27.acacia",
            "created": 1_750_000_000,
            "type": event_type,
            "data": {"object": obj},
        },
        indent=2,
    ).encode()


def _session(**overrides) -> dict:
    return {
        "id": "cs_test_a1",
        "object": "checkout.session",
        "status": "complete",
        "payment_status": "paid",
        "amount_total": 125_050,
        "currency": "ngn",
        "client_reference_id": "PAY-TEST0001",
        "metadata": {"reference": "PAY-TEST0001"},
        **overrides,
    }


def test_stripe_sdk_signature_equals_independent_hmac():
    payload = _event("checkout.session.completed", _session()).decode()
    sdk = stripe.WebhookSignature.generate_signature_header(payload, STRIPE_WEBHOOK_SECRET, timestamp=1_750_000_000)
    assert sdk == _stripe_header(payload.encode(), 1_750_000_000)


def test_parse_webhook_independently_signed_event_accepted(provider):
    body = _event("checkout.session.completed", _session())
    event = provider.parse_webhook(headers={"Stripe-Signature": _stripe_header(body, int(time.time()))}, raw_body=body)
    assert (event.event_id, event.event_type) == ("evt_1PayTime", "checkout.session.completed")
    assert event.payment.status is ProviderPaymentStatus.SUCCEEDED
    assert (event.payment.provider_reference, event.payment.reference) == ("cs_test_a1", "PAY-TEST0001")
    assert (event.payment.amount_minor, event.payment.currency) == (125_050, Currency.NGN)


@pytest.mark.parametrize(
    ("event_type", "obj", "status", "reason"),
    [
        ("checkout.session.completed", _session(), ProviderPaymentStatus.SUCCEEDED, None),
        ("checkout.session.completed", _session(payment_status="unpaid"), ProviderPaymentStatus.PROCESSING, None),
        ("checkout.session.async_payment_succeeded", _session(), ProviderPaymentStatus.SUCCEEDED, None),
        (
            "checkout.session.async_payment_failed",
            _session(payment_status="unpaid"),
            ProviderPaymentStatus.FAILED,
            "async_payment_failed",
        ),
        (
            "checkout.session.expired",
            _session(status="expired", payment_status="unpaid"),
            ProviderPaymentStatus.CANCELLED,
            "expired",
        ),
        (
            "payment_intent.payment_failed",
            {
                "id": "pi_1",
                "object": "payment_intent",
                "amount": 125_050,
                "currency": "ngn",
                "metadata": {"reference": "PAY-TEST0001"},
                "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"},
            },
            ProviderPaymentStatus.PROCESSING,
            "insufficient_funds",
        ),
    ],
)
def test_parse_webhook_event_mapped(provider, event_type, obj, status, reason):
    body = _event(event_type, obj)
    event = provider.parse_webhook(headers={"stripe-signature": _stripe_header(body, int(time.time()))}, raw_body=body)
    assert event.payment.status is status
    assert event.payment.failure_reason == reason
    assert event.payment.reference == "PAY-TEST0001"


def test_parse_webhook_unrelated_event_no_payment(provider):
    body = _event("customer.created", {"id": "cus_1", "object": "customer"})
    event = provider.parse_webhook(headers={"stripe-signature": _stripe_header(body, int(time.time()))}, raw_body=body)
    assert event.payment is None
    assert event.event_type == "customer.created"


@pytest.mark.parametrize("offset", [-301, 301, -86_400])
def test_parse_webhook_old_or_future_timestamp_rejected(provider, offset):
    body = _event("checkout.session.completed", _session())
    signed_at = int(time.time())
    # Our own check (future timestamps) reads a clock stopped when the header was signed: on a busy
    # machine a second could pass before it runs, and 301 s ahead would then be 300 s, accepted.
    provider.clock = lambda: signed_at
    header = _stripe_header(body, signed_at + offset)
    with pytest.raises(WebhookRejected):
        provider.parse_webhook(headers={"stripe-signature": header}, raw_body=body)


def test_parse_webhook_tampered_body_rejected(provider):
    body = _event("checkout.session.completed", _session())
    header = _stripe_header(body, int(time.time()))
    tampered = body.replace(b"125050", b"999999")
    with pytest.raises(WebhookRejected) as caught:
        provider.parse_webhook(headers={"stripe-signature": header}, raw_body=tampered)
    assert caught.value.details["reason"] == "bad_signature"


@pytest.mark.parametrize("header", [None, "", "t=abc", "v1=00", "garbage"])
def test_parse_webhook_missing_or_malformed_header_rejected(provider, header):
    body = _event("checkout.session.completed", _session())
    headers = {} if header is None else {"stripe-signature": header}
    with pytest.raises(WebhookRejected):
        provider.parse_webhook(headers=headers, raw_body=body)


def test_parse_webhook_other_secret_rejected(provider):
    body = _event("checkout.session.completed", _session())
    header = _stripe_header(body, int(time.time()), secret="whsec_someone_else")
    with pytest.raises(WebhookRejected):
        provider.parse_webhook(headers={"stripe-signature": header}, raw_body=body)
