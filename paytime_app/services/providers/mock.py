"""The `mock` provider: our own hosted checkout, so the real webhook path runs without a real provider.

Flow: `create_checkout` records the checkout and returns `{base_url}/pay/mock/{provider_reference}`.
That page shows the amount (`get_checkout`) with Pay and Fail buttons; a click calls
`settle_checkout`, which records the outcome (the first outcome wins, as at a real provider) and
returns a signed webhook for the page to POST to `/api/webhooks/mock`, where `parse_webhook`
verifies it like any provider's. `fetch_payment` answers "verify" and reconciliation from the same
record, so those paths work too.

Signature, Stripe-style: header `paytime-mock-signature: t=<unix seconds>,v1=<hex>` where the hex is
HMAC-SHA256 over `f"{t}.{body}"` with MOCK_WEBHOOK_SECRET. Timestamps more than five minutes old or
ahead are refused, so a captured webhook cannot be replayed later.

Where checkouts are kept: in Redis when REDIS_URL is set, otherwise in this process's memory. The
page that settles a checkout, the webhook route and the reconciliation job may run in different
workers or hosts in production, and "nothing in the app keeps state that a second host would miss"
(DESIGN §5), so Redis is required there; the embedded single-process mode has no Redis and needs
none. Memory is lost on restart: a checkout the store no longer knows is reported PROCESSING (not
final), never failed or succeeded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar, Protocol

import redis

from paytime_app.errors import NotFound
from paytime_app.money import Currency, Money
from paytime_app.redis_client import get_redis
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
from paytime_app.services.providers.resilience import DEFAULT_POLICY, RetryPolicy, TransientProviderError, call_provider
from paytime_app.settings import Settings

SLUG = "mock"
SIGNATURE_HEADER = "paytime-mock-signature"
TOLERANCE_SECONDS = 300
FINAL_OUTCOMES = frozenset(
    {ProviderPaymentStatus.SUCCEEDED, ProviderPaymentStatus.FAILED, ProviderPaymentStatus.CANCELLED}
)
STORE_TTL_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True)
class MockCheckout:
    provider_reference: str
    reference: str
    amount_minor: int
    currency: Currency
    description: str
    return_url: str
    status: ProviderPaymentStatus = ProviderPaymentStatus.PENDING


class MockStore(Protocol):
    def add(self, checkout: MockCheckout, *, idempotency_key: str) -> MockCheckout:
        """Keep a new checkout; if the idempotency key was seen before, return that checkout instead."""
        ...

    def get(self, provider_reference: str) -> MockCheckout | None: ...

    def settle(self, provider_reference: str, outcome: ProviderPaymentStatus) -> MockCheckout | None:
        """Record a final outcome unless one is recorded already; return the checkout as it now stands."""
        ...

    def refund(self, provider_reference: str, amount_minor: int, *, idempotency_key: str) -> str | None:
        """Record a refund once per key; returns its id, or None when the checkout is not paid or the
        refunds would exceed its amount."""
        ...


class MemoryMockStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checkouts: dict[str, MockCheckout] = {}
        self._by_key: dict[str, str] = {}
        self._refunds: dict[str, tuple[str, str, int]] = {}  # key -> (refund id, checkout, amount)

    def add(self, checkout: MockCheckout, *, idempotency_key: str) -> MockCheckout:
        with self._lock:
            existing = self._by_key.get(idempotency_key)
            if existing is not None:
                return self._checkouts[existing]
            self._by_key[idempotency_key] = checkout.provider_reference
            self._checkouts[checkout.provider_reference] = checkout
            return checkout

    def get(self, provider_reference: str) -> MockCheckout | None:
        with self._lock:
            return self._checkouts.get(provider_reference)

    def settle(self, provider_reference: str, outcome: ProviderPaymentStatus) -> MockCheckout | None:
        with self._lock:
            checkout = self._checkouts.get(provider_reference)
            if checkout is None or checkout.status in FINAL_OUTCOMES:
                return checkout
            checkout = self._checkouts[provider_reference] = replace(checkout, status=outcome)
            return checkout

    def refund(self, provider_reference: str, amount_minor: int, *, idempotency_key: str) -> str | None:
        with self._lock:
            if idempotency_key in self._refunds:
                return self._refunds[idempotency_key][0]
            checkout = self._checkouts.get(provider_reference)
            if checkout is None or checkout.status != ProviderPaymentStatus.SUCCEEDED:
                return None
            refunded = sum(amount for _, ref, amount in self._refunds.values() if ref == provider_reference)
            if refunded + amount_minor > checkout.amount_minor:
                return None
            refund_id = f"mock_re_{secrets.token_hex(8)}"
            self._refunds[idempotency_key] = (refund_id, provider_reference, amount_minor)
            return refund_id


class RedisMockStore:
    """Checkout JSON under one key, the outcome under another written with SET NX (first outcome wins)."""

    prefix = "paytime:mock:"

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def _run(self, operation: Callable[[], Any]) -> Any:
        try:
            return operation()
        except redis.RedisError as error:
            raise TransientProviderError(f"mock store: {type(error).__name__}") from error

    def add(self, checkout: MockCheckout, *, idempotency_key: str) -> MockCheckout:
        data = json.dumps(asdict(checkout))
        key = f"{self.prefix}checkout:{checkout.provider_reference}"
        # Write the checkout before claiming the idempotency key, so whoever reads the key finds it.
        self._run(lambda: self.client.set(key, data, ex=STORE_TTL_SECONDS))
        claimed = self._run(
            lambda: self.client.set(
                f"{self.prefix}key:{idempotency_key}", checkout.provider_reference, nx=True, ex=STORE_TTL_SECONDS
            )
        )
        if claimed:
            return checkout
        self._run(lambda: self.client.delete(key))
        existing = self._run(lambda: self.client.get(f"{self.prefix}key:{idempotency_key}"))
        found = self.get(existing.decode()) if existing else None
        if found is None:
            raise TransientProviderError("mock store: idempotency key without checkout")
        return found

    def get(self, provider_reference: str) -> MockCheckout | None:
        data, outcome = self._run(
            lambda: self.client.mget(
                f"{self.prefix}checkout:{provider_reference}", f"{self.prefix}outcome:{provider_reference}"
            )
        )
        if data is None:
            return None
        fields = json.loads(data)
        checkout = MockCheckout(
            **{**fields, "currency": Currency(fields["currency"]), "status": ProviderPaymentStatus(fields["status"])}
        )
        return replace(checkout, status=ProviderPaymentStatus(outcome.decode())) if outcome else checkout

    def settle(self, provider_reference: str, outcome: ProviderPaymentStatus) -> MockCheckout | None:
        if self.get(provider_reference) is None:
            return None
        self._run(
            lambda: self.client.set(
                f"{self.prefix}outcome:{provider_reference}", outcome.value, nx=True, ex=STORE_TTL_SECONDS
            )
        )
        return self.get(provider_reference)

    # Checked and recorded in one Lua script, so two refunds racing cannot together exceed the amount.
    _REFUND_SCRIPT = """
    local existing = redis.call('GET', KEYS[1])
    if existing then return existing end
    local refunded = tonumber(redis.call('GET', KEYS[2]) or '0')
    local amount = tonumber(ARGV[1])
    if refunded + amount > tonumber(ARGV[2]) then return false end
    redis.call('SET', KEYS[2], refunded + amount, 'EX', ARGV[4])
    redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
    return ARGV[3]
    """

    def refund(self, provider_reference: str, amount_minor: int, *, idempotency_key: str) -> str | None:
        checkout = self.get(provider_reference)
        if checkout is None or checkout.status != ProviderPaymentStatus.SUCCEEDED:
            existing = self._run(lambda: self.client.get(f"{self.prefix}refund:{idempotency_key}"))
            return existing.decode() if existing else None
        refund_id = f"mock_re_{secrets.token_hex(8)}"
        answer = self._run(
            lambda: self.client.eval(
                self._REFUND_SCRIPT,
                2,
                f"{self.prefix}refund:{idempotency_key}",
                f"{self.prefix}refunded:{provider_reference}",
                amount_minor,
                checkout.amount_minor,
                refund_id,
                STORE_TTL_SECONDS,
            )
        )
        return answer.decode() if isinstance(answer, bytes) else answer


# One store per process when there is no Redis, shared by every MockProvider instance.
_memory_store = MemoryMockStore()


class MockProvider:
    slug: ClassVar[str] = SLUG
    webhook_needs_fetch: ClassVar[bool] = False

    def __init__(
        self,
        *,
        webhook_secret: str,
        base_url: str,
        store: MockStore | None = None,
        clock: Callable[[], float] = time.time,
        policy: RetryPolicy = DEFAULT_POLICY,
    ):
        if not webhook_secret:
            raise ValueError("the mock provider needs a webhook secret")
        self._secret = webhook_secret.encode()
        self.base_url = base_url.rstrip("/")
        self.store: MockStore = store if store is not None else _memory_store
        self.clock = clock
        self.policy = policy

    @classmethod
    def from_settings(cls, settings: Settings) -> MockProvider:
        client = get_redis()
        store: MockStore = RedisMockStore(client) if client is not None else _memory_store
        return cls(webhook_secret=settings.mock_webhook_secret, base_url=settings.base_url, store=store)

    # -- checkout ---------------------------------------------------------------------------------

    def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        """Record a checkout and return our hosted page; the same idempotency key returns the same one."""
        new = MockCheckout(
            provider_reference=f"mock_{secrets.token_hex(12)}",
            reference=request.reference,
            amount_minor=request.amount_minor,
            currency=Currency(request.currency),
            description=request.description,
            return_url=request.return_url,
        )
        checkout = call_provider(
            SLUG,
            "create_checkout",
            lambda: self.store.add(new, idempotency_key=request.idempotency_key),
            idempotent=True,
            policy=self.policy,
        )
        return CheckoutSession(
            provider_reference=checkout.provider_reference,
            checkout_url=f"{self.base_url}/pay/mock/{checkout.provider_reference}",
        )

    def get_checkout(self, provider_reference: str) -> MockCheckout | None:
        """The checkout behind a mock payment page, or None."""
        return call_provider(
            SLUG, "get_checkout", lambda: self.store.get(provider_reference), idempotent=True, policy=self.policy
        )

    def settle_checkout(
        self, *, provider_reference: str, outcome: ProviderPaymentStatus
    ) -> tuple[dict[str, str], bytes]:
        """The payer clicked Pay (SUCCEEDED), Fail (FAILED) or Cancel (CANCELLED); returns the signed webhook.

        The first outcome wins: a second click, or another tab, gets the webhook of the recorded
        outcome. Raises NotFound for an unknown checkout.
        """
        if outcome not in FINAL_OUTCOMES:
            raise ValueError(f"a mock checkout settles as succeeded, failed or cancelled, not {outcome}")
        checkout = call_provider(
            SLUG,
            "settle_checkout",
            lambda: self.store.settle(provider_reference, outcome),
            idempotent=True,
            policy=self.policy,
        )
        if checkout is None:
            raise NotFound("That payment page does not exist.")
        return self.signed_webhook(
            provider_reference=checkout.provider_reference,
            reference=checkout.reference,
            outcome=checkout.status,
            amount_minor=checkout.amount_minor,
            currency=checkout.currency,
        )

    # -- webhooks ---------------------------------------------------------------------------------

    def _sign(self, timestamp: int, body: bytes) -> str:
        return hmac.new(self._secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()

    def signed_webhook(
        self,
        *,
        provider_reference: str,
        reference: str,
        outcome: ProviderPaymentStatus,
        amount_minor: int,
        currency: Currency | str,
        timestamp: int | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """Headers and body of the webhook announcing `outcome`, signed now (or at `timestamp`)."""
        signed_at = int(self.clock()) if timestamp is None else timestamp
        outcome = ProviderPaymentStatus(outcome)
        body = json.dumps(
            {
                # One id per checkout and outcome: a repeated delivery is the same event, deduplicated.
                "id": f"evt_{provider_reference}_{outcome.value}",
                "type": f"payment.{outcome.value}",
                "created": signed_at,
                "data": {
                    "provider_reference": provider_reference,
                    "reference": reference,
                    "status": outcome.value,
                    "amount_minor": amount_minor,
                    "currency": str(currency),
                },
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: f"t={signed_at},v1={self._sign(signed_at, body)}",
        }
        return headers, body

    def parse_webhook(self, *, headers: dict[str, str], raw_body: bytes) -> WebhookEvent:
        """Verify the signature and its timestamp on the raw body, then parse. Raises WebhookRejected."""
        header = {name.lower(): value for name, value in headers.items()}.get(SIGNATURE_HEADER)
        if not header:
            raise WebhookRejected(reason="missing_signature")
        timestamp, signatures = _parse_signature_header(header)
        expected = self._sign(timestamp, raw_body)
        # Every candidate is compared in constant time, so timing says nothing about a near miss.
        if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
            raise WebhookRejected(reason="bad_signature")
        if abs(self.clock() - timestamp) > TOLERANCE_SECONDS:
            raise WebhookRejected(reason="timestamp_out_of_tolerance")
        return _parse_event(raw_body)

    # -- status -----------------------------------------------------------------------------------

    def fetch_payment(self, *, provider_reference: str, reference: str, expected: Money) -> ProviderPayment:
        """What the payer chose on our page; an unknown checkout is PROCESSING. Raises ProviderUnavailable."""
        checkout = self.get_checkout(provider_reference)
        if checkout is None:
            return ProviderPayment(
                provider_reference=provider_reference,
                reference=None,
                status=ProviderPaymentStatus.PROCESSING,
                amount_minor=None,
                currency=None,
            )
        payment = ProviderPayment(
            provider_reference=checkout.provider_reference,
            reference=checkout.reference,
            status=checkout.status,
            amount_minor=checkout.amount_minor,
            currency=checkout.currency,
        )
        return check_payment(payment, reference=reference, expected=expected)

    # -- refunds ----------------------------------------------------------------------------------

    def refund(self, request: RefundRequest) -> ProviderRefund:
        """Refund a paid mock checkout, once per idempotency key, never beyond its amount.

        Raises ProviderRefused (not paid, unknown, or more than is left), ProviderUnavailable.
        """
        refund_id = call_provider(
            SLUG,
            "refund",
            lambda: self.store.refund(
                request.provider_reference, request.amount_minor, idempotency_key=request.idempotency_key
            ),
            idempotent=True,
            policy=self.policy,
        )
        if refund_id is None:
            raise _refund_refused()
        return ProviderRefund(provider_refund_reference=refund_id, status=ProviderRefundStatus.SUCCEEDED)


def _refund_refused() -> ProviderRefused:
    return ProviderRefused(provider=SLUG, reason="refund_not_possible")


def _parse_signature_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            raise WebhookRejected(reason="malformed_signature")
        if name == "t":
            if not value.isascii() or not value.isdigit() or timestamp is not None:
                raise WebhookRejected(reason="malformed_signature")
            timestamp = int(value)
        elif name == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookRejected(reason="malformed_signature")
    return timestamp, signatures


def _parse_event(raw_body: bytes) -> WebhookEvent:
    try:
        event = json.loads(raw_body)
        data = event["data"]
        amount_minor = data["amount_minor"]
        if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
            raise TypeError("amount_minor")
        payment = ProviderPayment(
            provider_reference=str(data["provider_reference"]),
            reference=str(data["reference"]),
            status=ProviderPaymentStatus(data["status"]),
            amount_minor=amount_minor,
            currency=Currency(data["currency"]),
        )
        return WebhookEvent(event_id=str(event["id"]), event_type=str(event["type"]), payment=payment, raw=event)
    except (ValueError, KeyError, TypeError) as error:
        raise WebhookRejected(reason="malformed_body") from error
