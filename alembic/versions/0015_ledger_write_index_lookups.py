"""ledger: `ledger_write` finds accounts by their unique key, never by scanning the table

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 01:10:00

Since revision 0014 the function's statements run on generic plans, which cannot see that the
call's arrays hold a handful of legs; the planner guessed ten and chose hash joins over a full scan
of `ledger_account` in four statements: every transfer read every account, so its cost grew with
the number of users (with 1,000 accounts, hashing them was most of the server's work per transfer).
Each leg is one lookup in the (address, currency) index whatever the table's size, so the function
plans only index lookups in nested loops.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEDGER_WRITE = (
    "ledger_write(uuid, timestamptz, varchar, varchar, varchar, varchar, varchar, jsonb, uuid,"
    " varchar[], varchar[], bigint[], integer[], boolean[])"
)
PLANNER_SETTINGS = ("enable_seqscan", "enable_hashjoin", "enable_mergejoin")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for setting in PLANNER_SETTINGS:
        op.execute(f"ALTER FUNCTION {LEDGER_WRITE} SET {setting} = off")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for setting in PLANNER_SETTINGS:
        op.execute(f"ALTER FUNCTION {LEDGER_WRITE} RESET {setting}")
