"""People who use PayTime and the role that decides what they may do."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, String
from sqlmodel import Field

from paytime_app.models.base import TableBase, timestamp_field


class Role(StrEnum):
    CUSTOMER = "customer"
    SELLER = "seller"
    MANAGER = "manager"
    VIEWER = "viewer"
    ADMIN = "admin"
    SUPER_ADMIN = "super_admin"


class User(TableBase, table=True):
    __tablename__ = "user_account"
    __table_args__ = (
        CheckConstraint(
            "role IN ('customer', 'seller', 'manager', 'viewer', 'admin', 'super_admin')",
            name="role",
        ),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
    )

    email: str = Field(max_length=254, unique=True, index=True)
    display_name: str = Field(max_length=80)
    password_hash: str | None = Field(default=None, max_length=255)
    role: Role = Field(default=Role.CUSTOMER, sa_type=String(20))
    is_active: bool = Field(default=True)
    email_verified_at: datetime | None = timestamp_field(default=None, nullable=True)
