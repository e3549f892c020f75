"""An organizer creates and publishes an event; two customers in two browsers race for the last seat
(the second is told it is sold out) while a third browser watches seats-left change live; the winner
pays from the wallet and sees the ticket with its QR code. A card payment that lands after its seats
went is refunded to the card, and the customer is told so."""

import time
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Browser, Page, expect
from sqlmodel import select

from paytime_app import routes
from paytime_app.db import in_transaction, unit_of_work
from paytime_app.models.bookings import Booking
from paytime_app.models.payments import PaymentRefund, RefundStatus
from paytime_app.models.users import Role
from paytime_app.services.bookings import create_booking, expire_hold
from paytime_app.services.events import create_event, publish_event, save_ticket_type
from paytime_app.services.users import create_user
from tests.e2e.conftest import screenshot
from tests.e2e.test_accounts import sign_in
from tests.e2e.test_calls import fund

PASSWORD = "correct-horse-battery"


def customer(email: str, name: str):
    user = in_transaction(create_user, email=email, display_name=name, password=PASSWORD, email_verified=True)
    fund(user, 100_000_00)
    return user


def signed_in_page(browser: Browser, app_server, email: str) -> Page:
    other = browser.new_context(base_url=app_server["base_url"], viewport={"width": 1280, "height": 860}).new_page()
    other.set_default_timeout(15_000)
    sign_in(other, email, PASSWORD)
    return other


def add_ticket_type(page: Page, name: str, *, price: str, capacity: str) -> None:
    page.get_by_role("button", name="Add ticket type").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Ticket type name").fill(name)
    dialog.get_by_label("Price", exact=True).fill(price)
    dialog.get_by_label("Capacity", exact=True).fill(capacity)
    dialog.get_by_role("button", name="Save ticket type").click()
    expect(dialog).to_be_hidden()


def test_organizer_publishes_and_customers_race_for_the_last_seats(browser: Browser, page: Page, app_server):
    in_transaction(
        create_user,
        email="org@example.com",
        display_name="Ola Organizer",
        password=PASSWORD,
        email_verified=True,
        role=Role.SELLER,
    )
    customer("ada.e2e@example.com", "Ada Buyer")
    customer("ben.e2e@example.com", "Ben Buyer")

    # The organizer creates a draft, adds a ticket type with two seats, and publishes.
    sign_in(page, "org@example.com", PASSWORD)
    page.goto("/organizer")
    expect(page.get_by_role("heading", name="No events yet")).to_be_visible()
    screenshot(page, "organizer-empty")
    page.get_by_label("Title", exact=True).fill("Rooftop Jazz Night")
    page.get_by_label("Venue", exact=True).fill("Eko Atlantic Rooftop")
    page.get_by_label("Starts").fill("2031-05-01T19:00")
    page.get_by_label("Ends").fill("2031-05-01T23:00")
    page.get_by_role("button", name="Create draft").click()
    expect(page.get_by_role("heading", name="Rooftop Jazz Night")).to_be_visible()
    add_ticket_type(page, "Regular", price="5000", capacity="2")
    expect(page.get_by_text("Ticket type added.")).to_be_visible()
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Published: the event is on sale.")).to_be_visible()
    screenshot(page, "organizer-event-published")
    event_path = page.get_by_role("link", name="View public page").get_attribute("href")

    # A visitor watches the event page; two customers open it in their own browsers.
    watcher = browser.new_context(base_url=app_server["base_url"]).new_page()
    watcher.set_default_timeout(15_000)
    watcher.goto(event_path)
    seats = watcher.get_by_label("Regular seats left")
    expect(seats).to_have_text("2 seats left")
    ada = signed_in_page(browser, app_server, "ada.e2e@example.com")
    ben = signed_in_page(browser, app_server, "ben.e2e@example.com")
    for buyer in (ada, ben):
        buyer.goto(event_path)
        expect(buyer.get_by_label("Regular seats left")).to_have_text("2 seats left")
        buyer.get_by_label("Quantity of Regular").fill("2")
    screenshot(ada, "event-page")

    # Both ask for the last two seats at once: one gets them, the other is told they are sold out.
    ada_button = ada.get_by_role("button", name="Reserve tickets")
    ben_button = ben.get_by_role("button", name="Reserve tickets")
    ada_button.click(no_wait_after=True)
    ben_button.click(no_wait_after=True)
    winner, loser = None, None
    for buyer, other in ((ada, ben), (ben, ada)):
        try:
            expect(buyer.get_by_label("Time left to pay")).to_be_visible(timeout=8000)
            winner, loser = buyer, other
            break
        except AssertionError:
            continue
    assert winner is not None, "nobody got the seats"
    expect(loser.get_by_role("alert")).to_contain_text("not enough tickets left")
    screenshot(loser, "event-sold-out-for-second-buyer")
    expect(seats).to_have_text("Sold out", timeout=5000)
    screenshot(watcher, "event-watcher-sold-out-live")

    # The winner pays from the wallet and finds the tickets with QR codes and PDFs.
    screenshot(winner, "booking-held-countdown")
    winner.get_by_role("button", name="Pay from wallet").click()
    expect(winner.get_by_text("Paid. Your tickets are ready.")).to_be_visible()
    screenshot(winner, "booking-confirmed")
    winner.get_by_role("link", name="See my tickets").click()
    expect(winner.get_by_role("img", name="QR code for ticket", exact=False).first).to_be_visible()
    pdf_href = winner.get_by_role("link", name="PDF").first.get_attribute("href")
    response = winner.request.get(pdf_href)
    assert response.status == 200
    assert response.body().startswith(b"%PDF")
    assert loser.request.get(pdf_href).status == 404
    screenshot(winner, "my-tickets")

    # The organizer sees the sale: sold / left, revenue, the booking and the chart.
    page.reload()
    expect(page.get_by_text("₦10,000.00").first).to_be_visible()
    expect(page.get_by_role("heading", name="Bookings by day")).to_be_visible()
    screenshot(page, "organizer-event-sales")
    for other in (watcher, ada, ben):
        other.context.close()


def test_public_event_list_on_a_phone(mobile_page: Page):
    mobile_page.goto("/events")
    expect(mobile_page.get_by_role("heading", name="Events", exact=True)).to_be_visible()
    screenshot(mobile_page, "events-list-mobile")


def test_card_payment_after_the_seats_went_is_refunded_and_the_customer_told(page: Page, app_server):
    organizer = in_transaction(
        create_user,
        email="late.org@example.com",
        display_name="Lola Organizer",
        password=PASSWORD,
        email_verified=True,
        role=Role.SELLER,
    )
    starts = datetime(2031, 6, 1, 19, 0, tzinfo=UTC)
    event = in_transaction(
        create_event, actor=organizer, title="Last Seat Session", starts_at=starts, ends_at=starts + timedelta(hours=3)
    )
    ticket_type = in_transaction(
        save_ticket_type, actor=organizer, event_id=event.id, name="Regular", price_minor=500_000, capacity=1
    )
    in_transaction(publish_event, actor=organizer, event_id=event.id)
    ada = customer("ada.late@example.com", "Ada Late")
    ben = customer("ben.late@example.com", "Ben Prompt")
    booking = in_transaction(
        create_booking, actor=ada, event_id=event.id, items=[(ticket_type.id, 1)], idempotency_key="late-e2e-ada"
    )

    # Ada opens the card checkout for her held seat...
    sign_in(page, "ada.late@example.com", PASSWORD)
    page.goto(routes.booking_detail(str(booking.id)))
    page.get_by_role("button", name="Pay by card").click()
    pay = page.get_by_role("button", name="Pay", exact=True)
    expect(pay).to_be_visible()
    # ...while she is there, her hold runs out and Ben takes the last seat.
    in_transaction(expire_hold, booking_id=booking.id, now=booking.expires_at)
    in_transaction(
        create_booking, actor=ben, event_id=event.id, items=[(ticket_type.id, 1)], idempotency_key="late-e2e-ben"
    )
    pay.click()

    # Back on her booking she is told the payment came too late and goes back to her card.
    expect(page.get_by_text("arrived after your hold expired and the seats were gone")).to_be_visible()
    screenshot(page, "booking-late-payment-refunded")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not refund_settled(booking.id):
        time.sleep(0.25)
    page.reload()
    expect(page.get_by_text("It was refunded to your card or bank.")).to_be_visible()
    expect(page.get_by_text("your tickets appear here as soon as it is confirmed")).to_have_count(0)
    expect(page.get_by_role("button", name="Pay by card")).to_have_count(0)


def refund_settled(booking_id) -> bool:
    with unit_of_work() as session:
        booking = session.get(Booking, booking_id)
        refunds = session.exec(select(PaymentRefund).where(PaymentRefund.payment_id == booking.payment_id)).all()
        return any(refund.status == RefundStatus.SUCCEEDED for refund in refunds)
