"""payment daily totals split over shards, so a day's payments do not queue on one row

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 17:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = ["day", "currency", "status", "provider", "method", "purpose", "failure_reason"]


def upgrade() -> None:
    with op.batch_alter_table("payment_daily_total") as batch:
        batch.add_column(sa.Column("shard", sa.SmallInteger(), nullable=False, server_default="0"))
        batch.drop_constraint("uq_payment_daily_total_key", type_="unique")
        batch.create_unique_constraint("uq_payment_daily_total_key", [*KEY, "shard"])


def downgrade() -> None:
    # Fold every key's shards into one row (marked -1 while both exist), then narrow the key again.
    new_id = "gen_random_uuid()" if op.get_bind().dialect.name == "postgresql" else "lower(hex(randomblob(16)))"
    columns = ", ".join(KEY)
    op.execute(
        f"INSERT INTO payment_daily_total (id, created_at, {columns}, count, amount_minor, refunded_minor, shard)"  # noqa: S608
        f" SELECT {new_id}, min(created_at), {columns}, sum(count), sum(amount_minor), sum(refunded_minor), -1"
        f" FROM payment_daily_total GROUP BY {columns}"
    )
    op.execute("DELETE FROM payment_daily_total WHERE shard <> -1")
    with op.batch_alter_table("payment_daily_total") as batch:
        batch.drop_constraint("uq_payment_daily_total_key", type_="unique")
        batch.drop_column("shard")
        batch.create_unique_constraint("uq_payment_daily_total_key", KEY)
