"""The Monnify adapter against a fake Monnify API, and Monnify's published webhook hash."""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal

import httpx
import pytest

from paytime_app.money import Currency, Money, UnsupportedCurrency
from paytime_app.services.providers.base import (
    ProviderPaymentStatus,
    ProviderRefused,
    ProviderUnavailable,
    WebhookRejected,
)
from paytime_app.services.providers.monnify import MonnifyProvider
from tests.fake_payment_providers import MONNIFY_API_KEY, MONNIFY_CONTRACT_CODE, MONNIFY_SECRET_KEY
from tests.services.providers.builders import checkout_request, naira

# Monnify's documented sample ("Computing the transaction hash"): client secret, raw body and hash.
PUBLISHED_SECRET = "91MUDL9N6U3BQRXBQ2PJ9M0PW4J22M1Y"
PUBLISHED_BODY = (
    b'{"eventData":{"product":{"reference":"111222333","type":"OFFLINE_PAYMENT_AGENT"},'
    b'"transactionReference":"MNFY|76|20211117154810|000001","paymentReference":"0.01462001097368737",'
    b'"paidOn":"17/11/2021 3:48:10 PM","paymentDescription":"Mockaroo Jesse","metaData":{},'
    b'"destinationAccountInformation":{},"paymentSourceInformation":{},"amountPaid":78000,"totalPayable":78000,'
    b'"offlineProductInformation":{"code":"41470","type":"DYNAMIC"},"cardDetails":{},"paymentMethod":"CASH",'
    b'"currency":"NGN","settlementAmount":77600,"paymentStatus":"PAID","customer":{"name":"Mockaroo Jesse",'
    b'"email":"111222333@ZZAMZ4WT4Y3E.monnify"}},"eventType":"SUCCESSFUL_TRANSACTION"}'
)
PUBLISHED_HASH = (
    "f04fb635e04d71648bd3cc7999003da6861483342c856d05ddfa9b2dafacb87"
    "3b0de1d0f8f67405d0010b4348b721c49fa171d317972618debba6b638aedcd3c"
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _provider(base_url: str, policy, clock=None, **overrides) -> MonnifyProvider:
    options = {
        "api_key": MONNIFY_API_KEY,
        "secret_key": MONNIFY_SECRET_KEY,
        "contract_code": MONNIFY_CONTRACT_CODE,
        "base_url": base_url,
        "policy": policy,
        **overrides,
    }
    if clock is not None:
        options["clock"] = clock
    return MonnifyProvider(**options)


@pytest.fixture
def provider(fake_providers, quick_policy, clock) -> MonnifyProvider:
    return _provider(fake_providers.base_url, quick_policy, clock)


@pytest.fixture
def published() -> MonnifyProvider:
    return MonnifyProvider(api_key="k", secret_key=PUBLISHED_SECRET, contract_code="c", base_url="http://127.0.0.1:9")


# -- signatures -------------------------------------------------------------------------------------


def test_signature_published_example_reproduced(published):
    assert published.signature(PUBLISHED_BODY) == PUBLISHED_HASH


def test_parse_webhook_published_example_accepted(published):
    event = published.parse_webhook(headers={"monnify-signature": PUBLISHED_HASH}, raw_body=PUBLISHED_BODY)
    assert event.event_type == "SUCCESSFUL_TRANSACTION"
    assert event.event_id == "SUCCESSFUL_TRANSACTION:MNFY|76|20211117154810|000001:PAID"
    payment = event.payment
    assert payment.status is ProviderPaymentStatus.SUCCEEDED
    assert payment.provider_reference == "MNFY|76|20211117154810|000001"
    assert payment.reference == "0.01462001097368737"
    assert (payment.amount_minor, payment.currency) == (7_800_000, Currency.NGN)  # ₦78,000 in kobo


def test_parse_webhook_tampered_body_rejected(published):
    tampered = PUBLISHED_BODY.replace(b'"amountPaid":78000', b'"amountPaid":780000')
    with pytest.raises(WebhookRejected) as caught:
        published.parse_webhook(headers={"monnify-signature": PUBLISHED_HASH}, raw_body=tampered)
    assert caught.value.details["reason"] == "bad_signature"


def test_parse_webhook_reformatted_body_rejected(published):
    """The hash covers the raw bytes: a re-serialised body with the same meaning does not verify."""
    reformatted = json.dumps(json.loads(PUBLISHED_BODY), indent=1).encode()
    with pytest.raises(WebhookRejected):
        published.parse_webhook(headers={"monnify-signature": PUBLISHED_HASH}, raw_body=reformatted)


@pytest.mark.parametrize("header", [None, "", "00" * 64, PUBLISHED_HASH[:-2], "sha512=" + PUBLISHED_HASH])
def test_parse_webhook_missing_or_wrong_signature_rejected(published, header):
    headers = {} if header is None else {"monnify-signature": header}
    with pytest.raises(WebhookRejected):
        published.parse_webhook(headers=headers, raw_body=PUBLISHED_BODY)


def test_parse_webhook_other_secret_rejected():
    other = MonnifyProvider(api_key="k", secret_key="not-the-secret", contract_code="c", base_url="http://127.0.0.1:9")
    with pytest.raises(WebhookRejected):
        other.parse_webhook(headers={"monnify-signature": PUBLISHED_HASH}, raw_body=PUBLISHED_BODY)


@pytest.mark.parametrize(
    ("status", "amount_paid", "expected"),
    [
        ("PAID", "1250.50", (ProviderPaymentStatus.SUCCEEDED, 125_050, None)),
        ("OVERPAID", "1300.00", (ProviderPaymentStatus.SUCCEEDED, 125_050, None)),  # credited what was due
        ("PARTIALLY_PAID", "1000.00", (ProviderPaymentStatus.FAILED, 100_000, "partially_paid")),
        ("FAILED", "0.00", (ProviderPaymentStatus.FAILED, 0, "failed")),
        ("EXPIRED", "0.00", (ProviderPaymentStatus.CANCELLED, 0, "expired")),
        ("PENDING", "0.00", (ProviderPaymentStatus.PENDING, 0, None)),
        ("SOMETHING_NEW", "0.00", (ProviderPaymentStatus.PROCESSING, 0, None)),
    ],
)
def test_parse_webhook_payment_status_mapped(provider, status, amount_paid, expected):
    headers, body = _signed_text(
        f'{{"eventType":"SUCCESSFUL_TRANSACTION","eventData":{{"transactionReference":"MNFY|20|20250101|000001",'
        f'"paymentReference":"PAY-TEST0001","amountPaid":{amount_paid},"totalPayable":1250.50,'
        f'"currency":"NGN","paymentStatus":"{status}"}}}}'
    )
    payment = provider.parse_webhook(headers=headers, raw_body=body).payment
    assert (payment.status, payment.amount_minor, payment.failure_reason) == expected


def _signed_text(text: str) -> tuple[dict[str, str], bytes]:
    body = text.encode()
    return {"monnify-signature": hmac.new(MONNIFY_SECRET_KEY.encode(), body, hashlib.sha512).hexdigest()}, body


def test_parse_webhook_non_transaction_event_no_payment(provider):
    headers, body = _signed_text('{"eventType":"SUCCESSFUL_REFUND","eventData":{"refundReference":"R1"}}')
    event = provider.parse_webhook(headers=headers, raw_body=body)
    assert event.payment is None
    assert event.event_id.startswith("SUCCESSFUL_REFUND:")


@pytest.mark.parametrize("text", ["not json", "[]", '{"eventType":"SUCCESSFUL_TRANSACTION"}', '{"eventData":{}}'])
def test_parse_webhook_signed_but_malformed_body_rejected(provider, text):
    headers, body = _signed_text(text)
    with pytest.raises(WebhookRejected) as caught:
        provider.parse_webhook(headers=headers, raw_body=body)
    assert caught.value.details["reason"] == "malformed_body"


# -- API --------------------------------------------------------------------------------------------


def test_create_checkout_amount_in_naira_exact(provider, fake_providers):
    session = provider.create_checkout(checkout_request(amount_minor=125_050))
    assert session.provider_reference.startswith("MNFY|")
    assert "/monnify-checkout/" in session.checkout_url
    init = next(r for r in fake_providers.requests if r.route == "monnify.init")
    assert b'"amount":1250.50,' in init.body
    sent = json.loads(init.body, parse_float=Decimal)
    assert sent["amount"] == Decimal("1250.50")
    assert sent["paymentReference"] == "PAY-TEST0001"
    assert sent["contractCode"] == MONNIFY_CONTRACT_CODE
    assert init.headers["authorization"].startswith("Bearer ")


@pytest.mark.parametrize(
    ("amount_minor", "literal"),
    # The last one is past float precision: float("100000000000000.01") would send ...0.02.
    [(1, b"0.01"), (100, b"1.00"), (10_000_000_000_000_001, b"100000000000000.01")],
)
def test_create_checkout_large_and_small_amounts_exact(provider, fake_providers, amount_minor, literal):
    provider.create_checkout(checkout_request(amount_minor=amount_minor, reference=f"PAY-{amount_minor}"))
    init = next(r for r in fake_providers.requests if r.route == "monnify.init")
    assert b'"amount":' + literal + b"," in init.body


def test_create_checkout_logs_in_once_and_reuses_token(provider, fake_providers):
    provider.create_checkout(checkout_request(reference="PAY-1"))
    provider.create_checkout(checkout_request(reference="PAY-2"))
    assert fake_providers.count("monnify.login") == 1
    assert fake_providers.count("monnify.init") == 2


def test_token_near_expiry_logs_in_again(provider, fake_providers, clock):
    provider.create_checkout(checkout_request(reference="PAY-1"))
    clock.now += 3600 - 60  # a minute before the announced expiry counts as expired
    provider.create_checkout(checkout_request(reference="PAY-2"))
    assert fake_providers.count("monnify.login") == 2


def test_token_revoked_logs_in_again_once(provider, fake_providers):
    provider.create_checkout(checkout_request(reference="PAY-1"))
    fake_providers.monnify_tokens.clear()
    provider.create_checkout(checkout_request(reference="PAY-2"))
    assert fake_providers.count("monnify.login") == 2


def test_wrong_credentials_refused(fake_providers, quick_policy):
    provider = _provider(fake_providers.base_url, quick_policy, secret_key="wrong")
    with pytest.raises(ProviderRefused):
        provider.create_checkout(checkout_request())
    assert fake_providers.count("monnify.init") == 0


def test_create_checkout_usd_refused_without_calling(provider, fake_providers):
    with pytest.raises(UnsupportedCurrency):
        provider.create_checkout(checkout_request(currency=Currency.USD))
    assert fake_providers.requests == []


def test_create_checkout_5xx_retried_then_succeeds(provider, fake_providers, sleeps):
    fake_providers.fail("monnify.init", times=2, status=502)
    provider.create_checkout(checkout_request())
    assert fake_providers.count("monnify.init") == 3
    assert len(fake_providers.monnify_transactions) == 1
    assert len(sleeps) == 2


def test_create_checkout_login_down_unavailable(provider, fake_providers):
    fake_providers.fail("monnify.login", times=10)
    with pytest.raises(ProviderUnavailable):
        provider.create_checkout(checkout_request())
    assert fake_providers.count("monnify.init") == 0


def test_create_checkout_timeouts_unavailable(fake_providers, quick_policy):
    fake_providers.hang_seconds = 0.6
    fake_providers.hang("monnify.init", times=3)
    provider = _provider(fake_providers.base_url, quick_policy, timeout=httpx.Timeout(0.2))
    with pytest.raises(ProviderUnavailable):
        provider.create_checkout(checkout_request())
    assert fake_providers.count("monnify.init") == 3


def test_create_checkout_duplicate_reference_refused(provider):
    provider.create_checkout(checkout_request(idempotency_key="a"))
    with pytest.raises(ProviderRefused):
        provider.create_checkout(checkout_request(idempotency_key="b"))


@pytest.mark.parametrize(
    ("status", "amount_paid", "expected_status"),
    [
        ("PAID", None, ProviderPaymentStatus.SUCCEEDED),
        ("OVERPAID", "2000.00", ProviderPaymentStatus.SUCCEEDED),
        ("PARTIALLY_PAID", "1000.00", ProviderPaymentStatus.FAILED),
        ("FAILED", "0.00", ProviderPaymentStatus.FAILED),
        ("EXPIRED", "0.00", ProviderPaymentStatus.CANCELLED),
        ("PENDING", "0.00", ProviderPaymentStatus.PENDING),
    ],
)
def test_fetch_payment_status_mapped(provider, fake_providers, status, amount_paid, expected_status):
    session = provider.create_checkout(checkout_request())
    fake_providers.monnify_settle(session.provider_reference, status=status, amount_paid=amount_paid)
    payment = provider.fetch_payment(
        provider_reference=session.provider_reference, reference="PAY-TEST0001", expected=naira(125_050)
    )
    assert payment.status is expected_status
    assert payment.provider_reference == session.provider_reference
    verify = next(r for r in fake_providers.requests if r.route == "monnify.verify")
    assert "%7C" in verify.path  # the "|" of Monnify's reference is percent-encoded


def test_fetch_payment_by_our_reference_when_theirs_unknown(provider, fake_providers):
    session = provider.create_checkout(checkout_request())
    fake_providers.monnify_settle(session.provider_reference)
    payment = provider.fetch_payment(provider_reference="", reference="PAY-TEST0001", expected=naira())
    assert payment.status is ProviderPaymentStatus.SUCCEEDED
    assert payment.provider_reference == session.provider_reference
    assert fake_providers.count("monnify.query") == 1


def test_fetch_payment_paid_other_amount_failed(provider, fake_providers):
    session = provider.create_checkout(checkout_request(amount_minor=100))
    fake_providers.monnify_settle(session.provider_reference)
    payment = provider.fetch_payment(
        provider_reference=session.provider_reference, reference="PAY-TEST0001", expected=Money(125_050, Currency.NGN)
    )
    assert payment.status is ProviderPaymentStatus.FAILED
    assert payment.failure_reason == "amount_mismatch"
