"""IOUs: a borrower owes a friend (the lender) an amount by a due date. PayTime's seed calls them "tickets"."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, Column, Date, ForeignKey, Index, String, UniqueConstraint
from sqlmodel import Field

from paytime_app.models.base import TableBase, timestamp_field


class IouStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    OVERDUE = "overdue"
    CANCELLED = "cancelled"


class IouMethod(StrEnum):
    CASH = "cash"
    WALLET = "wallet"
    AUTO_WALLET = "auto_wallet"


OPEN_STATUSES = frozenset({IouStatus.PENDING, IouStatus.OVERDUE})


class Iou(TableBase, table=True):
    """A debt between two friends.

    `method` is how the borrower means to pay; `paid_via` is how it was settled (wallet, auto_wallet
    or cash). A cash payment is only claimed (`cash_claimed_at`) until the lender confirms it.
    `settlement_transaction_id` is the one ledger transfer that paid a wallet settlement.
    """

    __tablename__ = "iou"
    __table_args__ = (
        CheckConstraint("borrower_id <> lender_id", name="two_people"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("length(currency) = 3 AND currency = upper(currency)", name="currency"),
        CheckConstraint("status IN ('pending', 'paid', 'overdue', 'cancelled')", name="status"),
        CheckConstraint("method IN ('cash', 'wallet', 'auto_wallet')", name="method"),
        CheckConstraint("paid_via IS NULL OR paid_via IN ('cash', 'wallet', 'auto_wallet')", name="paid_via"),
        CheckConstraint("status <> 'paid' OR (paid_at IS NOT NULL AND paid_via IS NOT NULL)", name="paid_has_when"),
        CheckConstraint("paid_via <> 'cash' OR settlement_transaction_id IS NULL", name="cash_moves_no_money"),
        UniqueConstraint("borrower_id", "idempotency_key", name="uq_iou_borrower_idempotency_key"),
        Index("ix_iou_borrower_created_at", "borrower_id", "created_at"),
        Index("ix_iou_lender_created_at", "lender_id", "created_at"),
    )

    reference: str = Field(max_length=16, unique=True)
    borrower_id: uuid.UUID = Field(sa_column=Column(ForeignKey("user_account.id"), nullable=False))
    lender_id: uuid.UUID = Field(sa_column=Column(ForeignKey("user_account.id"), nullable=False))
    amount_minor: int = Field(sa_column=Column(BigInteger, nullable=False))
    currency: str = Field(max_length=3)
    method: IouMethod = Field(sa_type=String(12))
    due_date: date = Field(sa_column=Column(Date, nullable=False))
    note: str = Field(default="", max_length=200)
    status: IouStatus = Field(default=IouStatus.PENDING, sa_type=String(10))
    acknowledged_at: datetime | None = timestamp_field(default=None, nullable=True)
    cash_claimed_at: datetime | None = timestamp_field(default=None, nullable=True)
    cash_disputed_at: datetime | None = timestamp_field(default=None, nullable=True)
    paid_at: datetime | None = timestamp_field(default=None, nullable=True)
    paid_via: IouMethod | None = Field(default=None, sa_type=String(12), nullable=True)
    settlement_transaction_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("ledger_transaction.id"), nullable=True, unique=True)
    )
    cancelled_at: datetime | None = timestamp_field(default=None, nullable=True)
    cancelled_by_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("user_account.id"), nullable=True)
    )
    idempotency_key: str = Field(max_length=200)
    request_hash: str = Field(max_length=64)
