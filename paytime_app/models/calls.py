"""Prepaid calls: one row per call, from ringing to its end, with what it cost and the ledger
transaction that settled it."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, String, UniqueConstraint
from sqlmodel import Field

from paytime_app.models.base import TableBase, timestamp_field


class CallType(StrEnum):
    AUDIO = "audio"
    VIDEO = "video"


class CallStatus(StrEnum):
    RINGING = "ringing"
    ACTIVE = "active"
    ENDED = "ended"
    DECLINED = "declined"
    MISSED = "missed"
    CANCELLED = "cancelled"


class EndReason(StrEnum):
    CALLER_ENDED = "caller_ended"
    CALLEE_ENDED = "callee_ended"
    CREDITS_EXHAUSTED = "credits_exhausted"
    DECLINED = "declined"
    MISSED = "missed"
    CANCELLED = "cancelled"


FINAL_STATUSES = frozenset({CallStatus.ENDED, CallStatus.DECLINED, CallStatus.MISSED, CallStatus.CANCELLED})


class Call(TableBase, table=True):
    """A call from a user to another user (`callee_id`) or to a phone number (`callee_phone`, E.164).

    `hold_id` reserves the caller's call credits while the call rings or runs; `settlement_transaction_id`
    is the one ledger transaction that posted the cost and released the rest (or released it all).
    """

    __tablename__ = "call"
    __table_args__ = (
        CheckConstraint("(callee_id IS NULL) <> (callee_phone IS NULL)", name="one_callee"),
        CheckConstraint("callee_id IS NULL OR callee_id <> caller_id", name="not_self"),
        CheckConstraint("call_type IN ('audio', 'video')", name="call_type"),
        CheckConstraint(
            "status IN ('ringing', 'active', 'ended', 'declined', 'missed', 'cancelled')",
            name="status",
        ),
        CheckConstraint(
            "end_reason IS NULL OR end_reason IN "
            "('caller_ended', 'callee_ended', 'credits_exhausted', 'declined', 'missed', 'cancelled')",
            name="end_reason",
        ),
        CheckConstraint("rate_per_minute_minor > 0", name="rate_positive"),
        CheckConstraint("cost_minor >= 0", name="cost_not_negative"),
        CheckConstraint("duration_seconds >= 0", name="duration_not_negative"),
        CheckConstraint("length(currency) = 3 AND currency = upper(currency)", name="currency"),
        # A call answered has a start; a call that ended after an answer has both ends.
        CheckConstraint("status <> 'active' OR started_at IS NOT NULL", name="active_has_start"),
        UniqueConstraint("caller_id", "idempotency_key", name="uq_call_caller_idempotency_key"),
        Index("ix_call_caller_created_at", "caller_id", "created_at"),
        Index("ix_call_callee_created_at", "callee_id", "created_at"),
    )

    caller_id: uuid.UUID = Field(sa_column=Column(ForeignKey("user_account.id"), nullable=False))
    callee_id: uuid.UUID | None = Field(default=None, sa_column=Column(ForeignKey("user_account.id"), nullable=True))
    callee_phone: str | None = Field(default=None, max_length=16)
    call_type: CallType = Field(sa_type=String(10))
    status: CallStatus = Field(default=CallStatus.RINGING, sa_type=String(10))
    currency: str = Field(default="NGN", max_length=3)
    rate_per_minute_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    hold_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("ledger_hold.id"), nullable=True, unique=True)
    )
    started_at: datetime | None = timestamp_field(default=None, nullable=True)
    ended_at: datetime | None = timestamp_field(default=None, nullable=True)
    duration_seconds: int = Field(default=0)
    cost_minor: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    end_reason: EndReason | None = Field(default=None, sa_type=String(20), nullable=True)
    settlement_transaction_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("ledger_transaction.id"), nullable=True, unique=True)
    )
    idempotency_key: str = Field(max_length=200)
    request_hash: str = Field(max_length=64)
