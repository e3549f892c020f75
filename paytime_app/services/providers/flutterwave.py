"""The `flutterwave` provider: a hosted payment link, a `verif-hash` webhook, and verification before credit.

- **Checkout**: `POST /v3/payments` with `tx_ref` = our payment reference returns a hosted link. No
  charge exists until the payer pays on that page, so repeating the call after a lost answer cannot
  charge twice; it is retried like an idempotent call. The checkout's provider reference is the
  tx_ref: Flutterwave assigns a transaction id only once the payer pays.
- **Webhooks are hints.** `verif-hash` must equal our secret hash (constant-time compare), but a
  shared secret in a header proves little, so `parse_webhook` never reports a webhook's payment as
  succeeded or failed: its status is PROCESSING and `webhook_needs_fetch` is True. The caller then
  runs `fetch_payment` with the transaction id from the webhook.
- **Verification** (`GET /v3/transactions/{id}/verify`, or `verify_by_reference?tx_ref=` when only
  our reference is known) reports SUCCEEDED only if Flutterwave says `successful` *and* tx_ref,
  currency and amount equal what our record expects; any mismatch is FAILED with the reason.
  "No transaction found" means nobody has paid yet: PENDING.
"""

from __future__ import annotations

import hmac
import json
import logging
from decimal import Decimal
from typing import Any, ClassVar

import httpx

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
    json_with_major_amount,
    minor_from_major,
)
from paytime_app.services.providers.resilience import (
    DEFAULT_POLICY,
    DEFAULT_TIMEOUT,
    RetryPolicy,
    TransientProviderError,
    call_provider,
    http_client,
    send,
)
from paytime_app.settings import Settings

logger = logging.getLogger(__name__)

SLUG = "flutterwave"
SIGNATURE_HEADER = "verif-hash"
CHARGE_EVENTS = frozenset({"charge.completed"})

_STATUSES: dict[str, tuple[ProviderPaymentStatus, str | None]] = {
    "successful": (ProviderPaymentStatus.SUCCEEDED, None),
    "failed": (ProviderPaymentStatus.FAILED, "failed"),
    "cancelled": (ProviderPaymentStatus.CANCELLED, "cancelled"),
    "pending": (ProviderPaymentStatus.PROCESSING, None),
}


class _NotFound(Exception):
    """Flutterwave knows no transaction for this id or tx_ref."""


class FlutterwaveProvider:
    slug: ClassVar[str] = SLUG
    webhook_needs_fetch: ClassVar[bool] = True

    def __init__(
        self,
        *,
        secret_key: str,
        secret_hash: str,
        base_url: str,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        policy: RetryPolicy = DEFAULT_POLICY,
    ):
        if not secret_hash:
            raise ValueError("flutterwave needs a webhook secret hash")
        self._secret_key = secret_key
        self._secret_hash = secret_hash.encode()
        self.policy = policy
        self.http = http_client(base_url.rstrip("/"), timeout=timeout)

    @classmethod
    def from_settings(cls, settings: Settings) -> FlutterwaveProvider:
        if not (settings.flutterwave_secret_key and settings.flutterwave_secret_hash):
            raise ValueError("FLUTTERWAVE_SECRET_KEY and FLUTTERWAVE_SECRET_HASH are required for flutterwave")
        return cls(
            secret_key=settings.flutterwave_secret_key,
            secret_hash=settings.flutterwave_secret_hash,
            base_url=settings.flutterwave_base_url,
        )

    def _api(self, method: str, path: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._secret_key}", "Content-Type": "application/json"}

        def attempt() -> dict[str, Any]:
            return _answer(send(self.http, method, path, headers=headers, **kwargs), operation)

        return call_provider(SLUG, operation, attempt, idempotent=True, policy=self.policy)

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        """Create a hosted payment link for tx_ref = our reference. Raises ProviderUnavailable, ProviderRefused."""
        currency = Currency(request.currency)
        data = self._api(
            "POST",
            "/v3/payments",
            "create_checkout",
            content=json_with_major_amount(
                request.amount_minor,
                currency,
                {
                    "tx_ref": request.reference,
                    "currency": currency.value,
                    "redirect_url": request.return_url,
                    "customer": {"email": request.customer_email, "name": request.customer_name},
                    "customizations": {"title": "PayTime", "description": request.description},
                    "meta": {"reference": request.reference, "idempotency_key": request.idempotency_key},
                },
            ),
        )
        link = data.get("link")
        if not isinstance(link, str) or not link:
            raise ProviderRefused(provider=SLUG, reason="incomplete_answer")
        return CheckoutSession(provider_reference=request.reference, checkout_url=link)

    def parse_webhook(self, *, headers: dict[str, str], raw_body: bytes) -> WebhookEvent:
        """Check `verif-hash`, then parse; the payment is only a claim (PROCESSING). Raises WebhookRejected."""
        header = {name.lower(): value for name, value in headers.items()}.get(SIGNATURE_HEADER)
        if not header:
            raise WebhookRejected(reason="missing_signature")
        if not hmac.compare_digest(header.encode(), self._secret_hash):
            raise WebhookRejected(reason="bad_signature")
        try:
            raw = json.loads(raw_body, parse_float=Decimal)
            event_type = str(raw.get("event") or raw.get("event.type") or "")
            data = raw["data"]
            if not event_type or not isinstance(data, dict):
                raise TypeError("event")
            claimed = _payment(data) if event_type in CHARGE_EVENTS else None
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise WebhookRejected(reason="malformed_body") from error
        payment = None
        if claimed is not None:
            # Not trusted on its own: the caller confirms with fetch_payment before crediting or failing.
            payment = ProviderPayment(
                provider_reference=claimed.provider_reference,
                reference=claimed.reference,
                status=ProviderPaymentStatus.PROCESSING,
                amount_minor=claimed.amount_minor,
                currency=claimed.currency,
            )
        event_id = f"{event_type}:{data.get('id')}:{data.get('status')}"
        return WebhookEvent(event_id=event_id, event_type=event_type, payment=payment, raw=_plain(raw))

    def fetch_payment(self, *, provider_reference: str, reference: str, expected: Money) -> ProviderPayment:
        """Verify with Flutterwave; SUCCEEDED only when status, tx_ref, currency and amount all match.

        `provider_reference` is a transaction id (from a webhook) or our tx_ref (from the checkout).
        Raises ProviderUnavailable, ProviderRefused.
        """
        if provider_reference.isascii() and provider_reference.isdigit():
            path, params = f"/v3/transactions/{provider_reference}/verify", None
        else:
            path, params = "/v3/transactions/verify_by_reference", {"tx_ref": reference}
        try:
            data = self._api("GET", path, "fetch_payment", params=params)
        except _NotFound:
            return ProviderPayment(
                provider_reference=provider_reference,
                reference=reference,
                status=ProviderPaymentStatus.PENDING,
                amount_minor=None,
                currency=None,
            )
        return check_payment(_payment(data), reference=reference, expected=expected)

    def refund(self, request: RefundRequest) -> ProviderRefund:
        """Find the paid transaction for our tx_ref, then `POST /v3/transactions/{id}/refund`.

        Flutterwave's refund takes no idempotency key, so it is never retried after it may have
        been sent (a lost answer surfaces as ProviderUnavailable for support to check, never as a
        second refund). Raises ProviderRefused, ProviderUnavailable.
        """
        try:
            paid = self._api(
                "GET", "/v3/transactions/verify_by_reference", "refund", params={"tx_ref": request.reference}
            )
        except _NotFound:
            raise ProviderRefused(provider=SLUG, reason="nothing_paid") from None
        if str(paid.get("status") or "").lower() != "successful":
            raise ProviderRefused(provider=SLUG, reason="nothing_paid")
        headers = {"Authorization": f"Bearer {self._secret_key}", "Content-Type": "application/json"}
        body = json_with_major_amount(
            request.amount_minor,
            Currency(request.currency),
            {"comments": f"{request.refund_reference}: {request.reason}"},
        )

        def attempt() -> dict[str, Any]:
            path = f"/v3/transactions/{int(paid['id'])}/refund"
            return _answer(send(self.http, "POST", path, headers=headers, content=body), "refund")

        data = call_provider(SLUG, "refund", attempt, idempotent=False, policy=self.policy)
        raw_status = str(data.get("status") or "").lower()
        status = {
            "completed": ProviderRefundStatus.SUCCEEDED,
            "successful": ProviderRefundStatus.SUCCEEDED,
            "failed": ProviderRefundStatus.FAILED,
        }.get(raw_status, ProviderRefundStatus.PENDING)
        return ProviderRefund(
            provider_refund_reference=str(data.get("id") or request.refund_reference),
            status=status,
            failure_reason="refund_failed" if status is ProviderRefundStatus.FAILED else None,
        )


def _answer(response: httpx.Response, operation: str) -> dict[str, Any]:
    try:
        payload = response.json(parse_float=Decimal)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        if response.is_success:
            # A 2xx that is not Flutterwave's JSON envelope: a proxy or gateway in the way, worth retrying.
            raise TransientProviderError(f"flutterwave {operation}: unreadable answer", status_code=200)
        payload = {}
    message = str(payload.get("message") or "")
    if response.status_code in (400, 404) and "no transaction" in message.lower():
        raise _NotFound(message)
    if not response.is_success or payload.get("status") != "success":
        logger.warning(
            "flutterwave refused a request",
            extra={"operation": operation, "status": response.status_code, "response_message": message},
        )
        raise ProviderRefused(provider=SLUG, status=response.status_code)
    data = payload.get("data")
    if not isinstance(data, dict):
        raise ProviderRefused(provider=SLUG, reason="incomplete_answer")
    return data


def _payment(data: dict[str, Any]) -> ProviderPayment:
    status, reason = _STATUSES.get(str(data.get("status") or "").lower(), (ProviderPaymentStatus.PROCESSING, None))
    try:
        currency: Currency | None = Currency(str(data.get("currency")).upper())
    except ValueError:
        currency = None
    return ProviderPayment(
        provider_reference=str(data["id"]),
        reference=str(data["tx_ref"]) if data.get("tx_ref") is not None else None,
        status=status,
        amount_minor=minor_from_major(data.get("amount"), currency),
        currency=currency,
        failure_reason=reason,
    )


def _plain(value: Any) -> Any:
    """The parsed webhook with Decimals as strings, so `raw` can be stored as JSON."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
