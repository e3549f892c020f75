"""The Flutterwave adapter: hosted link, verif-hash webhooks that are only hints, verification before credit."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from paytime_app.money import Currency, Money
from paytime_app.services.providers.base import (
    ProviderPaymentStatus,
    ProviderRefused,
    ProviderUnavailable,
    WebhookRejected,
)
from paytime_app.services.providers.flutterwave import FlutterwaveProvider
from tests.fake_payment_providers import FLUTTERWAVE_SECRET_HASH, FLUTTERWAVE_SECRET_KEY
from tests.services.providers.builders import checkout_request, naira


@pytest.fixture
def provider(fake_providers, quick_policy) -> FlutterwaveProvider:
    return FlutterwaveProvider(
        secret_key=FLUTTERWAVE_SECRET_KEY,
        secret_hash=FLUTTERWAVE_SECRET_HASH,
        base_url=fake_providers.base_url,
        policy=quick_policy,
    )


def _webhook(transaction_id: int, *, tx_ref: str = "PAY-TEST0001", status: str = "successful") -> bytes:
    """The shape of Flutterwave's charge.completed webhook."""
    return (
        f'{{"event":"charge.completed","data":{{"id":{transaction_id},"tx_ref":"{tx_ref}","flw_ref":"FLW-MOCK-1",'
        f'"amount":1250.5,"charged_amount":1250.5,"currency":"NGN","status":"{status}",'
        f'"customer":{{"email":"ada@example.com"}}}}}}'
    ).encode()


def test_create_checkout_hosted_link_for_our_reference(provider, fake_providers):
    session = provider.create_checkout(checkout_request(amount_minor=125_050))
    assert session.provider_reference == "PAY-TEST0001"
    assert "/flutterwave-checkout/" in session.checkout_url
    (request,) = fake_providers.requests
    assert request.headers["authorization"] == f"Bearer {FLUTTERWAVE_SECRET_KEY}"
    sent = json.loads(request.body, parse_float=Decimal)
    assert sent["amount"] == Decimal("1250.50")
    assert (sent["tx_ref"], sent["currency"]) == ("PAY-TEST0001", "NGN")
    assert sent["redirect_url"] == "http://localhost:3000/payments/return"
    assert sent["customer"]["email"] == "ada@example.com"


def test_create_checkout_bad_key_refused(fake_providers, quick_policy):
    provider = FlutterwaveProvider(
        secret_key="FLWSECK_TEST-wrong", secret_hash="h", base_url=fake_providers.base_url, policy=quick_policy
    )
    with pytest.raises(ProviderRefused):
        provider.create_checkout(checkout_request())
    assert fake_providers.count("flutterwave.payments") == 1


def test_parse_webhook_right_hash_accepted_but_never_final(provider):
    body = _webhook(4_000_001)
    event = provider.parse_webhook(headers={"verif-hash": FLUTTERWAVE_SECRET_HASH}, raw_body=body)
    assert provider.webhook_needs_fetch is True
    assert event.event_type == "charge.completed"
    assert event.event_id == "charge.completed:4000001:successful"
    # The webhook claims success, but only verification may say so.
    assert event.payment.status is ProviderPaymentStatus.PROCESSING
    assert event.payment.provider_reference == "4000001"
    assert (event.payment.reference, event.payment.amount_minor) == ("PAY-TEST0001", 125_050)


@pytest.mark.parametrize("headers", [{}, {"verif-hash": ""}, {"verif-hash": "wrong"}, {"verif-hash": "fake-paytime"}])
def test_parse_webhook_missing_or_wrong_hash_rejected(provider, headers):
    with pytest.raises(WebhookRejected):
        provider.parse_webhook(headers=headers, raw_body=_webhook(1))


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"event":"charge.completed"}', b'{"data":{"id":1}}'])
def test_parse_webhook_malformed_body_rejected(provider, body):
    with pytest.raises(WebhookRejected) as caught:
        provider.parse_webhook(headers={"verif-hash": FLUTTERWAVE_SECRET_HASH}, raw_body=body)
    assert caught.value.details["reason"] == "malformed_body"


def test_webhook_then_verify_matching_transaction_succeeded(provider, fake_providers):
    provider.create_checkout(checkout_request())
    transaction_id = fake_providers.flutterwave_pay("PAY-TEST0001")
    event = provider.parse_webhook(headers={"verif-hash": FLUTTERWAVE_SECRET_HASH}, raw_body=_webhook(transaction_id))
    payment = provider.fetch_payment(
        provider_reference=event.payment.provider_reference, reference="PAY-TEST0001", expected=naira()
    )
    assert payment.status is ProviderPaymentStatus.SUCCEEDED
    assert (payment.amount_minor, payment.currency, payment.reference) == (125_050, Currency.NGN, "PAY-TEST0001")
    assert fake_providers.count("flutterwave.verify") == 1


@pytest.mark.parametrize(
    ("paid", "reason"),
    [
        ({"amount": Decimal("1250.49")}, "amount_mismatch"),
        ({"amount": Decimal("12.5050")}, "amount_mismatch"),
        ({"amount": Decimal("1250.505")}, "amount_mismatch"),
        ({"currency": "USD"}, "currency_mismatch"),
        ({"reported_tx_ref": "PAY-SOMEONE-ELSE"}, "reference_mismatch"),
    ],
)
def test_fetch_payment_mismatch_never_succeeded(provider, fake_providers, paid, reason):
    provider.create_checkout(checkout_request())
    transaction_id = fake_providers.flutterwave_pay("PAY-TEST0001", **paid)
    payment = provider.fetch_payment(provider_reference=str(transaction_id), reference="PAY-TEST0001", expected=naira())
    assert payment.status is ProviderPaymentStatus.FAILED
    assert payment.failure_reason == reason


def test_fetch_payment_cheaper_checkout_replayed_failed(provider, fake_providers):
    """A payer who pays a ₦1 link with our reference, then sends its webhook, is not credited ₦1,250.50."""
    provider.create_checkout(checkout_request(amount_minor=100))
    transaction_id = fake_providers.flutterwave_pay("PAY-TEST0001")
    payment = provider.fetch_payment(
        provider_reference=str(transaction_id), reference="PAY-TEST0001", expected=Money(125_050, Currency.NGN)
    )
    assert payment.status is ProviderPaymentStatus.FAILED


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("failed", ProviderPaymentStatus.FAILED),
        ("pending", ProviderPaymentStatus.PROCESSING),
        ("cancelled", ProviderPaymentStatus.CANCELLED),
        ("reversed?", ProviderPaymentStatus.PROCESSING),
    ],
)
def test_fetch_payment_unsuccessful_status_mapped(provider, fake_providers, status, expected):
    provider.create_checkout(checkout_request())
    transaction_id = fake_providers.flutterwave_pay("PAY-TEST0001", status=status)
    payment = provider.fetch_payment(provider_reference=str(transaction_id), reference="PAY-TEST0001", expected=naira())
    assert payment.status is expected


def test_fetch_payment_by_reference_before_payment_pending(provider, fake_providers):
    session = provider.create_checkout(checkout_request())
    payment = provider.fetch_payment(
        provider_reference=session.provider_reference, reference="PAY-TEST0001", expected=naira()
    )
    assert payment.status is ProviderPaymentStatus.PENDING
    assert fake_providers.count("flutterwave.verify_by_reference") == 1


def test_fetch_payment_by_reference_after_payment_succeeded(provider, fake_providers):
    session = provider.create_checkout(checkout_request())
    fake_providers.flutterwave_pay("PAY-TEST0001")
    payment = provider.fetch_payment(
        provider_reference=session.provider_reference, reference="PAY-TEST0001", expected=naira()
    )
    assert payment.status is ProviderPaymentStatus.SUCCEEDED


def test_fetch_payment_unknown_id_pending(provider):
    payment = provider.fetch_payment(provider_reference="999", reference="PAY-TEST0001", expected=naira())
    assert payment.status is ProviderPaymentStatus.PENDING


def test_fetch_payment_5xx_retried_then_succeeds(provider, fake_providers, sleeps):
    provider.create_checkout(checkout_request())
    transaction_id = fake_providers.flutterwave_pay("PAY-TEST0001")
    fake_providers.fail("flutterwave.verify", times=2, status=503)
    payment = provider.fetch_payment(provider_reference=str(transaction_id), reference="PAY-TEST0001", expected=naira())
    assert payment.status is ProviderPaymentStatus.SUCCEEDED
    assert fake_providers.count("flutterwave.verify") == 3
    assert len(sleeps) == 2


def test_fetch_payment_timeouts_unavailable_never_succeeded(fake_providers, quick_policy):
    fake_providers.hang_seconds = 0.6
    fake_providers.hang("flutterwave.verify", times=3)
    provider = FlutterwaveProvider(
        secret_key=FLUTTERWAVE_SECRET_KEY,
        secret_hash=FLUTTERWAVE_SECRET_HASH,
        base_url=fake_providers.base_url,
        timeout=httpx.Timeout(0.2),
        policy=quick_policy,
    )
    fake_providers.flutterwave_links["PAY-TEST0001"] = {"amount": Decimal("1250.50"), "currency": "NGN", "customer": {}}
    transaction_id = fake_providers.flutterwave_pay("PAY-TEST0001")
    with pytest.raises(ProviderUnavailable):
        provider.fetch_payment(provider_reference=str(transaction_id), reference="PAY-TEST0001", expected=naira())
    assert fake_providers.count("flutterwave.verify") == 3


def test_circuit_open_fails_fast_without_request(provider, fake_providers):
    fake_providers.fail("flutterwave.payments", times=100)
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            provider.create_checkout(checkout_request())
    count = len(fake_providers.requests)
    with pytest.raises(ProviderUnavailable):
        provider.fetch_payment(provider_reference="1", reference="PAY-TEST0001", expected=naira())
    assert len(fake_providers.requests) == count == 5
