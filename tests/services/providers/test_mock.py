"""The mock provider: hosted checkout record, Stripe-style signed webhooks, status from its own store."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import uuid

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from paytime_app.errors import NotFound
from paytime_app.money import Currency, Money
from paytime_app.redis_client import get_redis
from paytime_app.services.providers.base import ProviderPaymentStatus, ProviderUnavailable, WebhookRejected
from paytime_app.services.providers.mock import MemoryMockStore, MockProvider, RedisMockStore
from paytime_app.settings import get_settings
from tests.services.providers.builders import checkout_request, naira

SECRET = "test-mock-webhook-secret"
NOW = 1_750_000_000
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


@pytest.fixture
def mock() -> MockProvider:
    return MockProvider(
        webhook_secret=SECRET, base_url="http://localhost:3000/", store=MemoryMockStore(), clock=lambda: NOW
    )


def test_create_checkout_returns_mock_reference_and_page_url(mock):
    session = mock.create_checkout(checkout_request())
    assert session.provider_reference.startswith("mock_")
    assert session.checkout_url == f"http://localhost:3000/pay/mock/{session.provider_reference}"
    checkout = mock.get_checkout(session.provider_reference)
    assert (checkout.reference, checkout.amount_minor, checkout.currency) == ("PAY-TEST0001", 125_050, Currency.NGN)
    assert checkout.status is ProviderPaymentStatus.PENDING


def test_create_checkout_same_idempotency_key_returns_same_checkout(mock):
    first = mock.create_checkout(checkout_request(idempotency_key="intent-1"))
    again = mock.create_checkout(checkout_request(idempotency_key="intent-1"))
    other = mock.create_checkout(checkout_request(idempotency_key="intent-2"))
    assert again == first
    assert other.provider_reference != first.provider_reference


@pytest.mark.parametrize("outcome", [ProviderPaymentStatus.SUCCEEDED, ProviderPaymentStatus.FAILED])
def test_settle_checkout_webhook_verifies_and_carries_outcome(mock, outcome):
    session = mock.create_checkout(checkout_request())
    headers, body = mock.settle_checkout(provider_reference=session.provider_reference, outcome=outcome)
    event = mock.parse_webhook(headers=headers, raw_body=body)
    assert event.event_id == f"evt_{session.provider_reference}_{outcome.value}"
    assert event.event_type == f"payment.{outcome.value}"
    assert event.payment.status is outcome
    assert event.payment.reference == "PAY-TEST0001"
    assert event.payment.provider_reference == session.provider_reference
    assert (event.payment.amount_minor, event.payment.currency) == (125_050, Currency.NGN)


def test_settle_checkout_first_outcome_wins(mock):
    session = mock.create_checkout(checkout_request())
    mock.settle_checkout(provider_reference=session.provider_reference, outcome=ProviderPaymentStatus.FAILED)
    headers, body = mock.settle_checkout(
        provider_reference=session.provider_reference, outcome=ProviderPaymentStatus.SUCCEEDED
    )
    assert mock.parse_webhook(headers=headers, raw_body=body).payment.status is ProviderPaymentStatus.FAILED
    payment = mock.fetch_payment(
        provider_reference=session.provider_reference, reference="PAY-TEST0001", expected=naira()
    )
    assert payment.status is ProviderPaymentStatus.FAILED


def test_settle_checkout_unknown_reference_not_found(mock):
    with pytest.raises(NotFound):
        mock.settle_checkout(provider_reference="mock_nope", outcome=ProviderPaymentStatus.SUCCEEDED)


def test_settle_checkout_non_final_outcome_refused(mock):
    session = mock.create_checkout(checkout_request())
    with pytest.raises(ValueError, match="settles as"):
        mock.settle_checkout(provider_reference=session.provider_reference, outcome=ProviderPaymentStatus.PENDING)


def test_signed_webhook_signature_matches_independent_hmac(mock):
    headers, body = mock.signed_webhook(
        provider_reference="mock_abc",
        reference="PAY-1",
        outcome=ProviderPaymentStatus.SUCCEEDED,
        amount_minor=500,
        currency=Currency.USD,
    )
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers["paytime-mock-signature"] == f"t={NOW},v1={expected}"
    assert json.loads(body)["data"] == {
        "provider_reference": "mock_abc",
        "reference": "PAY-1",
        "status": "succeeded",
        "amount_minor": 500,
        "currency": "USD",
    }


def _signed(mock: MockProvider, *, timestamp: int = NOW) -> tuple[dict[str, str], bytes]:
    return mock.signed_webhook(
        provider_reference="mock_abc",
        reference="PAY-1",
        outcome=ProviderPaymentStatus.SUCCEEDED,
        amount_minor=500,
        currency=Currency.NGN,
        timestamp=timestamp,
    )


@pytest.mark.parametrize("offset", [-300, 300, 0])
def test_parse_webhook_within_five_minutes_accepted(mock, offset):
    headers, body = _signed(mock, timestamp=NOW + offset)
    assert mock.parse_webhook(headers=headers, raw_body=body).payment.status is ProviderPaymentStatus.SUCCEEDED


@pytest.mark.parametrize("offset", [-301, 301, -86_400])
def test_parse_webhook_old_or_future_timestamp_rejected(mock, offset):
    headers, body = _signed(mock, timestamp=NOW + offset)
    with pytest.raises(WebhookRejected) as caught:
        mock.parse_webhook(headers=headers, raw_body=body)
    assert caught.value.details["reason"] == "timestamp_out_of_tolerance"


def test_parse_webhook_replayed_with_fresh_timestamp_rejected(mock):
    """Re-stamping a captured body with a current timestamp breaks the signature, which covers t."""
    headers, body = _signed(mock, timestamp=NOW - 3600)
    old_signature = headers["paytime-mock-signature"].split(",")[1]
    with pytest.raises(WebhookRejected) as caught:
        mock.parse_webhook(headers={"paytime-mock-signature": f"t={NOW},{old_signature}"}, raw_body=body)
    assert caught.value.details["reason"] == "bad_signature"


def test_parse_webhook_tampered_body_rejected(mock):
    headers, body = _signed(mock)
    tampered = body.replace(b'"amount_minor":500', b'"amount_minor":500000')
    assert tampered != body
    with pytest.raises(WebhookRejected) as caught:
        mock.parse_webhook(headers=headers, raw_body=tampered)
    assert caught.value.code == "webhook_rejected"
    assert caught.value.details["reason"] == "bad_signature"


def test_parse_webhook_other_secret_rejected(mock):
    other = MockProvider(webhook_secret="another-secret", base_url="http://x", clock=lambda: NOW)
    headers, body = _signed(other)
    with pytest.raises(WebhookRejected):
        mock.parse_webhook(headers=headers, raw_body=body)


def test_parse_webhook_header_name_any_case_accepted(mock):
    headers, body = _signed(mock)
    shouted = {"Paytime-Mock-Signature": headers["paytime-mock-signature"]}
    assert mock.parse_webhook(headers=shouted, raw_body=body).payment.amount_minor == 500


def test_parse_webhook_second_signature_accepted_during_rotation(mock):
    headers, body = _signed(mock)
    header = headers["paytime-mock-signature"]
    rotated = header.replace("v1=", "v1=" + "0" * 64 + ",v1=")
    assert mock.parse_webhook(headers={"paytime-mock-signature": rotated}, raw_body=body).payment is not None


@pytest.mark.parametrize(
    "header",
    ["", "garbage", f"t={NOW}", "v1=abcd", f"t=abc,v1={'0' * 64}", f"t={NOW},t={NOW},v1={'0' * 64}", f"t=-{NOW},v1=0"],
)
def test_parse_webhook_malformed_or_missing_header_rejected(mock, header):
    _, body = _signed(mock)
    headers = {"paytime-mock-signature": header} if header else {}
    with pytest.raises(WebhookRejected):
        mock.parse_webhook(headers=headers, raw_body=body)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"id":"evt_1","type":"payment.succeeded"}',
        b'{"id":"e","type":"t","data":{"provider_reference":"m","reference":"r","status":"paid",'
        b'"amount_minor":1,"currency":"NGN"}}',
        b'{"id":"e","type":"t","data":{"provider_reference":"m","reference":"r","status":"succeeded",'
        b'"amount_minor":1.5,"currency":"NGN"}}',
        b'{"id":"e","type":"t","data":{"provider_reference":"m","reference":"r","status":"succeeded",'
        b'"amount_minor":100,"currency":"EUR"}}',
    ],
)
def test_parse_webhook_signed_but_malformed_body_rejected(mock, body):
    signature = hmac.new(SECRET.encode(), f"{NOW}.".encode() + body, hashlib.sha256).hexdigest()
    with pytest.raises(WebhookRejected) as caught:
        mock.parse_webhook(headers={"paytime-mock-signature": f"t={NOW},v1={signature}"}, raw_body=body)
    assert caught.value.details["reason"] == "malformed_body"


def test_fetch_payment_unknown_reference_processing(mock):
    payment = mock.fetch_payment(provider_reference="mock_unknown", reference="PAY-1", expected=naira())
    assert payment.status is ProviderPaymentStatus.PROCESSING


def test_fetch_payment_follows_checkout_outcome(mock):
    session = mock.create_checkout(checkout_request())
    fetch = {"provider_reference": session.provider_reference, "reference": "PAY-TEST0001", "expected": naira()}
    assert mock.fetch_payment(**fetch).status is ProviderPaymentStatus.PENDING
    mock.settle_checkout(provider_reference=session.provider_reference, outcome=ProviderPaymentStatus.SUCCEEDED)
    payment = mock.fetch_payment(**fetch)
    assert payment.status is ProviderPaymentStatus.SUCCEEDED
    assert payment.amount_minor == 125_050


@pytest.mark.parametrize(
    ("reference", "expected", "reason"),
    [
        ("PAY-TEST0001", Money(125_051, Currency.NGN), "amount_mismatch"),
        ("PAY-TEST0001", Money(125_050, Currency.USD), "currency_mismatch"),
        ("PAY-OTHER", Money(125_050, Currency.NGN), "reference_mismatch"),
    ],
)
def test_fetch_payment_paid_but_not_what_we_expect_failed(mock, reference, expected, reason):
    session = mock.create_checkout(checkout_request())
    mock.settle_checkout(provider_reference=session.provider_reference, outcome=ProviderPaymentStatus.SUCCEEDED)
    payment = mock.fetch_payment(provider_reference=session.provider_reference, reference=reference, expected=expected)
    assert payment.status is ProviderPaymentStatus.FAILED
    assert payment.failure_reason == reason


@pytest.fixture
def redis_settings(settings_env):
    settings_env.setenv("REDIS_URL", TEST_REDIS_URL)
    get_settings.cache_clear()
    get_redis.cache_clear()
    client = get_redis()
    try:
        client.ping()
    except redis.RedisError as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and Redis is not reachable at {TEST_REDIS_URL}: {error}", pytrace=False)
        pytest.skip(f"Redis is not reachable at {TEST_REDIS_URL}: {error}")
    yield client
    client.close()
    get_redis.cache_clear()


def test_from_settings_with_redis_shares_checkouts_across_instances(redis_settings):
    """Two workers: one creates the checkout, the other settles it, the first verifies it."""
    settings = get_settings()
    first, second = MockProvider.from_settings(settings), MockProvider.from_settings(settings)
    assert isinstance(first.store, RedisMockStore)
    reference = f"PAY-{uuid.uuid4().hex[:10]}"
    session = first.create_checkout(checkout_request(reference=reference))
    try:
        assert first.create_checkout(checkout_request(reference=reference)) == session
        headers, body = second.settle_checkout(
            provider_reference=session.provider_reference, outcome=ProviderPaymentStatus.SUCCEEDED
        )
        second.settle_checkout(provider_reference=session.provider_reference, outcome=ProviderPaymentStatus.FAILED)
        assert first.parse_webhook(headers=headers, raw_body=body).payment.status is ProviderPaymentStatus.SUCCEEDED
        payment = first.fetch_payment(
            provider_reference=session.provider_reference, reference=reference, expected=naira()
        )
        assert payment.status is ProviderPaymentStatus.SUCCEEDED
    finally:
        prefix = RedisMockStore.prefix
        redis_settings.delete(
            f"{prefix}checkout:{session.provider_reference}",
            f"{prefix}outcome:{session.provider_reference}",
            f"{prefix}key:intent-{reference}",
        )


def test_redis_store_down_unavailable_never_succeeded(quick_policy):
    broken = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    provider = MockProvider(
        webhook_secret=SECRET, base_url="http://x", store=RedisMockStore(broken), policy=quick_policy
    )
    with pytest.raises(ProviderUnavailable):
        provider.fetch_payment(provider_reference="mock_x", reference="PAY-1", expected=naira())
