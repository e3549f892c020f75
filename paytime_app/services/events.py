"""Events, ticket types and coupons: organizers write them, everyone reads published ones.

An organizer is an approved seller (or an admin); they change only their own events (admins any).
Events start as drafts, are published when they have at least one ticket type, and end cancelled
(every booking refunded in full by the durable job `bookings.cancel_event_bookings`) or ended: the
durable job `events.end`, booked for the end time whenever a published event gets one, marks it
ended (sales stop, it leaves the public list, the organizer sees "ended"); each run also ends any
other published event already past its end, so an end time that moved or a lost job is caught.
Prices are read through `price_in_force`, which applies the first price tier still open.
Availability counters (`sold`, `held`) belong to services/bookings.py: nothing here writes them.
"""

from __future__ import annotations

import functools
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import String, cast, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from paytime_app.bus import publish_after_commit
from paytime_app.db import conflict_aware_insert, for_update
from paytime_app.errors import Conflict, NotFound, ValidationFailed
from paytime_app.models.base import utcnow
from paytime_app.models.events import Coupon, CouponKind, Event, EventStatus, EventViewTotal, TicketType, VenueType
from paytime_app.models.users import Role, User
from paytime_app.money import parse_currency
from paytime_app.services.audit import record_audit
from paytime_app.services.covers import copy_cover, discard_cover, parse_cover_file_name, store_cover
from paytime_app.services.jobs import enqueue_job, job_handler
from paytime_app.services.paging import page_bounds
from paytime_app.services.sellers import require_seller

# Marketplace default: 100% more than 7 days before the start, 75% > 3 days, 50% > 1 day, else nothing.
DEFAULT_REFUND_POLICY: list[list[int]] = [[7, 100], [3, 75], [1, 50]]
CANCEL_EVENT_JOB = "bookings.cancel_event_bookings"
END_EVENT_JOB = "events.end"
END_BATCH = 200
MAX_CAPACITY = 1_000_000
MAX_PRICE_MINOR = 100_000_000_00
PAGE_SIZE = 12
EDITABLE = frozenset({EventStatus.DRAFT, EventStatus.PUBLISHED})
_CODE = re.compile(r"[A-Za-z0-9_-]{3,40}")


class EventNotEditable(Conflict):
    code = "event_not_editable"
    default_message = "This event is cancelled or over and can no longer be changed."


class NothingToSell(Conflict):
    code = "no_ticket_types"
    default_message = "Add at least one ticket type before publishing."


class CapacityBelowSold(Conflict):
    code = "capacity_below_sold"
    default_message = "The capacity cannot be lower than the tickets already sold or held."


class DuplicateCoupon(Conflict):
    code = "duplicate_coupon"
    default_message = "This event already has a coupon with that code."


@dataclass(frozen=True)
class TypeAvailability:
    ticket_type: TicketType
    price_minor: int  # in force now
    tier_label: str  # "" when the base price applies
    tier_until: datetime | None  # the tier in force ends then
    tier_left: int | None  # the tier in force ends after this many more tickets
    seats_left: int
    on_sale: bool
    sales_note: str  # "", "Sales open on …", "Sales closed"


@dataclass(frozen=True)
class EventSummary:
    event: Event
    min_price_minor: int | None
    seats_left: int


# --- organizer: events ------------------------------------------------------------------------------


def create_event(
    *,
    session: Session,
    actor: User,
    title: str,
    starts_at: datetime,
    ends_at: datetime,
    description: str = "",
    venue: str = "",
    venue_type: str = VenueType.EVENT,
    timezone: str = "Africa/Lagos",
    currency: str = "NGN",
    capacity: int | None = None,
    refund_policy: list[list[int]] | None = None,
) -> Event:
    """A new draft event owned by the actor. Raises PermissionDenied (not a seller), ValidationFailed."""
    require_seller(actor)
    event = Event(organizer_id=actor.id, title="", starts_at=starts_at, ends_at=ends_at)
    _apply_event_fields(
        event,
        title=title,
        description=description,
        venue=venue,
        venue_type=venue_type,
        starts_at=starts_at,
        ends_at=ends_at,
        timezone=timezone,
        currency=currency,
        capacity=capacity,
        refund_policy=refund_policy,
    )
    session.add(event)
    session.flush()
    record_audit(session=session, action="event.created", actor=actor, target_type="event", target_id=event.id)
    return event


def update_event(
    *,
    session: Session,
    actor: User,
    event_id: uuid.UUID,
    title: str,
    starts_at: datetime,
    ends_at: datetime,
    description: str = "",
    venue: str = "",
    venue_type: str = VenueType.EVENT,
    timezone: str = "Africa/Lagos",
    currency: str | None = None,
    capacity: int | None = None,
    refund_policy: list[list[int]] | None = None,
) -> Event:
    """Replace an editable event's details; the currency changes only while it is a draft.

    Raises NotFound (not the organizer's), EventNotEditable, ValidationFailed, CapacityBelowSold.
    """
    event = _lock_editable_event(session, actor, event_id)
    if currency is not None and currency.upper() != event.currency and event.status != EventStatus.DRAFT:
        raise ValidationFailed("The currency of a published event cannot change.", code="currency_locked")
    if capacity is not None and capacity < event.sold + event.held:
        raise CapacityBelowSold(sold=event.sold, held=event.held)
    _apply_event_fields(
        event,
        title=title,
        description=description,
        venue=venue,
        venue_type=venue_type,
        starts_at=starts_at,
        ends_at=ends_at,
        timezone=timezone,
        currency=currency or event.currency,
        capacity=capacity,
        refund_policy=refund_policy,
    )
    event.updated_at = utcnow()
    session.add(event)
    session.flush()
    if event.status == EventStatus.PUBLISHED:
        _schedule_end(session, event)
    record_audit(session=session, action="event.updated", actor=actor, target_type="event", target_id=event.id)
    _seats_changed(session, event)
    return event


def publish_event(*, session: Session, actor: User, event_id: uuid.UUID) -> Event:
    """Put a draft on sale. Publishing a published event returns it unchanged.

    Raises NotFound, EventNotEditable, NothingToSell, ValidationFailed (starts in the past).
    """
    event = _lock_own_event(session, actor, event_id)
    if event.status == EventStatus.PUBLISHED:
        return event
    if event.status != EventStatus.DRAFT:
        raise EventNotEditable()
    if event.ends_at <= utcnow():
        raise ValidationFailed("This event is already over; change its dates first.", code="event_in_past")
    if not list_ticket_types(session=session, event_id=event.id):
        raise NothingToSell()
    event.status = EventStatus.PUBLISHED
    event.published_at = event.updated_at = utcnow()
    session.add(event)
    session.flush()
    _schedule_end(session, event)
    record_audit(session=session, action="event.published", actor=actor, target_type="event", target_id=event.id)
    _seats_changed(session, event)
    return event


def cancel_event(*, session: Session, actor: User, event_id: uuid.UUID, reason: str = "") -> Event:
    """Cancel the event: sales stop now and every booking is refunded in full by a durable job.

    Cancelling a cancelled event returns it unchanged. Raises NotFound, EventNotEditable (ended).
    """
    event = _lock_own_event(session, actor, event_id)
    if event.status == EventStatus.CANCELLED:
        return event
    if event.status not in EDITABLE:
        raise EventNotEditable()
    event.status = EventStatus.CANCELLED
    event.updated_at = utcnow()
    session.add(event)
    session.flush()
    enqueue_job(
        session=session,
        kind=CANCEL_EVENT_JOB,
        payload={"event_id": str(event.id), "reason": reason.strip()[:200]},
        dedupe_key=f"{CANCEL_EVENT_JOB}:{event.id}",
    )
    record_audit(
        session=session,
        action="event.cancelled",
        actor=actor,
        target_type="event",
        target_id=event.id,
        data={"reason": reason.strip()[:200]},
    )
    _seats_changed(session, event)
    return event


def _schedule_end(session: Session, event: Event) -> None:
    # One job per end time: moving the end books another, and the old one finds nothing to end.
    enqueue_job(
        session=session,
        kind=END_EVENT_JOB,
        payload={"event_id": str(event.id)},
        run_at=event.ends_at,
        dedupe_key=f"{END_EVENT_JOB}:{event.id}:{event.ends_at.isoformat()}",
    )


def schedule_end_sweep(*, session: Session) -> None:
    """Book one run of the end job now (deduplicated per hour): events whose end job never existed
    (published before there was one, or restored from a backup) still end."""
    now = utcnow()
    enqueue_job(
        session=session,
        kind=END_EVENT_JOB,
        payload={},
        dedupe_key=f"{END_EVENT_JOB}:sweep:{int(now.timestamp()) // 3600}",
    )


def end_events(*, session: Session, now: datetime | None = None) -> int:
    """Mark published events whose end time has passed as ended; returns how many."""
    now = now or utcnow()
    due = for_update(
        select(Event)
        .where(Event.status == EventStatus.PUBLISHED, col(Event.ends_at) <= now)
        .order_by(col(Event.ends_at))
        .limit(END_BATCH)
    ).execution_options(populate_existing=True)
    ended = session.exec(due).all()
    for event in ended:
        event.status = EventStatus.ENDED
        event.updated_at = now
        session.add(event)
        record_audit(session=session, action="event.ended", actor=None, target_type="event", target_id=event.id)
        _seats_changed(session, event)
    session.flush()
    return len(ended)


@job_handler(END_EVENT_JOB)
def end_events_job(*, session: Session, payload: dict[str, Any]) -> None:  # noqa: ARG001  job interface
    """Durable job at a published event's end time."""
    end_events(session=session)


def duplicate_event(*, session: Session, actor: User, event_id: uuid.UUID) -> Event:
    """A new draft copying the event, its ticket types (nothing sold) and its coupons (none redeemed).

    Raises NotFound.
    """
    source = _own_event(session, actor, event_id)
    copy = Event(
        organizer_id=actor.id,
        title=f"{source.title} (copy)"[:140],
        description=source.description,
        venue=source.venue,
        venue_type=source.venue_type,
        starts_at=source.starts_at,
        ends_at=source.ends_at,
        timezone=source.timezone,
        currency=source.currency,
        capacity=source.capacity,
        refund_policy=source.refund_policy,
    )
    if source.cover_image is not None:
        copy.cover_image = copy_cover(session=session, key=source.cover_image)
        if copy.cover_image is not None:
            copy.cover_width, copy.cover_height = source.cover_width, source.cover_height
    session.add(copy)
    session.flush()
    type_ids: dict[str, str] = {}
    for ticket_type in list_ticket_types(session=session, event_id=source.id):
        new_type = TicketType(
            event_id=copy.id,
            name=ticket_type.name,
            description=ticket_type.description,
            price_minor=ticket_type.price_minor,
            capacity=ticket_type.capacity,
            sales_start=ticket_type.sales_start,
            sales_end=ticket_type.sales_end,
            per_booking_max=ticket_type.per_booking_max,
            per_customer_max=ticket_type.per_customer_max,
            entries_allowed=ticket_type.entries_allowed,
            attributes=dict(ticket_type.attributes),
            price_tiers=[dict(tier) for tier in ticket_type.price_tiers],
            unlock_code=ticket_type.unlock_code,
            position=ticket_type.position,
        )
        session.add(new_type)
        session.flush()
        type_ids[str(ticket_type.id)] = str(new_type.id)
    for coupon in session.exec(select(Coupon).where(Coupon.event_id == source.id)).all():
        session.add(
            Coupon(
                event_id=copy.id,
                code=coupon.code,
                kind=coupon.kind,
                value=coupon.value,
                max_redemptions=coupon.max_redemptions,
                per_user_limit=coupon.per_user_limit,
                expires_at=coupon.expires_at,
                min_order_minor=coupon.min_order_minor,
                ticket_type_ids=[type_ids[t] for t in coupon.ticket_type_ids if t in type_ids],
                is_active=coupon.is_active,
            )
        )
    session.flush()
    record_audit(
        session=session,
        action="event.duplicated",
        actor=actor,
        target_type="event",
        target_id=copy.id,
        data={"from": str(source.id)},
    )
    return copy


def list_own_events(*, session: Session, actor: User) -> list[Event]:
    """The actor's events, soonest first. Raises PermissionDenied (not a seller)."""
    require_seller(actor)
    return list(
        session.exec(select(Event).where(Event.organizer_id == actor.id).order_by(col(Event.starts_at).desc())).all()
    )


def get_own_event(*, session: Session, actor: User, event_id: uuid.UUID) -> Event:
    """An event the actor organizes (admins: any). Raises NotFound."""
    return _own_event(session, actor, event_id)


# --- organizer: cover image ------------------------------------------------------------------------


def set_event_cover(*, session: Session, actor: User, event_id: uuid.UUID, data: bytes) -> Event:
    """Give an editable event a new cover image (replacing any other), resized and stripped of metadata.

    Raises NotFound, EventNotEditable, CoverTooLarge, ValidationFailed (cover_not_an_image, cover_format,
    cover_dimensions).
    """
    event = _lock_editable_event(session, actor, event_id)
    key, stored = store_cover(session=session, data=data, replaced=event.cover_image)
    event.cover_image, event.cover_width, event.cover_height = key, stored.width, stored.height
    event.updated_at = utcnow()
    session.add(event)
    session.flush()
    record_audit(
        session=session,
        action="event.cover_set",
        actor=actor,
        target_type="event",
        target_id=event.id,
        data={"width": stored.width, "height": stored.height, "upload_bytes": len(data)},
    )
    return event


def remove_event_cover(*, session: Session, actor: User, event_id: uuid.UUID) -> Event:
    """Take the cover off an editable event; without a cover nothing changes. Raises NotFound, EventNotEditable."""
    event = _lock_editable_event(session, actor, event_id)
    if event.cover_image is None:
        return event
    discard_cover(session=session, key=event.cover_image)
    event.cover_image = event.cover_width = event.cover_height = None
    event.updated_at = utcnow()
    session.add(event)
    session.flush()
    record_audit(session=session, action="event.cover_removed", actor=actor, target_type="event", target_id=event.id)
    return event


def get_cover_file(
    *, session: Session, actor: User | None, event_id: uuid.UUID, file_name: str
) -> tuple[str, bool, bool]:
    """The event's current cover named by a served file name: (key, is_thumbnail, is_public).

    A draft's cover is shown only to its organizer and admins, like the draft. Raises NotFound.
    """
    parsed = parse_cover_file_name(file_name)
    event = session.get(Event, event_id)
    if parsed is None or event is None or event.cover_image != parsed[0]:
        raise NotFound("That image does not exist.")
    public = event.status != EventStatus.DRAFT
    if not public and (actor is None or not may_organize(actor, event)):
        raise NotFound("That image does not exist.")
    return parsed[0], parsed[1], public


# --- organizer: ticket types -------------------------------------------------------------------------


def save_ticket_type(
    *,
    session: Session,
    actor: User,
    event_id: uuid.UUID,
    name: str,
    price_minor: int,
    capacity: int,
    ticket_type_id: uuid.UUID | None = None,
    description: str = "",
    sales_start: datetime | None = None,
    sales_end: datetime | None = None,
    per_booking_max: int = 20,
    per_customer_max: int = 10,
    entries_allowed: int = 1,
    attributes: dict[str, str] | None = None,
    price_tiers: list[dict[str, Any]] | None = None,
    unlock_code: str | None = None,
) -> TicketType:
    """Create (no id) or replace a ticket type of an editable event.

    Raises NotFound, EventNotEditable, ValidationFailed, CapacityBelowSold.
    """
    event = _lock_editable_event(session, actor, event_id)
    if ticket_type_id is None:
        position = session.exec(
            select(func.count()).select_from(TicketType).where(TicketType.event_id == event.id)
        ).one()
        ticket_type = TicketType(event_id=event.id, name="", price_minor=0, capacity=0, position=int(position))
    else:
        ticket_type = session.exec(
            for_update(select(TicketType).where(TicketType.id == ticket_type_id)).execution_options(
                populate_existing=True
            )
        ).first()
        if ticket_type is None or ticket_type.event_id != event.id:
            raise NotFound("That ticket type does not exist.")
    name = name.strip()
    if not 1 <= len(name) <= 80:
        raise ValidationFailed("Name the ticket type (up to 80 characters).", code="invalid_name")
    _require_int(price_minor, 0, MAX_PRICE_MINOR, "invalid_price", "Enter a price of zero or more.")
    _require_int(capacity, 0, MAX_CAPACITY, "invalid_capacity", "Enter a capacity between 0 and 1,000,000.")
    _require_int(per_booking_max, 1, 20, "invalid_limit", "At most 1 to 20 tickets per booking.")
    _require_int(per_customer_max, 1, 1000, "invalid_limit", "At least 1 ticket per customer.")
    _require_int(entries_allowed, 1, 100, "invalid_entries", "Allow 1 to 100 entries per ticket.")
    if capacity < ticket_type.sold + ticket_type.held:
        raise CapacityBelowSold(sold=ticket_type.sold, held=ticket_type.held)
    for moment in (sales_start, sales_end):
        if moment is not None and moment.tzinfo is None:
            raise ValidationFailed("Give sales times with a time zone.", code="invalid_sales_window")
    if sales_start and sales_end and sales_end <= sales_start:
        raise ValidationFailed("Sales must end after they start.", code="invalid_sales_window")
    code = (unlock_code or "").strip() or None
    if code is not None and not _CODE.fullmatch(code):
        raise ValidationFailed("Unlock codes are 3 to 40 letters, digits, - or _.", code="invalid_unlock_code")
    ticket_type.name = name
    ticket_type.description = description.strip()[:500]
    ticket_type.price_minor = price_minor
    ticket_type.capacity = capacity
    ticket_type.sales_start, ticket_type.sales_end = sales_start, sales_end
    ticket_type.per_booking_max = per_booking_max
    ticket_type.per_customer_max = per_customer_max
    ticket_type.entries_allowed = entries_allowed
    ticket_type.attributes = _checked_attributes(attributes or {})
    ticket_type.price_tiers = _checked_tiers(price_tiers or [])
    ticket_type.unlock_code = code
    session.add(ticket_type)
    session.flush()
    record_audit(
        session=session,
        action="ticket_type.saved",
        actor=actor,
        target_type="ticket_type",
        target_id=ticket_type.id,
        data={"price_minor": price_minor, "capacity": capacity},
    )
    _seats_changed(session, event)
    return ticket_type


def list_ticket_types(*, session: Session, event_id: uuid.UUID) -> list[TicketType]:
    """Every ticket type of an event (hidden ones too), in their display order."""
    return list(
        session.exec(
            select(TicketType)
            .where(TicketType.event_id == event_id)
            .order_by(col(TicketType.position), col(TicketType.created_at))
        ).all()
    )


# --- organizer: coupons ------------------------------------------------------------------------------


def create_coupon(
    *,
    session: Session,
    actor: User,
    event_id: uuid.UUID,
    code: str,
    kind: str,
    value: int,
    max_redemptions: int | None = None,
    per_user_limit: int = 1,
    expires_at: datetime | None = None,
    min_order_minor: int = 0,
    ticket_type_ids: list[uuid.UUID] | None = None,
) -> Coupon:
    """A discount code for the event. `value` is basis points (percent) or minor units (fixed).

    Raises NotFound, EventNotEditable, ValidationFailed, DuplicateCoupon.
    """
    event = _lock_editable_event(session, actor, event_id)
    code = code.strip().upper()
    if not _CODE.fullmatch(code):
        raise ValidationFailed("Coupon codes are 3 to 40 letters, digits, - or _.", code="invalid_coupon_code")
    try:
        coupon_kind = CouponKind(kind)
    except ValueError:
        raise ValidationFailed("Choose a percentage or a fixed amount.", code="invalid_coupon_kind") from None
    upper = 10_000 if coupon_kind == CouponKind.PERCENT else MAX_PRICE_MINOR
    _require_int(value, 1, upper, "invalid_coupon_value", "Enter a discount above zero (at most 100%).")
    if max_redemptions is not None:
        _require_int(max_redemptions, 1, MAX_CAPACITY, "invalid_limit", "Allow at least one redemption.")
    _require_int(per_user_limit, 1, 1000, "invalid_limit", "Allow each customer at least one use.")
    _require_int(min_order_minor, 0, MAX_PRICE_MINOR, "invalid_amount", "Enter a minimum order of zero or more.")
    if expires_at is not None and expires_at.tzinfo is None:
        raise ValidationFailed("Give the expiry with a time zone.", code="invalid_expiry")
    own_types = {ticket_type.id for ticket_type in list_ticket_types(session=session, event_id=event.id)}
    scope = list(dict.fromkeys(ticket_type_ids or []))
    if any(type_id not in own_types for type_id in scope):
        raise ValidationFailed("Choose ticket types of this event.", code="invalid_scope")
    coupon = Coupon(
        event_id=event.id,
        code=code,
        kind=coupon_kind,
        value=value,
        max_redemptions=max_redemptions,
        per_user_limit=per_user_limit,
        expires_at=expires_at,
        min_order_minor=min_order_minor,
        ticket_type_ids=[str(type_id) for type_id in scope],
    )
    try:
        with session.begin_nested():
            session.add(coupon)
    except IntegrityError:
        raise DuplicateCoupon() from None
    record_audit(session=session, action="coupon.created", actor=actor, target_type="coupon", target_id=coupon.id)
    return coupon


def list_coupons(*, session: Session, actor: User, event_id: uuid.UUID) -> list[Coupon]:
    """The event's coupons. Raises NotFound (not the organizer's)."""
    event = _own_event(session, actor, event_id)
    return list(session.exec(select(Coupon).where(Coupon.event_id == event.id).order_by(col(Coupon.code))).all())


# --- everyone: published events -------------------------------------------------------------------


def tier_in_force(ticket_type: TicketType, now: datetime | None = None, *, taken: int | None = None) -> dict | None:
    """The first price tier still open (by date, or by the first N sold or held; `taken` overrides
    that count), or None when the base price applies."""
    now = now or utcnow()
    taken = ticket_type.sold + ticket_type.held if taken is None else taken
    for tier in ticket_type.price_tiers:
        until = tier.get("until")
        first_n = tier.get("first_n")
        if until is not None and now >= datetime.fromisoformat(until):
            continue
        if first_n is not None and taken >= int(first_n):
            continue
        return tier
    return None


def price_in_force(
    ticket_type: TicketType, now: datetime | None = None, *, taken: int | None = None
) -> tuple[int, str]:
    """The price and tier label that apply now: the tier in force, else the base price."""
    tier = tier_in_force(ticket_type, now, taken=taken)
    if tier is None:
        return ticket_type.price_minor, ""
    return int(tier["price_minor"]), str(tier.get("label") or "")


def seats_left(ticket_type: TicketType, event: Event) -> int:
    """Seats that can still be held: the type's own room, capped by the event's shared capacity."""
    left = ticket_type.capacity - ticket_type.sold - ticket_type.held
    if event.capacity is not None:
        left = min(left, event.capacity - event.sold - event.held)
    return max(left, 0)


def sales_state(ticket_type: TicketType, event: Event, now: datetime | None = None) -> tuple[bool, str]:
    """Whether the type is on sale now, and a note for buyers when it is not."""
    now = now or utcnow()
    if event.status == EventStatus.ENDED or (event.status == EventStatus.PUBLISHED and now >= event.ends_at):
        return False, "This event has ended"
    if event.status != EventStatus.PUBLISHED:
        return False, "Sales closed"
    if ticket_type.sales_start is not None and now < ticket_type.sales_start:
        return False, f"Sales open {ticket_type.sales_start.astimezone(_zone(event)).strftime('%d %b %Y, %H:%M')}"
    end = ticket_type.sales_end or event.ends_at
    if now >= end:
        return False, "Sales closed"
    return True, ""


def describe_availability(
    *, event: Event, ticket_types: list[TicketType], unlock_code: str = "", now: datetime | None = None
) -> list[TypeAvailability]:
    """What a buyer sees per ticket type; hidden types only with their code."""
    rows = []
    for ticket_type in ticket_types:
        if ticket_type.unlock_code and not code_matches(ticket_type.unlock_code, unlock_code):
            continue
        tier = tier_in_force(ticket_type, now)
        on_sale, note = sales_state(ticket_type, event, now)
        first_n = None if tier is None else tier.get("first_n")
        rows.append(
            TypeAvailability(
                ticket_type=ticket_type,
                price_minor=ticket_type.price_minor if tier is None else int(tier["price_minor"]),
                tier_label="" if tier is None else str(tier.get("label") or ""),
                tier_until=None if tier is None or tier.get("until") is None else datetime.fromisoformat(tier["until"]),
                tier_left=None if first_n is None else int(first_n) - ticket_type.sold - ticket_type.held,
                seats_left=seats_left(ticket_type, event),
                on_sale=on_sale,
                sales_note=note,
            )
        )
    return rows


def get_public_event(
    *, session: Session, event_id: uuid.UUID, unlock_code: str = ""
) -> tuple[Event, list[TypeAvailability]]:
    """A published (or cancelled/ended) event with what is on sale. Drafts look missing. Raises NotFound."""
    event = session.get(Event, event_id)
    if event is None or event.status == EventStatus.DRAFT:
        raise NotFound("That event does not exist.")
    types = list_ticket_types(session=session, event_id=event.id)
    return event, describe_availability(event=event, ticket_types=types, unlock_code=unlock_code)


VIEW_SHARDS = 16


def record_event_view(*, session: Session, event_id: uuid.UUID, viewer_id: uuid.UUID | None) -> None:
    """Count one opening of a published event's page; its organizer's own visits do not count."""
    event = session.get(Event, event_id)
    if event is None or event.status == EventStatus.DRAFT or event.organizer_id == viewer_id:
        return
    session.execute(
        _view_upsert(session.get_bind().dialect.name),
        {"event_id": event_id, "shard": secrets.randbelow(VIEW_SHARDS), "count": 1},
    )


@functools.cache
def _view_upsert(dialect: str) -> Any:
    table = EventViewTotal.__table__  # type: ignore[attr-defined]
    statement = conflict_aware_insert(dialect, table)
    return statement.on_conflict_do_update(
        index_elements=["event_id", "shard"], set_={"count": table.c.count + statement.excluded.count}
    )


def event_views(*, session: Session, actor: User, event_id: uuid.UUID) -> int:
    """How many times the event's public page was opened (organizer and admins only). Raises NotFound."""
    _own_event(session, actor, event_id)
    total = session.exec(
        select(func.coalesce(func.sum(EventViewTotal.count), 0)).where(EventViewTotal.event_id == event_id)
    ).one()
    return int(total)


def list_public_events(
    *,
    session: Session,
    query: str = "",
    venue_type: str = "",
    starts_after: datetime | None = None,
    starts_before: datetime | None = None,
    max_price_minor: int | None = None,
    page: int = 1,
    page_size: int = PAGE_SIZE,
) -> tuple[list[EventSummary], int]:
    """Published events not yet over, soonest first, filtered; with the lowest visible price in force
    (tiers applied) and seats left."""
    page, page_size = page_bounds(page, page_size, largest_size=50)
    now = utcnow()
    visible_types = select(TicketType.event_id).where(col(TicketType.unlock_code).is_(None))
    statement = select(Event).where(
        Event.status == EventStatus.PUBLISHED, col(Event.ends_at) > now, col(Event.id).in_(visible_types)
    )
    text = query.strip()[:100]
    if text:
        pattern = f"%{text.lower()}%"
        statement = statement.where(or_(func.lower(Event.title).like(pattern), func.lower(Event.venue).like(pattern)))
    if venue_type:
        statement = statement.where(Event.venue_type == venue_type)
    if starts_after is not None:
        statement = statement.where(col(Event.starts_at) >= starts_after)
    if starts_before is not None:
        statement = statement.where(col(Event.starts_at) < starts_before)
    statement = statement.order_by(col(Event.starts_at), col(Event.id))
    if max_price_minor is None:
        total = session.exec(select(func.count()).select_from(statement.subquery())).one()
        found = session.exec(statement.offset((page - 1) * page_size).limit(page_size)).all()
        return _summaries(session, list(found), now), int(total)
    # The price in force moves with the clock and with sales (tiers), which SQL over the base prices
    # cannot see: SQL keeps the events that could match (a visible type at or under the price, or one
    # with tiers), and the price in force decides among those.
    could_match = select(TicketType.event_id).where(
        col(TicketType.unlock_code).is_(None),
        or_(col(TicketType.price_minor) <= max_price_minor, cast(TicketType.price_tiers, String) != "[]"),
    )
    statement = statement.where(col(Event.id).in_(could_match))
    matching = [
        summary
        for summary in _summaries(session, list(session.exec(statement).all()), now)
        if summary.min_price_minor is not None and summary.min_price_minor <= max_price_minor
    ]
    return matching[(page - 1) * page_size : page * page_size], len(matching)


def _summaries(session: Session, events: list[Event], now: datetime) -> list[EventSummary]:
    """Lowest visible price in force and seats left per event, reading their ticket types at once."""
    types: dict[uuid.UUID, list[TicketType]] = {event.id: [] for event in events}
    for ticket_type in session.exec(
        select(TicketType)
        .where(col(TicketType.event_id).in_(list(types)), col(TicketType.unlock_code).is_(None))
        .order_by(col(TicketType.position), col(TicketType.created_at))
    ).all():
        types[ticket_type.event_id].append(ticket_type)
    summaries = []
    for event in events:
        visible = types[event.id]
        left = sum(seats_left(t, event) for t in visible)
        if event.capacity is not None:
            left = min(left, max(event.capacity - event.sold - event.held, 0))
        summaries.append(
            EventSummary(
                event=event,
                min_price_minor=min((price_in_force(t, now)[0] for t in visible), default=None),
                seats_left=left,
            )
        )
    return summaries


def refund_policy_of(event: Event) -> list[list[int]]:
    return event.refund_policy or DEFAULT_REFUND_POLICY


def refund_percent(event: Event, now: datetime | None = None) -> int:
    """The share refunded when a customer cancels now: by whole days before the start, per the policy."""
    before = event.starts_at - (now or utcnow())
    for days, percent in sorted(refund_policy_of(event), key=lambda rule: -rule[0]):
        if before > timedelta(days=days):
            return int(percent)
    return 0


# --- helpers -----------------------------------------------------------------------------------------


def may_organize(actor: User, event: Event) -> bool:
    return event.organizer_id == actor.id or actor.role in (Role.ADMIN, Role.SUPER_ADMIN)


def _own_event(session: Session, actor: User, event_id: uuid.UUID) -> Event:
    event = session.get(Event, event_id)
    if event is None or not may_organize(actor, event):
        raise NotFound("That event does not exist.")
    return event


def _lock_own_event(session: Session, actor: User, event_id: uuid.UUID) -> Event:
    # Lock before re-checking the status: an edit and a cancel at once apply in turn.
    event = session.exec(
        for_update(select(Event).where(Event.id == event_id)).execution_options(populate_existing=True)
    ).first()
    if event is None or not may_organize(actor, event):
        raise NotFound("That event does not exist.")
    return event


def _lock_editable_event(session: Session, actor: User, event_id: uuid.UUID) -> Event:
    event = _lock_own_event(session, actor, event_id)
    if event.status not in EDITABLE:
        raise EventNotEditable()
    return event


def _zone(event: Event) -> ZoneInfo:
    return ZoneInfo(event.timezone)


def _apply_event_fields(
    event: Event,
    *,
    title: str,
    description: str,
    venue: str,
    venue_type: str,
    starts_at: datetime,
    ends_at: datetime,
    timezone: str,
    currency: str,
    capacity: int | None,
    refund_policy: list[list[int]] | None,
) -> None:
    title = title.strip()
    if not 3 <= len(title) <= 140:
        raise ValidationFailed("Give the event a title of 3 to 140 characters.", code="invalid_title")
    try:
        kind = VenueType(venue_type)
    except ValueError:
        raise ValidationFailed("Choose a venue type.", code="invalid_venue_type") from None
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise ValidationFailed("Give start and end times with a time zone.", code="invalid_dates")
    if ends_at <= starts_at:
        raise ValidationFailed("The event must end after it starts.", code="invalid_dates")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed("Choose a time zone such as Africa/Lagos.", code="invalid_timezone") from None
    if capacity is not None:
        _require_int(capacity, 0, MAX_CAPACITY, "invalid_capacity", "Enter a capacity between 0 and 1,000,000.")
    event.title = title
    event.description = description.strip()[:5000]
    event.venue = venue.strip()[:200]
    event.venue_type = kind
    event.starts_at, event.ends_at = starts_at, ends_at
    event.timezone = timezone
    event.currency = str(parse_currency(currency))
    event.capacity = capacity
    event.refund_policy = _checked_policy(refund_policy) if refund_policy is not None else None


def _require_int(value: object, low: int, high: int, code: str, message: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed(message, code=code)


def _checked_policy(policy: list[list[int]]) -> list[list[int]]:
    checked = []
    for rule in policy[:10]:
        if not isinstance(rule, (list, tuple)) or len(rule) != 2:
            raise ValidationFailed("Each refund rule is [days before, percent].", code="invalid_refund_policy")
        days, percent = rule
        _require_int(days, 0, 365, "invalid_refund_policy", "Refund rules use 0 to 365 days.")
        _require_int(percent, 0, 100, "invalid_refund_policy", "Refund percentages are 0 to 100.")
        checked.append([days, percent])
    return sorted(checked, key=lambda rule: -rule[0])


def _checked_attributes(attributes: dict[str, str]) -> dict[str, str]:
    if not isinstance(attributes, dict) or len(attributes) > 20:
        raise ValidationFailed("Up to 20 attributes.", code="invalid_attributes")
    checked = {}
    for key, value in attributes.items():
        name, text = str(key).strip(), str(value).strip()
        if not 1 <= len(name) <= 40 or len(text) > 200:
            raise ValidationFailed("Attribute names up to 40 characters, values up to 200.", code="invalid_attributes")
        checked[name] = text
    return checked


def _checked_tiers(tiers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not isinstance(tiers, list) or len(tiers) > 10:
        raise ValidationFailed("Up to 10 price tiers.", code="invalid_tiers")
    checked = []
    for tier in tiers:
        if not isinstance(tier, dict):
            raise ValidationFailed("Each price tier needs a price and an end.", code="invalid_tiers")
        price = tier.get("price_minor")
        _require_int(price, 0, MAX_PRICE_MINOR, "invalid_tiers", "Each tier needs a price of zero or more.")
        until, first_n = tier.get("until"), tier.get("first_n")
        if (until is None) == (first_n is None):
            raise ValidationFailed("A tier ends at a date or after the first N tickets.", code="invalid_tiers")
        if until is not None:
            moment = until if isinstance(until, datetime) else _parse_moment(str(until))
            until = moment.isoformat()
        if first_n is not None:
            _require_int(first_n, 1, MAX_CAPACITY, "invalid_tiers", "The first N must be at least 1.")
        checked.append(
            {"label": str(tier.get("label") or "")[:40], "price_minor": price, "until": until, "first_n": first_n}
        )
    return checked


def _parse_moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed("Give tier dates as ISO 8601 with a time zone.", code="invalid_tiers") from None
    if moment.tzinfo is None:
        raise ValidationFailed("Give tier dates as ISO 8601 with a time zone.", code="invalid_tiers")
    return moment


def code_matches(expected: str, given: str) -> bool:
    """Constant-time, case-insensitive comparison of an unlock code."""
    return secrets.compare_digest(expected.strip().upper().encode(), given.strip().upper().encode())


def _seats_changed(session: Session, event: Event) -> None:
    """Tell the event's viewers to refresh what is on sale (seats left, prices), once this commits."""
    publish_after_commit(session, SEATS_TOPIC, event_id=str(event.id))


SEATS_TOPIC = "event.seats"
