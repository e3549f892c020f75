"""Who did what, when, from where: every privileged action leaves an entry."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Column, ForeignKey, Index
from sqlmodel import Field

from paytime_app.models.base import TableBase
from paytime_app.models.jobs import JsonColumnType


class AuditLogEntry(TableBase, table=True):
    __tablename__ = "audit_log_entry"
    __table_args__ = (Index("ix_audit_log_entry_created_at", "created_at"),)

    actor_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True, index=True)
    )
    action: str = Field(max_length=80, index=True)
    target_type: str | None = Field(default=None, max_length=40)
    target_id: str | None = Field(default=None, max_length=64)
    ip_address: str | None = Field(default=None, max_length=64)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonColumnType, nullable=False))
