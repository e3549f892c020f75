"""Friends: each user's shareable friend code, and one row per pair of people for their relationship."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, String, UniqueConstraint
from sqlmodel import Field

from paytime_app.models.base import TableBase, timestamp_field


class FriendshipStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    REMOVED = "removed"
    BLOCKED = "blocked"


class FriendCode(TableBase, table=True):
    """A user's short shareable code (Crockford base32, e.g. `PT-7KQ2M9`), made on first use."""

    __tablename__ = "friend_code"

    user_id: uuid.UUID = Field(
        sa_column=Column(ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, unique=True)
    )
    code: str = Field(max_length=12, unique=True)


class Friendship(TableBase, table=True):
    """Two people's relationship, one row per unordered pair (`user_low_id` < `user_high_id`).

    The unique pair makes "no duplicate request" a database rule: two people asking each other at
    the same moment race on one row. The row is reused: a new request after a decline, cancel or
    unfriend moves it back to pending. `requester_id` is who asked (or who blocked, when blocked).
    """

    __tablename__ = "friendship"
    __table_args__ = (
        UniqueConstraint("user_low_id", "user_high_id", name="uq_friendship_pair"),
        CheckConstraint("user_low_id < user_high_id", name="ordered_pair"),
        CheckConstraint("requester_id = user_low_id OR requester_id = user_high_id", name="requester_in_pair"),
        CheckConstraint(
            "status IN ('pending', 'accepted', 'declined', 'cancelled', 'removed', 'blocked')", name="status"
        ),
        Index("ix_friendship_user_high_id", "user_high_id"),
    )

    user_low_id: uuid.UUID = Field(sa_column=Column(ForeignKey("user_account.id"), nullable=False))
    user_high_id: uuid.UUID = Field(sa_column=Column(ForeignKey("user_account.id"), nullable=False))
    requester_id: uuid.UUID = Field(sa_column=Column(ForeignKey("user_account.id"), nullable=False))
    status: FriendshipStatus = Field(default=FriendshipStatus.PENDING, sa_type=String(10))
    requested_at: datetime = timestamp_field(nullable=False)
    responded_at: datetime | None = timestamp_field(default=None, nullable=True)

    def other(self, user_id: uuid.UUID) -> uuid.UUID:
        return self.user_high_id if user_id == self.user_low_id else self.user_low_id
