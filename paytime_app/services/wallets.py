"""Wallets: each user's `wallet` (primary) and `call_credits` accounts per currency, read from the ledger.

Balances are the ledger's: money on hold has already moved to its hold account, so a wallet's balance
is what can be spent and `held_minor` is shown beside it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session, func, select

from paytime_app.errors import NotFound
from paytime_app.models.ledger import HoldStatus, LedgerAccount, LedgerHold, LedgerTransaction
from paytime_app.models.users import User
from paytime_app.money import Currency
from paytime_app.services.ledger import get_account, list_entries


class WalletKind(StrEnum):
    PRIMARY = "wallet"
    CALL_CREDITS = "call_credits"


WALLET_LABELS = {WalletKind.PRIMARY: "Wallet", WalletKind.CALL_CREDITS: "Call credits"}


def wallet_address(user_id: uuid.UUID, kind: WalletKind) -> str:
    return f"user:{user_id}:{kind}"


@dataclass(frozen=True)
class WalletView:
    kind: WalletKind
    currency: Currency
    balance_minor: int
    held_minor: int
    account_id: uuid.UUID | None


@dataclass(frozen=True)
class HistoryLine:
    created_at: datetime
    reference: str
    description: str
    kind: str
    amount_minor: int
    currency: Currency


def list_wallets(*, session: Session, actor: User) -> list[WalletView]:
    """The actor's wallets in every supported currency (a wallet never used shows zero)."""
    views = []
    for kind in WalletKind:
        for currency in Currency:
            account = get_account(session=session, address=wallet_address(actor.id, kind), currency=currency)
            held = 0
            if account is not None:
                held = session.exec(
                    select(func.coalesce(func.sum(LedgerHold.amount_minor), 0)).where(
                        LedgerHold.account_id == account.id, LedgerHold.status == HoldStatus.ACTIVE
                    )
                ).one()
            views.append(
                WalletView(
                    kind=kind,
                    currency=currency,
                    balance_minor=account.balance_minor if account else 0,
                    held_minor=int(held),
                    account_id=account.id if account else None,
                )
            )
    return views


def wallet_history(
    *, session: Session, actor: User, kind: WalletKind, currency: Currency, page: int = 1, page_size: int = 20
) -> tuple[list[HistoryLine], int]:
    """The actor's own wallet lines, newest first, each saying what it was for."""
    entries, total = list_entries(
        session=session, address=wallet_address(actor.id, kind), currency=currency, page=page, page_size=page_size
    )
    lines = [
        HistoryLine(
            created_at=entry.created_at,
            reference=transaction.reference,
            description=_line_description(transaction, entry.amount_minor),
            kind=transaction.kind,
            amount_minor=entry.amount_minor,
            currency=Currency(entry.currency),
        )
        for entry, transaction in entries
    ]
    return lines, total


def get_own_wallet(*, session: Session, actor: User, account_id: uuid.UUID) -> LedgerAccount:
    """One of the actor's wallet accounts by id; anyone else's looks missing.

    Raises NotFound.
    """
    account = session.get(LedgerAccount, account_id)
    owned = {wallet_address(actor.id, kind) for kind in WalletKind}
    if account is None or account.address not in owned:
        raise NotFound("That wallet does not exist.")
    return account


def wallet_kind_of(account: LedgerAccount) -> WalletKind:
    return WalletKind(account.address.rsplit(":", 1)[1])


def _line_description(transaction: LedgerTransaction, amount_minor: int) -> str:
    """What the line was for, from this wallet's side: a transfer between two people says
    "Transfer to Ada" on one side and "Transfer from Ben" on the other (`line_out` / `line_in`)."""
    side = transaction.metadata_.get("line_in" if amount_minor > 0 else "line_out")
    if side:
        note = transaction.metadata_.get("note")
        return f"{side} · {note}" if note else str(side)
    return transaction.description or transaction.kind.replace("_", " ").capitalize()
