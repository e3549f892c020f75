"""The one interface every payment provider adapter implements.

Adapters speak the provider's protocol (HTTP, SDK, signatures) and translate to these types; they
never touch our database. Amounts cross this boundary as integer minor units with a currency; an
adapter converts to whatever its provider wants at the edge.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from paytime_app.errors import DomainError, ServiceUnavailable
from paytime_app.money import MINOR_DIGITS, Currency, Money, from_minor


class ProviderPaymentStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class CheckoutRequest:
    """What we ask a provider to collect; `reference` is our payment reference (PAY-…), stable across retries."""

    reference: str
    amount_minor: int
    currency: Currency
    customer_email: str
    customer_name: str
    description: str
    return_url: str
    # Derived from our stored intent so a retried call cannot create a second charge at the provider.
    idempotency_key: str


@dataclass(frozen=True)
class CheckoutSession:
    provider_reference: str
    checkout_url: str


@dataclass(frozen=True)
class ProviderPayment:
    """The provider's own account of a payment, from a verified webhook or a status query."""

    provider_reference: str
    reference: str | None
    status: ProviderPaymentStatus
    amount_minor: int | None
    currency: Currency | None
    failure_reason: str | None = None


@dataclass(frozen=True)
class RefundRequest:
    """Send part or all of a collected payment back to the payer.

    `idempotency_key` is derived from our stored refund (its id), so a retried call refunds once.
    """

    provider_reference: str
    reference: str
    refund_reference: str
    amount_minor: int
    currency: Currency
    reason: str
    idempotency_key: str


class ProviderRefundStatus(StrEnum):
    PENDING = "pending"  # accepted; the money is on its way back (card refunds take days)
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class ProviderRefund:
    provider_refund_reference: str
    status: ProviderRefundStatus
    failure_reason: str | None = None


@dataclass(frozen=True)
class WebhookEvent:
    event_id: str
    event_type: str
    payment: ProviderPayment | None
    raw: dict[str, Any] = field(default_factory=dict)


class WebhookRejected(DomainError):
    """Signature, timestamp or body not acceptable; nothing may be written for this request."""

    code = "webhook_rejected"
    status_code = 400
    default_message = "The webhook could not be verified."


class ProviderUnavailable(ServiceUnavailable):
    code = "provider_unavailable"
    default_message = "That payment method is not available right now. Please choose another one."


class ProviderRefused(DomainError):
    code = "provider_refused"
    status_code = 502
    default_message = "The payment provider refused the request."


class PaymentProvider(Protocol):
    slug: ClassVar[str]
    # True when a webhook is only a hint (Flutterwave): its payment never says succeeded or failed,
    # and the caller must confirm with `fetch_payment` before acting on it.
    webhook_needs_fetch: ClassVar[bool]

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        """Start a hosted checkout. Raises ProviderUnavailable, ProviderRefused."""
        ...

    def parse_webhook(self, *, headers: dict[str, str], raw_body: bytes) -> WebhookEvent:
        """Verify the signature on the raw body and parse it. Raises WebhookRejected."""
        ...

    def fetch_payment(self, *, provider_reference: str, reference: str, expected: Money) -> ProviderPayment:
        """Ask the provider what happened to a payment. Raises ProviderUnavailable, ProviderRefused.

        `expected` is what our payment record asks for; a payment the provider reports as succeeded
        for another reference, amount or currency comes back FAILED (see `check_payment`).
        """
        ...

    def refund(self, request: RefundRequest) -> ProviderRefund:
        """Refund `amount_minor` of a succeeded payment, once per idempotency key.

        Raises ProviderUnavailable (worth retrying with the same key), ProviderRefused (final).
        """
        ...


def check_payment(payment: ProviderPayment, *, reference: str, expected: Money) -> ProviderPayment:
    """Downgrade a succeeded payment that is not the one we asked for to FAILED, with the reason.

    Used by every adapter's fetch_payment, and by the payment service on webhook payments (a webhook
    cannot know our record). Only SUCCEEDED is ever changed: a mismatch must never credit anyone.
    """
    if payment.status is not ProviderPaymentStatus.SUCCEEDED:
        return payment
    if payment.reference != reference:
        reason = "reference_mismatch"
    elif payment.currency != expected.currency:
        reason = "currency_mismatch"
    elif payment.amount_minor != expected.amount_minor:
        reason = "amount_mismatch"
    else:
        return payment
    return replace(payment, status=ProviderPaymentStatus.FAILED, failure_reason=reason)


def minor_from_major(value: Any, currency: Currency | None) -> int | None:
    """A provider's major-unit amount ("100.00", 100, Decimal) in minor units; None unless exact.

    Floats are refused: parse provider JSON with `parse_float=Decimal` so no amount is ever rounded.
    """
    if currency is None or value is None or isinstance(value, bool | float):
        return None
    try:
        scaled = Decimal(str(value)).scaleb(MINOR_DIGITS[currency])
    except InvalidOperation:
        return None
    if not scaled.is_finite() or scaled != scaled.to_integral_value():
        return None
    return int(scaled)


def json_with_major_amount(amount_minor: int, currency: Currency, fields: dict[str, Any]) -> bytes:
    """A JSON object `{"amount": <major units>, **fields}` with the amount written exactly.

    The json module can write a Decimal only through float; the amount is spliced in as the exact
    decimal literal instead ("1250.50"), which is a valid JSON number.
    """
    amount = format(from_minor(amount_minor, currency), "f")
    rest = json.dumps(fields, separators=(",", ":"))
    return (f'{{"amount":{amount}' + ("," + rest[1:] if fields else "}")).encode()
