"""notifications: a partial index of the unread ones per recipient

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 01:50:00

The unread count (every live push, every page with the notification centre) and "mark all read"
read only a recipient's unread rows, but through (recipient_id, created_at) they visited every
notification the recipient ever had, read or not.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNREAD = "read_at IS NULL"


def upgrade() -> None:
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notification_unread",
            ["recipient_id"],
            unique=False,
            sqlite_where=sa.text(UNREAD),
            postgresql_where=sa.text(UNREAD),
        )


def downgrade() -> None:
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_unread", sqlite_where=sa.text(UNREAD), postgresql_where=sa.text(UNREAD))
