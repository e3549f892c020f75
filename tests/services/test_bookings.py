"""Bookings on SQLite and PostgreSQL, with the ledger checked after every scenario: holds decided by
conditional updates, limits, coupons, wallet and provider payments, hold expiry as a durable job,
tickets with signed QR payloads, cancellation under the refund policy, and the concurrency proofs."""

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlmodel import col, func, select

import paytime_app.services.job_handlers  # noqa: F401  registers every job kind run_due_jobs may meet
from paytime_app.db import in_transaction, unit_of_work
from paytime_app.errors import DomainError
from paytime_app.models.audit import AuditLogEntry
from paytime_app.models.bookings import (
    Booking,
    BookingItem,
    BookingRefund,
    BookingStatus,
    CouponRedemption,
    Ticket,
    TicketStatus,
)
from paytime_app.models.events import Coupon, Event, TicketType
from paytime_app.models.jobs import Job
from paytime_app.models.payments import Payment, PaymentPurpose, PaymentStatus
from paytime_app.models.sessions import SessionKind
from paytime_app.models.users import Role, User
from paytime_app.money import Currency
from paytime_app.services import bookings as bookings_service
from paytime_app.services import payments
from paytime_app.services.bookings import (
    EXPIRE_HOLD_JOB,
    FEES_ADDRESS,
    cancel_booking,
    create_booking,
    event_sales,
    expire_holds,
    export_event_bookings_csv,
    get_ticket,
    list_own_tickets,
    pay_booking,
    safe_csv_cell,
    sales_by_day,
    start_booking_payment,
)
from paytime_app.services.events import (
    cancel_event,
    create_coupon,
    create_event,
    publish_event,
    save_ticket_type,
)
from paytime_app.services.jobs import run_due_jobs
from paytime_app.services.ledger import find_ledger_problems, get_balance, transfer
from paytime_app.services.providers.base import ProviderPaymentStatus
from paytime_app.services.providers.registry import get_provider
from paytime_app.services.providers.resilience import reset_breakers
from paytime_app.services.sessions import ClientInfo, start_browser_session
from paytime_app.services.signing_keys import list_public_keys, verify_with_public_key
from paytime_app.services.users import create_user
from paytime_app.services.wallets import WalletKind, wallet_address
from tests.helpers import run_at_once

NGN = Currency.NGN
T0 = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)
START = T0 + timedelta(days=30)
PRICE = 500_000  # NGN 5,000.00
FEE_BPS = 500


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(engine):
    yield
    with unit_of_work() as session:
        assert find_ledger_problems(session=session) == []


@pytest.fixture(autouse=True)
def _closed_breakers():
    reset_breakers()
    yield
    reset_breakers()


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def person(email: str, role: Role = Role.CUSTOMER, funds_minor: int = 0) -> User:
    name = email.split("@", maxsplit=1)[0].title()
    user = in_transaction(create_user, email=email, display_name=name, password=None, role=role)
    if funds_minor:
        in_transaction(
            transfer,
            source="world",
            destination=wallet_address(user.id, WalletKind.PRIMARY),
            amount_minor=funds_minor,
            currency=NGN,
            idempotency_key=f"fund:{user.id}",
            kind="demo_funding",
        )
    return user


@pytest.fixture
def organizer(engine) -> User:
    return person("org@example.com", Role.SELLER)


@pytest.fixture
def buyer(engine) -> User:
    return person("ada@example.com", funds_minor=10_000_000)


def new_event(
    organizer: User, *, capacity: int = 100, event_capacity: int | None = None, **type_fields
) -> tuple[Event, TicketType]:
    event = in_transaction(
        create_event,
        actor=organizer,
        title="Lagos Jazz Night",
        venue="Muri Okunola Park",
        starts_at=START,
        ends_at=START + timedelta(hours=4),
        capacity=event_capacity,
    )
    ticket_type = in_transaction(
        save_ticket_type,
        actor=organizer,
        event_id=event.id,
        name="Regular",
        price_minor=type_fields.pop("price_minor", PRICE),
        capacity=capacity,
        **type_fields,
    )
    in_transaction(publish_event, actor=organizer, event_id=event.id)
    return event, ticket_type


def book(buyer: User, event: Event, ticket_type: TicketType, quantity: int = 1, **kwargs) -> Booking:
    return in_transaction(
        create_booking,
        actor=buyer,
        event_id=event.id,
        items=[(ticket_type.id, quantity)],
        idempotency_key=kwargs.pop("idempotency_key", f"k:{uuid.uuid4()}"),
        **kwargs,
    )


def refusal(buyer: User, event: Event, ticket_type: TicketType, quantity: int = 1, **kwargs) -> str:
    """The code create_booking refuses with."""
    return code_of(
        create_booking,
        actor=buyer,
        event_id=event.id,
        items=[(ticket_type.id, quantity)],
        **{"idempotency_key": f"k:{uuid.uuid4()}", **kwargs},
    )


def code_of(service, **kwargs) -> str:
    with pytest.raises(DomainError) as refused:
        in_transaction(service, **kwargs)
    return refused.value.code


def counters(ticket_type: TicketType) -> tuple[int, int]:
    with unit_of_work() as session:
        row = session.get(TicketType, ticket_type.id)
        return row.sold, row.held


def reload(booking: Booking) -> Booking:
    with unit_of_work() as session:
        return session.get(Booking, booking.id)


def balance(address: str) -> int:
    with unit_of_work() as session:
        return get_balance(session=session, address=address, currency=NGN)


def tickets_of(booking: Booking) -> list[Ticket]:
    with unit_of_work() as session:
        return list(
            session.exec(select(Ticket).where(Ticket.booking_id == booking.id).order_by(col(Ticket.code))).all()
        )


# --- holds -----------------------------------------------------------------------------------------


def test_create_booking_holds_seats_at_the_price_in_force(organizer, buyer, clock):
    event, ticket_type = new_event(organizer)
    booking = book(buyer, event, ticket_type, 3)
    assert booking.status == BookingStatus.HELD
    assert booking.reference.startswith("BK-")
    assert booking.subtotal_minor == booking.total_minor == 3 * PRICE
    assert booking.fee_minor == 3 * PRICE * FEE_BPS // 10_000
    assert booking.expires_at == T0 + timedelta(minutes=15)
    assert counters(ticket_type) == (0, 3)


def test_create_booking_same_key_returns_same_booking_and_other_request_mismatch(organizer, buyer, clock):
    event, ticket_type = new_event(organizer)
    first = book(buyer, event, ticket_type, 2, idempotency_key="same-key-1")
    assert book(buyer, event, ticket_type, 2, idempotency_key="same-key-1").id == first.id
    assert counters(ticket_type) == (0, 2)
    assert refusal(buyer, event, ticket_type, 3, idempotency_key="same-key-1") == "idempotency_mismatch"


def test_create_booking_sold_out_writes_nothing(organizer, buyer, clock):
    event, ticket_type = new_event(organizer, capacity=2)
    assert refusal(buyer, event, ticket_type, 3) == "sold_out"
    assert counters(ticket_type) == (0, 0)
    with unit_of_work() as session:
        assert session.exec(select(func.count()).select_from(Booking)).one() == 0


def test_a_type_freed_only_by_an_unswept_expired_hold_is_taken_whole_on_the_retry(organizer, buyer, clock):
    event, regular = new_event(organizer, capacity=10)
    scarce = in_transaction(
        save_ticket_type, actor=organizer, event_id=event.id, name="Front", price_minor=1, capacity=1
    )
    book(person("ben@example.com"), event, scarce, 1)
    clock.shift(timedelta(minutes=16))  # that hold has expired, but no job has swept it
    booking = in_transaction(
        create_booking,
        actor=buyer,
        event_id=event.id,
        items=[(regular.id, 2), (scarce.id, 1)],
        idempotency_key="both-types",
    )
    assert booking.status == BookingStatus.HELD
    # The first try took some rows and gave them back before sweeping: nothing is counted twice.
    assert counters(regular) == (0, 2)
    assert counters(scarce) == (0, 1)
    with unit_of_work() as session:
        assert session.get(Event, event.id).held == 3


def test_a_retry_after_the_drop_sold_out_returns_the_held_booking(organizer, buyer, clock):
    event, ticket_type = new_event(organizer, capacity=2)
    first = book(buyer, event, ticket_type, 2, idempotency_key="drop-retry-1")
    assert refusal(person("ben@example.com"), event, ticket_type, 1) == "sold_out"
    # The refusal's first read looks for the key's booking too: a retry is answered, never refused.
    assert book(buyer, event, ticket_type, 2, idempotency_key="drop-retry-1").id == first.id
    assert refusal(buyer, event, ticket_type, 1, idempotency_key="drop-retry-1") == "idempotency_mismatch"
    assert counters(ticket_type) == (0, 2)


def test_sold_out_found_only_under_the_lock_writes_nothing(organizer, buyer, clock):
    event, regular = new_event(organizer, capacity=1)
    other = in_transaction(
        save_ticket_type, actor=organizer, event_id=event.id, name="Other", price_minor=1, capacity=5
    )
    book(person("cy@example.com"), event, other, 1)
    clock.shift(timedelta(minutes=16))  # Cy's hold has expired unswept: the first read cannot refuse anyone
    ben = book(person("ben@example.com"), event, regular, 1)
    # Decided by the seat UPDATE, then again after sweeping Cy's hold; the refusal rolls it all back.
    assert refusal(buyer, event, regular, 1) == "sold_out"
    assert counters(regular) == (0, 1)
    assert counters(other) == (0, 1)
    with unit_of_work() as session:
        assert session.get(Event, event.id).held == 2
        assert session.exec(select(Booking.id).where(Booking.user_id == buyer.id)).all() == []
        assert session.exec(select(func.count()).select_from(Job).where(Job.kind == EXPIRE_HOLD_JOB)).one() == 2
    assert reload(ben).status == BookingStatus.HELD


def test_shared_event_capacity_caps_all_types(organizer, buyer, clock):
    event, regular = new_event(organizer, capacity=10, event_capacity=3)
    vip = in_transaction(
        save_ticket_type, actor=organizer, event_id=event.id, name="VIP", price_minor=PRICE * 2, capacity=10
    )
    book(buyer, event, regular, 2)
    other = person("ben@example.com")
    assert refusal(other, event, vip, 2) == "sold_out"
    book(other, event, vip, 1)
    with unit_of_work() as session:
        assert session.get(Event, event.id).held == 3


def test_sales_window_and_draft_events_refuse(organizer, buyer, clock):
    event, ticket_type = new_event(organizer, sales_start=T0 + timedelta(days=1))
    assert refusal(buyer, event, ticket_type, 1) == "sales_closed"
    clock.move_to(T0 + timedelta(days=2))
    book(buyer, event, ticket_type, 1)
    draft = in_transaction(
        create_event, actor=organizer, title="Draft show", starts_at=START, ends_at=START + timedelta(hours=1)
    )
    assert refusal(buyer, draft, ticket_type, 1) == "not_found"


def test_per_booking_and_per_customer_limits(organizer, buyer, clock):
    event, ticket_type = new_event(organizer, per_booking_max=4, per_customer_max=6)
    assert refusal(buyer, event, ticket_type, 5) == "booking_limit_exceeded"
    book(buyer, event, ticket_type, 4)
    assert refusal(buyer, event, ticket_type, 3) == "customer_limit_exceeded"
    book(buyer, event, ticket_type, 2)


def test_per_customer_limit_holds_under_concurrent_bookings(organizer, buyer, clock):
    event, ticket_type = new_event(organizer, per_customer_max=3)
    outcomes = run_at_once(6, lambda: book(buyer, event, ticket_type, 1).status)
    assert outcomes.count(BookingStatus.HELD) == 3
    assert outcomes.count("customer_limit_exceeded") == 3


def test_hidden_type_needs_its_unlock_code(organizer, buyer, clock):
    event, _regular = new_event(organizer)
    hidden = in_transaction(
        save_ticket_type,
        actor=organizer,
        event_id=event.id,
        name="Friends",
        price_minor=100,
        capacity=5,
        unlock_code="FRIENDS26",
    )
    assert refusal(buyer, event, hidden, 1) == "unknown_ticket_type"
    assert book(buyer, event, hidden, 1, unlock_code="friends26").total_minor == 100


def test_price_tier_for_the_first_n_then_base_price(organizer, buyer, clock):
    tiers = [{"label": "Early bird", "price_minor": 300_000, "first_n": 2}]
    event, ticket_type = new_event(organizer, price_tiers=tiers)
    early = book(buyer, event, ticket_type, 2)
    assert early.total_minor == 600_000
    later = book(person("ben@example.com"), event, ticket_type, 1)
    assert later.total_minor == PRICE


def test_a_tier_filled_between_the_read_and_the_lock_reprices_every_row(organizer, buyer, clock, monkeypatch):
    # The race itself is rare; here the count under the lock (the only call that passes `taken`) says
    # the early-bird tier is gone, as another buyer's commit between the read and the lock would.
    tiers = [{"label": "Early bird", "price_minor": 300_000, "first_n": 50}]
    event, ticket_type = new_event(organizer, price_tiers=tiers)
    in_transaction(
        create_coupon, actor=organizer, event_id=event.id, code="HALF", kind="percent", value=5000, max_redemptions=5
    )
    read_price = bookings_service.price_in_force
    monkeypatch.setattr(
        bookings_service,
        "price_in_force",
        lambda t, now=None, *, taken=None: (PRICE, "") if taken is not None else read_price(t, now),
    )
    booking = book(buyer, event, ticket_type, 2, coupon_code="HALF")
    assert (booking.subtotal_minor, booking.discount_minor, booking.total_minor) == (2 * PRICE, PRICE, PRICE)
    with unit_of_work() as session:
        stored = session.get(Booking, booking.id)
        assert (stored.subtotal_minor, stored.total_minor, stored.fee_minor) == (
            2 * PRICE,
            PRICE,
            PRICE * FEE_BPS // 10_000,
        )
        items = session.exec(select(BookingItem).where(BookingItem.booking_id == booking.id)).all()
        assert [(item.unit_price_minor, item.tier_label) for item in items] == [(PRICE, "")]
        redemption = session.exec(select(CouponRedemption).where(CouponRedemption.booking_id == booking.id)).one()
        assert redemption.discount_minor == PRICE
        audit = session.exec(select(AuditLogEntry).where(AuditLogEntry.action == "booking.held")).one()
        assert audit.data["total_minor"] == PRICE


def test_price_tier_until_a_date(organizer, buyer, clock):
    tiers = [{"label": "Early bird", "price_minor": 300_000, "until": (T0 + timedelta(days=1)).isoformat()}]
    event, ticket_type = new_event(organizer, price_tiers=tiers)
    assert book(buyer, event, ticket_type, 1).total_minor == 300_000
    clock.move_to(T0 + timedelta(days=2))
    assert book(buyer, event, ticket_type, 1).total_minor == PRICE


# --- coupons ---------------------------------------------------------------------------------------


def test_percent_coupon_discounts_and_fee_is_on_the_discounted_total(organizer, buyer, clock):
    event, ticket_type = new_event(organizer)
    in_transaction(create_coupon, actor=organizer, event_id=event.id, code="jazz10", kind="percent", value=1000)
    booking = book(buyer, event, ticket_type, 2, coupon_code="JAZZ10")
    assert booking.discount_minor == 2 * PRICE // 10
    assert booking.total_minor == 2 * PRICE - booking.discount_minor
    assert booking.fee_minor == booking.total_minor * FEE_BPS // 10_000


def test_coupon_refusals(organizer, buyer, clock):
    event, ticket_type = new_event(organizer)
    in_transaction(
        create_coupon,
        actor=organizer,
        event_id=event.id,
        code="BIG",
        kind="fixed",
        value=1000,
        min_order_minor=PRICE * 2,
    )
    in_transaction(
        create_coupon,
        actor=organizer,
        event_id=event.id,
        code="OLD",
        kind="fixed",
        value=1000,
        expires_at=T0 - timedelta(days=1),
    )
    refuse = lambda code: code_of(  # noqa: E731
        create_booking,
        actor=buyer,
        event_id=event.id,
        items=[(ticket_type.id, 1)],
        idempotency_key=f"k-{code}",
        coupon_code=code,
    )
    assert refuse("BIG") == "invalid_coupon"
    assert refuse("OLD") == "invalid_coupon"
    assert refuse("NOPE") == "invalid_coupon"
    assert counters(ticket_type) == (0, 0)


def test_coupon_per_user_limit(organizer, buyer, clock):
    event, ticket_type = new_event(organizer)
    in_transaction(create_coupon, actor=organizer, event_id=event.id, code="ONCE", kind="fixed", value=1000)
    book(buyer, event, ticket_type, 1, coupon_code="ONCE")
    assert refusal(buyer, event, ticket_type, 1, coupon_code="ONCE") == "coupon_already_used"


def test_coupon_comes_back_when_the_hold_expires(organizer, buyer, clock):
    event, ticket_type = new_event(organizer)
    coupon = in_transaction(
        create_coupon, actor=organizer, event_id=event.id, code="ONE", kind="fixed", value=1000, max_redemptions=1
    )
    book(buyer, event, ticket_type, 1, coupon_code="ONE")
    other = person("ben@example.com")
    assert refusal(other, event, ticket_type, 1, coupon_code="ONE") == "coupon_exhausted"
    clock.shift(timedelta(minutes=16))
    run_due_jobs(worker_id="test")
    book(other, event, ticket_type, 1, coupon_code="ONE")
    with unit_of_work() as session:
        assert session.get(Coupon, coupon.id).redeemed == 1


# --- paying ----------------------------------------------------------------------------------------


def test_pay_from_wallet_is_one_ledger_transaction_and_issues_signed_tickets(organizer, buyer, clock):
    event, ticket_type = new_event(organizer, entries_allowed=2)
    booking = book(buyer, event, ticket_type, 2, attendees={ticket_type.id: ["Ada", "Chidi"]})
    before = balance(wallet_address(buyer.id, WalletKind.PRIMARY))
    paid = in_transaction(pay_booking, actor=buyer, booking_id=booking.id)
    assert paid.status == BookingStatus.CONFIRMED
    assert paid.paid_with == "wallet"
    assert balance(wallet_address(buyer.id, WalletKind.PRIMARY)) == before - paid.total_minor
    assert balance(f"seller:{organizer.id}:earnings") == paid.total_minor - paid.fee_minor
    assert balance(FEES_ADDRESS) == paid.fee_minor
    assert counters(ticket_type) == (2, 0)
    tickets = tickets_of(booking)
    assert sorted(t.attendee_name for t in tickets) == ["Ada", "Chidi"]
    assert len({t.code for t in tickets}) == 2
    with unit_of_work() as session:
        keys = {key["kid"]: key["public_key"] for key in list_public_keys(session=session)}
    for ticket in tickets:
        payload = verify_with_public_key(ticket.qr_payload, keys)
        assert payload["c"] == ticket.code
        assert payload["e"] == str(event.id)
        assert payload["n"] == 2
        assert ticket.kid in keys
    # Paying again changes nothing.
    in_transaction(pay_booking, actor=buyer, booking_id=booking.id)
    assert balance(FEES_ADDRESS) == paid.fee_minor
    assert len(tickets_of(booking)) == 2


def test_group_booking_issues_one_ticket_admitting_everyone(organizer, buyer, clock):
    event, ticket_type = new_event(organizer)
    booking = book(buyer, event, ticket_type, 4, group_ticket=True)
    in_transaction(pay_booking, actor=buyer, booking_id=booking.id)
    (ticket,) = tickets_of(booking)
    assert ticket.admits == 4
    assert ticket.entries_allowed == 4


def test_pay_without_funds_changes_nothing(organizer, clock):
    poor = person("poor@example.com", funds_minor=1000)
    event, ticket_type = new_event(organizer)
    booking = book(poor, event, ticket_type, 1)
    assert code_of(pay_booking, actor=poor, booking_id=booking.id) == "insufficient_funds"
    assert reload(booking).status == BookingStatus.HELD
    assert counters(ticket_type) == (0, 1)
    assert tickets_of(booking) == []


def test_someone_elses_booking_looks_missing(organizer, buyer, clock):
    event, ticket_type = new_event(organizer)
    booking = book(buyer, event, ticket_type, 1)
    stranger = person("eve@example.com", funds_minor=10_000_000)
    assert code_of(pay_booking, actor=stranger, booking_id=booking.id) == "not_found"
    assert code_of(cancel_booking, actor=stranger, booking_id=booking.id) == "not_found"


def test_pay_after_expiry_takes_the_seats_if_free(organizer, buyer, clock):
    event, ticket_type = new_event(organizer, capacity=1)
    booking = book(buyer, event, ticket_type, 1)
    clock.shift(timedelta(minutes=16))
    run_due_jobs(worker_id="test")
    assert reload(booking).status == BookingStatus.EXPIRED
    assert counters(ticket_type) == (0, 0)
    assert in_transaction(pay_booking, actor=buyer, booking_id=booking.id).status == BookingStatus.CONFIRMED
    assert counters(ticket_type) == (1, 0)


def test_pay_after_expiry_when_seats_are_gone_is_refused_and_charges_nothing(organizer, buyer, clock):
    event, ticket_type = new_event(organizer, capacity=1)
    booking = book(buyer, event, ticket_type, 1)
    clock.shift(timedelta(minutes=16))
    book(person("ben@example.com"), event, ticket_type, 1)  # sweeps the expired hold, takes the seat
    before = balance(wallet_address(buyer.id, WalletKind.PRIMARY))
    assert code_of(pay_booking, actor=buyer, booking_id=booking.id) == "hold_expired"
    assert balance(wallet_address(buyer.id, WalletKind.PRIMARY)) == before
    assert counters(ticket_type) == (0, 1)


def test_crash_with_30_open_holds_gives_the_seats_back_after_expiry(organizer, clock):
    event, ticket_type = new_event(organizer, capacity=30)
    buyers = [person(f"b{i}@example.com") for i in range(30)]
    for someone in buyers:
        book(someone, event, ticket_type, 1)
    assert counters(ticket_type) == (0, 30)
    # The process that took the holds is gone; only the database remains. Any worker, later:
    clock.shift(timedelta(minutes=15, seconds=1))
    while run_due_jobs(worker_id="after-restart", limit=50):
        pass
    assert counters(ticket_type) == (0, 0)
    with unit_of_work() as session:
        assert session.exec(select(func.count()).where(Booking.status == BookingStatus.EXPIRED)).one() == 30


def test_expire_holds_sweep_skips_unexpired(organizer, buyer, clock):
    event, ticket_type = new_event(organizer)
    book(buyer, event, ticket_type, 1)
    assert in_transaction(expire_holds) == 0
    clock.shift(timedelta(minutes=15))
    assert in_transaction(expire_holds) == 1
    assert in_transaction(expire_holds) == 0


# --- provider payments -------------------------------------------------------------------------------


def browser_token(user: User) -> str:
    return in_transaction(start_browser_session, user=user, client=ClientInfo()).token


def pay_by_card(buyer: User, booking: Booking):
    """The buyer chooses the mock provider: a booking payment with an open checkout."""
    return start_booking_payment(
        token=browser_token(buyer),
        kind=SessionKind.BROWSER,
        booking_id=booking.id,
        provider="mock",
        return_url="http://x/",
    )


def settle_by_webhook(payment) -> None:
    headers, body = get_provider("mock").settle_checkout(
        provider_reference=payment.provider_reference, outcome=ProviderPaymentStatus.SUCCEEDED
    )
    payments.ingest_webhook(provider="mock", headers=headers, raw_body=body)


def test_provider_payment_confirms_the_booking(organizer, clock):
    buyer = person("card@example.com")
    event, ticket_type = new_event(organizer)
    booking = book(buyer, event, ticket_type, 2)
    payment = pay_by_card(buyer, booking)
    assert payment.purpose == PaymentPurpose.BOOKING
    assert payment.amount_minor == booking.total_minor
    settle_by_webhook(payment)
    confirmed = reload(booking)
    assert confirmed.status == BookingStatus.CONFIRMED
    assert confirmed.paid_with == "provider"
    assert len(tickets_of(booking)) == 2
    assert balance(wallet_address(buyer.id, WalletKind.PRIMARY)) == 0
    assert balance(f"seller:{organizer.id}:earnings") == booking.total_minor - booking.fee_minor


def test_provider_payment_after_expiry_with_seats_gone_is_refunded_through_the_provider(organizer, clock):
    buyer = person("card@example.com")
    event, ticket_type = new_event(organizer, capacity=1)
    booking = book(buyer, event, ticket_type, 1)
    payment = pay_by_card(buyer, booking)
    clock.shift(timedelta(minutes=16))
    book(person("ben@example.com"), event, ticket_type, 1)
    settle_by_webhook(payment)
    late = reload(booking)
    assert late.status == BookingStatus.EXPIRED
    assert "seats were gone" in late.outcome_note
    assert "being refunded to your card" in late.outcome_note
    # Held for the provider refund at once: the buyer cannot spend it meanwhile.
    assert balance(wallet_address(buyer.id, WalletKind.PRIMARY)) == 0
    assert counters(ticket_type) == (0, 1)
    with unit_of_work() as session:
        refund = session.exec(select(BookingRefund).where(BookingRefund.booking_id == booking.id)).one()
    assert (refund.destination, refund.amount_minor, refund.payment_id) == (
        "provider",
        booking.total_minor,
        payment.id,
    )
    while run_due_jobs(worker_id="test"):  # the refund, then the booking's side of its answer
        pass
    assert "was refunded to your card" in reload(booking).outcome_note
    assert balance(wallet_address(buyer.id, WalletKind.PRIMARY)) == 0
    assert balance("provider:mock:clearing") == 0


def test_hold_expiring_while_its_payment_arrives_settles_one_way(organizer, clock):
    """The expiry job and the webhook race; whichever wins, the seat is sold once or the money is back."""
    buyer = person("card@example.com")
    event, ticket_type = new_event(organizer, capacity=1)
    booking = book(buyer, event, ticket_type, 1)
    payment = pay_by_card(buyer, booking)
    clock.shift(timedelta(minutes=15, seconds=1))
    barrier = threading.Barrier(2)

    def expire() -> None:
        barrier.wait()
        run_due_jobs(worker_id="race")

    def pay() -> None:
        barrier.wait()
        settle_by_webhook(payment)

    threads = [threading.Thread(target=expire), threading.Thread(target=pay)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    final = reload(booking)
    # Either order ends the same way: the hold expired first and the seat was still free (so the
    # payment took it again), or the payment confirmed it first and the expiry found nothing to do.
    assert final.status == BookingStatus.CONFIRMED
    assert counters(ticket_type) == (1, 0)
    assert balance(wallet_address(buyer.id, WalletKind.PRIMARY)) == 0
    assert len(tickets_of(booking)) == 1


# --- cancelling ------------------------------------------------------------------------------------


def paid_booking(organizer, buyer, quantity=2, **kwargs) -> tuple[Event, TicketType, Booking]:
    event, ticket_type = new_event(organizer, **kwargs)
    booking = book(buyer, event, ticket_type, quantity)
    return event, ticket_type, in_transaction(pay_booking, actor=buyer, booking_id=booking.id)


@pytest.mark.parametrize(("days_before", "percent"), [(10, 100), (5, 75), (2, 50), (0.5, 0)])
def test_customer_cancel_refunds_by_policy(organizer, buyer, clock, days_before, percent):
    _event, ticket_type, booking = paid_booking(organizer, buyer)
    wallet = wallet_address(buyer.id, WalletKind.PRIMARY)
    before = balance(wallet)
    clock.move_to(START - timedelta(days=days_before))
    cancelled = in_transaction(cancel_booking, actor=buyer, booking_id=booking.id)
    assert cancelled.status == BookingStatus.CANCELLED
    refund = booking.total_minor * percent // 100
    assert balance(wallet) == before + refund
    fee_back = refund * booking.fee_minor // booking.total_minor
    assert balance(FEES_ADDRESS) == booking.fee_minor - fee_back
    assert all(t.status == TicketStatus.CANCELLED for t in tickets_of(booking))
    assert counters(ticket_type) == (0, 0)
    assert code_of(cancel_booking, actor=buyer, booking_id=booking.id) == "not_cancellable"
    assert balance(wallet) == before + refund


def test_partial_cancellation_then_the_rest(organizer, buyer, clock):
    _event, ticket_type, booking = paid_booking(organizer, buyer, quantity=3)
    first, *rest = tickets_of(booking)
    wallet = wallet_address(buyer.id, WalletKind.PRIMARY)
    before = balance(wallet)
    partly = in_transaction(cancel_booking, actor=buyer, booking_id=booking.id, ticket_ids=[first.id])
    assert partly.status == BookingStatus.CONFIRMED
    assert balance(wallet) == before + PRICE
    assert counters(ticket_type) == (2, 0)
    assert code_of(cancel_booking, actor=buyer, booking_id=booking.id, ticket_ids=[first.id]) == "not_cancellable"
    in_transaction(cancel_booking, actor=buyer, booking_id=booking.id, ticket_ids=[t.id for t in rest])
    assert balance(wallet) == before + booking.total_minor
    assert reload(booking).refunded_minor == booking.total_minor
    with unit_of_work() as session:
        assert get_ticket(session=session, actor=buyer, ticket_id=first.id)[0].status == TicketStatus.CANCELLED


def test_organizer_override_percent_and_event_cancel_refunds_everyone(organizer, buyer, clock):
    event, ticket_type, booking = paid_booking(organizer, buyer)
    other = person("ben@example.com", funds_minor=10_000_000)
    held = book(other, event, ticket_type, 1)
    clock.move_to(START - timedelta(hours=2))  # the customer policy would refund nothing now
    before = balance(wallet_address(buyer.id, WalletKind.PRIMARY))
    in_transaction(cancel_event, actor=organizer, event_id=event.id)
    run_due_jobs(worker_id="test")
    assert balance(wallet_address(buyer.id, WalletKind.PRIMARY)) == before + booking.total_minor
    assert reload(booking).status == BookingStatus.CANCELLED
    # The hold ran out long before (the clock moved a month): released either way, never sold.
    assert reload(held).status in (BookingStatus.CANCELLED, BookingStatus.EXPIRED)
    assert counters(ticket_type) == (0, 0)
    assert balance(f"seller:{organizer.id}:earnings") == 0
    assert balance(FEES_ADDRESS) == 0


def test_customer_cannot_choose_the_refund_percent(organizer, buyer, clock):
    _event, _type, booking = paid_booking(organizer, buyer)
    assert code_of(cancel_booking, actor=buyer, booking_id=booking.id, refund_percent_override=100) == "not_found"


def test_concurrent_cancellations_refund_once(organizer, buyer, clock):
    _event, _type, booking = paid_booking(organizer, buyer)
    wallet = wallet_address(buyer.id, WalletKind.PRIMARY)
    before = balance(wallet)
    outcomes = run_at_once(5, lambda: in_transaction(cancel_booking, actor=buyer, booking_id=booking.id).status)
    assert outcomes.count(BookingStatus.CANCELLED) == 1
    assert outcomes.count("not_cancellable") == 4
    assert balance(wallet) == before + booking.total_minor


# --- reading and export -----------------------------------------------------------------------------


def test_sales_and_my_tickets(organizer, buyer, clock):
    event, ticket_type, _booking = paid_booking(organizer, buyer, quantity=2)
    book(person("ben@example.com"), event, ticket_type, 1)
    with unit_of_work() as session:
        (sales,) = event_sales(session=session, actor=organizer, event_id=event.id)
        assert (sales.sold, sales.held, sales.left) == (2, 1, ticket_type.capacity - 3)
        assert sales.revenue_minor == 2 * PRICE
        assert len(list_own_tickets(session=session, actor=buyer)) == 2
        with pytest.raises(DomainError):
            event_sales(session=session, actor=buyer, event_id=event.id)


def test_sales_by_day_counts_confirmed_bookings_net_of_refunds(organizer, buyer, clock):
    event, ticket_type, booking = paid_booking(organizer, buyer, quantity=2)
    clock.shift(timedelta(days=1))
    other = person("ben@example.com", funds_minor=10_000_000)
    second = book(other, event, ticket_type, 1)
    in_transaction(pay_booking, actor=other, booking_id=second.id)
    first_ticket = tickets_of(booking)[0]
    in_transaction(cancel_booking, actor=buyer, booking_id=booking.id, ticket_ids=[first_ticket.id])
    with unit_of_work() as session:
        days = sales_by_day(session=session, actor=organizer, event_id=event.id)
    assert [(d.day, d.bookings, d.revenue_minor) for d in days] == [
        (T0.strftime("%Y-%m-%d"), 1, PRICE),
        ((T0 + timedelta(days=1)).strftime("%Y-%m-%d"), 1, PRICE),
    ]


def test_csv_export_neutralises_formulas(organizer, clock):
    sneaky = in_transaction(create_user, email="x@example.com", display_name="=HYPERLINK(1)", password=None)
    in_transaction(
        transfer,
        source="world",
        destination=wallet_address(sneaky.id, WalletKind.PRIMARY),
        amount_minor=10**7,
        currency=NGN,
        idempotency_key="fund-sneaky",
        kind="demo_funding",
    )
    event, ticket_type = new_event(organizer)
    book(sneaky, event, ticket_type, 1)
    with unit_of_work() as session:
        exported = export_event_bookings_csv(session=session, actor=organizer, event_id=event.id)
    assert "'=HYPERLINK(1)" in exported
    assert ",=HYPERLINK" not in exported
    assert safe_csv_cell("-1") == "'-1"
    assert safe_csv_cell("Ada") == "Ada"


# --- proofs under concurrency (PostgreSQL) --------------------------------------------------------------


def require_postgresql(engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("row-level concurrency is proven on PostgreSQL; SQLite serialises writers")


def test_1000_concurrent_buyers_for_100_seats_sell_exactly_100(engine, organizer):
    require_postgresql(engine)
    event, ticket_type = new_event(organizer, capacity=100, price_minor=0)
    buyers = [person(f"buyer{i}@example.com") for i in range(1000)]
    queue = list(buyers)
    lock = threading.Lock()

    def attempt():
        with lock:
            someone = queue.pop()
        return book(someone, event, ticket_type, 1).status

    outcomes = run_at_once(1000, attempt)
    assert outcomes.count(BookingStatus.HELD) == 100
    assert outcomes.count("sold_out") == 900
    assert counters(ticket_type) == (0, 100)


def test_20_bursts_of_60_buyers_for_5_seats_each_sell_exactly_5(engine, organizer):
    require_postgresql(engine)
    buyers = [person(f"burst{i}@example.com") for i in range(60)]
    for burst in range(20):
        event, ticket_type = new_event(organizer, capacity=5, price_minor=0)
        queue = list(buyers)
        lock = threading.Lock()

        def attempt(event=event, ticket_type=ticket_type, queue=queue, lock=lock):
            with lock:
                someone = queue.pop()
            return book(someone, event, ticket_type, 1).status

        outcomes = run_at_once(60, attempt)
        assert outcomes.count(BookingStatus.HELD) == 5, f"burst {burst}: {outcomes}"
        assert outcomes.count("sold_out") == 55
        assert counters(ticket_type) == (0, 5)


def test_concurrent_requests_with_one_key_hold_the_seats_once(engine, organizer, buyer):
    require_postgresql(engine)
    event, ticket_type = new_event(organizer, capacity=100, price_minor=0)
    outcomes = run_at_once(12, lambda: book(buyer, event, ticket_type, 2, idempotency_key="one-key").id)
    assert len(set(outcomes)) == 1, outcomes
    assert counters(ticket_type) == (0, 2)
    with unit_of_work() as session:
        assert session.get(Event, event.id).held == 2


def test_coupon_with_5_redemptions_under_50_concurrent_uses(engine, organizer):
    require_postgresql(engine)
    event, ticket_type = new_event(organizer, capacity=100)
    coupon = in_transaction(
        create_coupon, actor=organizer, event_id=event.id, code="FIVE", kind="percent", value=5000, max_redemptions=5
    )
    buyers = [person(f"c{i}@example.com") for i in range(50)]
    queue = list(buyers)
    lock = threading.Lock()

    def attempt():
        with lock:
            someone = queue.pop()
        return book(someone, event, ticket_type, 1, coupon_code="FIVE").status

    outcomes = run_at_once(50, attempt)
    assert outcomes.count(BookingStatus.HELD) == 5
    assert outcomes.count("coupon_exhausted") == 45
    with unit_of_work() as session:
        assert session.get(Coupon, coupon.id).redeemed == 5
    assert counters(ticket_type) == (0, 5)  # refused coupons gave their seats back


def test_card_payment_after_paying_from_the_wallet_is_refunded_through_the_provider(organizer, buyer, clock):
    event, ticket_type = new_event(organizer)
    booking = book(buyer, event, ticket_type, 1)
    payment = pay_by_card(buyer, booking)
    in_transaction(pay_booking, actor=buyer, booking_id=booking.id)
    wallet = wallet_address(buyer.id, WalletKind.PRIMARY)
    before = balance(wallet)
    settle_by_webhook(payment)
    assert balance(wallet) == before
    assert "already paid" in reload(booking).outcome_note
    run_due_jobs(worker_id="test")
    assert balance(wallet) == before
    with unit_of_work() as session:
        assert session.get(Payment, payment.id).status == PaymentStatus.REFUNDED
    assert len(tickets_of(booking)) == 1
    assert counters(ticket_type) == (1, 0)


def test_failed_card_attempt_then_a_new_one(organizer, clock):
    buyer = person("card@example.com")
    event, ticket_type = new_event(organizer)
    booking = book(buyer, event, ticket_type, 1)
    first = pay_by_card(buyer, booking)
    headers, body = get_provider("mock").settle_checkout(
        provider_reference=first.provider_reference, outcome=ProviderPaymentStatus.FAILED
    )
    payments.ingest_webhook(provider="mock", headers=headers, raw_body=body)
    second = pay_by_card(buyer, booking)
    assert second.id != first.id
    assert second.checkout_url
    settle_by_webhook(second)
    assert reload(booking).status == BookingStatus.CONFIRMED
