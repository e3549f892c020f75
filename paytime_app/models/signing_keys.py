"""Ed25519 keys that sign tokens and QR tickets; rotated by key id, old keys verify until retired."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index, String, Text, text
from sqlmodel import Field

from paytime_app.models.base import TableBase, timestamp_field


class SigningKeyStatus(StrEnum):
    ACTIVE = "active"
    VERIFY_ONLY = "verify_only"
    RETIRED = "retired"


class SigningKey(TableBase, table=True):
    __tablename__ = "signing_key"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'verify_only', 'retired')", name="status"),
        # At most one key signs at a time.
        Index(
            "uq_signing_key_one_active",
            "status",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    kid: str = Field(max_length=32, unique=True)
    public_key: str = Field(max_length=64)
    private_key_encrypted: str = Field(sa_type=Text)
    status: SigningKeyStatus = Field(default=SigningKeyStatus.ACTIVE, sa_type=String(12))
    retired_at: datetime | None = timestamp_field(default=None, nullable=True)
