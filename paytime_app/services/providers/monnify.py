"""The `monnify` provider: login, init-transaction for a hosted checkout, transaction status, signed webhooks.

- **Auth**: `POST /api/v1/auth/login` with Basic `api_key:secret_key` gives a bearer token, cached
  until a minute before it expires; a 401 on a later call drops the cache and logs in once more.
- **Money**: Monnify wants major units ("1250.50"); we convert exactly with Decimal from integer
  minor units and read its answers back the same way (JSON numbers parsed as Decimal, never float).
  Monnify collects NGN only.
- **Idempotency**: `paymentReference` is our payment reference, stable across retries, and Monnify
  refuses a second transaction with a paymentReference it has seen; so a retried init cannot create
  a second charge, and it is retried like an idempotent call.
- **Refunds**: `POST /api/v1/refunds/initiate-refund` with our refund reference as `refundReference`.
- **Webhooks**: `monnify-signature` is the hex HMAC-SHA512 of the raw body keyed with the secret
  key, compared in constant time. Monnify events carry no id; ours is event type, transaction
  reference and status, so a redelivery is a duplicate and a later status change is a new event.
- **Statuses**: PAID → SUCCEEDED; OVERPAID → SUCCEEDED for the amount that was due (the surplus is
  logged for support to refund); PARTIALLY_PAID → FAILED (`partially_paid`: never credited, the
  money goes back by support); FAILED → FAILED; EXPIRED/CANCELLED → CANCELLED; PENDING → PENDING;
  anything else → PROCESSING.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from paytime_app.money import Currency, Money, UnsupportedCurrency, from_minor
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

SLUG = "monnify"
SIGNATURE_HEADER = "monnify-signature"
TOKEN_MARGIN_SECONDS = 60
TRANSACTION_EVENTS = frozenset({"SUCCESSFUL_TRANSACTION", "FAILED_TRANSACTION", "REJECTED_PAYMENT"})

_STATUSES: dict[str, tuple[ProviderPaymentStatus, str | None]] = {
    "PAID": (ProviderPaymentStatus.SUCCEEDED, None),
    "OVERPAID": (ProviderPaymentStatus.SUCCEEDED, None),
    "PARTIALLY_PAID": (ProviderPaymentStatus.FAILED, "partially_paid"),
    "FAILED": (ProviderPaymentStatus.FAILED, "failed"),
    "REVERSED": (ProviderPaymentStatus.FAILED, "reversed"),
    "EXPIRED": (ProviderPaymentStatus.CANCELLED, "expired"),
    "CANCELLED": (ProviderPaymentStatus.CANCELLED, "cancelled"),
    "PENDING": (ProviderPaymentStatus.PENDING, None),
}


class MonnifyProvider:
    slug: ClassVar[str] = SLUG
    webhook_needs_fetch: ClassVar[bool] = False

    def __init__(
        self,
        *,
        api_key: str,
        secret_key: str,
        contract_code: str,
        base_url: str,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        policy: RetryPolicy = DEFAULT_POLICY,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.contract_code = contract_code
        self._basic = base64.b64encode(f"{api_key}:{secret_key}".encode()).decode("ascii")
        self._secret = secret_key.encode()
        self.policy = policy
        self.clock = clock
        self.http = http_client(base_url.rstrip("/"), timeout=timeout)
        self._token_lock = threading.Lock()
        self._token: tuple[str, float] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MonnifyProvider:
        if not (settings.monnify_api_key and settings.monnify_secret_key and settings.monnify_contract_code):
            raise ValueError("MONNIFY_API_KEY, MONNIFY_SECRET_KEY and MONNIFY_CONTRACT_CODE are required for monnify")
        return cls(
            api_key=settings.monnify_api_key,
            secret_key=settings.monnify_secret_key,
            contract_code=settings.monnify_contract_code,
            base_url=settings.monnify_base_url,
        )

    # -- HTTP -------------------------------------------------------------------------------------

    def _access_token(self) -> str:
        # Under the lock so concurrent callers share one login instead of stampeding the endpoint.
        with self._token_lock:
            if self._token is not None and self.clock() < self._token[1]:
                return self._token[0]
            response = send(self.http, "POST", "/api/v1/auth/login", headers={"Authorization": f"Basic {self._basic}"})
            body = _answer(response, "login")
            token = body.get("accessToken")
            if not isinstance(token, str) or not token:
                raise ProviderRefused(provider=SLUG, reason="login_without_token")
            lifetime = int(body.get("expiresIn") or 0)
            self._token = (token, self.clock() + max(0, lifetime - TOKEN_MARGIN_SECONDS))
            return token

    def _drop_token(self, token: str) -> None:
        with self._token_lock:
            if self._token is not None and self._token[0] == token:
                self._token = None

    def _api(self, method: str, path: str, operation: str, **kwargs: Any) -> dict[str, Any]:
        def attempt() -> dict[str, Any]:
            for _ in range(2):
                token = self._access_token()
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                response = send(self.http, method, path, headers=headers, **kwargs)
                if response.status_code != 401:
                    return _answer(response, operation)
                # The token died before its announced expiry (revoked, clock skew): log in again once.
                self._drop_token(token)
            raise ProviderRefused(provider=SLUG, reason="unauthorized")

        return call_provider(SLUG, operation, attempt, idempotent=True, policy=self.policy)

    # -- checkout ---------------------------------------------------------------------------------

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        """Initialise a transaction; the amount goes out in major units. Raises ProviderUnavailable, ProviderRefused."""
        if Currency(request.currency) is not Currency.NGN:
            raise UnsupportedCurrency("Monnify collects naira (NGN) only.")
        body = self._api(
            "POST",
            "/api/v1/merchant/transactions/init-transaction",
            "create_checkout",
            content=json_with_major_amount(
                request.amount_minor,
                Currency.NGN,
                {
                    "customerName": request.customer_name,
                    "customerEmail": request.customer_email,
                    "paymentReference": request.reference,
                    "paymentDescription": request.description or request.reference,
                    "currencyCode": "NGN",
                    "contractCode": self.contract_code,
                    "redirectUrl": request.return_url,
                    "metadata": {"reference": request.reference},
                },
            ),
        )
        transaction_reference, checkout_url = body.get("transactionReference"), body.get("checkoutUrl")
        if not transaction_reference or not checkout_url:
            raise ProviderRefused(provider=SLUG, reason="incomplete_answer")
        return CheckoutSession(provider_reference=str(transaction_reference), checkout_url=str(checkout_url))

    # -- webhooks ---------------------------------------------------------------------------------

    def signature(self, raw_body: bytes) -> str:
        """The hex HMAC-SHA512 of the raw body with the secret key, as Monnify computes it."""
        return hmac.new(self._secret, raw_body, hashlib.sha512).hexdigest()

    def parse_webhook(self, *, headers: dict[str, str], raw_body: bytes) -> WebhookEvent:
        """Check `monnify-signature` over the raw body in constant time, then parse. Raises WebhookRejected."""
        header = {name.lower(): value for name, value in headers.items()}.get(SIGNATURE_HEADER)
        if not header:
            raise WebhookRejected(reason="missing_signature")
        if not hmac.compare_digest(self.signature(raw_body).encode(), header.strip().lower().encode()):
            raise WebhookRejected(reason="bad_signature")
        try:
            raw = json.loads(raw_body, parse_float=Decimal)
            event_type = str(raw["eventType"])
            data = raw["eventData"]
            if not isinstance(data, dict):
                raise TypeError("eventData")
            payment = _payment(data) if event_type in TRANSACTION_EVENTS else None
        except (KeyError, TypeError, ValueError) as error:
            raise WebhookRejected(reason="malformed_body") from error
        if payment is not None:
            event_id = f"{event_type}:{payment.provider_reference}:{data.get('paymentStatus')}"
        else:
            event_id = f"{event_type}:{hashlib.sha256(raw_body).hexdigest()}"
        return WebhookEvent(event_id=event_id, event_type=event_type, payment=payment, raw=_plain(raw))

    # -- status -----------------------------------------------------------------------------------

    def fetch_payment(self, *, provider_reference: str, reference: str, expected: Money) -> ProviderPayment:
        """Transaction status by Monnify's reference, or by ours when we never learned theirs.

        Raises ProviderUnavailable, ProviderRefused.
        """
        if provider_reference:
            # Monnify references contain "|", so the path segment must be percent-encoded.
            path = f"/api/v2/transactions/{quote(provider_reference, safe='')}"
            body = self._api("GET", path, "fetch_payment")
        else:
            body = self._api(
                "GET", "/api/v2/merchant/transactions/query", "fetch_payment", params={"paymentReference": reference}
            )
        return check_payment(_payment(body), reference=reference, expected=expected)

    # -- refunds ----------------------------------------------------------------------------------

    def refund(self, request: RefundRequest) -> ProviderRefund:
        """Initiate a refund keyed by our refund reference (Monnify refuses a reference twice, so a
        retry after a lost answer finds the first refund instead). Raises ProviderRefused, ProviderUnavailable.
        """
        amount = format(from_minor(request.amount_minor, Currency(request.currency)), "f")
        fields = json.dumps(
            {
                "transactionReference": request.provider_reference,
                "refundReference": request.refund_reference,
                "refundReason": request.reason or "Refund",
                "customerNote": f"Refund for {request.reference}",
            },
            separators=(",", ":"),
        )
        content = (fields[:-1] + f',"refundAmount":{amount}}}').encode()
        try:
            body = self._api("POST", "/api/v1/refunds/initiate-refund", "refund", content=content)
        except ProviderRefused:
            path = f"/api/v1/refunds/{quote(request.refund_reference, safe='')}"
            try:
                body = self._api("GET", path, "refund_status")
            except ProviderRefused:
                raise ProviderRefused(provider=SLUG, reason="refund_refused") from None
        status = _REFUND_STATUSES.get(str(body.get("refundStatus") or "").upper(), ProviderRefundStatus.PENDING)
        return ProviderRefund(
            provider_refund_reference=str(body.get("refundReference") or request.refund_reference),
            status=status,
            failure_reason="refund_failed" if status is ProviderRefundStatus.FAILED else None,
        )


_REFUND_STATUSES = {
    "COMPLETED": ProviderRefundStatus.SUCCEEDED,
    "PENDING": ProviderRefundStatus.PENDING,
    "IN_PROGRESS": ProviderRefundStatus.PENDING,
    "FAILED": ProviderRefundStatus.FAILED,
}


def _answer(response: httpx.Response, operation: str) -> dict[str, Any]:
    """The responseBody of a successful Monnify answer; refusals become ProviderRefused."""
    try:
        payload = response.json(parse_float=Decimal)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        if response.is_success:
            # A 2xx that is not Monnify's JSON envelope: a proxy or gateway in the way, worth retrying.
            raise TransientProviderError(f"monnify {operation}: unreadable answer", status_code=response.status_code)
        payload = {}
    if not response.is_success or payload.get("requestSuccessful") is not True:
        logger.warning(
            "monnify refused a request",
            extra={
                "operation": operation,
                "status": response.status_code,
                "response_code": payload.get("responseCode"),
                "response_message": payload.get("responseMessage"),
            },
        )
        raise ProviderRefused(provider=SLUG, status=response.status_code, provider_code=payload.get("responseCode"))
    body = payload.get("responseBody")
    if not isinstance(body, dict):
        raise ProviderRefused(provider=SLUG, reason="incomplete_answer")
    return body


def _payment(data: dict[str, Any]) -> ProviderPayment:
    raw_status = str(data.get("paymentStatus") or "").upper()
    status, reason = _STATUSES.get(raw_status, (ProviderPaymentStatus.PROCESSING, None))
    currency = _currency(data.get("currency") or data.get("currencyCode") or "NGN")
    paid = minor_from_major(data.get("amountPaid"), currency)
    payable = minor_from_major(data.get("totalPayable"), currency)
    amount = paid
    if raw_status == "OVERPAID":
        amount = payable
        logger.warning(
            "monnify payment overpaid; refund the surplus",
            extra={"transaction_reference": data.get("transactionReference"), "paid": paid, "payable": payable},
        )
    return ProviderPayment(
        provider_reference=str(data["transactionReference"]),
        reference=str(data["paymentReference"]) if data.get("paymentReference") else None,
        status=status,
        amount_minor=amount,
        currency=currency,
        failure_reason=reason,
    )


def _currency(value: Any) -> Currency | None:
    try:
        return Currency(str(value).upper())
    except ValueError:
        return None


def _plain(value: Any) -> Any:
    """The parsed webhook with Decimals as strings, so `raw` can be stored as JSON."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value
