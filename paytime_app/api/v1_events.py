"""REST API v1: events. Anyone lists and reads published events; organizers (approved sellers) manage
their own events, ticket types and coupons; customers apply to sell and super_admins decide."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from paytime_app import routes
from paytime_app.api.params import Page
from paytime_app.api.v1_auth import AccessToken
from paytime_app.db import unit_of_work
from paytime_app.models.events import Coupon, Event, TicketType
from paytime_app.models.sellers import SellerApplication
from paytime_app.models.sessions import SessionKind
from paytime_app.models.users import User
from paytime_app.services import events as event_service
from paytime_app.services.bookings import event_sales
from paytime_app.services.covers import MAX_BYTES, CoverTooLarge
from paytime_app.services.events import TypeAvailability
from paytime_app.services.sellers import apply_to_sell, decide_application, list_applications
from paytime_app.services.sessions import call_as_user

router = APIRouter(prefix="/api/v1", tags=["events"])


class TicketTypeOut(BaseModel):
    id: str
    name: str
    description: str
    price: int = Field(description="Price in force now, minor units")
    base_price: int
    tier: str = Field(description="Name of the price tier in force, empty for the base price")
    tier_until: str | None = Field(default=None, description="The tier in force ends at this time")
    tier_left: int | None = Field(default=None, description="The tier in force ends after this many more tickets")
    seats_left: int
    on_sale: bool
    sales_note: str
    per_booking_max: int
    per_customer_max: int
    entries_allowed: int
    attributes: dict[str, str]


class EventOut(BaseModel):
    id: str
    title: str
    description: str
    venue: str
    venue_type: str
    starts_at: str
    ends_at: str
    timezone: str
    currency: str
    status: str
    cover_url: str | None = Field(default=None, description="Cover image (WebP, up to 1600 px), if any")
    cover_thumb_url: str | None = Field(default=None, description="640 x 360 thumbnail of the cover, if any")
    cover_width: int | None = None
    cover_height: int | None = None
    min_price: int | None = Field(default=None, description="Lowest visible price in force, minor units")
    seats_left: int | None = None


class EventDetail(EventOut):
    ticket_types: list[TicketTypeOut]


class EventPage(BaseModel):
    events: list[EventOut]
    total: int
    page: int


class EventRequest(BaseModel):
    title: str = Field(max_length=140)
    description: str = Field(default="", max_length=5000)
    venue: str = Field(default="", max_length=200)
    venue_type: str = Field(default="event", max_length=10)
    starts_at: datetime
    ends_at: datetime
    timezone: str = Field(default="Africa/Lagos", max_length=64)
    currency: str = Field(default="NGN", min_length=3, max_length=3)
    capacity: int | None = Field(default=None, description="Optional capacity shared by all ticket types")
    refund_policy: list[list[int]] | None = Field(default=None, description="[[days_before, percent], ...]")


class TierIn(BaseModel):
    label: str = Field(default="", max_length=40)
    price_minor: int
    until: datetime | None = None
    first_n: int | None = None


class TicketTypeRequest(BaseModel):
    name: str = Field(max_length=80)
    description: str = Field(default="", max_length=500)
    price: int = Field(description="Minor units")
    capacity: int
    sales_start: datetime | None = None
    sales_end: datetime | None = None
    per_booking_max: int = 20
    per_customer_max: int = 10
    entries_allowed: int = 1
    attributes: dict[str, str] = Field(default_factory=dict)
    price_tiers: list[TierIn] = Field(default_factory=list)
    unlock_code: str | None = Field(default=None, max_length=40)


class OrganizerTicketType(BaseModel):
    id: str
    name: str
    description: str
    price: int
    capacity: int
    sold: int
    held: int
    left: int
    revenue: int
    hidden: bool
    unlock_code: str | None
    sales_start: str | None
    sales_end: str | None
    per_booking_max: int
    per_customer_max: int
    entries_allowed: int
    attributes: dict[str, str]
    price_tiers: list[dict[str, Any]]


class OrganizerEvent(EventOut):
    ticket_types: list[OrganizerTicketType]


class CouponRequest(BaseModel):
    code: str = Field(max_length=40)
    kind: str = Field(description="percent (value in basis points) or fixed (minor units)")
    value: int
    max_redemptions: int | None = None
    per_user_limit: int = 1
    expires_at: datetime | None = None
    min_order: int = 0
    ticket_type_ids: list[uuid.UUID] = Field(default_factory=list)


class CouponOut(BaseModel):
    id: str
    code: str
    kind: str
    value: int
    max_redemptions: int | None
    redeemed: int
    per_user_limit: int
    expires_at: str | None
    min_order: int
    ticket_type_ids: list[str]


class ApplicationRequest(BaseModel):
    organisation_name: str = Field(max_length=120)
    contact_email: str = Field(max_length=254)
    contact_phone: str = Field(default="", max_length=20)
    payout_country: str = Field(max_length=2)


class ApplicationOut(BaseModel):
    id: str
    user_id: str
    organisation_name: str
    contact_email: str
    payout_country: str
    status: str
    reason: str
    created_at: str


class DecisionRequest(BaseModel):
    approve: bool
    reason: str = Field(default="", max_length=500)


def _as_user(token: str, service: Any, **kwargs: Any) -> Any:
    return call_as_user(service, token=token, session_kind=SessionKind.API, **kwargs)


def _event_out(event: Event, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(event.id),
        "title": event.title,
        "description": event.description,
        "venue": event.venue,
        "venue_type": str(event.venue_type),
        "starts_at": event.starts_at.isoformat(),
        "ends_at": event.ends_at.isoformat(),
        "timezone": event.timezone,
        "currency": event.currency,
        "status": str(event.status),
        "cover_url": routes.event_cover(str(event.id), event.cover_image) or None,
        "cover_thumb_url": routes.event_cover(str(event.id), event.cover_image, thumb=True) or None,
        "cover_width": event.cover_width,
        "cover_height": event.cover_height,
        **extra,
    }


def _type_out(row: TypeAvailability) -> TicketTypeOut:
    ticket_type = row.ticket_type
    return TicketTypeOut(
        id=str(ticket_type.id),
        name=ticket_type.name,
        description=ticket_type.description,
        price=row.price_minor,
        base_price=ticket_type.price_minor,
        tier=row.tier_label,
        tier_until=row.tier_until.isoformat() if row.tier_until else None,
        tier_left=row.tier_left,
        seats_left=row.seats_left,
        on_sale=row.on_sale,
        sales_note=row.sales_note,
        per_booking_max=ticket_type.per_booking_max,
        per_customer_max=ticket_type.per_customer_max,
        entries_allowed=ticket_type.entries_allowed,
        attributes=ticket_type.attributes,
    )


# --- public ------------------------------------------------------------------------------------------


@router.get("/events", response_model=EventPage)
def events(
    *,
    q: Annotated[str, Query(max_length=100)] = "",
    venue_type: Annotated[str, Query(max_length=10)] = "",
    starts_after: datetime | None = None,
    starts_before: datetime | None = None,
    max_price: Annotated[int | None, Query(ge=0)] = None,
    page: Page = 1,
) -> EventPage:
    """Published events not yet over, soonest first; search title/venue, filter by venue type, date, price."""
    with unit_of_work() as session:
        summaries, total = event_service.list_public_events(
            session=session,
            query=q,
            venue_type=venue_type,
            starts_after=starts_after,
            starts_before=starts_before,
            max_price_minor=max_price,
            page=page,
        )
    return EventPage(
        events=[
            EventOut(**_event_out(s.event, min_price=s.min_price_minor, seats_left=s.seats_left)) for s in summaries
        ],
        total=total,
        page=page,
    )


@router.get("/events/{event_id}", response_model=EventDetail)
def event(event_id: uuid.UUID, unlock_code: Annotated[str, Query(max_length=40)] = "") -> EventDetail:
    """A published event: ticket types (hidden ones only with their code), prices in force, seats left."""
    with unit_of_work() as session:
        found, rows = event_service.get_public_event(session=session, event_id=event_id, unlock_code=unlock_code)
    return EventDetail(**_event_out(found), ticket_types=[_type_out(row) for row in rows])


# --- organizers --------------------------------------------------------------------------------------


def _organizer_view(*, session: Any, actor: User, event_id: uuid.UUID) -> OrganizerEvent:
    found = event_service.get_own_event(session=session, actor=actor, event_id=event_id)
    return OrganizerEvent(
        **_event_out(found),
        ticket_types=[
            OrganizerTicketType(
                id=str(row.ticket_type.id),
                name=row.ticket_type.name,
                description=row.ticket_type.description,
                price=row.ticket_type.price_minor,
                capacity=row.ticket_type.capacity,
                sold=row.sold,
                held=row.held,
                left=row.left,
                revenue=row.revenue_minor,
                hidden=row.ticket_type.unlock_code is not None,
                unlock_code=row.ticket_type.unlock_code,
                sales_start=row.ticket_type.sales_start.isoformat() if row.ticket_type.sales_start else None,
                sales_end=row.ticket_type.sales_end.isoformat() if row.ticket_type.sales_end else None,
                per_booking_max=row.ticket_type.per_booking_max,
                per_customer_max=row.ticket_type.per_customer_max,
                entries_allowed=row.ticket_type.entries_allowed,
                attributes=row.ticket_type.attributes,
                price_tiers=row.ticket_type.price_tiers,
            )
            for row in event_sales(session=session, actor=actor, event_id=found.id)
        ],
    )


def _organizer_call(token: str, service: Any, **kwargs: Any) -> OrganizerEvent:
    def run(*, session: Any, actor: User) -> OrganizerEvent:
        changed = service(session=session, actor=actor, **kwargs)
        event_id = changed.event_id if isinstance(changed, TicketType) else changed.id
        return _organizer_view(session=session, actor=actor, event_id=event_id)

    return _as_user(token, run)


@router.get("/organizer/events", response_model=list[EventOut])
def own_events(token: AccessToken) -> list[EventOut]:
    """Your events (drafts too). Sellers only."""
    return [EventOut(**_event_out(found)) for found in _as_user(token, event_service.list_own_events)]


@router.post("/organizer/events", response_model=OrganizerEvent, status_code=201)
def create_event(body: EventRequest, token: AccessToken) -> OrganizerEvent:
    """Create a draft event. Sellers only."""
    return _organizer_call(token, event_service.create_event, **body.model_dump())


@router.get("/organizer/events/{event_id}", response_model=OrganizerEvent)
def own_event(event_id: uuid.UUID, token: AccessToken) -> OrganizerEvent:
    """One of your events with sold / held / left and revenue per ticket type."""
    return _as_user(token, _organizer_view, event_id=event_id)


@router.put("/organizer/events/{event_id}", response_model=OrganizerEvent)
def update_event(event_id: uuid.UUID, body: EventRequest, token: AccessToken) -> OrganizerEvent:
    return _organizer_call(token, event_service.update_event, event_id=event_id, **body.model_dump())


@router.post("/organizer/events/{event_id}/publish", response_model=OrganizerEvent)
def publish_event(event_id: uuid.UUID, token: AccessToken) -> OrganizerEvent:
    return _organizer_call(token, event_service.publish_event, event_id=event_id)


@router.post("/organizer/events/{event_id}/cancel", response_model=OrganizerEvent)
def cancel_event(event_id: uuid.UUID, token: AccessToken) -> OrganizerEvent:
    """Cancel the event; every booking is refunded in full shortly after (a background job)."""
    return _organizer_call(token, event_service.cancel_event, event_id=event_id)


@router.post("/organizer/events/{event_id}/duplicate", response_model=OrganizerEvent, status_code=201)
def duplicate_event(event_id: uuid.UUID, token: AccessToken) -> OrganizerEvent:
    return _organizer_call(token, event_service.duplicate_event, event_id=event_id)


@router.put("/organizer/events/{event_id}/cover", response_model=OrganizerEvent)
async def set_cover(event_id: uuid.UUID, file: UploadFile, token: AccessToken) -> OrganizerEvent:
    """Upload the event's cover image (multipart field `file`: JPEG, PNG, WebP or GIF, at most 5 MB,
    400 x 200 to 12,000 x 12,000 pixels). It is resized (cover up to 1600 px, 640 x 360 thumbnail) and
    stored without its metadata. Refusals: 413 cover_too_large; 422 cover_not_an_image, cover_format,
    cover_dimensions; 409 event_not_editable."""
    # Read one byte past the limit: enough to refuse a larger file without holding all of it.
    data = await file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise CoverTooLarge(limit=MAX_BYTES)
    return await run_in_threadpool(_organizer_call, token, event_service.set_event_cover, event_id=event_id, data=data)


@router.delete("/organizer/events/{event_id}/cover", response_model=OrganizerEvent)
def remove_cover(event_id: uuid.UUID, token: AccessToken) -> OrganizerEvent:
    """Take the cover image off the event."""
    return _organizer_call(token, event_service.remove_event_cover, event_id=event_id)


def _type_fields(body: TicketTypeRequest) -> dict[str, Any]:
    fields = body.model_dump(exclude={"price", "price_tiers"})
    fields["price_minor"] = body.price
    fields["price_tiers"] = [tier.model_dump() for tier in body.price_tiers]
    return fields


@router.post("/organizer/events/{event_id}/ticket-types", response_model=OrganizerEvent, status_code=201)
def create_ticket_type(event_id: uuid.UUID, body: TicketTypeRequest, token: AccessToken) -> OrganizerEvent:
    return _organizer_call(token, event_service.save_ticket_type, event_id=event_id, **_type_fields(body))


@router.put("/organizer/events/{event_id}/ticket-types/{ticket_type_id}", response_model=OrganizerEvent)
def update_ticket_type(
    event_id: uuid.UUID, ticket_type_id: uuid.UUID, body: TicketTypeRequest, token: AccessToken
) -> OrganizerEvent:
    return _organizer_call(
        token, event_service.save_ticket_type, event_id=event_id, ticket_type_id=ticket_type_id, **_type_fields(body)
    )


def _coupon_out(coupon: Coupon) -> CouponOut:
    return CouponOut(
        id=str(coupon.id),
        code=coupon.code,
        kind=str(coupon.kind),
        value=coupon.value,
        max_redemptions=coupon.max_redemptions,
        redeemed=coupon.redeemed,
        per_user_limit=coupon.per_user_limit,
        expires_at=coupon.expires_at.isoformat() if coupon.expires_at else None,
        min_order=coupon.min_order_minor,
        ticket_type_ids=coupon.ticket_type_ids,
    )


@router.get("/organizer/events/{event_id}/coupons", response_model=list[CouponOut])
def coupons(event_id: uuid.UUID, token: AccessToken) -> list[CouponOut]:
    return [_coupon_out(coupon) for coupon in _as_user(token, event_service.list_coupons, event_id=event_id)]


@router.post("/organizer/events/{event_id}/coupons", response_model=CouponOut, status_code=201)
def create_coupon(event_id: uuid.UUID, body: CouponRequest, token: AccessToken) -> CouponOut:
    fields = body.model_dump(exclude={"min_order"})
    return _coupon_out(
        _as_user(token, event_service.create_coupon, event_id=event_id, min_order_minor=body.min_order, **fields)
    )


# --- seller applications ---------------------------------------------------------------------------


def _application_out(application: SellerApplication) -> ApplicationOut:
    return ApplicationOut(
        id=str(application.id),
        user_id=str(application.user_id),
        organisation_name=application.organisation_name,
        contact_email=application.contact_email,
        payout_country=application.payout_country,
        status=str(application.status),
        reason=application.reason,
        created_at=application.created_at.isoformat(),
    )


@router.post("/seller-applications", response_model=ApplicationOut, status_code=201)
def apply(body: ApplicationRequest, token: AccessToken) -> ApplicationOut:
    """Ask to sell tickets; a super admin approves or rejects."""
    return _application_out(_as_user(token, apply_to_sell, **body.model_dump()))


@router.get("/seller-applications", response_model=list[ApplicationOut])
def applications(token: AccessToken) -> list[ApplicationOut]:
    """Pending applications, oldest first. Staff only."""
    return [_application_out(application) for application, _user in _as_user(token, list_applications)]


@router.post("/seller-applications/{application_id}/decision", response_model=ApplicationOut)
def decide(application_id: uuid.UUID, body: DecisionRequest, token: AccessToken) -> ApplicationOut:
    """Approve or reject (with a reason). Super admins only."""
    return _application_out(
        _as_user(token, decide_application, application_id=application_id, approve=body.approve, reason=body.reason)
    )
