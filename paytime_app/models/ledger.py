"""The double-entry ledger: accounts by address, append-only transactions and entries, holds.

Only `services/ledger.py` writes these tables. Revision 0003 adds what the models cannot say:
triggers that refuse UPDATE/DELETE of entries and transactions, and on PostgreSQL a deferred check
that every transaction's entries sum to zero per currency when the database transaction commits.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    String,
    UniqueConstraint,
)
from sqlmodel import Field

from paytime_app.models.base import TableBase, timestamp_field
from paytime_app.models.jobs import JsonColumnType

# ISO 4217 shape; the supported list lives in `money.Currency`, so adding one needs no migration.
_CURRENCY_CHECK = "length(currency) = 3 AND currency = upper(currency)"


class LedgerAccount(TableBase, table=True):
    """A balance in one currency at an address such as `user:{id}:wallet`, `platform:fees`, `world`.

    `balance_minor` is a cache of the sum of the account's entries, changed only by the ledger
    service in the same transaction as the entries; the CHECK keeps it from going negative. Accounts
    allowed below zero cache nothing (it stays 0): their balance is the sum of their entries.
    """

    __tablename__ = "ledger_account"
    __table_args__ = (
        UniqueConstraint("address", "currency", name="uq_ledger_account_address_currency"),
        # Target of the entries' and holds' composite foreign keys: an entry's currency is its account's.
        UniqueConstraint("id", "currency", name="uq_ledger_account_id_currency"),
        CheckConstraint("allow_negative OR balance_minor >= 0", name="balance_not_negative"),
        CheckConstraint(_CURRENCY_CHECK, name="currency"),
    )

    address: str = Field(max_length=200)
    currency: str = Field(max_length=3)
    allow_negative: bool = Field(default=False)
    balance_minor: int = Field(default=0, sa_type=BigInteger)


class LedgerTransaction(TableBase, table=True):
    """One balanced movement of money; never changed after it is written (corrections reverse it)."""

    __tablename__ = "ledger_transaction"
    # No index on kind or created_at: nothing reads transactions by them (histories read entries),
    # and every movement paid to maintain them.
    __table_args__ = (CheckConstraint("length(kind) > 0", name="kind"),)

    reference: str = Field(max_length=20, unique=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    request_hash: str = Field(max_length=64)
    kind: str = Field(max_length=40)
    description: str = Field(default="", max_length=200)
    # `metadata` is SQLAlchemy's name for the table registry, so the attribute carries an underscore.
    metadata_: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column("metadata", JsonColumnType, nullable=False)
    )
    reverses_id: uuid.UUID | None = Field(
        default=None, sa_column=Column(ForeignKey("ledger_transaction.id"), nullable=True, unique=True)
    )


class LedgerEntry(TableBase, table=True):
    """One signed line of a transaction: negative debits the account, positive credits it."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        ForeignKeyConstraint(
            ["account_id", "currency"],
            ["ledger_account.id", "ledger_account.currency"],
            name="fk_ledger_entry_account_currency",
        ),
        Index("ix_ledger_entry_account_history", "account_id", "created_at"),
        CheckConstraint("amount_minor <> 0", name="amount_not_zero"),
        CheckConstraint("posting_index >= 0", name="posting_index"),
    )

    transaction_id: uuid.UUID = Field(foreign_key="ledger_transaction.id", index=True)
    account_id: uuid.UUID
    amount_minor: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    # Position of the posting in its transaction, so a history lists a transaction's lines in order.
    posting_index: int = Field(default=0)


class HoldStatus(StrEnum):
    ACTIVE = "active"
    CAPTURED = "captured"
    VOIDED = "voided"
    EXPIRED = "expired"


class LedgerHold(TableBase, table=True):
    """Money reserved from an account, parked in its own account `hold:{id}` until it resolves.

    Because the reserved money has left the wallet, the wallet's balance is its available balance
    and the balance CHECK protects reservations too. A hold resolves exactly once: captured (part
    or all posted, the rest released), voided, or expired.
    """

    __tablename__ = "ledger_hold"
    __table_args__ = (
        ForeignKeyConstraint(
            ["account_id", "currency"],
            ["ledger_account.id", "ledger_account.currency"],
            name="fk_ledger_hold_account_currency",
        ),
        ForeignKeyConstraint(
            ["holding_account_id", "currency"],
            ["ledger_account.id", "ledger_account.currency"],
            name="fk_ledger_hold_holding_account_currency",
        ),
        Index("ix_ledger_hold_due", "status", "expires_at"),
        CheckConstraint("status IN ('active', 'captured', 'voided', 'expired')", name="status"),
        CheckConstraint("amount_minor > 0", name="amount_positive"),
        CheckConstraint("captured_minor >= 0 AND captured_minor <= amount_minor", name="captured_within_amount"),
        CheckConstraint("status = 'captured' OR captured_minor = 0", name="captured_only_when_captured"),
        CheckConstraint(
            "(status = 'active' AND resolved_at IS NULL AND resolution_transaction_id IS NULL)"
            " OR (status <> 'active' AND resolved_at IS NOT NULL AND resolution_transaction_id IS NOT NULL)",
            name="resolved_once",
        ),
    )

    account_id: uuid.UUID = Field(index=True)
    holding_account_id: uuid.UUID = Field(unique=True)
    amount_minor: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    kind: str = Field(max_length=40)
    status: HoldStatus = Field(default=HoldStatus.ACTIVE, sa_type=String(10))
    expires_at: datetime | None = timestamp_field(default=None, nullable=True)
    captured_minor: int = Field(default=0, sa_type=BigInteger)
    idempotency_key: str = Field(max_length=200, unique=True)
    transaction_id: uuid.UUID = Field(foreign_key="ledger_transaction.id", unique=True)
    resolution_transaction_id: uuid.UUID | None = Field(
        default=None, foreign_key="ledger_transaction.id", unique=True, nullable=True
    )
    resolved_at: datetime | None = timestamp_field(default=None, nullable=True)
