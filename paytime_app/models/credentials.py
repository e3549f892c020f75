"""How a person proves who they are beyond a password: linked OAuth accounts, TOTP, recovery codes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Column, ForeignKey, String, UniqueConstraint
from sqlmodel import Field

from paytime_app.models.base import TableBase, timestamp_field


class OAuthIdentity(TableBase, table=True):
    """A Google or GitHub account linked by the provider's stable subject, never by email."""

    __tablename__ = "oauth_identity"
    __table_args__ = (
        UniqueConstraint("provider", "subject", name="uq_oauth_identity_provider_subject"),
        UniqueConstraint("user_id", "provider", name="uq_oauth_identity_user_provider"),
    )

    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    provider: str = Field(sa_type=String(20))
    subject: str = Field(max_length=255)
    email: str | None = Field(default=None, max_length=254)


class TotpCredential(TableBase, table=True):
    """A TOTP secret (encrypted at rest); `last_used_step` makes every code single-use."""

    __tablename__ = "totp_credential"

    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, unique=True)
    )
    secret_encrypted: str = Field(max_length=255)
    confirmed_at: datetime | None = timestamp_field(default=None, nullable=True)
    last_used_step: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))


class RecoveryCode(TableBase, table=True):
    __tablename__ = "recovery_code"

    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    code_hash: str = Field(max_length=64, unique=True)
    used_at: datetime | None = timestamp_field(default=None, nullable=True)
