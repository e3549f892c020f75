"""Stored notifications: what happened to a user while they were (or were not) looking."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, Index, text
from sqlmodel import Field

from paytime_app.models.base import TableBase, timestamp_field
from paytime_app.models.jobs import JsonColumnType


class Notification(TableBase, table=True):
    """One event for one recipient; `kind` names it (`friend.requested`, `transfer.received`, ...) and
    `payload` carries what the words need, so the text is written when it is shown."""

    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_recipient_created_at", "recipient_id", "created_at"),
        # Every live push and page load counts the unread ones; a long history must not make that slower.
        Index(
            "ix_notification_unread",
            "recipient_id",
            sqlite_where=text("read_at IS NULL"),
            postgresql_where=text("read_at IS NULL"),
        ),
    )

    recipient_id: uuid.UUID = Field(sa_column=Column(ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False))
    kind: str = Field(max_length=40)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonColumnType, nullable=False))
    read_at: datetime | None = timestamp_field(default=None, nullable=True)
