"""Event, booking and organizer pages' handlers with real route parameters: a customer books through
the event page; nobody else's booking or event can be read or changed; the live seats delta; the
organizer's cover upload, ticket type editor and coupon scope, and what buyers then see."""

import asyncio
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from reflex import UploadFile
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
from tests.services.test_covers import picture
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
    assert state.error == "That event does not exist."
    asyncio.run(run_handler(state, "save_ticket_type", {"name": "Free", "price": "0", "capacity": "9"}))
    assert state.editor_error == "That event does not exist."
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
    assert own.coupons == [{"code": "JAZZ10", "discount": "10%", "used": "0 of 5", "scope": "Whole event"}]
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


def organizer_page(world, token=None):
    state = make_state(
        OrganizerEventState, session_token=token or world["organizer"][1], query={"event_id": str(world["event"].id)}
    )
    asyncio.run(run_handler(state, "load_event"))
    return state


def test_organizer_edits_a_ticket_type_with_tiers_attributes_and_limits_and_buyers_see_them(world):
    own = organizer_page(world)
    type_id = str(world["type"].id)
    asyncio.run(run_handler(own, "open_type_editor", type_id))
    assert own.editor_open
    assert (own.editor["name"], own.editor["price"], own.editor["per_booking_max"]) == ("Std", "10.00", "20")
    assert [row["key"] for row in own.attribute_rows] == [""]  # one empty row to start from
    asyncio.run(run_handler(own, "add_attribute_row"))
    asyncio.run(run_handler(own, "add_tier_row"))
    asyncio.run(run_handler(own, "add_tier_row"))
    gate, drink = (row["id"] for row in own.attribute_rows)
    early, late = (row["id"] for row in own.tier_rows)
    asyncio.run(run_handler(own, "remove_tier_row", late))
    until = (START - timedelta(days=3)).astimezone(ZoneInfo("Africa/Lagos")).strftime("%Y-%m-%dT%H:%M")
    form = {
        "name": "Standard",
        "price": "10",
        "capacity": "50",
        "per_booking_max": "4",
        "per_customer_max": "6",
        "entries_allowed": "2",
        f"attr_key_{gate}": "Gate",
        f"attr_value_{gate}": "B",
        f"attr_key_{drink}": "Includes",
        f"attr_value_{drink}": "One drink",
        f"tier_label_{early}": "Early bird",
        f"tier_price_{early}": "6.50",
        f"tier_until_{early}": until,
        f"tier_label_{late}": "ignored: its row was removed",
    }
    asyncio.run(run_handler(own, "save_ticket_type", {**form, f"tier_first_n_{early}": "10"}))
    assert own.editor_error == "End price tier 1 (Early bird) either on a date or after the first N tickets, not both."
    assert own.editor_open
    asyncio.run(run_handler(own, "save_ticket_type", {**form, "capacity": "lots"}))
    assert own.editor_error == "Enter the capacity as a whole number."
    asyncio.run(run_handler(own, "save_ticket_type", form))
    assert (own.editor_error, own.notice, own.editor_open) == ("", "Ticket type saved.", False)
    assert own.sales[0]["tiers"] == "1 price tier"

    buyer = make_state(EventState, query={"event_id": str(world["event"].id)})
    asyncio.run(run_handler(buyer, "load_event"))
    (row,) = buyer.types
    assert (row["name"], row["price"], row["base_price"], row["tier"]) == ("Standard", "₦6.50", "₦10.00", "Early bird")
    assert row["tier_note"].startswith("Until ")
    assert row["entries"] == "Valid for 2 entries"
    assert buyer.type_attributes[type_id] == [
        {"name": "Gate", "value": "B"},
        {"name": "Includes", "value": "One drink"},
    ]

    asyncio.run(run_handler(own, "open_type_editor", type_id))
    assert [(row["key"], row["value"]) for row in own.attribute_rows] == [("Gate", "B"), ("Includes", "One drink")]
    assert [(row["label"], row["price"], row["until"]) for row in own.tier_rows] == [("Early bird", "6.50", until)]


def test_organizer_adds_a_new_type_with_a_sales_window_and_an_unlock_code(world):
    own = organizer_page(world)
    asyncio.run(run_handler(own, "open_type_editor", ""))
    assert (own.editor["id"], own.editor["per_customer_max"]) == ("", "10")
    asyncio.run(
        run_handler(
            own,
            "save_ticket_type",
            {"name": "Friends", "price": "0", "capacity": "5", "sales_end": "2000-01-01T00:00", "unlock_code": "PALS"},
        )
    )
    assert own.editor_error == ""
    assert [(row["name"], row["hidden"]) for row in own.sales] == [("Std", ""), ("Friends", "Hidden")]


def test_coupon_scoped_to_chosen_ticket_types(world):
    own = organizer_page(world)
    asyncio.run(run_handler(own, "open_type_editor", ""))
    asyncio.run(run_handler(own, "save_ticket_type", {"name": "VIP", "price": "50", "capacity": "5"}))
    vip = next(row["id"] for row in own.sales if row["name"] == "VIP")
    asyncio.run(
        run_handler(
            own,
            "add_coupon",
            {"code": "VIPONLY", "kind": "fixed", "value": "5", "per_user_limit": "2", f"scope_{vip}": "on"},
        )
    )
    asyncio.run(run_handler(own, "add_coupon", {"code": "ALL", "kind": "percent", "value": "5", "min_order": "x"}))
    assert own.error == "Enter the minimum order as an amount, for example 5000 or 5000.50."
    assert [(row["code"], row["scope"]) for row in own.coupons] == [("VIPONLY", "VIP")]


def test_organizer_uploads_a_cover_and_a_rival_cannot(world):
    own = organizer_page(world)
    assert own.cover_progress == -1
    own.error = "That file is not an image we can read."
    asyncio.run(run_handler(own, "cover_upload_progress", {"progress": 0.424, "loaded": 424, "total": 1000}))
    assert (own.cover_progress, own.error) == (42, "")  # a new upload clears the last one's outcome
    asyncio.run(run_handler(own, "cover_upload_progress", {"progress": "junk"}))
    assert own.cover_progress == 0
    asyncio.run(run_handler(own, "upload_cover", [UploadFile(file=BytesIO(b"notes"), path=Path("c.png"))]))
    refused = own.error
    # Reports come over the websocket and can be handled after the upload finished: the last one
    # ("all sent") and a late one leave the outcome and the finished state alone.
    asyncio.run(run_handler(own, "cover_upload_progress", {"progress": 1, "loaded": 1000, "total": 1000}))
    asyncio.run(run_handler(own, "cover_upload_progress", {"progress": 0.97}))
    assert (own.cover_progress, own.error) == (-1, refused)
    own._cover_finished_at -= 10  # a while later, a new upload's reports count again
    asyncio.run(run_handler(own, "cover_upload_progress", {"progress": 0.1}))
    assert own.cover_progress == 10
    asyncio.run(run_handler(own, "upload_cover", [UploadFile(file=BytesIO(picture()), path=Path("c.jpg"))]))
    assert (own.error, own.notice, own.cover_progress) == ("", "Cover image saved.", -1)
    assert own.event["cover"].startswith(f"/api/media/events/{world['event'].id}/")
    asyncio.run(run_handler(own, "upload_cover", [UploadFile(file=BytesIO(b"notes"), path=Path("c.png"))]))
    assert own.error == "That file is not an image we can read. Upload a JPEG, PNG, WebP or GIF."
    asyncio.run(run_handler(own, "cover_rejected", [{"errors": [{"code": "file-too-large"}]}]))
    assert own.error == "The image is larger than 5 MB. Export it smaller and try again."

    _rival, rival_token = person("rival@example.com", Role.SELLER)
    rival = organizer_page(world, rival_token)
    asyncio.run(run_handler(rival, "upload_cover", [UploadFile(file=BytesIO(picture()), path=Path("c.jpg"))]))
    asyncio.run(run_handler(rival, "remove_cover"))
    assert rival.error == "That event does not exist."
    buyer = make_state(EventState, query={"event_id": str(world["event"].id)})
    asyncio.run(run_handler(buyer, "load_event"))
    assert buyer.event["cover"] == own.event["cover"]
    asyncio.run(run_handler(own, "remove_cover"))
    assert own.event["cover"] == ""
