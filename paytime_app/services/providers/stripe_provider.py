"""The `stripe` provider: a Checkout Session redirect, `stripe.Webhook` signatures, Session retrieve to verify.

Refunds go through the session's PaymentIntent with `Refund.create` and our idempotency key.

The SDK talks to STRIPE_API_BASE when set (tests point it at a fake API on loopback) through its own
requests-based HTTP client with our timeouts. The SDK's built-in retries are off: retries, backoff
and the circuit breaker come from `resilience.call_provider`, the same for every provider, and the
idempotency key derived from our stored intent is sent on every attempt so Stripe never creates a
second session for one payment.

Statuses. A session that is `complete` and `paid` succeeded; `complete` but `unpaid` is an
asynchronous method still clearing (PROCESSING); `expired` is CANCELLED; `open` is PENDING.
`payment_intent.payment_failed` is reported as PROCESSING with the decline as failure_reason, not
FAILED: inside Checkout a declined card can be retried in the same session, so the payment may
still succeed; the session's own `async_payment_failed` or `expired` event is what ends it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import stripe

from paytime_app.money import Currency, Money
from paytime_app.services.providers.base import (
    CheckoutRequest,
    CheckoutSession,
    ProviderPayment,
    ProviderPaymentStatus,
    ProviderRefund,
    ProviderRefundStatus,
    ProviderRefused,
    RefundRequest,
    WebhookEvent,
    WebhookRejected,
    check_payment,
)
from paytime_app.services.providers.resilience import (
    CONNECT_TIMEOUT_SECONDS,
    DEFAULT_POLICY,
    READ_TIMEOUT_SECONDS,
    RetryPolicy,
    TransientProviderError,
    call_provider,
)
from paytime_app.settings import Settings

logger = logging.getLogger(__name__)

SLUG = "stripe"
SIGNATURE_HEADER = "stripe-signature"
TOLERANCE_SECONDS = 300
T = TypeVar("T")

SESSION_EVENTS = frozenset(
    {
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
    }
)


class StripeProvider:
    slug: ClassVar[str] = SLUG
    webhook_needs_fetch: ClassVar[bool] = False

    def __init__(
        self,
        *,
        secret_key: str,
        webhook_secret: str,
        api_base: str | None = None,
        timeout: tuple[float, float] = (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS),
        policy: RetryPolicy = DEFAULT_POLICY,
        clock: Callable[[], float] = time.time,
    ):
        self.webhook_secret = webhook_secret
        self.policy = policy
        self.clock = clock
        self.client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            http_client=stripe.RequestsClient(timeout=timeout),
            max_network_retries=0,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> StripeProvider:
        if not settings.stripe_secret_key or not settings.stripe_webhook_secret:
            raise ValueError("STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET are required for stripe")
        return cls(
            secret_key=settings.stripe_secret_key,
            webhook_secret=settings.stripe_webhook_secret,
            api_base=settings.stripe_api_base,
        )

    def _call(self, operation: str, request: Callable[[], T]) -> T:
        def attempt() -> T:
            try:
                return request()
            except stripe.StripeError as error:
                status = error.http_status
                # 409 is Stripe saying "a request with this idempotency key is in flight": retry.
                if status is None or status >= 500 or status in (409, 429):
                    message = f"stripe {operation}: {type(error).__name__}"
                    raise TransientProviderError(message, status_code=status) from error
                logger.warning(
                    "stripe refused a request",
                    extra={"operation": operation, "status": status, "stripe_code": error.code},
                )
                raise ProviderRefused(provider=SLUG, status=status, provider_code=error.code) from error

        # Both calls are safe to repeat: create carries our idempotency key, retrieve is a GET.
        return call_provider(SLUG, operation, attempt, idempotent=True, policy=self.policy)

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        """Create a Checkout Session for the amount in minor units. Raises ProviderUnavailable, ProviderRefused."""
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": str(request.currency).lower(),
                        "unit_amount": request.amount_minor,
                        "product_data": {"name": request.description or request.reference},
                    },
                }
            ],
            "client_reference_id": request.reference,
            "metadata": {"reference": request.reference},
            "payment_intent_data": {"metadata": {"reference": request.reference}},
            "customer_email": request.customer_email,
            # Stripe substitutes {CHECKOUT_SESSION_ID}; the return page verifies with it, never trusting the query.
            "success_url": _with_query(request.return_url, "session_id={CHECKOUT_SESSION_ID}"),
            "cancel_url": _with_query(request.return_url, "cancelled=1"),
        }
        session = self._call(
            "create_checkout",
            lambda: self.client.v1.checkout.sessions.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": request.idempotency_key},
            ),
        )
        if not session.url:
            raise ProviderRefused(provider=SLUG, reason="no_checkout_url")
        return CheckoutSession(provider_reference=session.id, checkout_url=session.url)

    def parse_webhook(self, *, headers: dict[str, str], raw_body: bytes) -> WebhookEvent:
        """Verify with stripe.Webhook (signature, 300 s tolerance) and map session events. Raises WebhookRejected."""
        header = {name.lower(): value for name, value in headers.items()}.get(SIGNATURE_HEADER)
        if not header:
            raise WebhookRejected(reason="missing_signature")
        try:
            event = self.client.construct_event(raw_body, header, self.webhook_secret, tolerance=TOLERANCE_SECONDS)
        except stripe.SignatureVerificationError as error:
            raise WebhookRejected(reason="bad_signature") from error
        except ValueError as error:  # not JSON, or not UTF-8
            raise WebhookRejected(reason="malformed_body") from error
        # The SDK refuses old timestamps only; a timestamp from the future is refused here.
        if _signed_at(header) > self.clock() + TOLERANCE_SECONDS:
            raise WebhookRejected(reason="timestamp_out_of_tolerance")
        try:
            raw = json.loads(raw_body)
            payment = _event_payment(raw["type"], raw["data"]["object"])
            return WebhookEvent(event_id=str(event.id), event_type=str(event.type), payment=payment, raw=raw)
        except (KeyError, TypeError, ValueError) as error:
            raise WebhookRejected(reason="malformed_body") from error

    def fetch_payment(self, *, provider_reference: str, reference: str, expected: Money) -> ProviderPayment:
        """Retrieve the Checkout Session and report its state. Raises ProviderUnavailable, ProviderRefused."""
        session = self._call("fetch_payment", lambda: self.client.v1.checkout.sessions.retrieve(provider_reference))
        payment = _session_payment(session.to_dict())
        return check_payment(payment, reference=reference, expected=expected)

    def refund(self, request: RefundRequest) -> ProviderRefund:
        """Refund through the session's PaymentIntent (`Refund.create`, our idempotency key on every try).

        Raises ProviderRefused (e.g. nothing was paid, or more than is left), ProviderUnavailable.
        """
        session = self._call("refund", lambda: self.client.v1.checkout.sessions.retrieve(request.provider_reference))
        payment_intent = session.to_dict().get("payment_intent")
        if isinstance(payment_intent, dict):
            payment_intent = payment_intent.get("id")
        if not payment_intent:
            raise ProviderRefused(provider=SLUG, reason="nothing_paid")
        params: dict[str, Any] = {
            "payment_intent": str(payment_intent),
            "amount": request.amount_minor,
            "reason": "requested_by_customer",
            "metadata": {"reference": request.reference, "refund_reference": request.refund_reference},
        }
        refund = self._call(
            "refund",
            lambda: self.client.v1.refunds.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": request.idempotency_key},
            ),
        )
        answer = refund.to_dict()
        status = _REFUND_STATUSES.get(str(answer.get("status")), ProviderRefundStatus.PENDING)
        return ProviderRefund(
            provider_refund_reference=str(refund.id),
            status=status,
            failure_reason=answer.get("failure_reason") if status is ProviderRefundStatus.FAILED else None,
        )


_REFUND_STATUSES = {
    "succeeded": ProviderRefundStatus.SUCCEEDED,
    "pending": ProviderRefundStatus.PENDING,
    "requires_action": ProviderRefundStatus.PENDING,
    "failed": ProviderRefundStatus.FAILED,
    "canceled": ProviderRefundStatus.FAILED,
}


def _with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _signed_at(header: str) -> int:
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            return int(value)
    raise WebhookRejected(reason="malformed_signature")  # unreachable: the SDK checked the header


def _currency(value: Any) -> Currency | None:
    try:
        return Currency(str(value).upper())
    except ValueError:
        return None


def _reference(obj: dict[str, Any]) -> str | None:
    metadata = obj.get("metadata") or {}
    return metadata.get("reference") or obj.get("client_reference_id")


def _session_payment(session: dict[str, Any], *, event_type: str | None = None) -> ProviderPayment:
    status, reason = ProviderPaymentStatus.PENDING, None
    if event_type == "checkout.session.async_payment_failed":
        status, reason = ProviderPaymentStatus.FAILED, "async_payment_failed"
    elif session.get("status") == "expired" or event_type == "checkout.session.expired":
        status, reason = ProviderPaymentStatus.CANCELLED, "expired"
    elif session.get("status") == "complete":
        if session.get("payment_status") == "paid":
            status = ProviderPaymentStatus.SUCCEEDED
        else:
            # "unpaid" (an asynchronous method still clearing) or "no_payment_required" (no money moved):
            # neither may credit anything, and neither is a failure.
            status = ProviderPaymentStatus.PROCESSING
    amount = session.get("amount_total")
    return ProviderPayment(
        provider_reference=str(session["id"]),
        reference=_reference(session),
        status=status,
        amount_minor=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
        currency=_currency(session.get("currency")),
        failure_reason=reason,
    )


def _event_payment(event_type: str, obj: dict[str, Any]) -> ProviderPayment | None:
    if event_type in SESSION_EVENTS:
        return _session_payment(obj, event_type=event_type)
    if event_type == "payment_intent.payment_failed":
        error = obj.get("last_payment_error") or {}
        amount = obj.get("amount")
        return ProviderPayment(
            provider_reference=str(obj["id"]),
            reference=_reference(obj),
            status=ProviderPaymentStatus.PROCESSING,  # see the module docstring: the payer may retry
            amount_minor=amount if isinstance(amount, int) and not isinstance(amount, bool) else None,
            currency=_currency(obj.get("currency")),
            failure_reason=error.get("decline_code") or error.get("code") or "payment_failed",
        )
    return None
