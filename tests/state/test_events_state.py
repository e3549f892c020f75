"""Event, booking and organizer pages' handlers with real route parameters: a customer books through
the event page; nobody else's booking or event can be read or changed; the live seats delta."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import func, select

from paytime_app.db import in_transaction, unit_of_work
from paytime_app.models.bookings import Booking, BookingStatus
from paytime_app.models.events import EventStatus
from paytime_app.models.users import Role
from paytime_app.money import Currency
from paytime_app.services.bookings import create_booking
from paytime_app.services.events import create_event, publish_event, save_ticket_type
from paytime_app.services.ledger import transfer
from paytime_app.services.sessions import ClientInfo, start_browser_session
from paytime_app.services.users import create_user
from paytime_app.services.wallets import WalletKind, wallet_address
from paytime_app.state.events import BookingState, EventState, seats_delta
from paytime_app.state.organizer import OrganizerEventState
from tests.state.harness import make_state, run_handler

START = datetime.now(UTC) + timedelta(days=20)


def person(email: str, role: Role = Role.CUSTOMER):
    user = in_transaction(
        create_user, email=email, display_name=email.split("@", maxsplit=1)[0], password=None, role=role
    )
    in_transaction(
        transfer,
        source="world",
        destination=wallet_address(user.id, WalletKind.PRIMARY),
        amount_minor=10_000_000,
        currency=Currency.NGN,
        idempotency_key=f"fund:{user.id}",
        kind="demo_funding",
    )
    return user, in_transaction(start_browser_session, user=user, client=ClientInfo()).token


@pytest.fixture
def world(engine):
    organizer, organizer_token = person("org@example.com", Role.SELLER)
    event = in_transaction(
        create_event, actor=organizer, title="Jazz", starts_at=START, ends_at=START + timedelta(hours=2)
    )
    ticket_type = in_transaction(
        save_ticket_type, actor=organizer, event_id=event.id, name="Std", price_minor=1000, capacity=5
    )
    in_transaction(publish_event, actor=organizer, event_id=event.id)
    return {"organizer": (organizer, organizer_token), "event": event, "type": ticket_type}


def bookings_count() -> int:
    with unit_of_work() as session:
        return session.exec(select(func.count()).select_from(Booking)).one()


def test_customer_books_from_the_event_page_and_seats_update(world):
    _ada, token = person("ada@example.com")
    event, ticket_type = world["event"], world["type"]
    state = make_state(EventState, session_token=token, query={"event_id": str(event.id)})
    asyncio.run(run_handler(state, "load_event"))
    assert state.live_seats == {str(ticket_type.id): 5}
    events = asyncio.run(run_handler(state, "submit_booking", {f"qty_{ticket_type.id}": "2", "coupon": ""}))
    assert state.error == ""
    assert bookings_count() == 1
    assert any("/bookings/" in str(event) for event in events)
    delta = seats_delta(str(event.id))
    (values,) = delta.values()
    assert list(values.values()) == [{str(ticket_type.id): 3}]


def test_anonymous_booking_goes_to_sign_in(world):
    state = make_state(EventState, query={"event_id": str(world["event"].id)})
    asyncio.run(run_handler(state, "load_event"))
    assert state.types  # the event is public
    events = asyncio.run(run_handler(state, "submit_booking", {f"qty_{world['type'].id}": "1"}))
    assert any("sign-in" in str(event) for event in events)
    assert bookings_count() == 0


def test_someone_elses_booking_page_shows_and_pays_nothing(world):
    ada, _ = person("ada@example.com")
    _eve, eve_token = person("eve@example.com")
    booking = in_transaction(
        create_booking, actor=ada, event_id=world["event"].id, items=[(world["type"].id, 1)], idempotency_key="ada-1"
    )
    state = make_state(BookingState, session_token=eve_token, query={"booking_id": str(booking.id)})
    asyncio.run(run_handler(state, "load_booking"))
    assert state.booking == {}
    asyncio.run(run_handler(state, "pay_with_wallet"))
    asyncio.run(run_handler(state, "cancel"))
    assert state.error == "That booking does not exist."
    with unit_of_work() as session:
        assert session.get(Booking, booking.id).status == BookingStatus.HELD


def test_another_organizers_event_cannot_be_read_or_changed(world):
    _rival, rival_token = person("rival@example.com", Role.SELLER)
    event = world["event"]
    state = make_state(OrganizerEventState, session_token=rival_token, query={"event_id": str(event.id)})
    asyncio.run(run_handler(state, "load_event"))
    assert state.event == {}
    asyncio.run(run_handler(state, "cancel_event"))
    asyncio.run(run_handler(state, "add_ticket_type", {"name": "Free", "price": "0", "capacity": "9"}))
    assert state.error == "That event does not exist."
    own = make_state(OrganizerEventState, session_token=world["organizer"][1], query={"event_id": str(event.id)})
    asyncio.run(run_handler(own, "load_event"))
    assert own.event["status"] == EventStatus.PUBLISHED
    assert [row["name"] for row in own.sales] == ["Std"]


def test_organizer_adds_a_coupon_and_a_rival_cannot(world):
    event = world["event"]
    own = make_state(OrganizerEventState, session_token=world["organizer"][1], query={"event_id": str(event.id)})
    asyncio.run(run_handler(own, "load_event"))
    asyncio.run(
        run_handler(own, "add_coupon", {"code": "jazz10", "kind": "percent", "value": "10", "max_redemptions": "5"})
    )
    assert own.error == ""
    assert own.coupons == [{"code": "JAZZ10", "discount": "10%", "used": "0 of 5"}]
    _rival, rival_token = person("rival@example.com", Role.SELLER)
    rival = make_state(OrganizerEventState, session_token=rival_token, query={"event_id": str(event.id)})
    asyncio.run(
        run_handler(rival, "add_coupon", {"code": "MINE", "kind": "fixed", "value": "5", "max_redemptions": ""})
    )
    assert rival.error == "That event does not exist."
    asyncio.run(run_handler(own, "load_event"))
    assert [row["code"] for row in own.coupons] == ["JAZZ10"]


def test_names_on_tickets_before_paying_and_only_by_the_buyer(world):
    ada, ada_token = person("ada@example.com")
    _eve, eve_token = person("eve@example.com")
    type_id = world["type"].id
    booking = in_transaction(
        create_booking, actor=ada, event_id=world["event"].id, items=[(type_id, 2)], idempotency_key="ada-names"
    )
    query = {"booking_id": str(booking.id)}
    eve = make_state(BookingState, session_token=eve_token, query=query)
    asyncio.run(run_handler(eve, "save_names", {f"names_{type_id}": "Mallory, Trudy"}))
    assert eve.error == "That booking does not exist."
    state = make_state(BookingState, session_token=ada_token, query=query)
    asyncio.run(run_handler(state, "load_booking"))
    asyncio.run(run_handler(state, "save_names", {f"names_{type_id}": "Ada Obi, Chidi Eze, Extra"}))
    assert state.items[0]["names"] == "Ada Obi, Chidi Eze"
    asyncio.run(run_handler(state, "pay_with_wallet"))
    assert state.booking["status"] == BookingStatus.CONFIRMED
    asyncio.run(run_handler(state, "save_names", {f"names_{type_id}": "Too late"}))
    assert state.error == "Names can be changed only before paying."
