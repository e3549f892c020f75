"""mail attachments by reference; booking refunds go back through the provider

Also renames booking_refund.destination 'provider_owed' to 'provider' (refunds are now sent back
through the provider). Rows written before this revision were owed but never sent: their money
stayed in the buyer's wallet, so they become 'wallet', which is where it went.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 19:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
DESTINATION = "ck_booking_refund_destination"


def upgrade() -> None:
    with op.batch_alter_table("mail_message") as batch:
        batch.add_column(sa.Column("attachments", JSON_TYPE, nullable=False, server_default=sa.text("'[]'")))
    op.execute("UPDATE booking_refund SET destination = 'wallet' WHERE destination = 'provider_owed'")
    with op.batch_alter_table("booking_refund") as batch:
        batch.drop_constraint(op.f(DESTINATION), type_="check")
        batch.create_check_constraint(op.f(DESTINATION), "destination IN ('wallet', 'provider')")


def downgrade() -> None:
    op.execute("UPDATE booking_refund SET destination = 'provider_owed' WHERE destination = 'provider'")
    with op.batch_alter_table("booking_refund") as batch:
        batch.drop_constraint(op.f(DESTINATION), type_="check")
        batch.create_check_constraint(op.f(DESTINATION), "destination IN ('wallet', 'provider_owed')")
    with op.batch_alter_table("mail_message") as batch:
        batch.drop_column("attachments")
