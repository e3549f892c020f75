"""Outgoing mail, kept so the dev mailbox can show it and delivery can be retried."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, Column, String, Text
from sqlmodel import Field

from paytime_app.models.base import TableBase, timestamp_field
from paytime_app.models.jobs import JsonColumnType


class MailStatus(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class MailMessage(TableBase, table=True):
    __tablename__ = "mail_message"
    __table_args__ = (CheckConstraint("status IN ('queued', 'sent', 'failed')", name="status"),)

    to_address: str = Field(max_length=254, index=True)
    subject: str = Field(max_length=200)
    body_text: str = Field(sa_column=Column(Text, nullable=False))
    # Files sent with the message, by reference ({kind, ref, filename, content_type}); their bytes
    # are made when the message is sent or downloaded (services/mail.py says why).
    attachments: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JsonColumnType, nullable=False))
    status: MailStatus = Field(default=MailStatus.QUEUED, sa_type=String(10))
    delivered_via: str | None = Field(default=None, max_length=20)
    sent_at: datetime | None = timestamp_field(default=None, nullable=True)
