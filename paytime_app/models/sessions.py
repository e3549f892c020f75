"""Server-side sessions (browser cookie or API token pair), known devices and one-time challenges."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, Column, ForeignKey, String, UniqueConstraint
from sqlmodel import Field

from paytime_app.models.base import TableBase, timestamp_field, utcnow
from paytime_app.models.jobs import JsonColumnType


class SessionKind(StrEnum):
    BROWSER = "browser"
    API = "api"


class UserSession(TableBase, table=True):
    """One signed-in device. Only hashes of its tokens are stored; revoking it ends access at once."""

    __tablename__ = "user_session"
    __table_args__ = (CheckConstraint("kind IN ('browser', 'api')", name="kind"),)

    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    kind: SessionKind = Field(sa_type=String(10))
    token_hash: str = Field(max_length=64, unique=True)
    token_expires_at: datetime = timestamp_field(nullable=False)
    refresh_token_hash: str | None = Field(default=None, max_length=64, unique=True)
    # The refresh token this one replaced: seeing it again means it was copied, so the session ends.
    previous_refresh_token_hash: str | None = Field(default=None, max_length=64, index=True)
    expires_at: datetime = timestamp_field(nullable=False)
    last_seen_at: datetime = timestamp_field(default_factory=utcnow, nullable=False)
    revoked_at: datetime | None = timestamp_field(default=None, nullable=True)
    revoked_reason: str | None = Field(default=None, max_length=40)
    ip_address: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=400)


class KnownDevice(TableBase, table=True):
    """A device that has completed the new-device check for this user."""

    __tablename__ = "known_device"
    __table_args__ = (UniqueConstraint("user_id", "device_hash", name="uq_known_device_user_device"),)

    user_id: uuid.UUID = Field(sa_column=Column(ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False))
    device_hash: str = Field(max_length=64)
    label: str = Field(default="", max_length=120)
    last_seen_at: datetime = timestamp_field(default_factory=utcnow, nullable=False)


class ChallengePurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105  a purpose name, not a password
    NEW_DEVICE = "new_device"
    SECOND_FACTOR = "second_factor"
    SESSION_TICKET = "session_ticket"
    STEP_UP = "step_up"  # confirms a large transfer with an emailed code


class AuthChallenge(TableBase, table=True):
    """A single-use link token or emailed code: only hashes are stored, with expiry and attempt count."""

    __tablename__ = "auth_challenge"
    __table_args__ = (
        CheckConstraint(
            "purpose IN ('verify_email', 'reset_password', 'new_device', 'second_factor', 'session_ticket', 'step_up')",
            name="purpose",
        ),
        CheckConstraint("attempts >= 0", name="attempts"),
    )

    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    purpose: ChallengePurpose = Field(sa_type=String(20))
    token_hash: str = Field(max_length=64, unique=True)
    code_hash: str | None = Field(default=None, max_length=64)
    expires_at: datetime = timestamp_field(nullable=False)
    used_at: datetime | None = timestamp_field(default=None, nullable=True)
    attempts: int = Field(default=0)
    context: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonColumnType, nullable=False))
