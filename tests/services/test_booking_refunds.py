"""Booking money back through the provider it came from, on SQLite and PostgreSQL: late payments
(seats gone, booking cancelled), cancellations by the customer and by the organizer, a provider that
is down then up, a provider that refuses, and the refund job run twice. The ledger is checked after
every test (the autouse fixture imported from test_bookings)."""

# ruff: noqa: F811  the fixtures imported from test_bookings are requested by name, as arguments

from collections.abc import Callable
from datetime import timedelta

from sqlmodel import select

from paytime_app.db import in_transaction, unit_of_work
from paytime_app.models.base import utcnow
from paytime_app.models.bookings import BookingRefund, BookingStatus
from paytime_app.models.jobs import Job, JobStatus
from paytime_app.models.payments import Payment, PaymentRefund, PaymentStatus, RefundStatus
from paytime_app.services import payments
from paytime_app.services.bookings import FEES_ADDRESS, cancel_booking
from paytime_app.services.events import cancel_event
from paytime_app.services.jobs import run_due_jobs
from paytime_app.services.notifications import list_notifications
from paytime_app.services.providers.base import ProviderRefused, ProviderUnavailable
from paytime_app.services.providers.registry import get_provider
from paytime_app.services.wallets import WalletKind, wallet_address
from tests.helpers import writers_can_proceed
from tests.services.test_bookings import (  # noqa: F401  fixtures are used by name
    START,
    _closed_breakers,
    _ledger_stays_consistent,
    balance,
    book,
    buyer,
    clock,
    counters,
    new_event,
    organizer,
    pay_by_card,
    person,
    reload,
    settle_by_webhook,
    tickets_of,
)

CLEARING = "provider:mock:clearing"


def card_paid_booking(organizer, email="card@example.com", quantity=2):
    buyer = person(email)
    event, ticket_type = new_event(organizer)
    booking = book(buyer, event, ticket_type, quantity)
    payment = pay_by_card(buyer, booking)
    settle_by_webhook(payment)
    assert reload(booking).status == BookingStatus.CONFIRMED
    return buyer, event, ticket_type, booking, payment


def drain() -> None:
    """Run due jobs until none is left (a refund's answer books the booking's side as a further job)."""
    while run_due_jobs(worker_id="test"):
        pass


def seats_gone_before_payment(organizer, clock):
    """A card payment opened for the last seat, which someone else takes after the hold expired."""
    buyer = person("card@example.com")
    event, ticket_type = new_event(organizer, capacity=1)
    booking = book(buyer, event, ticket_type, 1)
    payment = pay_by_card(buyer, booking)
    clock.shift(timedelta(minutes=16))
    book(person("ben@example.com"), event, ticket_type, 1)
    return buyer, ticket_type, booking, payment


def payment_row(payment) -> Payment:
    with unit_of_work() as session:
        return session.get(Payment, payment.id)


def refunds_of(payment) -> list[PaymentRefund]:
    with unit_of_work() as session:
        return list(session.exec(select(PaymentRefund).where(PaymentRefund.payment_id == payment.id)).all())


def booking_refunds(booking) -> list[BookingRefund]:
    with unit_of_work() as session:
        return list(session.exec(select(BookingRefund).where(BookingRefund.booking_id == booking.id)).all())


def notification_kinds(user) -> list[str]:
    with unit_of_work() as session:
        return sorted(n.kind for n in list_notifications(session=session, actor=user))


def refund_jobs() -> list[Job]:
    with unit_of_work() as session:
        return list(session.exec(select(Job).where(Job.kind == "payments.refund")).all())


def counting_refunds(monkeypatch) -> list:
    """Count what reaches the mock provider's refund call (it still refunds)."""
    mock = get_provider("mock")
    real = mock.refund
    calls = []

    def counted(request):
        calls.append(request.idempotency_key)
        return real(request)

    monkeypatch.setattr(mock, "refund", counted)
    return calls


def refunds_unavailable(monkeypatch) -> Callable[[], None]:
    """The mock provider answers every refund with "unavailable"; call the result to bring it back."""
    mock = get_provider("mock")
    real = mock.refund

    def down(request):
        raise ProviderUnavailable(provider="mock")

    monkeypatch.setattr(mock, "refund", down)
    return lambda: monkeypatch.setattr(mock, "refund", real)


def test_late_payment_with_seats_gone_is_refunded_once_and_the_customer_told(organizer, clock, monkeypatch):
    calls = counting_refunds(monkeypatch)
    clearing_before = balance(CLEARING)
    buyer, ticket_type, booking, payment = seats_gone_before_payment(organizer, clock)
    settle_by_webhook(payment)
    settle_by_webhook(payment)  # the provider delivers again: nothing more happens
    assert notification_kinds(buyer) == ["booking.late_payment_refunding"]
    assert len(refund_jobs()) == 1
    drain()
    (refund,) = refunds_of(payment)
    assert (refund.status, refund.amount_minor, refund.actor_id) == (RefundStatus.SUCCEEDED, booking.total_minor, None)
    assert payment_row(payment).status == PaymentStatus.REFUNDED
    assert balance(CLEARING) == clearing_before
    assert balance(wallet_address(buyer.id, WalletKind.PRIMARY)) == 0
    assert notification_kinds(buyer) == ["booking.late_payment_refunding", "booking.refund_sent"]
    assert len(calls) == 1
    assert counters(ticket_type) == (0, 1)


def test_late_payment_with_seats_free_is_accepted_and_the_customer_told(organizer, clock):
    buyer = person("card@example.com")
    event, ticket_type = new_event(organizer, capacity=1)
    booking = book(buyer, event, ticket_type, 1)
    payment = pay_by_card(buyer, booking)
    clock.shift(timedelta(minutes=16))
    drain()
    assert reload(booking).status == BookingStatus.EXPIRED
    settle_by_webhook(payment)
    accepted = reload(booking)
    assert accepted.status == BookingStatus.CONFIRMED
    assert "booking is confirmed" in accepted.outcome_note
    assert notification_kinds(buyer) == ["booking.late_payment_accepted"]
    assert refunds_of(payment) == []
    assert counters(ticket_type) == (1, 0)


def test_payment_after_the_customer_cancelled_goes_back_to_the_provider(organizer, clock):
    buyer = person("card@example.com")
    event, ticket_type = new_event(organizer)
    booking = book(buyer, event, ticket_type, 2)
    payment = pay_by_card(buyer, booking)
    in_transaction(cancel_booking, actor=buyer, booking_id=booking.id)
    settle_by_webhook(payment)
    cancelled = reload(booking)
    assert cancelled.status == BookingStatus.CANCELLED
    assert "after you cancelled" in cancelled.outcome_note
    assert notification_kinds(buyer) == ["booking.cancelled_payment_refunding"]
    drain()
    assert payment_row(payment).status == PaymentStatus.REFUNDED
    assert balance(wallet_address(buyer.id, WalletKind.PRIMARY)) == 0
    assert counters(ticket_type) == (0, 0)


def test_provider_down_then_up_retries_with_backoff_and_the_job_twice_refunds_once(organizer, clock, monkeypatch):
    buyer, _type, booking, payment = seats_gone_before_payment(organizer, clock)
    provider_back = refunds_unavailable(monkeypatch)
    settle_by_webhook(payment)
    drain()
    (job,) = refund_jobs()
    assert (job.status, job.attempts) == (JobStatus.PENDING, 1)
    assert "ProviderUnavailable" in (job.last_error or "")
    assert job.run_at > utcnow()
    assert payment_row(payment).status == PaymentStatus.SUCCEEDED
    assert balance(wallet_address(buyer.id, WalletKind.PRIMARY)) == 0  # held, not spendable
    assert run_due_jobs(worker_id="test") == 0  # backing off: not due yet
    provider_back()
    calls = counting_refunds(monkeypatch)
    clock.shift(timedelta(hours=1))
    drain()
    assert payment_row(payment).status == PaymentStatus.REFUNDED
    # The job run a second time (a worker that lost its lease, say) changes nothing and calls no one.
    in_transaction(payments.refund_job, payload=job.payload)
    (refund,) = refunds_of(payment)
    assert refund.status == RefundStatus.SUCCEEDED
    assert len(calls) == 1
    assert payment_row(payment).refunded_minor == booking.total_minor
    assert "was refunded to your card" in reload(booking).outcome_note


def test_the_refund_job_asks_the_provider_with_no_lock_held(engine, organizer, clock, monkeypatch):
    # A provider can take its full timeout to answer; meanwhile the app's writers (on SQLite, all of
    # them) must not wait on the job's transaction.
    mock = get_provider("mock")
    real = mock.refund
    writers_free = []

    def observed(request):
        writers_free.append(writers_can_proceed(engine))
        return real(request)

    monkeypatch.setattr(mock, "refund", observed)
    _buyer, _type, _booking, payment = seats_gone_before_payment(organizer, clock)
    settle_by_webhook(payment)
    drain()
    assert writers_free == [True]
    assert payment_row(payment).status == PaymentStatus.REFUNDED


def test_a_refund_keeps_asking_through_a_day_long_outage(organizer, clock, monkeypatch):
    _buyer, _type, _booking, payment = seats_gone_before_payment(organizer, clock)
    provider_back = refunds_unavailable(monkeypatch)
    settle_by_webhook(payment)
    for _hour in range(24):
        drain()
        clock.shift(timedelta(hours=1, minutes=15))  # past the longest backoff with its jitter
    (job,) = refund_jobs()
    assert (job.status, job.attempts) == (JobStatus.PENDING, 24)
    provider_back()
    drain()
    assert payment_row(payment).status == PaymentStatus.REFUNDED


def test_provider_refusing_the_refund_leaves_the_money_in_the_wallet_and_says_so(organizer, clock, monkeypatch):
    buyer, _type, booking, payment = seats_gone_before_payment(organizer, clock)

    def refuse(request):
        raise ProviderRefused(provider="mock", reason="charge_disputed")

    monkeypatch.setattr(get_provider("mock"), "refund", refuse)
    settle_by_webhook(payment)
    drain()
    assert balance(wallet_address(buyer.id, WalletKind.PRIMARY)) == booking.total_minor
    (refund,) = booking_refunds(booking)
    assert refund.destination == "wallet"
    assert "in your PayTime wallet" in reload(booking).outcome_note
    assert notification_kinds(buyer) == ["booking.late_payment_refunding", "booking.refund_failed"]


def test_customer_cancelling_a_card_paid_booking_is_refunded_to_the_card_by_policy(organizer, clock):
    buyer, _event, ticket_type, booking, payment = card_paid_booking(organizer)
    clock.move_to(START - timedelta(days=5))  # 75% under the default policy
    in_transaction(cancel_booking, actor=buyer, booking_id=booking.id)
    refund_due = booking.total_minor * 75 // 100
    wallet = wallet_address(buyer.id, WalletKind.PRIMARY)
    assert balance(wallet) == 0  # credited from the shares and held for the provider in one go
    (booking_refund,) = booking_refunds(booking)
    assert (booking_refund.destination, booking_refund.amount_minor) == ("provider", refund_due)
    drain()
    settled = payment_row(payment)
    assert (settled.status, settled.refunded_minor) == (PaymentStatus.PARTIALLY_REFUNDED, refund_due)
    assert balance(wallet) == 0
    assert balance(f"seller:{organizer.id}:earnings") + balance(FEES_ADDRESS) == booking.total_minor - refund_due
    assert notification_kinds(buyer) == ["booking.refund_sent"]
    assert counters(ticket_type) == (0, 0)


def test_partial_cancellations_each_go_back_to_the_card(organizer, clock):
    buyer, _event, _type, booking, payment = card_paid_booking(organizer, quantity=3)
    first, *rest = tickets_of(booking)
    in_transaction(cancel_booking, actor=buyer, booking_id=booking.id, ticket_ids=[first.id])
    in_transaction(cancel_booking, actor=buyer, booking_id=booking.id, ticket_ids=[t.id for t in rest])
    drain()
    assert sorted(r.amount_minor for r in refunds_of(payment)) == sorted(
        r.amount_minor for r in booking_refunds(booking)
    )
    settled = payment_row(payment)
    assert (settled.status, settled.refunded_minor) == (PaymentStatus.REFUNDED, booking.total_minor)
    assert balance(wallet_address(buyer.id, WalletKind.PRIMARY)) == 0


def test_event_cancellation_refunds_card_payments_to_the_card(organizer, clock):
    buyer, event, ticket_type, booking, payment = card_paid_booking(organizer)
    in_transaction(cancel_event, actor=organizer, event_id=event.id)
    drain()  # the event's bookings are cancelled, their refunds queued, then the provider asked
    assert reload(booking).status == BookingStatus.CANCELLED
    settled = payment_row(payment)
    assert (settled.status, settled.refunded_minor) == (PaymentStatus.REFUNDED, booking.total_minor)
    assert balance(wallet_address(buyer.id, WalletKind.PRIMARY)) == 0
    assert balance(f"seller:{organizer.id}:earnings") == balance(FEES_ADDRESS) == 0
    assert counters(ticket_type) == (0, 0)
