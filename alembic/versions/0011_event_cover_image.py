"""event cover image: the stored cover's dimensions beside its file name

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A cover is a file name with its size, or nothing at all.
COVER_CHECK = (
    "(cover_image IS NULL AND cover_width IS NULL AND cover_height IS NULL)"
    " OR (cover_image IS NOT NULL AND cover_width > 0 AND cover_height > 0)"
)


def upgrade() -> None:
    # No cover was ever stored before this revision (nothing wrote the column), so clear any value
    # rather than invent dimensions for it.
    op.execute("UPDATE event SET cover_image = NULL")
    with op.batch_alter_table("event") as batch:
        batch.add_column(sa.Column("cover_width", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("cover_height", sa.Integer(), nullable=True))
        batch.create_check_constraint(op.f("ck_event_cover_dimensions"), COVER_CHECK)


def downgrade() -> None:
    with op.batch_alter_table("event") as batch:
        batch.drop_constraint(op.f("ck_event_cover_dimensions"), type_="check")
        batch.drop_column("cover_height")
        batch.drop_column("cover_width")
