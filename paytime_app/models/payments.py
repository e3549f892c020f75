"""Payments collected through providers: one row per attempt, its status history, and the
provider events we received for it."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, String, Text, UniqueConstraint
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
        Index("ix_payment_status_created_at", "status", "created_at"),
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
