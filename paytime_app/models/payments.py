"""Payments collected through providers: one row per attempt, its status history, and the
provider events we received for it."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field

from paytime_app.models.base import TableBase, timestamp_field, utcnow
from paytime_app.models.jobs import JsonColumnType


class PaymentStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


class PaymentPurpose(StrEnum):
    WALLET_TOPUP = "wallet_topup"
    CALL_CREDITS = "call_credits"
    BOOKING = "booking"


class Payment(TableBase, table=True):
    """One attempt to collect money from a customer through a provider (the dashboard's row)."""

    __tablename__ = "payment"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint(
            "status IN ('pending', 'processing', 'succeeded', 'failed', 'cancelled', 'refunded', 'partially_refunded')",
            name="status",
        ),
        CheckConstraint("purpose IN ('wallet_topup', 'call_credits', 'booking')", name="purpose"),
        UniqueConstraint("provider", "provider_reference", name="uq_payment_provider_reference"),
        UniqueConstraint("user_id", "idempotency_key", name="uq_payment_user_idempotency_key"),
        CheckConstraint("refunded_minor >= 0 AND refunded_minor <= amount_minor", name="refunded_within_amount"),
        Index("ix_payment_status_created_at", "status", "created_at"),
        # The dashboard's default order and its keyset, and the amount sort.
        Index("ix_payment_created_at_id", "created_at", "id"),
        Index("ix_payment_amount_minor_id", "amount_minor", "id"),
        # Free-text search: a trigram index on PostgreSQL (a plain one on SQLite, which scans anyway).
        Index(
            "ix_payment_search_text_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ),
    )

    reference: str = Field(max_length=20, unique=True)
    user_id: uuid.UUID = Field(sa_column=Column(ForeignKey("user_account.id"), nullable=False, index=True))
    purpose: PaymentPurpose = Field(sa_type=String(20))
    provider: str = Field(max_length=20)
    method: str = Field(max_length=20)
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    status: PaymentStatus = Field(default=PaymentStatus.PENDING, sa_type=String(20))
    provider_reference: str | None = Field(default=None, max_length=120)
    checkout_url: str | None = Field(default=None, sa_type=Text)
    failure_reason: str | None = Field(default=None, max_length=200)
    idempotency_key: str = Field(max_length=200)
    request_hash: str = Field(max_length=64)
    ledger_transaction_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("ledger_transaction.id"), nullable=True)
    )
    updated_at: datetime = timestamp_field(default_factory=utcnow, nullable=False)
    description: str | None = Field(default=None, max_length=200)
    # Who the money is for (the payer's own wallet for top-ups, an organizer for bookings).
    receiver: str | None = Field(default=None, max_length=120)
    refunded_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    # Lower-cased reference, customer email and name, receiver and description: one indexed column to search.
    search_text: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    reconcile_requested_at: datetime | None = timestamp_field(default=None, nullable=True)


class PaymentStatusChange(TableBase, table=True):
    """The payment's timeline: every status it went through, why, and what told us."""

    __tablename__ = "payment_status_change"

    payment_id: uuid.UUID = Field(sa_column=Column(ForeignKey("payment.id"), nullable=False, index=True))
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str = Field(max_length=20)
    source: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=200)


class ProviderEvent(TableBase, table=True):
    """A verified webhook, stored once (unique per provider) in the transaction that applied it."""

    __tablename__ = "provider_event"
    __table_args__ = (UniqueConstraint("provider", "event_id", name="uq_provider_event_provider_event_id"),)

    provider: str = Field(max_length=20)
    event_id: str = Field(max_length=200)
    event_type: str = Field(max_length=80)
    payment_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("payment.id"), nullable=True, index=True)
    )
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonColumnType, nullable=False))


class RefundStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PaymentRefund(TableBase, table=True):
    """Money sent back to the payer through the provider; at most the payment's amount in total."""

    __tablename__ = "payment_refund"
    __table_args__ = (
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status"),
        UniqueConstraint("payment_id", "idempotency_key", name="uq_payment_refund_payment_id_idempotency_key"),
    )

    payment_id: uuid.UUID = Field(sa_column=Column(ForeignKey("payment.id"), nullable=False, index=True))
    actor_id: uuid.UUID | None = Field(default=None, sa_column=Column(ForeignKey("user_account.id"), nullable=True))
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    status: RefundStatus = Field(default=RefundStatus.PENDING, sa_type=String(20))
    reason: str = Field(default="", max_length=200)
    idempotency_key: str = Field(max_length=200)
    request_hash: str = Field(max_length=64)
    provider_reference: str | None = Field(default=None, max_length=120)
    failure_reason: str | None = Field(default=None, max_length=200)
    hold_id: uuid.UUID | None = Field(default=None)
    ledger_transaction_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("ledger_transaction.id"), nullable=True)
    )
    updated_at: datetime = timestamp_field(default_factory=utcnow, nullable=False)


class PaymentNote(TableBase, table=True):
    """An internal note by staff on a payment; never shown to the customer."""

    __tablename__ = "payment_note"

    payment_id: uuid.UUID = Field(sa_column=Column(ForeignKey("payment.id"), nullable=False, index=True))
    author_id: uuid.UUID = Field(sa_column=Column(ForeignKey("user_account.id"), nullable=False))
    body: str = Field(sa_column=Column(Text, nullable=False))


TOTAL_SHARDS = 16


class PaymentDailyTotal(TableBase, table=True):
    """Payments counted and summed per UTC day and dimension, kept in step by the payment service.

    The dashboard's stats and totals read these few thousand rows instead of scanning every payment,
    whenever the filters are ones this table can answer (all but text search and amount range).
    Each key is split over `TOTAL_SHARDS` rows (a payment always counts in the shard of its id):
    otherwise every payment of a day would queue on one row until its transaction commits.
    Readers sum over shards.
    """

    __tablename__ = "payment_daily_total"
    __table_args__ = (
        UniqueConstraint(
            "day",
            "currency",
            "status",
            "provider",
            "method",
            "purpose",
            "failure_reason",
            "shard",
            name="uq_payment_daily_total_key",
        ),
    )

    day: date = Field(sa_column=Column(Date, nullable=False))
    currency: str = Field(max_length=3)
    status: str = Field(max_length=20)
    provider: str = Field(max_length=20)
    method: str = Field(max_length=20)
    purpose: str = Field(max_length=20)
    failure_reason: str = Field(default="", max_length=200)
    count: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    amount_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    refunded_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    shard: int = Field(default=0, sa_column=Column(SmallInteger, nullable=False, server_default="0"))
