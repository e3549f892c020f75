"""Durable background work: a row written in the same transaction as the change that needs it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, Index, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field

from paytime_app.models.base import TableBase, timestamp_field, utcnow

JsonColumnType = JSON().with_variant(JSONB(), "postgresql")


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    DEAD = "dead"


class Job(TableBase, table=True):
    __table_args__ = (
        Index("ix_job_due", "status", "run_at"),
        CheckConstraint("status IN ('pending', 'running', 'succeeded', 'dead')", name="status"),
        CheckConstraint("attempts >= 0 AND attempts <= max_attempts", name="attempts"),
    )

    kind: str = Field(max_length=80, index=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonColumnType, nullable=False))
    status: JobStatus = Field(default=JobStatus.PENDING, sa_type=String(12))
    run_at: datetime = timestamp_field(default_factory=utcnow, nullable=False)
    attempts: int = Field(default=0)
    max_attempts: int = Field(default=8, ge=1)
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    locked_by: str | None = Field(default=None, max_length=64)
    locked_until: datetime | None = timestamp_field(default=None, nullable=True)
    finished_at: datetime | None = timestamp_field(default=None, nullable=True)
    dedupe_key: str | None = Field(default=None, max_length=200, unique=True)
