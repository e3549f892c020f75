"""Applications to sell tickets: a customer applies, a super_admin approves (seller role) or rejects."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, String
from sqlmodel import Field

from paytime_app.models.base import TableBase, timestamp_field


class ApplicationStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class SellerApplication(TableBase, table=True):
    """One request to become a seller; decided once, with the reason when rejected."""

    __tablename__ = "seller_application"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status"),
        CheckConstraint("length(payout_country) = 2 AND payout_country = upper(payout_country)", name="country"),
        CheckConstraint(
            "(status = 'pending' AND decided_at IS NULL) OR (status <> 'pending' AND decided_at IS NOT NULL)",
            name="decided_once",
        ),
        Index("ix_seller_application_status_created_at", "status", "created_at"),
    )

    user_id: uuid.UUID = Field(sa_column=Column(ForeignKey("user_account.id"), nullable=False, index=True))
    organisation_name: str = Field(max_length=120)
    contact_email: str = Field(max_length=254)
    contact_phone: str = Field(default="", max_length=20)
    payout_country: str = Field(max_length=2)
    status: ApplicationStatus = Field(default=ApplicationStatus.PENDING, sa_type=String(10))
    reason: str = Field(default="", max_length=500)
    decided_by_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("user_account.id"), nullable=True)
    )
    decided_at: datetime | None = timestamp_field(default=None, nullable=True)
