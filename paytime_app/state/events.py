"""Customers' side of events: the public list, an event page with live seats left, a booking with its
hold countdown and payment, and My tickets with QR codes."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import reflex as rx
from reflex_base.constants.state import FIELD_MARKER

from paytime_app import live, routes
from paytime_app.cookies import SESSION_COOKIE
from paytime_app.db import unit_of_work
from paytime_app.errors import AuthenticationRequired, DomainError
from paytime_app.models.bookings import BookingStatus, TicketStatus
from paytime_app.models.events import Event, VenueType
from paytime_app.models.sessions import SessionKind
from paytime_app.money import format_money, to_minor
from paytime_app.services.bookings import (
    SoldOut,
    booking_items,
    cancel_booking,
    create_booking,
    get_booking,
    list_own_bookings,
    list_own_tickets,
    pay_booking,
    set_attendee_names,
    start_booking_payment,
)
from paytime_app.services.events import (
    SEATS_TOPIC,
    get_public_event,
    list_public_events,
    list_ticket_types,
    record_event_view,
    seats_left,
)
from paytime_app.services.paging import page_count
from paytime_app.services.ticket_pdf import qr_png
from paytime_app.settings import get_settings
from paytime_app.state.auth import AuthState

PAGE_SIZE = 12
VENUE_LABELS = {
    VenueType.EVENT: "Event",
    VenueType.BAR: "Bar",
    VenueType.SPORTS: "Sports",
    VenueType.HOTEL: "Hotel",
    VenueType.OTHER: "Other",
}


def when(event: Event) -> str:
    """The event's start in its own time zone, for people."""
    return event.starts_at.astimezone(ZoneInfo(event.timezone)).strftime("%a %d %b %Y, %H:%M")


async def load_signed_in(state: Any) -> rx.event.EventSpec | None:
    """A signed-in page's on_load: who is asking, then the state's `_refresh`; a sign-in redirect if nobody."""
    await state._load_viewer()
    if not state.is_signed_in:
        return state._sign_in_redirect()
    try:
        await state._refresh()
    except AuthenticationRequired:
        return state._sign_in_redirect()
    return None


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _tier_note(until: datetime | None, left: int | None, zone: ZoneInfo) -> str:
    """When the price in force ends, for buyers: a date, a count of tickets, or both."""
    notes = []
    if until is not None:
        notes.append(f"until {until.astimezone(zone).strftime('%d %b, %H:%M')}")
    if left is not None:
        notes.append(f"{left} left at this price")
    return ", ".join(notes).capitalize()


class EventsState(AuthState):
    """The public list: search, venue type, date and price filters, pages."""

    rows: list[dict[str, str]] = []
    query: str = ""
    venue_type: str = "all"
    when_filter: str = "any"  # any | week | month
    max_price: str = ""
    page: int = 1
    total: int = 0
    error: str = ""
    is_loading: bool = True

    @rx.var
    def total_pages(self) -> int:
        return page_count(self.total, PAGE_SIZE)

    async def _refresh(self) -> None:
        self.error = ""
        now = datetime.now(ZoneInfo("UTC"))
        before = {"week": 7, "month": 31}.get(self.when_filter)
        max_minor = None
        if self.max_price.strip():
            try:
                max_minor = to_minor(self.max_price[:20], "NGN")
            except DomainError as error:
                self.error = error.message
                return
        summaries, self.total = await self._call_service(
            list_public_events,
            query=self.query,
            venue_type="" if self.venue_type == "all" else self.venue_type,
            starts_before=now + timedelta(days=before) if before else None,
            max_price_minor=max_minor,
            page=self.page,
            page_size=PAGE_SIZE,
        )
        self.rows = [
            {
                "id": str(summary.event.id),
                "href": routes.event_detail(str(summary.event.id)),
                "title": summary.event.title,
                "venue": summary.event.venue or "Venue to be announced",
                "venue_type": VENUE_LABELS[VenueType(summary.event.venue_type)],
                "when": when(summary.event),
                "from": "Free"
                if summary.min_price_minor == 0
                else f"From {format_money(summary.min_price_minor or 0, summary.event.currency)}",
                "thumb": routes.event_cover(str(summary.event.id), summary.event.cover_image, thumb=True),
                "left": "Sold out" if summary.seats_left == 0 else f"{summary.seats_left} left",
                "sold_out": "yes" if summary.seats_left == 0 else "",
            }
            for summary in summaries
        ]

    @rx.event
    async def load_events(self) -> None:
        self.is_loading = True
        await self._load_viewer()
        self.page = 1
        await self._refresh()
        self.is_loading = False

    @rx.event
    async def search(self, form: dict[str, Any]) -> None:
        self.query = str(form.get("q", ""))[:100]
        self.max_price = str(form.get("max_price", ""))[:20]
        self.page = 1
        await self._refresh()

    @rx.event
    async def filter_venue(self, venue_type: str) -> None:
        if venue_type == "all" or venue_type in VenueType.__members__.values():
            self.venue_type, self.page = venue_type, 1
            await self._refresh()

    @rx.event
    async def filter_when(self, value: str) -> None:
        if value in ("any", "week", "month"):
            self.when_filter, self.page = value, 1
            await self._refresh()

    @rx.event
    async def go_to_page(self, page: int) -> None:
        self.page = max(1, min(int(page), self.total_pages))
        await self._refresh()


def seats_delta(event_id: str) -> dict[str, dict[str, Any]] | None:
    """The ready-made delta every viewer of an event gets when its seats change: seats left per type."""
    found = _uuid(event_id)
    if found is None:
        return None
    with unit_of_work() as session:
        event = session.get(Event, found)
        if event is None:
            return None
        left = {str(t.id): seats_left(t, event) for t in list_ticket_types(session=session, event_id=event.id)}
    return {EventState.get_full_name(): {"live_seats" + FIELD_MARKER: left}}


class EventState(AuthState):
    """One event: what is on sale, seats left (live), choose quantities and a coupon, book."""

    event: dict[str, str] = {}
    types: list[dict[str, str]] = []
    # type id -> its attributes for buyers, as {"name", "value"} rows in the organizer's order.
    type_attributes: dict[str, list[dict[str, str]]] = {}
    # type id -> seats left; replaced live for everyone viewing the event (live.broadcast_on).
    live_seats: dict[str, int] = {}
    error: str = ""
    is_loading: bool = True
    is_booking: bool = False
    _key: str = ""
    _room: str = ""

    def _event_id(self) -> str:
        return str(self.router.page.params.get("event_id", ""))[:40]

    async def _refresh(self) -> bool:
        event_id = _uuid(self._event_id())
        if event_id is None:
            return False
        unlock = str(self.router.url.query_parameters.get("code", ""))[:40]
        try:
            event, rows = await self._call_service(get_public_event, event_id=event_id, unlock_code=unlock)
        except DomainError:
            return False
        self.event = {
            "id": str(event.id),
            "title": event.title,
            "description": event.description,
            "venue": event.venue or "Venue to be announced",
            "venue_type": VENUE_LABELS[VenueType(event.venue_type)],
            "when": when(event),
            "timezone": event.timezone,
            "status": str(event.status),
            "cover": routes.event_cover(str(event.id), event.cover_image),
        }
        zone = ZoneInfo(event.timezone)
        self.types = [
            {
                "id": str(row.ticket_type.id),
                "name": row.ticket_type.name,
                "description": row.ticket_type.description,
                "price": "Free" if row.price_minor == 0 else format_money(row.price_minor, event.currency),
                "base_price": format_money(row.ticket_type.price_minor, event.currency)
                if row.tier_label and row.ticket_type.price_minor != row.price_minor
                else "",
                "tier": row.tier_label or ("Special price" if row.price_minor != row.ticket_type.price_minor else ""),
                "tier_note": _tier_note(row.tier_until, row.tier_left, zone),
                "on_sale": "yes" if row.on_sale else "",
                "note": row.sales_note,
                "max": str(min(row.ticket_type.per_booking_max, 20)),
                "entries": f"Valid for {row.ticket_type.entries_allowed} entries"
                if row.ticket_type.entries_allowed > 1
                else "",
            }
            for row in rows
        ]
        self.type_attributes = {
            str(row.ticket_type.id): [
                {"name": str(name), "value": str(value)} for name, value in row.ticket_type.attributes.items()
            ]
            for row in rows
        }
        self.live_seats = {str(row.ticket_type.id): row.seats_left for row in rows}
        return True

    @rx.event
    async def load_event(self) -> None:
        self.is_loading, self.error, self.is_booking = True, "", False
        await self._load_viewer()
        self._key = secrets.token_urlsafe(12)
        if not await self._refresh():
            self.event, self.types, self.live_seats = {}, [], {}
        else:
            await self._call_service(
                record_event_view, event_id=uuid.UUID(self.event["id"]), viewer_id=_uuid(self.user_id)
            )
            self._room = await live.join_room(
                topic=SEATS_TOPIC, key=self.event["id"], sid=self.router.session.session_id, leave=self._room
            )
        self.is_loading = False

    @rx.event
    async def submit_booking(self, form: dict[str, Any]) -> AsyncIterator[rx.event.EventSpec | None]:
        if not self.is_signed_in:
            yield self._sign_in_redirect()
            return
        event_id = _uuid(self.event.get("id", ""))
        known = {row["id"] for row in self.types}
        items = []
        for name, value in form.items():
            type_id = str(name).removeprefix("qty_")
            if str(name).startswith("qty_") and type_id in known and str(value).isdigit() and int(value) > 0:
                items.append((uuid.UUID(type_id), min(int(value), 20)))
        if event_id is None or not items:
            # The quantity fields disappear for everyone once a type sells out (live seats), so an
            # empty form may be a buyer who was just beaten to the last seats: say so.
            sold_out = event_id is not None and await self._refresh() and not any(self.live_seats.values())
            self.error = SoldOut.default_message if sold_out else "Choose how many tickets you want."
            return
        self.is_booking, self.error = True, ""
        yield
        try:
            booking = await self._call_as_viewer(
                create_booking,
                event_id=event_id,
                items=items,
                coupon_code=str(form.get("coupon", ""))[:40],
                group_ticket=str(form.get("group", "")) in ("on", "true", "yes"),
                unlock_code=str(self.router.url.query_parameters.get("code", ""))[:40],
                idempotency_key=f"web:{self._key}",
            )
        except AuthenticationRequired:
            yield self._sign_in_redirect()
            return
        except DomainError as error:
            self.error, self.is_booking = error.message, False
            self._key = secrets.token_urlsafe(12)
            await self._refresh()
            return
        self._key = secrets.token_urlsafe(12)
        self.is_booking = False
        yield rx.redirect(routes.booking_detail(str(booking.id)))


class BookingState(AuthState):
    """A booking: the hold countdown, the total, pay by wallet or card, cancel."""

    booking: dict[str, str] = {}
    items: list[dict[str, str]] = []
    expires_epoch: float = 0.0
    seconds_left: int = 0
    error: str = ""
    notice: str = ""
    is_loading: bool = True
    is_paying: bool = False
    _ticking: bool = False

    @rx.var
    def countdown(self) -> str:
        minutes, seconds = divmod(max(self.seconds_left, 0), 60)
        return f"{minutes}:{seconds:02d}"

    def _booking_id(self) -> uuid.UUID | None:
        return _uuid(str(self.router.page.params.get("booking_id", ""))[:40])

    async def _refresh(self) -> None:
        booking_id = self._booking_id()
        if booking_id is None:
            self.booking, self.items = {}, []
            return

        def read(*, session: Any, actor: Any) -> tuple[Any, Any, list[Any]]:
            booking = get_booking(session=session, actor=actor, booking_id=booking_id)
            event = session.get(Event, booking.event_id)
            types = {str(t.id): t.name for t in list_ticket_types(session=session, event_id=booking.event_id)}
            items = [
                {
                    "id": str(item.ticket_type_id),
                    "name": types.get(str(item.ticket_type_id), "Ticket"),
                    "names": ", ".join(item.attendee_names),
                    "quantity": str(item.quantity),
                    "price": format_money(item.unit_price_minor, booking.currency),
                    "tier": item.tier_label,
                }
                for item in booking_items(session=session, booking=booking)
            ]
            return booking, event, items

        try:
            booking, event, self.items = await self._call_as_viewer(read)
        except DomainError:
            self.booking, self.items = {}, []
            return
        held = booking.status == BookingStatus.HELD
        self.expires_epoch = booking.expires_at.timestamp() if held and booking.expires_at else 0.0
        self.seconds_left = max(0, int(self.expires_epoch - time.time())) if held else 0
        self.booking = {
            "id": str(booking.id),
            "reference": booking.reference,
            "status": str(booking.status),
            "event_title": event.title,
            "event_href": routes.event_detail(str(event.id)),
            "when": when(event),
            "venue": event.venue,
            "subtotal": format_money(booking.subtotal_minor, booking.currency),
            "discount": format_money(booking.discount_minor, booking.currency) if booking.discount_minor else "",
            "total": format_money(booking.total_minor, booking.currency),
            "free": "yes" if booking.total_minor == 0 else "",
            "refunded": format_money(booking.refunded_minor, booking.currency) if booking.refunded_minor else "",
            "note": booking.outcome_note,
            "pdf": routes.booking_pdf(str(booking.id)),
        }

    @rx.event
    async def load_booking(self) -> AsyncIterator[rx.event.EventSpec | None]:
        self.is_loading, self.error, self.notice, self.is_paying = True, "", "", False
        if (redirect := await load_signed_in(self)) is not None:
            yield redirect
            return
        # Back from the provider's checkout: only a booking still held is waiting for that payment;
        # any other outcome (confirmed, or a late payment sent back) speaks for itself.
        if self.router.url.query_parameters.get("payment") and self.booking.get("status") == BookingStatus.HELD:
            self.notice = "Payment received by the provider; your tickets appear here as soon as it is confirmed."
        self.is_loading = False
        yield BookingState.tick

    @rx.event
    async def refresh(self) -> AsyncIterator[rx.event.EventSpec | None]:
        """Pushed by the server when one of the viewer's bookings changes (paid, expired, refunded)."""
        await self._refresh()
        yield BookingState.tick

    @rx.event(background=True)
    async def tick(self) -> None:
        """Count the hold down once a second; when it reaches zero, re-read (the server expires it)."""
        async with self:
            if self._ticking:
                return
            self._ticking = True
        try:
            while True:
                async with self:
                    if self.booking.get("status") != BookingStatus.HELD or not self.expires_epoch:
                        return
                    self.seconds_left = max(0, int(self.expires_epoch - time.time()))
                    if self.seconds_left == 0:
                        self.expires_epoch = 0.0
                        self.notice = "Your hold has run out; the seats go back on sale unless you pay now."
                        return
                await asyncio.sleep(1)
        finally:
            async with self:
                self._ticking = False

    @rx.event
    async def save_names(self, form: dict[str, Any]) -> None:
        booking_id = self._booking_id()
        if booking_id is None:
            return
        names = {}
        for key, value in form.items():
            type_id = _uuid(str(key).removeprefix("names_")) if str(key).startswith("names_") else None
            if type_id is not None:
                names[type_id] = [part for part in str(value)[:2000].split(",") if part.strip()]
        self.error, self.notice = "", ""
        try:
            await self._call_as_viewer(set_attendee_names, booking_id=booking_id, names=names)
        except DomainError as error:
            self.error = error.message
        else:
            self.notice = "Names saved; they are printed on the tickets."
        await self._refresh()

    @rx.event
    async def pay_with_wallet(self) -> AsyncIterator[rx.event.EventSpec | None]:
        booking_id = self._booking_id()
        if booking_id is None:
            return
        self.is_paying, self.error, self.notice = True, "", ""
        yield
        try:
            await self._call_as_viewer(pay_booking, booking_id=booking_id)
        except DomainError as error:
            self.error = error.message
        else:
            self.notice = "Paid. Your tickets are ready."
        self.is_paying = False
        await self._refresh()

    @rx.event
    async def pay_with_card(self) -> AsyncIterator[rx.event.EventSpec | None]:
        booking_id = self._booking_id()
        if booking_id is None:
            return
        self.is_paying, self.error = True, ""
        yield
        try:
            payment = await self._run(
                start_booking_payment,
                token=self._cookie(SESSION_COOKIE),
                kind=SessionKind.BROWSER,
                booking_id=booking_id,
                provider=get_settings().payment_provider_default,
                return_url=f"{get_settings().base_url}{routes.booking_detail(str(booking_id))}",
            )
        except DomainError as error:
            self.error, self.is_paying = error.message, False
            return
        yield rx.call_script(f"window.location.assign({json.dumps(payment.checkout_url)})")

    @rx.event
    async def cancel(self) -> None:
        booking_id = self._booking_id()
        if booking_id is None:
            return
        self.error, self.notice = "", ""
        try:
            await self._call_as_viewer(cancel_booking, booking_id=booking_id)
        except DomainError as error:
            self.error = error.message
        else:
            self.notice = "Cancelled. Any refund due is in your wallet."
        await self._refresh()


class TicketsState(AuthState):
    """My tickets (with QR codes and PDF links) and my bookings."""

    tickets: list[dict[str, str]] = []
    bookings: list[dict[str, str]] = []
    error: str = ""
    is_loading: bool = True

    async def _refresh(self) -> None:
        rows = await self._call_as_viewer(list_own_tickets)
        self.tickets = [
            {
                "id": str(ticket.id),
                "code": ticket.code,
                "event": event.title,
                "when": when(event),
                "venue": event.venue,
                "type": ticket_type.name,
                "attendee": ticket.attendee_name,
                "admits": f"Admits {ticket.admits}" if ticket.admits > 1 else "",
                "status": str(ticket.status),
                "valid": "yes" if ticket.status == TicketStatus.VALID else "",
                "qr": "data:image/png;base64," + base64.b64encode(qr_png(ticket.qr_payload)).decode(),
                "pdf": routes.ticket_pdf(str(ticket.id)),
            }
            for ticket, event, ticket_type in rows
        ]
        self.bookings = [
            {
                "id": str(booking.id),
                "href": routes.booking_detail(str(booking.id)),
                "reference": booking.reference,
                "event": event.title,
                "status": str(booking.status),
                "total": format_money(booking.total_minor, booking.currency),
                "when": booking.created_at.strftime("%d %b %Y, %H:%M"),
            }
            for booking, event in await self._call_as_viewer(list_own_bookings, page=1, page_size=20)
        ]

    @rx.event
    async def load_tickets(self) -> AsyncIterator[rx.event.EventSpec | None]:
        self.is_loading, self.error = True, ""
        if (redirect := await load_signed_in(self)) is not None:
            yield redirect
            return
        self.is_loading = False

    @rx.event
    async def refresh(self) -> None:
        try:
            await self._refresh()
        except AuthenticationRequired:
            return
