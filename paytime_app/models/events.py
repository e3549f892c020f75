"""Events, their ticket types and coupons.

Availability is kept in counters (`sold`, `held`) on each ticket type and, when the event shares
one capacity across its types, on the event. Only `services/bookings.py` changes them, always with
a conditional UPDATE (`... WHERE sold + held + :n <= capacity`); the CHECK constraints below are
the last line of defence against overselling.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from paytime_app.models.base import TableBase, timestamp_field, utcnow
from paytime_app.models.jobs import JsonColumnType


class EventStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    CANCELLED = "cancelled"
    ENDED = "ended"


class VenueType(StrEnum):
    EVENT = "event"
    BAR = "bar"
    SPORTS = "sports"
    HOTEL = "hotel"
    OTHER = "other"


class CouponKind(StrEnum):
    PERCENT = "percent"
    FIXED = "fixed"


class Event(TableBase, table=True):
    """Something an organizer (an approved seller) sells tickets for."""

    __tablename__ = "event"
    __table_args__ = (
        CheckConstraint("status IN ('draft', 'published', 'cancelled', 'ended')", name="status"),
        CheckConstraint("venue_type IN ('event', 'bar', 'sports', 'hotel', 'other')", name="venue_type"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint("length(currency) = 3 AND currency = upper(currency)", name="currency"),
        CheckConstraint("sold >= 0 AND held >= 0", name="counters_not_negative"),
        CheckConstraint("capacity IS NULL OR (capacity >= 0 AND sold + held <= capacity)", name="within_capacity"),
        CheckConstraint(
            "(cover_image IS NULL AND cover_width IS NULL AND cover_height IS NULL)"
            " OR (cover_image IS NOT NULL AND cover_width > 0 AND cover_height > 0)",
            name="cover_dimensions",
        ),
        Index("ix_event_status_starts_at", "status", "starts_at"),
    )

    organizer_id: uuid.UUID = Field(sa_column=Column(ForeignKey("user_account.id"), nullable=False, index=True))
    title: str = Field(max_length=140)
    description: str = Field(default="", sa_type=Text)
    venue: str = Field(default="", max_length=200)
    venue_type: VenueType = Field(default=VenueType.EVENT, sa_type=String(10))
    starts_at: datetime = timestamp_field(nullable=False)
    ends_at: datetime = timestamp_field(nullable=False)
    timezone: str = Field(default="Africa/Lagos", max_length=64)
    currency: str = Field(default="NGN", max_length=3)
    status: EventStatus = Field(default=EventStatus.DRAFT, sa_type=String(10))
    # Optional capacity shared by all ticket types (a hall of 500 whatever the ticket).
    capacity: int | None = Field(default=None, nullable=True)
    sold: int = Field(default=0)
    held: int = Field(default=0)
    # [[days_before_start, percent], ...], largest first; None means the marketplace default.
    refund_policy: list[list[int]] | None = Field(default=None, sa_column=Column(JsonColumnType, nullable=True))
    # Random name of the stored cover files (services/covers.py); it changes with every upload.
    cover_image: str | None = Field(default=None, max_length=200)
    # The stored cover's size, so pages reserve its space before it loads.
    cover_width: int | None = Field(default=None, nullable=True)
    cover_height: int | None = Field(default=None, nullable=True)
    published_at: datetime | None = timestamp_field(default=None, nullable=True)
    updated_at: datetime = timestamp_field(default_factory=utcnow, nullable=False)


class TicketType(TableBase, table=True):
    """A kind of ticket for an event, with its own price, capacity, sales window and limits."""

    __tablename__ = "ticket_type"
    __table_args__ = (
        CheckConstraint("price_minor >= 0", name="price_not_negative"),
        CheckConstraint("capacity >= 0", name="capacity_not_negative"),
        CheckConstraint("sold >= 0 AND held >= 0", name="counters_not_negative"),
        # The invariant that matters most: never more tickets sold or held than exist.
        CheckConstraint("sold + held <= capacity", name="within_capacity"),
        CheckConstraint("per_booking_max BETWEEN 1 AND 20", name="per_booking_max"),
        CheckConstraint("per_customer_max >= 1", name="per_customer_max"),
        CheckConstraint("entries_allowed >= 1", name="entries_allowed"),
        Index("ix_ticket_type_event_position", "event_id", "position"),
    )

    event_id: uuid.UUID = Field(sa_column=Column(ForeignKey("event.id"), nullable=False))
    name: str = Field(max_length=80)
    description: str = Field(default="", max_length=500)
    price_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    capacity: int
    sold: int = Field(default=0)
    held: int = Field(default=0)
    sales_start: datetime | None = timestamp_field(default=None, nullable=True)
    sales_end: datetime | None = timestamp_field(default=None, nullable=True)
    per_booking_max: int = Field(default=20)
    per_customer_max: int = Field(default=10)
    entries_allowed: int = Field(default=1)
    # Free-form facts shown to buyers ({"Seat": "Block A", "Includes": "drink"}).
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonColumnType, nullable=False))
    # [{"label": "Early bird", "price_minor": 500000, "until": iso | None, "first_n": int | None}, ...]
    price_tiers: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JsonColumnType, nullable=False))
    # A hidden type is listed and sold only to someone who gives this code.
    unlock_code: str | None = Field(default=None, max_length=40)
    position: int = Field(default=0)


class Coupon(TableBase, table=True):
    """A discount code for an event (optionally only some ticket types); redemptions never exceed the max."""

    __tablename__ = "coupon"
    __table_args__ = (
        UniqueConstraint("event_id", "code", name="uq_coupon_event_code"),
        CheckConstraint("kind IN ('percent', 'fixed')", name="kind"),
        CheckConstraint("value > 0 AND (kind <> 'percent' OR value <= 10000)", name="value"),
        CheckConstraint("redeemed >= 0", name="redeemed_not_negative"),
        CheckConstraint("max_redemptions IS NULL OR redeemed <= max_redemptions", name="within_max"),
        CheckConstraint("per_user_limit >= 1", name="per_user_limit"),
        CheckConstraint("min_order_minor >= 0", name="min_order"),
    )

    event_id: uuid.UUID = Field(sa_column=Column(ForeignKey("event.id"), nullable=False))
    code: str = Field(max_length=40)
    kind: CouponKind = Field(sa_type=String(10))
    # Basis points for percent (1000 = 10%), minor units for fixed.
    value: int = Field(sa_column=Column(BigInteger, nullable=False))
    max_redemptions: int | None = Field(default=None, nullable=True)
    redeemed: int = Field(default=0)
    per_user_limit: int = Field(default=1)
    expires_at: datetime | None = timestamp_field(default=None, nullable=True)
    min_order_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    # Empty: the whole event; else only these ticket type ids (as strings).
    ticket_type_ids: list[str] = Field(default_factory=list, sa_column=Column(JsonColumnType, nullable=False))
    is_active: bool = Field(default=True)


class EventViewTotal(SQLModel, table=True):
    """How many times an event's public page was opened, split over shards.

    A popular event's views would otherwise all queue on one counter row; readers sum the shards.
    """

    __tablename__ = "event_view_total"
    __table_args__ = (CheckConstraint("count >= 0", name="count_not_negative"),)

    event_id: uuid.UUID = Field(sa_column=Column(ForeignKey("event.id", ondelete="CASCADE"), primary_key=True))
    shard: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    count: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
