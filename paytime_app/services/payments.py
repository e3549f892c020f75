"""Payments collected through providers.

Design overview: a customer's request creates a `payment` row (pending), idempotent per user and
key. The provider is then called outside any database transaction, with an idempotency key derived
from the payment id, and the answer (its reference and checkout URL) is stored: processing. What
happens next reaches us three ways, and all of them go through `apply_provider_report`: a verified
webhook (`ingest_webhook`, the event stored once in the same transaction as its effect), the
customer's "verify" (`verify_payment`), and reconciliation of stuck payments (`reconcile_payments`).
Statuses only move forward; a report that would move a payment backwards, or repeat a move, changes
nothing, so duplicates and any order of events end in the same state. Success credits the wallet
through the ledger in the same transaction, keyed by the payment, so it happens once. A provider that
is down makes the payment fail with `provider_unavailable`; it never becomes "succeeded" unless the
provider said so for exactly our reference, amount and currency.

Refunds (`refund_payment` for admins, `refund_to_payer` for the bookings feature) first reserve
the money in the account the payment credited with a ledger hold, in the caller's transaction, so it
cannot be spent meanwhile; the provider is asked after commit (`complete_refund` at once, and a
durable job as the safety net), with an idempotency key derived from the stored refund, so it
refunds once. Its answer captures the hold to the provider's clearing account (refunded /
partially_refunded) or releases it, and tells the payment's domain (`on_refund_settled`). Every
status change also updates `payment_daily_total` in the same transaction (the dashboard's counts
and sums) and tells open staff dashboards (`STAFF_TOPIC`) once it commits. On PostgreSQL a status
change is one statement (timeline row, the payment's UPDATE, day totals), so a credited webhook
costs four: the payment read with its lock, the event insert, the ledger call and the status change.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, timedelta
from typing import Any, Protocol

import httpx
from sqlalchemy import bindparam, delete, inspect, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, or_, select

from paytime_app.bus import publish_after_commit
from paytime_app.db import (
    for_update,
    insert_values_unless_duplicate,
    is_postgresql,
    unit_of_work,
)
from paytime_app.errors import Conflict, DomainError, NotFound, ServiceUnavailable, ValidationFailed
from paytime_app.models.base import utcnow
from paytime_app.models.ledger import LedgerAccount, LedgerEntry
from paytime_app.models.payments import (
    TOTAL_SHARDS,
    Payment,
    PaymentDailyTotal,
    PaymentPurpose,
    PaymentRefund,
    PaymentStatus,
    PaymentStatusChange,
    ProviderEvent,
    RefundStatus,
)
from paytime_app.models.sessions import SessionKind
from paytime_app.models.users import User
from paytime_app.money import Currency, Money, format_money, parse_currency, require_positive
from paytime_app.services import rate_limits
from paytime_app.services.access import require_payment_manager
from paytime_app.services.audit import record_audit
from paytime_app.services.identifiers import human_reference, request_hash
from paytime_app.services.jobs import enqueue_job, job_handler
from paytime_app.services.ledger import (
    IdempotencyMismatch,
    Posting,
    capture_hold,
    place_hold,
    post_transaction,
    void_hold,
)
from paytime_app.services.paging import page_bounds
from paytime_app.services.providers.base import (
    CheckoutRequest,
    ProviderPayment,
    ProviderPaymentStatus,
    ProviderRefund,
    ProviderRefundStatus,
    ProviderRefused,
    ProviderUnavailable,
    RefundRequest,
    check_payment,
)
from paytime_app.services.providers.mock import MockProvider
from paytime_app.services.providers.registry import PROVIDER_SLUGS, available_providers, get_provider
from paytime_app.services.sessions import authenticate_token
from paytime_app.services.wallets import WalletKind, wallet_address
from paytime_app.settings import get_settings

logger = logging.getLogger("paytime.payments")

MAX_PAYMENT_MINOR = 100_000_000_00  # 100 million in major units: above it, talk to support
RECONCILE_AFTER = timedelta(minutes=10)
RECONCILE_BATCH = 50
# The customer's money is held until the provider answers, so a refund outlives a long outage: the
# backoff caps at an hour, which makes this about four days of asking before it needs staff.
REFUND_ATTEMPTS = 96
PROVIDER_METHODS = {"mock": "mock", "stripe": "card", "monnify": "bank_transfer", "flutterwave": "card"}
# Staff dashboards listen here: every new payment, status change and refund, once committed.
STAFF_TOPIC = "payments.staff"
REFUNDABLE = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED})

# Forward-only: a status may move only along these edges.
TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    PaymentStatus.PENDING: frozenset(
        {PaymentStatus.PROCESSING, PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.CANCELLED}
    ),
    PaymentStatus.PROCESSING: frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.CANCELLED}),
    PaymentStatus.SUCCEEDED: frozenset({PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED}),
    PaymentStatus.PARTIALLY_REFUNDED: frozenset({PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED}),
}
_REPORTED = {
    ProviderPaymentStatus.PENDING: PaymentStatus.PROCESSING,
    ProviderPaymentStatus.PROCESSING: PaymentStatus.PROCESSING,
    ProviderPaymentStatus.SUCCEEDED: PaymentStatus.SUCCEEDED,
    ProviderPaymentStatus.FAILED: PaymentStatus.FAILED,
    ProviderPaymentStatus.CANCELLED: PaymentStatus.CANCELLED,
}
_CREDITED_WALLET = {
    PaymentPurpose.WALLET_TOPUP: WalletKind.PRIMARY,
    PaymentPurpose.CALL_CREDITS: WalletKind.CALL_CREDITS,
    # A booking's money lands in the payer's wallet first; the booking service then pays from it in
    # the same transaction (or, if the seats are gone, leaves it there as the refund).
    PaymentPurpose.BOOKING: WalletKind.PRIMARY,
}
# Purposes customers may start directly; booking payments start from the booking (bookings service).
_DIRECT_PURPOSES = frozenset({PaymentPurpose.WALLET_TOPUP, PaymentPurpose.CALL_CREDITS})


class SuccessHook(Protocol):
    def __call__(self, *, session: Session, payment: Payment) -> None: ...


# purpose -> what else happens, in the same transaction, when a payment for it succeeds.
_SUCCESS_HOOKS: dict[PaymentPurpose, SuccessHook] = {}


def on_payment_succeeded(purpose: PaymentPurpose) -> Callable[[SuccessHook], SuccessHook]:
    """Register what a domain does when a payment for `purpose` succeeds (after the wallet credit)."""

    def register(hook: SuccessHook) -> SuccessHook:
        _SUCCESS_HOOKS[purpose] = hook
        return hook

    return register


class RefundHook(Protocol):
    def __call__(self, *, session: Session, refund: PaymentRefund) -> None: ...


# purpose -> what else happens, in the same transaction, when the provider answers a refund.
_REFUND_HOOKS: dict[PaymentPurpose, RefundHook] = {}


def on_refund_settled(purpose: PaymentPurpose) -> Callable[[RefundHook], RefundHook]:
    """Register what a domain does once a refund of a payment for `purpose` succeeded or failed."""

    def register(hook: RefundHook) -> RefundHook:
        _REFUND_HOOKS[purpose] = hook
        return hook

    return register


class PurposeNotSupported(ValidationFailed):
    code = "purpose_not_supported"
    default_message = "Pay for bookings from the booking page."


class AmountTooLarge(ValidationFailed):
    code = "amount_too_large"
    default_message = "That amount is above the limit for one payment."


class WebhookBusy(ServiceUnavailable):
    code = "webhook_busy"
    default_message = "The payment is being updated; please retry."


class NotRefundable(Conflict):
    code = "not_refundable"
    default_message = "Only a succeeded payment can be refunded."


class RefundExceedsPayment(ValidationFailed):
    code = "refund_exceeds_payment"
    default_message = "That is more than is left to refund on this payment."


# --- creating a payment and its checkout ---------------------------------------------------------


def create_payment(
    *,
    session: Session,
    actor: User,
    purpose: PaymentPurpose,
    amount_minor: int,
    currency: str,
    provider: str,
    idempotency_key: str,
) -> Payment:
    """Record the customer's intent to pay (pending); the same key and request return the same payment.

    Raises InvalidAmount, AmountTooLarge, UnsupportedCurrency, PurposeNotSupported, ValidationFailed
    (unknown_provider), ProviderUnavailable (a known provider not configured or down),
    IdempotencyMismatch (same key, other request), RateLimited.
    """
    amount_minor = require_positive(amount_minor)
    if amount_minor > MAX_PAYMENT_MINOR:
        raise AmountTooLarge()
    parse_currency(currency)
    purpose = PaymentPurpose(purpose)
    if purpose not in _DIRECT_PURPOSES:
        raise PurposeNotSupported()
    return _create_payment(
        session=session,
        actor=actor,
        purpose=purpose,
        amount_minor=amount_minor,
        currency=currency,
        provider=provider,
        idempotency_key=idempotency_key,
    )


def create_booking_payment(
    *, session: Session, actor: User, amount_minor: int, currency: str, provider: str, idempotency_key: str
) -> Payment:
    """A payment for a booking (the bookings service links it and confirms the booking on success).

    Raises what create_payment raises, except PurposeNotSupported.
    """
    return _create_payment(
        session=session,
        actor=actor,
        purpose=PaymentPurpose.BOOKING,
        amount_minor=require_positive(amount_minor),
        currency=currency,
        provider=provider,
        idempotency_key=idempotency_key,
    )


# What the payer's money goes to, as the dashboard's "receiver" column says it.
_RECEIVED_INTO = {
    PaymentPurpose.WALLET_TOPUP: "wallet",
    PaymentPurpose.CALL_CREDITS: "call credits",
    PaymentPurpose.BOOKING: "booking",
}


def _create_payment(
    *,
    session: Session,
    actor: User,
    purpose: PaymentPurpose,
    amount_minor: int,
    currency: str,
    provider: str,
    idempotency_key: str,
) -> Payment:
    if amount_minor > MAX_PAYMENT_MINOR:
        raise AmountTooLarge()
    money_currency = parse_currency(currency)
    if provider not in PROVIDER_SLUGS:
        raise ValidationFailed("Choose one of the payment methods offered.", code="unknown_provider")
    if provider not in available_providers():
        raise ProviderUnavailable(provider=provider)
    fingerprint = request_hash(
        {"purpose": purpose, "amount": amount_minor, "currency": money_currency, "provider": provider}
    )
    existing = session.exec(
        select(Payment).where(Payment.user_id == actor.id, Payment.idempotency_key == idempotency_key)
    ).first()
    if existing is not None:
        if existing.request_hash != fingerprint:
            raise IdempotencyMismatch("That idempotency key was used for a different payment.")
        return existing
    rate_limits.enforce_rate_limit(rate_limits.MONEY_ACTION_PER_USER, f"user:{actor.id}")
    payment = Payment(
        reference=human_reference("PAY", 10),
        user_id=actor.id,
        purpose=purpose,
        provider=provider,
        method=PROVIDER_METHODS[provider],
        amount_minor=amount_minor,
        currency=str(money_currency),
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
        receiver=f"{actor.display_name} ({_RECEIVED_INTO[purpose]})",
    )
    payment.description = _describe(payment)
    payment.search_text = payment_search_text(payment, customer=actor)
    try:
        with session.begin_nested():
            session.add(payment)
            _record_change(session, payment, None, PaymentStatus.PENDING, source="api")
            session.flush()
            _add_to_totals(session, [_total_row(payment, +1)])
    except IntegrityError:
        # Another request with the same key won the race: answer as it did.
        return _create_payment(
            session=session,
            actor=actor,
            purpose=purpose,
            amount_minor=amount_minor,
            currency=currency,
            provider=provider,
            idempotency_key=idempotency_key,
        )
    publish_after_commit(session, STAFF_TOPIC, payment_id=str(payment.id), status=str(payment.status))
    return payment


def payment_search_text(payment: Payment, *, customer: User) -> str:
    """What the dashboard's free-text search looks in, lower-cased in one indexed column."""
    parts = (payment.reference, customer.email, customer.display_name, payment.receiver, payment.description)
    return " ".join(part for part in parts if part).lower()


def open_checkout(*, payment_id: uuid.UUID, return_url: str) -> Payment:
    """Ask the provider for a hosted checkout (outside any transaction) and store where to send the payer.

    A payment that already has a checkout keeps it. If the provider is down or refuses, the payment
    fails with that reason and the error is raised so the payer can choose another method.
    Raises ProviderUnavailable, ProviderRefused.
    """
    with unit_of_work() as session:
        payment = _get(session, payment_id)
        if payment.checkout_url or payment.status != PaymentStatus.PENDING:
            return payment
        user = session.get(User, payment.user_id)
        assert user is not None
        request = CheckoutRequest(
            reference=payment.reference,
            amount_minor=payment.amount_minor,
            currency=Currency(payment.currency),
            customer_email=user.email,
            customer_name=user.display_name,
            description=_describe(payment),
            return_url=return_url,
            idempotency_key=f"paytime:{payment.id}:checkout",
        )
    try:
        checkout = get_provider(payment.provider).create_checkout(request)
    except (ProviderUnavailable, ProviderRefused) as error:
        with unit_of_work() as session:
            payment = _lock(session, payment_id)
            if payment.checkout_url is not None:
                return payment  # another attempt opened it meanwhile: that checkout is live, keep it
            _move(session, payment, PaymentStatus.FAILED, source="api", reason=error.code)
        raise
    with unit_of_work() as session:
        payment = _lock(session, payment_id)
        if payment.checkout_url is None:
            payment.provider_reference = checkout.provider_reference
            payment.checkout_url = checkout.checkout_url
            _move(session, payment, PaymentStatus.PROCESSING, source="api", reason="checkout_opened")
        return payment


def _describe(payment: Payment) -> str:
    what = {
        PaymentPurpose.WALLET_TOPUP: "Wallet top-up",
        PaymentPurpose.CALL_CREDITS: "Call credits",
        PaymentPurpose.BOOKING: "Booking",
    }[PaymentPurpose(payment.purpose)]
    return f"{what} {format_money(payment.amount_minor, payment.currency)} ({payment.reference})"


# --- what providers tell us -----------------------------------------------------------------------


def apply_provider_report(*, session: Session, payment: Payment, report: ProviderPayment, source: str) -> Payment:
    """Move a (locked) payment as far forward as the provider's report allows; credit on success, once."""
    report = check_payment(
        report, reference=payment.reference, expected=Money(payment.amount_minor, Currency(payment.currency))
    )
    target = _REPORTED[report.status]
    if target not in TRANSITIONS.get(PaymentStatus(payment.status), frozenset()):
        return payment  # a duplicate, or an event arriving after a later one: nothing to do
    if payment.provider_reference is None:
        payment.provider_reference = report.provider_reference
    if target == PaymentStatus.SUCCEEDED:
        credited = post_transaction(
            session=session,
            postings=[
                Posting(
                    f"provider:{payment.provider}:clearing",
                    wallet_address(payment.user_id, _CREDITED_WALLET[PaymentPurpose(payment.purpose)]),
                    payment.amount_minor,
                    Currency(payment.currency),
                )
            ],
            kind=str(payment.purpose),
            idempotency_key=f"payment:{payment.id}:credit",
            description=_describe(payment),
            metadata={"payment_id": str(payment.id)},
        )
        payment.ledger_transaction_id = credited.id
    _move(session, payment, target, source=source, reason=report.failure_reason)
    hook = _SUCCESS_HOOKS.get(PaymentPurpose(payment.purpose))
    if target == PaymentStatus.SUCCEEDED and hook is not None:
        hook(session=session, payment=payment)
    return payment


@dataclass(frozen=True)
class WebhookOutcome:
    status: str  # processed | duplicate | ignored
    payment_reference: str | None = None


def ingest_webhook(*, provider: str, headers: dict[str, str], raw_body: bytes) -> WebhookOutcome:
    """Verify a webhook on its raw body, then store it once together with its effect.

    A rejected webhook writes nothing. Raises NotFound (unknown provider), WebhookRejected,
    ProviderUnavailable (a provider whose webhooks must be confirmed is unreachable: retry later),
    WebhookBusy (the payment is locked: retry later).
    """
    try:
        adapter = get_provider(provider)
    except ProviderUnavailable:
        raise NotFound("No such payment provider.") from None
    event = adapter.parse_webhook(headers=headers, raw_body=raw_body)
    report = event.payment
    if report is not None and adapter.webhook_needs_fetch:
        with unit_of_work() as session:
            payment = _find_for_report(session, provider, report)
            expected = Money(payment.amount_minor, Currency(payment.currency)) if payment else None
            reference = payment.reference if payment else ""
        if expected is not None:
            report = adapter.fetch_payment(
                provider_reference=report.provider_reference, reference=reference, expected=expected
            )
    try:
        with unit_of_work() as session:
            # The payment is locked before the event is stored, so that a duplicate delivered at the
            # same moment waits here and then finds the event stored, never half-applied.
            payment = _find_for_report(session, provider, report, lock=True) if report is not None else None
            stored = {
                "id": uuid.uuid4(),
                "created_at": utcnow(),
                "provider": provider,
                "event_id": event.event_id,
                "event_type": event.event_type,
                "payload": event.raw,
                "payment_id": payment.id if payment else None,
            }
            if not insert_values_unless_duplicate(session, _PROVIDER_EVENT, stored):
                return WebhookOutcome(status="duplicate")
            if report is None:
                return WebhookOutcome(status="ignored")
            if payment is None:
                logger.warning(
                    "webhook for an unknown payment", extra={"provider": provider, "event_id": event.event_id}
                )
                return WebhookOutcome(status="ignored")
            apply_provider_report(session=session, payment=payment, report=report, source="webhook")
            return WebhookOutcome(status="processed", payment_reference=payment.reference)
    except OperationalError as error:
        logger.warning("webhook could not lock its payment", exc_info=error)
        raise WebhookBusy() from None


def _find_for_report(session: Session, provider: str, report: ProviderPayment, *, lock: bool = False) -> Payment | None:
    statement = _report_lookup(by_reference=bool(report.reference), lock=lock)
    params = {"provider": provider, "provider_reference": report.provider_reference, "reference": report.reference}
    return session.exec(statement, params=params).first()


@functools.cache
def _report_lookup(*, by_reference: bool, lock: bool) -> Any:
    """The payment a provider's report is about, by their reference or ours; built once, like a prepared statement."""
    matches = col(Payment.provider_reference) == bindparam("provider_reference")
    if by_reference:
        matches = or_(matches, col(Payment.reference) == bindparam("reference"))
    statement = select(Payment).where(Payment.provider == bindparam("provider"), matches)
    return for_update(statement) if lock else statement


def verify_payment(*, token: str | None, kind: SessionKind, payment_id: uuid.UUID) -> Payment:
    """The payer's "verify": ask the provider now, never trusting the client.

    Raises SessionExpired, NotFound (not the payer's payment), ProviderUnavailable.
    """
    with unit_of_work() as session:
        actor, _ = authenticate_token(session=session, token=token, kind=kind)
        payment = get_payment(session=session, actor=actor, payment_id=payment_id)
    return _refresh_from_provider(payment, source="verify")


def _refresh_from_provider(payment: Payment, *, source: str) -> Payment:
    if payment.provider_reference is None or PaymentStatus(payment.status) not in (
        PaymentStatus.PENDING,
        PaymentStatus.PROCESSING,
    ):
        return payment
    report = get_provider(payment.provider).fetch_payment(
        provider_reference=payment.provider_reference,
        reference=payment.reference,
        expected=Money(payment.amount_minor, Currency(payment.currency)),
    )
    with unit_of_work() as session:
        locked = _lock(session, payment.id)
        return apply_provider_report(session=session, payment=locked, report=report, source=source)


def reconcile_payments(*, older_than: timedelta = RECONCILE_AFTER, limit: int = RECONCILE_BATCH) -> int:
    """Ask providers about payments stuck in processing; running it twice changes nothing more."""
    cutoff = utcnow() - older_than
    with unit_of_work() as session:
        stuck = list(
            session.exec(
                select(Payment)
                .where(
                    Payment.status == PaymentStatus.PROCESSING,
                    col(Payment.updated_at) < cutoff,
                    col(Payment.provider_reference).is_not(None),
                )
                .order_by(col(Payment.updated_at))
                .limit(limit)
            ).all()
        )
    settled = 0
    for payment in stuck:
        try:
            after = _refresh_from_provider(payment, source="reconcile")
        except DomainError as error:
            logger.warning(
                "reconciliation could not ask the provider", extra={"payment": payment.reference, "code": error.code}
            )
            continue
        settled += after.status != PaymentStatus.PROCESSING
    return settled


@job_handler("payments.reconcile")
def reconcile_job(*, session: Session, payload: dict[str, object]) -> None:  # noqa: ARG001  job interface
    """Reconcile now, and book the next run (one per slot, however many workers book it).

    Reconciliation opens its own transactions (providers are asked between them), so the job's own
    is committed first (the lease still holds the job): on SQLite, a second writer waited on it until
    the busy timeout and the whole app stalled.
    """
    session.commit()
    reconcile_payments()
    schedule_reconciliation(session=session)


@job_handler("payments.reconcile_one")
def reconcile_one_job(*, session: Session, payload: dict[str, object]) -> None:
    """An admin sent one stuck payment to reconciliation: ask its provider now.

    The provider is asked outside any transaction (`_refresh_from_provider`), so the job's own is
    committed first (the lease still holds the job): a slow provider must hold no lock meanwhile.
    """
    payment = session.get(Payment, uuid.UUID(str(payload["payment_id"])))
    session.commit()
    if payment is not None:
        _refresh_from_provider(payment, source="reconcile")


def schedule_reconciliation(*, session: Session) -> None:
    """Book the next reconciliation run five minutes from now (deduplicated per five-minute slot)."""
    next_run = utcnow() + timedelta(minutes=5)
    slot = int(next_run.timestamp()) // 300
    enqueue_job(
        session=session,
        kind="payments.reconcile",
        payload={},
        run_at=next_run,
        dedupe_key=f"payments.reconcile:{slot}",
        max_attempts=3,
    )


# --- reading ----------------------------------------------------------------------------------------


def get_payment(*, session: Session, actor: User, payment_id: uuid.UUID) -> Payment:
    """One of the actor's payments; anyone else's looks missing. Raises NotFound."""
    payment = session.get(Payment, payment_id)
    if payment is None or payment.user_id != actor.id:
        raise NotFound("That payment does not exist.")
    return payment


def list_own_payments(*, session: Session, actor: User, page: int = 1, page_size: int = 20) -> list[Payment]:
    page, page_size = page_bounds(page, page_size)
    return list(
        session.exec(
            select(Payment)
            .where(Payment.user_id == actor.id)
            .order_by(col(Payment.created_at).desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        ).all()
    )


def list_status_changes(*, session: Session, payment: Payment) -> list[PaymentStatusChange]:
    return list(
        session.exec(
            select(PaymentStatusChange)
            .where(PaymentStatusChange.payment_id == payment.id)
            .order_by(col(PaymentStatusChange.created_at))
        ).all()
    )


# --- helpers ---------------------------------------------------------------------------------------


def _get(session: Session, payment_id: uuid.UUID) -> Payment:
    payment = session.get(Payment, payment_id)
    if payment is None:
        raise NotFound("That payment does not exist.")
    return payment


def _lock(session: Session, payment_id: uuid.UUID) -> Payment:
    payment = session.exec(for_update(select(Payment).where(Payment.id == payment_id))).first()
    if payment is None:
        raise NotFound("That payment does not exist.")
    return payment


def _move(
    session: Session,
    payment: Payment,
    target: PaymentStatus,
    *,
    source: str,
    reason: str | None,
    refunded_delta: int = 0,
) -> None:
    if target not in TRANSITIONS.get(PaymentStatus(payment.status), frozenset()):
        return
    before = _total_row(payment, -1)
    change = _change_row(payment, PaymentStatus(payment.status), target, source=source, reason=reason)
    payment.status = target
    payment.updated_at = utcnow()
    payment.refunded_minor += refunded_delta
    if target == PaymentStatus.FAILED:
        payment.failure_reason = (reason or "failed")[:200]
    _write_change(session, payment, change, [before, _total_row(payment, +1)])
    publish_after_commit(
        session, "payment.updated", user_id=str(payment.user_id), payment_id=str(payment.id), status=str(target)
    )
    publish_after_commit(session, STAFF_TOPIC, payment_id=str(payment.id), status=str(target))


_TOTAL_KEY = ("day", "currency", "status", "provider", "method", "purpose", "failure_reason", "shard")
_TOTAL_SUMS = ("count", "amount_minor", "refunded_minor")
_CHANGE_COLUMNS = ("id", "created_at", "payment_id", "from_status", "to_status", "source", "reason")
_DAILY_TOTAL: Any = PaymentDailyTotal.__table__  # type: ignore[attr-defined]
_STATUS_CHANGE: Any = PaymentStatusChange.__table__  # type: ignore[attr-defined]
_PROVIDER_EVENT: Any = ProviderEvent.__table__  # type: ignore[attr-defined]
_PAYMENT: Any = Payment.__table__  # type: ignore[attr-defined]
# What a status change (and the report that caused it) sets on a payment.
_MOVED_COLUMNS = (
    "status",
    "updated_at",
    "refunded_minor",
    "failure_reason",
    "ledger_transaction_id",
    "provider_reference",
)


def _total_row(payment: Payment, sign: int) -> dict[str, Any]:
    """The payment as it now stands, as a row to add (+1) to or take away (-1) from its day's totals."""
    return {
        "day": payment.created_at.astimezone(UTC).date(),
        "currency": payment.currency,
        "status": str(payment.status),
        "provider": payment.provider,
        "method": payment.method,
        "purpose": str(payment.purpose),
        "failure_reason": payment.failure_reason or "",
        "shard": payment.id.int % TOTAL_SHARDS,
        "count": sign,
        "amount_minor": sign * payment.amount_minor,
        "refunded_minor": sign * payment.refunded_minor,
    }


# The day totals take one or two rows at a time (the payment's old status out, its new one in). A
# multi-row INSERT built with SQLAlchemy's `values([...])` is compiled again at every execution (it
# has no cache key), which cost more than the round trip it saves; the same statement as text is
# compiled once per row count.
_TOTAL_COLUMNS = ("id", "created_at", *_TOTAL_KEY, *_TOTAL_SUMS)


def _values_sql(table: Any, columns: tuple[str, ...], *, rows: int, prefix: str = "") -> tuple[str, list[Any]]:
    """`INSERT INTO table (columns) VALUES (...), ...` for `rows` rows, bound as `<prefix><column>_<row>`."""
    values = ", ".join("(" + ", ".join(f":{prefix}{name}_{row}" for name in columns) + ")" for row in range(rows))
    binds = [bindparam(f"{prefix}{name}_{row}", type_=table.c[name].type) for row in range(rows) for name in columns]
    # Names are our own table's and columns'; every value is a bound parameter.
    return f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES {values}", binds  # noqa: S608


@functools.cache
def _totals_sql(rows: int) -> tuple[str, tuple[Any, ...]]:
    insert_sql, binds = _values_sql(_DAILY_TOTAL, _TOTAL_COLUMNS, rows=rows)
    sums = ", ".join(f"{name} = {_DAILY_TOTAL.name}.{name} + excluded.{name}" for name in _TOTAL_SUMS)
    return f"{insert_sql} ON CONFLICT ({', '.join(_TOTAL_KEY)}) DO UPDATE SET {sums}", tuple(binds)


@functools.cache
def _totals_upsert(rows: int) -> Any:
    """Add `rows` rows to the day totals: one multi-row INSERT ... ON CONFLICT (both dialects have it)."""
    sql, binds = _totals_sql(rows)
    return text(sql).bindparams(*binds)


@functools.cache
def _change_with_totals(rows: int, payment_columns: tuple[str, ...]) -> Any:
    """PostgreSQL: a status change in one statement (one round trip): the timeline row, the day totals
    and, when `payment_columns` are given, the payment's UPDATE of those columns."""
    change_sql, binds = _values_sql(_STATUS_CHANGE, _CHANGE_COLUMNS, rows=1, prefix="change_")
    ctes = [f"status_change AS ({change_sql})"]
    if payment_columns:
        assignments = ", ".join(f"{name} = :payment_{name}" for name in payment_columns)
        ctes.append(f"moved AS (UPDATE {_PAYMENT.name} SET {assignments} WHERE id = :payment_id)")  # noqa: S608
        binds += [bindparam(f"payment_{name}", type_=_PAYMENT.c[name].type) for name in ("id", *payment_columns)]
    totals_sql, totals_binds = _totals_sql(rows)
    return text(f"WITH {', '.join(ctes)} {totals_sql}").bindparams(*binds, *totals_binds)


def _total_params(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows for the day totals as `_totals_upsert` binds them; rows for the same key (a second partial
    refund) are summed first, since one statement may touch a row only once."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[name] for name in _TOTAL_KEY)
        if key in merged:
            for name in _TOTAL_SUMS:
                merged[key][name] += row[name]
        else:
            merged[key] = dict(row)
    now = utcnow()
    params: dict[str, Any] = {}
    for number, row in enumerate(merged.values()):
        params.update({f"{name}_{number}": value for name, value in row.items()})
        params[f"id_{number}"] = uuid.uuid4()
        params[f"created_at_{number}"] = now
    params["rows"] = len(merged)
    return params


def _add_to_totals(session: Session, rows: list[dict[str, Any]]) -> None:
    """Add rows to the day totals in one upsert, in this transaction.

    On the totals' unique key, in the payment's own shard: only payments of one day that share a
    shard serialise on a row for the rest of their transaction, and statuses move forward only, so
    two transactions never take the same pair of rows in opposite orders.
    """
    params = _total_params(rows)
    # On the connection, not the session: no autoflush sends the payment's pending UPDATE before it.
    connection = session.connection()
    connection.execute(_totals_upsert(params.pop("rows")), params)


def _write_change(session: Session, payment: Payment, change: dict[str, Any], totals: list[dict[str, Any]]) -> None:
    """Write a status change's timeline row and add it to the day totals; on PostgreSQL in one statement
    that also UPDATEs the payment's changed columns (instead of a unit-of-work flush at commit)."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        connection.execute(_STATUS_CHANGE.insert(), change)
        _add_to_totals(session, totals)
        return
    params = _total_params(totals)
    params.update({f"change_{name}_0": value for name, value in change.items()})
    columns = _columns_to_write_now(payment)
    if columns:
        params.update({f"payment_{name}": getattr(payment, name) for name in columns}, payment_id=payment.id)
    connection.execute(_change_with_totals(params.pop("rows"), columns), params)
    for name in columns:
        # The row holds these values now: the ORM must not UPDATE them again at commit.
        set_committed_value(payment, name, params[f"payment_{name}"])


def _columns_to_write_now(payment: Payment) -> tuple[str, ...]:
    """Which of the columns a status change sets have changed on the (locked, loaded) payment.

    Marking them committed leaves the payment flagged as modified, so a rollback (of a savepoint
    too) still expires it and it reloads what its row holds; any other changed column is flushed by
    the ORM at commit, as before.
    """
    state = inspect(payment)
    if not state.persistent:
        return ()
    return tuple(name for name in _MOVED_COLUMNS if state.attrs[name].history.has_changes())


def _change_row(
    payment: Payment, before: PaymentStatus | None, after: PaymentStatus, *, source: str, reason: str | None
) -> dict[str, Any]:
    """A `payment_status_change` row as column values (written with Core: no model instance to build)."""
    return {
        "id": uuid.uuid4(),
        "created_at": utcnow(),
        "payment_id": payment.id,
        "from_status": before,
        "to_status": after,
        "source": source,
        "reason": (reason or None) and reason[:200],
    }


def _record_change(
    session: Session,
    payment: Payment,
    before: PaymentStatus | None,
    after: PaymentStatus,
    *,
    source: str,
    reason: str | None = None,
) -> None:
    """Add a new payment's first timeline row to the session (flushed after the payment it points to)."""
    session.add(PaymentStatusChange(**_change_row(payment, before, after, source=source, reason=reason)))


def default_return_url() -> str:
    return f"{get_settings().base_url}/wallet"


def start_checkout(
    *,
    token: str | None,
    kind: SessionKind,
    purpose: PaymentPurpose,
    amount_minor: int,
    currency: str,
    provider: str,
    idempotency_key: str,
    return_url: str,
) -> Payment:
    """What a payer's "Pay" does: record the payment as the signed-in user, then open its checkout.

    Raises what create_payment and open_checkout raise.
    """
    with unit_of_work() as session:
        actor, _ = authenticate_token(session=session, token=token, kind=kind)
        payment = create_payment(
            session=session,
            actor=actor,
            purpose=purpose,
            amount_minor=amount_minor,
            currency=currency,
            provider=provider,
            idempotency_key=idempotency_key,
        )
    return open_checkout(payment_id=payment.id, return_url=return_url)


def rebuild_daily_totals(*, session: Session) -> int:
    """Recompute `payment_daily_total` from the payments (after bulk loads); returns the rows written."""
    session.execute(delete(PaymentDailyTotal))
    if is_postgresql(session):
        day, new_id = "CAST(created_at AT TIME ZONE 'UTC' AS DATE)", "gen_random_uuid()"
    else:
        day, new_id = "date(created_at)", "lower(hex(randomblob(16)))"
    written = session.execute(
        text(
            "INSERT INTO payment_daily_total (id, created_at, day, currency, status, provider, method, purpose,"  # noqa: S608
            " failure_reason, count, amount_minor, refunded_minor)"
            f" SELECT {new_id}, CURRENT_TIMESTAMP, d, currency, status, provider, method, purpose, fr, n, a, r FROM"
            f" (SELECT {day} AS d, currency, status, provider, method, purpose, coalesce(failure_reason, '') AS fr,"
            " count(*) AS n, sum(amount_minor) AS a, sum(refunded_minor) AS r FROM payment"
            f" GROUP BY {day}, currency, status, provider, method, purpose, coalesce(failure_reason, '')) AS grouped"
        )
    )
    return int(written.rowcount or 0)


# --- refunds ------------------------------------------------------------------------------------------


def refund_payment(
    *,
    session: Session,
    actor: User,
    payment_id: uuid.UUID,
    amount_minor: int,
    reason: str,
    idempotency_key: str,
) -> PaymentRefund:
    """Refund part or all of a succeeded payment through its provider, once per idempotency key.

    Reserves the amount (a ledger hold on the account the payment credited) and books the provider
    call; `complete_refund` (or its job) finishes it. Same key and request: the first refund.
    Raises PermissionDenied (not an admin), NotFound, InvalidAmount, NotRefundable (not succeeded),
    RefundExceedsPayment, InsufficientFunds (the customer spent it), IdempotencyMismatch.
    """
    require_payment_manager(actor)
    return _request_refund(
        session=session,
        actor=actor,
        payment_id=payment_id,
        amount_minor=amount_minor,
        reason=reason,
        idempotency_key=idempotency_key,
    )


def refund_to_payer(
    *, session: Session, payment_id: uuid.UUID, amount_minor: int, reason: str, idempotency_key: str
) -> PaymentRefund:
    """A domain's own refund, with no staff member behind it (a booking that could not use its payment,
    cancelled tickets): exactly `refund_payment` otherwise, so the provider is asked once, by the job.

    Raises what refund_payment raises, except PermissionDenied.
    """
    return _request_refund(
        session=session,
        actor=None,
        payment_id=payment_id,
        amount_minor=amount_minor,
        reason=reason,
        idempotency_key=idempotency_key,
    )


def _request_refund(
    *,
    session: Session,
    actor: User | None,
    payment_id: uuid.UUID,
    amount_minor: int,
    reason: str,
    idempotency_key: str,
) -> PaymentRefund:
    amount_minor = require_positive(amount_minor)
    reason = (reason or "").strip()[:200]
    payment = _lock(session, payment_id)
    fingerprint = request_hash({"payment": str(payment.id), "amount": amount_minor, "reason": reason})
    existing = session.exec(
        select(PaymentRefund).where(
            PaymentRefund.payment_id == payment.id, PaymentRefund.idempotency_key == idempotency_key
        )
    ).first()
    if existing is not None:
        if existing.request_hash != fingerprint:
            raise IdempotencyMismatch("That idempotency key was used for a different refund.")
        return existing
    if PaymentStatus(payment.status) not in REFUNDABLE:
        raise NotRefundable(status=str(payment.status))
    if payment.provider not in available_providers():
        raise NotRefundable(f"Refunds through {payment.provider} are not configured here.", provider=payment.provider)
    committed = _committed_refunds(session, payment)
    if committed + amount_minor > payment.amount_minor:
        raise RefundExceedsPayment(refundable_minor=payment.amount_minor - committed)
    refund = PaymentRefund(
        payment_id=payment.id,
        actor_id=actor.id if actor else None,
        amount_minor=amount_minor,
        currency=payment.currency,
        reason=reason,
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
    )
    hold = place_hold(
        session=session,
        address=_credited_address(session, payment),
        currency=Currency(payment.currency),
        amount_minor=amount_minor,
        expires_at=None,
        idempotency_key=f"refund:{refund.id}:hold",
        kind="refund",
        description=f"Refund of {payment.reference}",
    )
    refund.hold_id = hold.id
    session.add(refund)
    record_audit(
        session=session,
        action="payment.refund_requested",
        actor=actor,
        target_type="payment",
        target_id=payment.id,
        data={
            "reference": payment.reference,
            "amount_minor": amount_minor,
            "currency": payment.currency,
            "reason": reason,
        },
    )
    enqueue_job(
        session=session,
        kind="payments.refund",
        payload={"refund_id": str(refund.id)},
        dedupe_key=f"payments.refund:{refund.id}",
        max_attempts=REFUND_ATTEMPTS,
    )
    publish_after_commit(session, STAFF_TOPIC, payment_id=str(payment.id), status=str(payment.status))
    return refund


def complete_refund(*, refund_id: uuid.UUID) -> PaymentRefund:
    """Ask the provider for a pending refund (outside any transaction), then book its answer.

    Raises NotFound, ProviderUnavailable (the refund stays pending; its job retries with the same key).
    """
    with unit_of_work() as session:
        refund, request, provider = _refund_request(session, refund_id)
    if request is None:
        return refund
    answer = _ask_refund(provider, request)
    with unit_of_work() as session:
        return _settle_refund(session, refund_id, answer)


@job_handler("payments.refund")
def refund_job(*, session: Session, payload: dict[str, object]) -> None:
    """The safety net for `complete_refund`: retried with backoff while the provider is unreachable.

    `complete_refund` asks the provider outside any transaction, so the job's own is committed first
    (the lease still holds the job): a slow provider must hold no lock meanwhile.
    """
    session.commit()
    complete_refund(refund_id=uuid.UUID(str(payload["refund_id"])))


def list_refunds(*, session: Session, payment: Payment) -> list[PaymentRefund]:
    return list(
        session.exec(
            select(PaymentRefund).where(PaymentRefund.payment_id == payment.id).order_by(col(PaymentRefund.created_at))
        ).all()
    )


def _committed_refunds(session: Session, payment: Payment) -> int:
    return sum(
        refund.amount_minor
        for refund in list_refunds(session=session, payment=payment)
        if refund.status != RefundStatus.FAILED
    )


def _credited_address(session: Session, payment: Payment) -> str:
    """The one account (not a provider's clearing) that the payment's ledger transaction credited."""
    if payment.ledger_transaction_id is None:
        raise NotRefundable("This payment never credited anything.")
    credited = session.exec(
        select(LedgerAccount.address)
        .join(LedgerEntry, col(LedgerEntry.account_id) == LedgerAccount.id)
        .where(LedgerEntry.transaction_id == payment.ledger_transaction_id, col(LedgerEntry.amount_minor) > 0)
    ).all()
    targets = sorted({address for address in credited if not address.startswith("provider:")})
    if len(targets) != 1:
        raise NotRefundable("This payment was split between accounts; refund it from its own feature.")
    return targets[0]


def _refund_request(session: Session, refund_id: uuid.UUID) -> tuple[PaymentRefund, RefundRequest | None, str]:
    refund = session.get(PaymentRefund, refund_id)
    if refund is None:
        raise NotFound("That refund does not exist.")
    payment = _get(session, refund.payment_id)
    if refund.status != RefundStatus.PENDING:
        return refund, None, payment.provider
    request = RefundRequest(
        provider_reference=payment.provider_reference or payment.reference,
        reference=payment.reference,
        refund_reference=f"RF-{refund.id.hex[:20].upper()}",
        amount_minor=refund.amount_minor,
        currency=Currency(refund.currency),
        reason=refund.reason,
        idempotency_key=f"paytime:{refund.id}:refund",
    )
    return refund, request, payment.provider


def _ask_refund(provider: str, request: RefundRequest) -> ProviderRefund:
    try:
        return get_provider(provider).refund(request)
    except ProviderRefused as error:
        detail = str(error.details.get("reason") or error.details.get("provider_code") or error.code)
        return ProviderRefund(provider_refund_reference="", status=ProviderRefundStatus.FAILED, failure_reason=detail)


def _settle_refund(session: Session, refund_id: uuid.UUID, answer: ProviderRefund) -> PaymentRefund:
    """Book the provider's answer once: capture the hold (refunded) or release it (failed)."""
    refund = session.exec(for_update(select(PaymentRefund).where(PaymentRefund.id == refund_id))).one()
    if refund.status != RefundStatus.PENDING:
        return refund  # the job and the inline call raced; the first one booked it
    payment = _lock(session, refund.payment_id)
    assert refund.hold_id is not None
    refund.updated_at = utcnow()
    refund.provider_reference = answer.provider_refund_reference or None
    if answer.status is ProviderRefundStatus.FAILED:
        void_hold(session=session, hold_id=refund.hold_id, idempotency_key=f"refund:{refund.id}:release")
        refund.status = RefundStatus.FAILED
        refund.failure_reason = (answer.failure_reason or "refused")[:200]
        action = "payment.refund_failed"
        publish_after_commit(session, STAFF_TOPIC, payment_id=str(payment.id), status=str(payment.status))
    else:
        captured = capture_hold(
            session=session,
            hold_id=refund.hold_id,
            amount_minor=refund.amount_minor,
            destination=f"provider:{payment.provider}:clearing",
            idempotency_key=f"refund:{refund.id}:capture",
            description=f"Refund of {payment.reference}",
            metadata={"payment_id": str(payment.id), "refund_id": str(refund.id)},
        )
        refund.ledger_transaction_id = captured.id
        refund.status = RefundStatus.SUCCEEDED
        fully = payment.refunded_minor + refund.amount_minor >= payment.amount_minor
        _move(
            session,
            payment,
            PaymentStatus.REFUNDED if fully else PaymentStatus.PARTIALLY_REFUNDED,
            source="refund",
            reason=refund.reason or None,
            refunded_delta=refund.amount_minor,
        )
        action = "payment.refunded"
    record_audit(
        session=session,
        action=action,
        actor=session.get(User, refund.actor_id) if refund.actor_id else None,
        target_type="payment",
        target_id=payment.id,
        data={"reference": payment.reference, "amount_minor": refund.amount_minor, "refund_id": str(refund.id)},
    )
    hook = _REFUND_HOOKS.get(PaymentPurpose(payment.purpose))
    if hook is not None:
        hook(session=session, refund=refund)
    return refund


# --- the mock provider's hosted page ---------------------------------------------------------------


@dataclass(frozen=True)
class MockCheckoutView:
    provider_reference: str
    reference: str
    amount_minor: int
    currency: Currency
    description: str
    return_url: str
    settled: bool


def describe_mock_checkout(*, provider_reference: str) -> MockCheckoutView:
    """What the mock's payment page shows. Raises NotFound."""
    checkout = _mock().get_checkout(provider_reference)
    if checkout is None:
        raise NotFound("That payment page does not exist or has expired.")
    return MockCheckoutView(
        provider_reference=checkout.provider_reference,
        reference=checkout.reference,
        amount_minor=checkout.amount_minor,
        currency=checkout.currency,
        description=checkout.description,
        return_url=checkout.return_url,
        settled=checkout.status
        in (ProviderPaymentStatus.SUCCEEDED, ProviderPaymentStatus.FAILED, ProviderPaymentStatus.CANCELLED),
    )


def complete_mock_checkout(*, provider_reference: str, outcome: ProviderPaymentStatus) -> str:
    """The payer's click on the mock page: the mock records it and delivers its signed webhook to our
    webhook route over HTTP, exactly as a real provider would; returns where to send the payer.

    If the delivery fails the payment stays processing until "verify" or reconciliation asks the mock.
    Raises NotFound.
    """
    headers, body = _mock().settle_checkout(provider_reference=provider_reference, outcome=outcome)
    checkout = describe_mock_checkout(provider_reference=provider_reference)
    try:
        response = httpx.post(f"{get_settings().base_url}/api/webhooks/mock", headers=headers, content=body, timeout=10)
        response.raise_for_status()
    except httpx.HTTPError:
        logger.warning("the mock could not deliver its webhook", extra={"payment": checkout.reference})
    return checkout.return_url


def _mock() -> MockProvider:
    provider = get_provider("mock")
    assert isinstance(provider, MockProvider)
    return provider
