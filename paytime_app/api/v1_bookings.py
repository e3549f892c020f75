"""REST API v1: bookings and tickets, plus the browser's authorised downloads (ticket PDFs, CSV export).

Only the buyer (or the event's organizer) sees a booking or a ticket; anyone else gets 404.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
import weakref
from typing import Any, Literal

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from paytime_app.api.params import Page
from paytime_app.api.v1_auth import AccessToken, BearerToken
from paytime_app.cookies import SESSION_COOKIE
from paytime_app.db import POOL_SIZE, ahead_of_transaction, unit_of_work
from paytime_app.models.bookings import Booking, Ticket
from paytime_app.models.events import Event, TicketType
from paytime_app.models.sessions import SessionKind
from paytime_app.models.users import User
from paytime_app.services import bookings as booking_service
from paytime_app.services.payments import default_return_url
from paytime_app.services.sessions import authenticate_token, call_as_user
from paytime_app.services.ticket_pdf import render_tickets_pdf

router = APIRouter(tags=["bookings"])


class ItemIn(BaseModel):
    ticket_type_id: uuid.UUID
    quantity: int = Field(ge=1, le=20)


class AttendeesIn(BaseModel):
    ticket_type_id: uuid.UUID
    names: list[str] = Field(max_length=20)


class BookingRequest(BaseModel):
    event_id: uuid.UUID
    items: list[ItemIn] = Field(min_length=1, max_length=10)
    coupon_code: str = Field(default="", max_length=40)
    attendees: list[AttendeesIn] = Field(default_factory=list, max_length=10)
    group_ticket: bool = False
    unlock_code: str = Field(default="", max_length=40)


class PayRequest(BaseModel):
    method: Literal["wallet", "provider"] = "wallet"
    provider: str = Field(default="mock", max_length=20)


class CancelRequest(BaseModel):
    ticket_ids: list[uuid.UUID] | None = Field(default=None, description="Omit to cancel every ticket")


class ItemOut(BaseModel):
    ticket_type_id: str
    quantity: int
    unit_price: int
    tier: str


class BookingOut(BaseModel):
    id: str
    reference: str
    event_id: str
    status: str
    currency: str
    subtotal: int
    discount: int
    total: int
    refunded: int
    expires_at: str | None
    paid_with: str | None
    note: str
    items: list[ItemOut]
    created_at: str


class PayOut(BaseModel):
    booking: BookingOut
    checkout_url: str | None = Field(default=None, description="For provider payments: send the payer here")


class TicketOut(BaseModel):
    id: str
    code: str
    booking_id: str
    event_id: str
    event_title: str
    starts_at: str
    ticket_type: str
    attendee_name: str
    admits: int
    entries_allowed: int
    status: str
    qr_payload: str = Field(description="Ed25519-signed token; verify with the public key named by its kid")
    kid: str


def _as_user(token: str, service: Any, **kwargs: Any) -> Any:
    return call_as_user(service, token=token, session_kind=SessionKind.API, **kwargs)


def _booking_out(booking: Booking, items: list[Any]) -> BookingOut:
    return BookingOut(
        id=str(booking.id),
        reference=booking.reference,
        event_id=str(booking.event_id),
        status=str(booking.status),
        currency=booking.currency,
        subtotal=booking.subtotal_minor,
        discount=booking.discount_minor,
        total=booking.total_minor,
        refunded=booking.refunded_minor,
        expires_at=booking.expires_at.isoformat() if booking.expires_at else None,
        paid_with=booking.paid_with,
        note=booking.outcome_note,
        items=[
            ItemOut(
                ticket_type_id=str(item.ticket_type_id),
                quantity=item.quantity,
                unit_price=item.unit_price_minor,
                tier=item.tier_label,
            )
            for item in items
        ],
        created_at=booking.created_at.isoformat(),
    )


def _with_items(service: Any) -> Any:
    """Run a booking service and describe its result with its items, in the same transaction."""

    def run(*, session: Any, actor: User, **kwargs: Any) -> BookingOut:
        booking = service(session=session, actor=actor, **kwargs)
        return _booking_out(booking, booking_service.booking_items(session=session, booking=booking))

    return run


def _ticket_out(ticket: Ticket, event: Event, ticket_type: TicketType) -> TicketOut:
    return TicketOut(
        id=str(ticket.id),
        code=ticket.code,
        booking_id=str(ticket.booking_id),
        event_id=str(event.id),
        event_title=event.title,
        starts_at=event.starts_at.isoformat(),
        ticket_type=ticket_type.name,
        attendee_name=ticket.attendee_name,
        admits=ticket.admits,
        entries_allowed=ticket.entries_allowed,
        status=str(ticket.status),
        qr_payload=ticket.qr_payload,
        kid=ticket.kid,
    )


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its `$defs` written in place (their refs mean nothing inside the API's docs)."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(defs[node["$ref"].rsplit("/", 1)[1]])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(value) for value in node]
        return node

    return resolve(schema)


# The request's body and key, described for the docs: the route reads them itself, after the token.
_HOLD_REQUEST_DOCS: dict[str, Any] = {
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": True,
            "schema": {"type": "string", "minLength": 8, "maxLength": 120},
        }
    ],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": _inlined(BookingRequest.model_json_schema())}},
    },
}


@router.post("/api/v1/bookings", response_model=BookingOut, status_code=201, openapi_extra=_HOLD_REQUEST_DOCS)
async def create_booking(request: Request, credentials: BearerToken) -> BookingOut:
    """Hold tickets for 15 minutes at the prices in force. Refusals: 409 sold_out, sales_closed,
    customer_limit_exceeded, coupon_exhausted; 422 invalid_coupon, booking_limit_exceeded."""
    # A ticket drop's hot route, where nine requests in ten are refused: one thread hop does the
    # token check, the request's checks and the booking, in one transaction (committed before the
    # answer's query, since the event's seat rows stay locked until the commit). The token is
    # checked before the body is looked at, so a stranger learns nothing.
    body = await request.body()
    return await anyio.to_thread.run_sync(
        functools.partial(
            _hold,
            token=credentials.credentials if credentials else None,
            body=body,
            idempotency_key=request.headers.get("idempotency-key"),
        ),
        limiter=_hold_limiter(),
    )


_HOLD_LIMITERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def _hold_limiter() -> anyio.CapacityLimiter:
    """At most POOL_SIZE holds at once per worker: each holds a pooled connection for its whole hop,
    so a burst never opens overflow connections (each one a new server process, opened and closed
    per request) and the rest wait their turn without a thread."""
    loop = asyncio.get_running_loop()
    limiter = _HOLD_LIMITERS.get(loop)
    if limiter is None:
        limiter = _HOLD_LIMITERS[loop] = anyio.CapacityLimiter(POOL_SIZE)
    return limiter


def _hold(*, token: str | None, body: bytes, idempotency_key: str | None) -> BookingOut:
    with unit_of_work() as session:
        # Read ahead of the transaction, like a refused buyer's one read: a refusal then leaves
        # without BEGIN or ROLLBACK.
        with ahead_of_transaction(session):
            actor, _record = authenticate_token(session=session, token=token, kind=SessionKind.API)
        request = _valid_hold_request(body, idempotency_key)
        booking = booking_service.create_booking(
            session=session,
            actor=actor,
            event_id=request.event_id,
            items=[(item.ticket_type_id, item.quantity) for item in request.items],
            coupon_code=request.coupon_code,
            attendees={entry.ticket_type_id: entry.names for entry in request.attendees},
            group_ticket=request.group_ticket,
            unlock_code=request.unlock_code,
            idempotency_key=idempotency_key or "",
        )
        session.commit()
        return _booking_out(booking, booking_service.booking_items(session=session, booking=booking))


def _valid_hold_request(body: bytes, idempotency_key: str | None) -> BookingRequest:
    """The body and key checked as FastAPI checks declared parameters (422 invalid_input)."""
    errors: list[dict[str, Any]] = []
    if idempotency_key is None:
        errors.append({"type": "missing", "loc": ("header", "Idempotency-Key"), "msg": "Field required"})
    elif not 8 <= len(idempotency_key) <= 120:
        errors.append({"type": "string_length", "loc": ("header", "Idempotency-Key"), "msg": "Use 8 to 120 characters"})
    try:
        request = BookingRequest.model_validate_json(body)
    except ValidationError as invalid:
        errors.extend({**error, "loc": ("body", *error["loc"])} for error in invalid.errors(include_url=False))
    if errors:
        raise RequestValidationError(errors, body=body)
    return request


@router.get("/api/v1/bookings", response_model=list[BookingOut])
def bookings(token: AccessToken, page: Page = 1) -> list[BookingOut]:
    """Your bookings, newest first."""

    def run(*, session: Any, actor: User) -> list[BookingOut]:
        found = booking_service.list_own_bookings(session=session, actor=actor, page=page)
        return [
            _booking_out(booking, booking_service.booking_items(session=session, booking=booking))
            for booking, _event in found
        ]

    return _as_user(token, run)


@router.get("/api/v1/bookings/{booking_id}", response_model=BookingOut)
def booking(booking_id: uuid.UUID, token: AccessToken) -> BookingOut:
    return _as_user(token, _with_items(booking_service.get_booking), booking_id=booking_id)


@router.post("/api/v1/bookings/{booking_id}/pay", response_model=PayOut)
async def pay(booking_id: uuid.UUID, body: PayRequest, token: AccessToken) -> PayOut:
    """Pay from your wallet (409 insufficient_funds, hold_expired) or start a provider payment
    (send the payer to `checkout_url`; the booking is confirmed when the provider reports success)."""
    if body.method == "wallet":
        paid = await run_in_threadpool(_as_user, token, _with_items(booking_service.pay_booking), booking_id=booking_id)
        return PayOut(booking=paid)
    payment = await run_in_threadpool(
        booking_service.start_booking_payment,
        token=token,
        kind=SessionKind.API,
        booking_id=booking_id,
        provider=body.provider,
        return_url=default_return_url(),
    )
    held = await run_in_threadpool(_as_user, token, _with_items(booking_service.get_booking), booking_id=booking_id)
    return PayOut(booking=held, checkout_url=payment.checkout_url)


@router.post("/api/v1/bookings/{booking_id}/cancel", response_model=BookingOut)
def cancel(booking_id: uuid.UUID, token: AccessToken, body: CancelRequest | None = None) -> BookingOut:
    """Cancel a hold, or some or all tickets under the event's refund policy; the refund goes to your wallet."""
    return _as_user(
        token,
        _with_items(booking_service.cancel_booking),
        booking_id=booking_id,
        ticket_ids=body.ticket_ids if body else None,
    )


@router.get("/api/v1/tickets", response_model=list[TicketOut])
def tickets(token: AccessToken) -> list[TicketOut]:
    """Your tickets, next events first."""
    return [_ticket_out(*row) for row in _as_user(token, booking_service.list_own_tickets)]


@router.get("/api/v1/tickets/{ticket_id}", response_model=TicketOut)
def ticket(ticket_id: uuid.UUID, token: AccessToken) -> TicketOut:
    return _ticket_out(*_as_user(token, booking_service.get_ticket, ticket_id=ticket_id))


def _pdf(rows: list[tuple[Ticket, Event, TicketType]], name: str) -> Response:
    return Response(
        render_tickets_pdf(rows),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}.pdf"', "Cache-Control": "private, no-store"},
    )


def _one_ticket(*, session: Any, actor: User, ticket_id: uuid.UUID) -> list[tuple[Ticket, Event, TicketType]]:
    return [booking_service.get_ticket(session=session, actor=actor, ticket_id=ticket_id)]


@router.get("/api/v1/tickets/{ticket_id}/pdf")
def ticket_pdf(ticket_id: uuid.UUID, token: AccessToken) -> Response:
    """The ticket as a PDF with its QR code."""
    rows = _as_user(token, _one_ticket, ticket_id=ticket_id)
    return _pdf(rows, f"ticket-{rows[0][0].code}")


@router.get("/api/v1/bookings/{booking_id}/pdf")
def booking_pdf(booking_id: uuid.UUID, token: AccessToken) -> Response:
    """Every ticket of the booking in one PDF."""
    rows = _as_user(token, booking_service.list_booking_tickets, booking_id=booking_id)
    return _pdf(rows, f"booking-{booking_id}")


class EventBookingOut(BaseModel):
    id: str
    reference: str
    status: str
    buyer_name: str
    buyer_email: str
    currency: str
    total: int
    refunded: int
    created_at: str


@router.get("/api/v1/organizer/events/{event_id}/bookings", response_model=list[EventBookingOut])
def event_bookings(event_id: uuid.UUID, token: AccessToken, q: str = "", page: Page = 1) -> list[EventBookingOut]:
    """Bookings of one of your events, newest first; search by reference, buyer name or email."""
    rows, _total = _as_user(token, booking_service.list_event_bookings, event_id=event_id, query=q[:100], page=page)
    return [
        EventBookingOut(
            id=str(found.id),
            reference=found.reference,
            status=str(found.status),
            buyer_name=buyer.display_name,
            buyer_email=buyer.email,
            currency=found.currency,
            total=found.total_minor,
            refunded=found.refunded_minor,
            created_at=found.created_at.isoformat(),
        )
        for found, buyer in rows
    ]


# --- browser downloads (session cookie), linked from the pages with a full page load ----------------


def _as_browser(request: Request, service: Any, **kwargs: Any) -> Any:
    return call_as_user(service, token=request.cookies.get(SESSION_COOKIE), session_kind=SessionKind.BROWSER, **kwargs)


@router.get("/api/downloads/tickets/{ticket_id}.pdf")
def browser_ticket_pdf(ticket_id: uuid.UUID, request: Request) -> Response:
    rows = _as_browser(request, _one_ticket, ticket_id=ticket_id)
    return _pdf(rows, f"ticket-{rows[0][0].code}")


@router.get("/api/downloads/bookings/{booking_id}.pdf")
def browser_booking_pdf(booking_id: uuid.UUID, request: Request) -> Response:
    rows = _as_browser(request, booking_service.list_booking_tickets, booking_id=booking_id)
    return _pdf(rows, f"booking-{booking_id}")


@router.get("/api/downloads/events/{event_id}/bookings.csv")
def browser_bookings_csv(event_id: uuid.UUID, request: Request) -> Response:
    """The organizer's bookings export (formula-injection safe)."""
    text = _as_browser(request, booking_service.export_event_bookings_csv, event_id=event_id)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="bookings-{event_id}.csv"'},
    )
