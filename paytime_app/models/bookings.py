"""Bookings (a hold that becomes an order), their items, issued tickets, coupon redemptions and refunds.

A booking in status `held` with `expires_at` is the hold: its items' quantities are counted in the
ticket types' `held` counters until it is confirmed (moved to `sold`), expires or is cancelled.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, String, Text, UniqueConstraint
from sqlmodel import Field

from paytime_app.models.base import TableBase, timestamp_field, utcnow
from paytime_app.models.jobs import JsonColumnType


class BookingStatus(StrEnum):
    HELD = "held"
    CONFIRMED = "confirmed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class TicketStatus(StrEnum):
    VALID = "valid"
    CANCELLED = "cancelled"


class RedemptionStatus(StrEnum):
    ACTIVE = "active"
    RELEASED = "released"


class RefundDestination(StrEnum):
    WALLET = "wallet"
    # Paid through a provider: sent back through it (a `payment_refund` of `payment_id`); becomes
    # `wallet` if the provider refuses, since the money then stays in the buyer's wallet.
    PROVIDER = "provider"


class Booking(TableBase, table=True):
    """One customer's order for one event: held for a while, then confirmed, expired or cancelled."""

    __tablename__ = "booking"
    __table_args__ = (
        CheckConstraint("status IN ('held', 'confirmed', 'expired', 'cancelled')", name="status"),
        CheckConstraint("subtotal_minor >= 0 AND discount_minor >= 0 AND fee_minor >= 0", name="amounts"),
        CheckConstraint("total_minor = subtotal_minor - discount_minor", name="total"),
        CheckConstraint("fee_minor <= total_minor", name="fee_within_total"),
        CheckConstraint("refunded_minor >= 0 AND refunded_minor <= total_minor", name="refund_within_total"),
        CheckConstraint("length(currency) = 3 AND currency = upper(currency)", name="currency"),
        CheckConstraint("status <> 'confirmed' OR confirmed_at IS NOT NULL", name="confirmed_has_time"),
        UniqueConstraint("user_id", "idempotency_key", name="uq_booking_user_idempotency_key"),
        Index("ix_booking_user_created_at", "user_id", "created_at"),
        Index("ix_booking_event_created_at", "event_id", "created_at"),
        Index("ix_booking_status_expires_at", "status", "expires_at"),
    )

    reference: str = Field(max_length=20, unique=True)
    event_id: uuid.UUID = Field(sa_column=Column(ForeignKey("event.id"), nullable=False))
    user_id: uuid.UUID = Field(sa_column=Column(ForeignKey("user_account.id"), nullable=False))
    status: BookingStatus = Field(default=BookingStatus.HELD, sa_type=String(10))
    currency: str = Field(max_length=3)
    subtotal_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    discount_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    total_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    fee_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    refunded_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    coupon_id: uuid.UUID | None = Field(default=None, sa_column=Column(ForeignKey("coupon.id"), nullable=True))
    group_ticket: bool = Field(default=False)
    expires_at: datetime | None = timestamp_field(default=None, nullable=True)
    confirmed_at: datetime | None = timestamp_field(default=None, nullable=True)
    cancelled_at: datetime | None = timestamp_field(default=None, nullable=True)
    paid_with: str | None = Field(default=None, max_length=10)  # wallet | provider | free
    payment_id: uuid.UUID | None = Field(default=None, sa_column=Column(ForeignKey("payment.id"), nullable=True))
    ledger_transaction_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("ledger_transaction.id"), nullable=True, unique=True)
    )
    # What the customer is told about an unusual outcome (a late payment refunded, for example).
    outcome_note: str = Field(default="", max_length=300)
    idempotency_key: str = Field(max_length=200)
    request_hash: str = Field(max_length=64)
    updated_at: datetime = timestamp_field(default_factory=utcnow, nullable=False)


class BookingItem(TableBase, table=True):
    """A quantity of one ticket type in a booking, at the price (and tier) in force when it was held."""

    __tablename__ = "booking_item"
    __table_args__ = (
        CheckConstraint("quantity >= 1", name="quantity_positive"),
        CheckConstraint("unit_price_minor >= 0", name="price_not_negative"),
        UniqueConstraint("booking_id", "ticket_type_id", name="uq_booking_item_booking_ticket_type"),
    )

    booking_id: uuid.UUID = Field(sa_column=Column(ForeignKey("booking.id"), nullable=False, index=True))
    ticket_type_id: uuid.UUID = Field(sa_column=Column(ForeignKey("ticket_type.id"), nullable=False, index=True))
    quantity: int
    unit_price_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    tier_label: str = Field(default="", max_length=80)
    attendee_names: list[str] = Field(default_factory=list, sa_column=Column(JsonColumnType, nullable=False))


class Ticket(TableBase, table=True):
    """An admission: a random code plus an Ed25519-signed QR payload an offline scanner can verify."""

    __tablename__ = "ticket"
    __table_args__ = (
        CheckConstraint("status IN ('valid', 'cancelled')", name="status"),
        CheckConstraint("admits >= 1", name="admits_positive"),
        CheckConstraint("entries_allowed >= 1", name="entries_allowed"),
        CheckConstraint("entries_used >= 0 AND entries_used <= entries_allowed", name="entries_within_allowance"),
        Index("ix_ticket_holder_created_at", "holder_id", "created_at"),
        Index("ix_ticket_event_status", "event_id", "status"),
    )

    code: str = Field(max_length=32, unique=True)
    booking_id: uuid.UUID = Field(sa_column=Column(ForeignKey("booking.id"), nullable=False, index=True))
    booking_item_id: uuid.UUID = Field(sa_column=Column(ForeignKey("booking_item.id"), nullable=False))
    event_id: uuid.UUID = Field(sa_column=Column(ForeignKey("event.id"), nullable=False))
    ticket_type_id: uuid.UUID = Field(sa_column=Column(ForeignKey("ticket_type.id"), nullable=False))
    holder_id: uuid.UUID = Field(sa_column=Column(ForeignKey("user_account.id"), nullable=False))
    attendee_name: str = Field(default="", max_length=120)
    admits: int = Field(default=1)  # a group ticket admits the whole item's quantity
    unit_price_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    entries_allowed: int = Field(default=1)
    entries_used: int = Field(default=0)
    qr_payload: str = Field(sa_type=Text)
    kid: str = Field(max_length=32)
    status: TicketStatus = Field(default=TicketStatus.VALID, sa_type=String(10))
    cancelled_at: datetime | None = timestamp_field(default=None, nullable=True)


class CouponRedemption(TableBase, table=True):
    """A coupon used by a booking; released (and the coupon's count given back) if the hold lapses."""

    __tablename__ = "coupon_redemption"
    __table_args__ = (CheckConstraint("status IN ('active', 'released')", name="status"),)

    coupon_id: uuid.UUID = Field(sa_column=Column(ForeignKey("coupon.id"), nullable=False, index=True))
    booking_id: uuid.UUID = Field(sa_column=Column(ForeignKey("booking.id"), nullable=False, unique=True))
    user_id: uuid.UUID = Field(sa_column=Column(ForeignKey("user_account.id"), nullable=False, index=True))
    discount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: RedemptionStatus = Field(default=RedemptionStatus.ACTIVE, sa_type=String(10))


class BookingRefund(TableBase, table=True):
    """Money given back for cancelled tickets: which tickets, how much, from which shares, to where."""

    __tablename__ = "booking_refund"
    __table_args__ = (
        CheckConstraint("amount_minor >= 0 AND fee_part_minor >= 0", name="amounts"),
        CheckConstraint("fee_part_minor <= amount_minor", name="fee_within_amount"),
        CheckConstraint("percent BETWEEN 0 AND 100", name="percent"),
        CheckConstraint("destination IN ('wallet', 'provider')", name="destination"),
    )

    booking_id: uuid.UUID = Field(sa_column=Column(ForeignKey("booking.id"), nullable=False, index=True))
    ticket_ids: list[str] = Field(default_factory=list, sa_column=Column(JsonColumnType, nullable=False))
    percent: int
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    fee_part_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    destination: RefundDestination = Field(sa_type=String(15))
    payment_id: uuid.UUID | None = Field(default=None, sa_column=Column(ForeignKey("payment.id"), nullable=True))
    ledger_transaction_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("ledger_transaction.id"), nullable=True, unique=True)
    )
    reason: str = Field(default="", max_length=200)
