"""The double-entry ledger: the only writer of ledger tables.

Design overview
---------------
Money lives in `LedgerAccount`s named by address (`user:{id}:wallet`, `platform:fees`,
`provider:stripe:clearing`, `world`), one account per address and currency, created on first use.
Every movement is one `LedgerTransaction` made of `LedgerEntry` lines (negative debits, positive
credits) that sum to zero per currency. Entries and transactions are append-only (database triggers
refuse UPDATE and DELETE); a mistake is corrected by `reverse_transaction`, once.

Negative balances: an account may go below zero only if its address matches one of
`ACCOUNTS_ALLOWING_NEGATIVE` (`world`, the outside of the system, and `provider:*:clearing`, money a
provider owes us or we owe it). Everything else (wallets, earnings, fees, holds) is refused a debit
that would take it below zero, by a conditional UPDATE and, behind it, a CHECK constraint.

Balances: `balance_minor` on an account that may not go negative is a cache of the sum of its
entries, changed only here, in the same database transaction as the entries, and only after the
account's row is locked (accounts are locked in ascending id order, so A→B and B→A at once cannot
deadlock) and its balance, as it is once locked, covers the debit. Accounts allowed below zero have
nothing to check, so they keep no cached balance (0) and are never locked: every payment of a
provider moves money through its clearing account, which would otherwise serialise them all.
Their balance is the sum of their entries. `find_ledger_problems` recomputes every cached balance.

On PostgreSQL the write is one round trip: the `ledger_write` function (revision 0006) does what
`_write_transaction` does in Python on SQLite, and the same tests run against both. The function
keeps generic plans (revision 0014): planning its statements afresh on every call was half of the
server's work per movement. Those plans find each account through its (address, currency) index
(revision 0015): a generic plan cannot see how few legs a call has and scanned every account.

Idempotency: every call carries an idempotency key, stored unique on the transaction with a hash of
the request (kind and postings, or the hold operation). The same key with the same request returns
the first transaction; with a different request it raises `IdempotencyMismatch` (409). Keys are
global: callers scope them (`user:{id}:{client key}`). Two concurrent calls with one key race on the
unique index; the loser's savepoint rolls back and it returns the winner's transaction.

Holds: `place_hold` moves the amount from the account to a per-hold account `hold:{hold_id}`, so the
wallet balance is the available balance and the balance CHECK protects reservations too.
`capture_hold` posts part or all of it to a destination and releases the rest in one transaction;
`void_hold` releases it all; `expire_holds` (also the durable job `ledger.expire_holds`, enqueued for
each hold's expiry time) releases expired ones. Every resolution locks the hold row and re-checks its
status, so a hold resolves exactly once. `hold:` addresses are reserved to these functions.

A refused movement (insufficient funds, a lost race) rolls back its savepoint: nothing is written,
even if the caller catches the error and carries on.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import configure_mappers, instrumentation, make_transient_to_detached
from sqlmodel import Session, col, select

from paytime_app.db import for_update, is_postgresql
from paytime_app.errors import DomainError, NotFound, ValidationFailed
from paytime_app.models.base import utcnow
from paytime_app.models.ledger import HoldStatus, LedgerAccount, LedgerEntry, LedgerHold, LedgerTransaction
from paytime_app.money import Currency, InvalidAmount, parse_currency, require_positive
from paytime_app.services import identifiers
from paytime_app.services.jobs import enqueue_job, job_handler
from paytime_app.services.paging import page_bounds

# fnmatch patterns; an account whose address matches one may have a negative balance.
ACCOUNTS_ALLOWING_NEGATIVE: tuple[str, ...] = ("world", "provider:*:clearing")
HOLD_PREFIX = "hold:"
# Far below BigInteger's limit, so no sum of balances can overflow.
MAX_AMOUNT_MINOR = 10**15
EXPIRE_HOLDS_JOB = "ledger.expire_holds"
EXPIRE_BATCH = 500

# Kinds the ledger writes itself; `post_transaction` refuses them so their rules cannot be bypassed.
KIND_HOLD = "hold"
KIND_CAPTURE = "capture"
KIND_RELEASE = "release"
KIND_REVERSAL = "reversal"
LEDGER_KINDS = frozenset({KIND_HOLD, KIND_CAPTURE, KIND_RELEASE, KIND_REVERSAL})

_ADDRESS = re.compile(r"[a-z][a-z0-9_]*(:[A-Za-z0-9_.\-]+)*")


class LedgerError(DomainError):
    code = "ledger_error"
    default_message = "The money movement could not be completed."


class InsufficientFunds(LedgerError):
    code = "insufficient_funds"
    status_code = 409
    default_message = "There is not enough money in the account."


class IdempotencyMismatch(LedgerError):
    code = "idempotency_mismatch"
    status_code = 409
    default_message = "This idempotency key was already used for a different request."


class AlreadyReversed(LedgerError):
    code = "already_reversed"
    status_code = 409
    default_message = "This transaction has already been reversed."


class NotReversible(LedgerError):
    code = "not_reversible"
    status_code = 409
    default_message = "This transaction cannot be reversed; resolve its hold or post a refund instead."


class HoldNotActive(LedgerError):
    code = "hold_not_active"
    status_code = 409
    default_message = "This hold has already been captured, voided or expired."


class HoldExpired(LedgerError):
    code = "hold_expired"
    status_code = 409
    default_message = "This hold has expired."


class CaptureExceedsHold(LedgerError):
    code = "capture_exceeds_hold"
    status_code = 422
    default_message = "The amount is more than the hold reserves."


class InvalidPosting(ValidationFailed):
    code = "invalid_posting"
    default_message = "The money movement is not valid."


@dataclass(frozen=True, slots=True)
class Posting:
    """Move `amount_minor` (> 0) of `currency` from the `source` address to the `destination` address."""

    source: str
    destination: str
    amount_minor: int
    currency: Currency


@dataclass(frozen=True, slots=True)
class _Leg:
    address: str
    currency: Currency
    amount_minor: int  # signed: negative debits, positive credits
    posting_index: int


@dataclass(frozen=True, slots=True)
class _Written:
    transaction: LedgerTransaction
    created: bool


# --- public API: transactions -------------------------------------------------------------------


def allows_negative(address: str) -> bool:
    """Whether the account at `address` may have a negative balance (see ACCOUNTS_ALLOWING_NEGATIVE)."""
    return any(fnmatchcase(address, pattern) for pattern in ACCOUNTS_ALLOWING_NEGATIVE)


def post_transaction(
    *,
    session: Session,
    postings: Sequence[Posting],
    kind: str,
    idempotency_key: str,
    description: str = "",
    metadata: dict[str, Any] | None = None,
) -> LedgerTransaction:
    """Write one balanced transaction of `postings` (two entries each) and update the balances.

    The request hash covers `kind` and the postings, not the description or metadata.
    Raises InvalidAmount / UnsupportedCurrency / InvalidPosting for a malformed request,
    InsufficientFunds if a debit would take an account below zero (nothing is written), and
    IdempotencyMismatch if the key was used for a different request.
    """
    if kind in LEDGER_KINDS or not kind:
        raise InvalidPosting(f"Kind {kind!r} is reserved for the ledger's own transactions.")
    if not postings:
        raise InvalidPosting("A transaction needs at least one posting.")
    legs: list[_Leg] = []
    for index, posting in enumerate(postings):
        amount = _require_amount(posting.amount_minor)
        currency = parse_currency(posting.currency)
        _require_address(posting.source)
        _require_address(posting.destination)
        if posting.source == posting.destination:
            raise InvalidPosting("The source and the destination must differ.")
        legs.append(_Leg(posting.source, currency, -amount, index))
        legs.append(_Leg(posting.destination, currency, amount, index))
    request_hash = identifiers.request_hash(
        {
            "kind": kind,
            "postings": [[p.source, p.destination, p.amount_minor, str(p.currency)] for p in postings],
        }
    )
    written = _write_transaction(
        session=session,
        legs=legs,
        kind=kind,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        description=description,
        metadata=metadata or {},
    )
    return written.transaction


def transfer(
    *,
    session: Session,
    source: str,
    destination: str,
    amount_minor: int,
    currency: Currency,
    idempotency_key: str,
    kind: str = "transfer",
    description: str = "",
    metadata: dict[str, Any] | None = None,
) -> LedgerTransaction:
    """Move money between two addresses in one transaction.

    Raises what `post_transaction` raises (InsufficientFunds, IdempotencyMismatch, InvalidAmount, ...).
    """
    return post_transaction(
        session=session,
        postings=[Posting(source, destination, amount_minor, currency)],
        kind=kind,
        idempotency_key=idempotency_key,
        description=description,
        metadata=metadata,
    )


def reverse_transaction(
    *, session: Session, transaction_id: uuid.UUID, idempotency_key: str, description: str = ""
) -> LedgerTransaction:
    """Post the exact opposite of a transaction, linked to it; a transaction is reversed at most once.

    Raises NotFound, NotReversible (holds and their resolutions, reversals themselves),
    AlreadyReversed, InsufficientFunds (the money has been spent since) and IdempotencyMismatch.
    """
    request_hash = identifiers.request_hash({"kind": KIND_REVERSAL, "transaction_id": str(transaction_id)})
    existing = _replay(session=session, idempotency_key=idempotency_key, request_hash=request_hash)
    if existing is not None:
        return existing
    original = session.get(LedgerTransaction, transaction_id)
    if original is None:
        raise NotFound("No such ledger transaction.")
    if original.kind in LEDGER_KINDS or original.reverses_id is not None:
        raise NotReversible()
    if _reversal_of(session=session, transaction_id=original.id) is not None:
        raise AlreadyReversed()
    rows = session.exec(
        select(LedgerEntry, LedgerAccount)
        .join(LedgerAccount, col(LedgerEntry.account_id) == LedgerAccount.id)
        .where(LedgerEntry.transaction_id == original.id)
        .order_by(col(LedgerEntry.posting_index), col(LedgerEntry.amount_minor))
    ).all()
    legs = [
        _Leg(account.address, Currency(entry.currency), -entry.amount_minor, entry.posting_index)
        for entry, account in rows
    ]
    try:
        written = _write_transaction(
            session=session,
            legs=legs,
            kind=KIND_REVERSAL,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            description=description or f"Reversal of {original.reference}",
            metadata={"reverses": original.reference},
            reverses_id=original.id,
        )
    except IntegrityError:
        # A concurrent reversal under another key won the unique `reverses_id`.
        if _reversal_of(session=session, transaction_id=original.id) is not None:
            raise AlreadyReversed() from None
        raise
    return written.transaction


# --- public API: reads ----------------------------------------------------------------------------


def get_account(*, session: Session, address: str, currency: Currency) -> LedgerAccount | None:
    """The account at `address` in `currency`, or None if nothing was ever posted to it."""
    return session.exec(
        select(LedgerAccount).where(LedgerAccount.address == address, LedgerAccount.currency == str(currency))
    ).one_or_none()


def get_balance(*, session: Session, address: str, currency: Currency) -> int:
    """The balance in minor units (0 for an account never used); for wallets, the available balance."""
    if allows_negative(address):
        return session.exec(
            select(func.coalesce(func.sum(LedgerEntry.amount_minor), 0))
            .join(LedgerAccount, col(LedgerEntry.account_id) == LedgerAccount.id)
            .where(LedgerAccount.address == address, LedgerAccount.currency == str(currency))
        ).one()
    balance = session.exec(
        select(LedgerAccount.balance_minor).where(
            LedgerAccount.address == address, LedgerAccount.currency == str(currency)
        )
    ).one_or_none()
    return balance or 0


def get_transaction_by_key(*, session: Session, idempotency_key: str) -> LedgerTransaction | None:
    """The transaction written under `idempotency_key`, or None (callers check a retry before asking
    for anything a first attempt needs, such as a step-up code)."""
    return _transaction_by_key(session=session, idempotency_key=idempotency_key)


def get_hold(*, session: Session, hold_id: uuid.UUID) -> LedgerHold | None:
    """The hold, or None."""
    return session.get(LedgerHold, hold_id)


def list_entries(
    *, session: Session, address: str, currency: Currency, page: int = 1, page_size: int = 50
) -> tuple[list[tuple[LedgerEntry, LedgerTransaction]], int]:
    """One account's entries with their transactions, newest first, and the total count."""
    page, page_size = page_bounds(page, page_size, largest_size=200)
    account = get_account(session=session, address=address, currency=currency)
    if account is None:
        return [], 0
    total = session.exec(select(func.count()).where(LedgerEntry.account_id == account.id)).one()
    rows = session.exec(
        select(LedgerEntry, LedgerTransaction)
        .join(LedgerTransaction, col(LedgerEntry.transaction_id) == LedgerTransaction.id)
        .where(LedgerEntry.account_id == account.id)
        .order_by(
            col(LedgerEntry.created_at).desc(),
            col(LedgerTransaction.reference).desc(),
            col(LedgerEntry.posting_index).desc(),
        )
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return [(entry, transaction) for entry, transaction in rows], total


def find_ledger_problems(*, session: Session) -> list[str]:
    """Reconcile the whole ledger; an empty list means every invariant holds.

    Checks: each cached balance equals the sum of its entries (accounts allowed below zero cache
    none: theirs stays 0); each transaction has two or more entries summing to zero per currency; no
    balance is negative unless allowed; each active hold's account holds exactly its amount and each
    resolved hold's account is empty.
    """
    problems: list[str] = []
    entry_sums = (
        select(LedgerEntry.account_id, func.sum(LedgerEntry.amount_minor).label("total"))
        .group_by(col(LedgerEntry.account_id))
        .subquery()
    )
    for address, currency, allow_negative, cached, computed in session.exec(
        select(
            LedgerAccount.address,
            LedgerAccount.currency,
            LedgerAccount.allow_negative,
            LedgerAccount.balance_minor,
            func.coalesce(entry_sums.c.total, 0),
        ).join(entry_sums, entry_sums.c.account_id == LedgerAccount.id, isouter=True)
    ).all():
        if allow_negative != allows_negative(address):
            problems.append(f"{address} {currency}: allow_negative is {allow_negative}")
        if allow_negative and cached != 0:
            problems.append(f"{address} {currency}: caches a balance of {cached}; it allows negative, so caches none")
        if not allow_negative and cached != computed:
            problems.append(f"{address} {currency}: cached balance {cached} != sum of entries {computed}")
        if computed < 0 and not allow_negative:
            problems.append(f"{address} {currency}: negative balance {computed}")
    for transaction_id, currency, total in session.exec(
        select(LedgerEntry.transaction_id, LedgerEntry.currency, func.sum(LedgerEntry.amount_minor))
        .group_by(col(LedgerEntry.transaction_id), col(LedgerEntry.currency))
        .having(func.sum(LedgerEntry.amount_minor) != 0)
    ).all():
        problems.append(f"transaction {transaction_id}: {currency} entries sum to {total}")
    entry_counts = (
        select(LedgerEntry.transaction_id, func.count().label("n")).group_by(col(LedgerEntry.transaction_id)).subquery()
    )
    for reference, count in session.exec(
        select(LedgerTransaction.reference, func.coalesce(entry_counts.c.n, 0))
        .join(entry_counts, entry_counts.c.transaction_id == LedgerTransaction.id, isouter=True)
        .where(func.coalesce(entry_counts.c.n, 0) < 2)
    ).all():
        problems.append(f"transaction {reference}: {count} entries")
    for hold, held in session.exec(
        select(LedgerHold, LedgerAccount.balance_minor).join(
            LedgerAccount, col(LedgerHold.holding_account_id) == LedgerAccount.id
        )
    ).all():
        expected = hold.amount_minor if hold.status == HoldStatus.ACTIVE else 0
        if held != expected:
            problems.append(f"hold {hold.id} ({hold.status}): holds {held}, expected {expected}")
    return problems


# --- public API: holds ----------------------------------------------------------------------------


def place_hold(
    *,
    session: Session,
    address: str,
    currency: Currency,
    amount_minor: int,
    expires_at: datetime | None,
    idempotency_key: str,
    kind: str,
    description: str = "",
) -> LedgerHold:
    """Reserve money from `address` until captured, voided or expired (`expires_at`; None = no expiry).

    `kind` says what the hold is for (`call`, `withdrawal`, `booking`). The request hash covers the
    address, currency, amount and kind (not the expiry, which a retry may compute afresh).
    Raises InvalidAmount / InvalidPosting, InsufficientFunds (nothing is written) and IdempotencyMismatch.
    """
    amount = _require_amount(amount_minor)
    currency = parse_currency(currency)
    _require_address(address)
    if expires_at is not None and expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    request_hash = identifiers.request_hash(
        {"kind": KIND_HOLD, "address": address, "currency": str(currency), "amount": amount, "hold_kind": kind}
    )
    hold_id = uuid.uuid4()
    hold_address = f"{HOLD_PREFIX}{hold_id}"
    written = _write_transaction(
        session=session,
        legs=[_Leg(address, currency, -amount, 0), _Leg(hold_address, currency, amount, 0)],
        kind=KIND_HOLD,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        description=description,
        metadata={"hold_id": str(hold_id), "hold_kind": kind},
    )
    if not written.created:
        return session.exec(select(LedgerHold).where(LedgerHold.transaction_id == written.transaction.id)).one()
    account = get_account(session=session, address=address, currency=currency)
    holding = get_account(session=session, address=hold_address, currency=currency)
    assert account is not None
    assert holding is not None
    hold = LedgerHold(
        id=hold_id,
        account_id=account.id,
        holding_account_id=holding.id,
        amount_minor=amount,
        currency=str(currency),
        kind=kind,
        expires_at=expires_at,
        idempotency_key=idempotency_key,
        transaction_id=written.transaction.id,
    )
    session.add(hold)
    session.flush()
    _schedule_expiry(session=session, hold=hold)
    return hold


def capture_hold(
    *,
    session: Session,
    hold_id: uuid.UUID,
    amount_minor: int,
    destination: str,
    idempotency_key: str,
    description: str = "",
    metadata: dict[str, Any] | None = None,
) -> LedgerTransaction:
    """Post `amount_minor` of the hold to `destination` and release the rest, in one transaction.

    Raises NotFound, HoldNotActive (already captured, voided or expired), HoldExpired (past its
    expiry, not yet swept), CaptureExceedsHold, InvalidAmount / InvalidPosting and IdempotencyMismatch.
    """
    amount = _require_amount(amount_minor)
    _require_address(destination)
    request_hash = identifiers.request_hash(
        {"kind": KIND_CAPTURE, "hold_id": str(hold_id), "amount": amount, "destination": destination}
    )
    # Lock first, then look for a replay: a twin request holding the lock may be about to commit.
    hold = _lock_hold(session=session, hold_id=hold_id)
    existing = _replay(session=session, idempotency_key=idempotency_key, request_hash=request_hash)
    if existing is not None:
        return existing
    _require_active(hold)
    if amount > hold.amount_minor:
        raise CaptureExceedsHold(hold_minor=hold.amount_minor)
    currency = Currency(hold.currency)
    account = _account_by_id(session=session, account_id=hold.account_id)
    hold_address = f"{HOLD_PREFIX}{hold.id}"
    rest = hold.amount_minor - amount
    legs = [_Leg(hold_address, currency, -amount, 0), _Leg(destination, currency, amount, 0)]
    if rest:
        legs += [_Leg(hold_address, currency, -rest, 1), _Leg(account.address, currency, rest, 1)]
    written = _write_transaction(
        session=session,
        legs=legs,
        kind=KIND_CAPTURE,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        description=description,
        metadata={**(metadata or {}), "hold_id": str(hold.id), "captured_minor": amount, "released_minor": rest},
    )
    _resolve(session=session, hold=hold, status=HoldStatus.CAPTURED, transaction=written.transaction, captured=amount)
    return written.transaction


def void_hold(
    *, session: Session, hold_id: uuid.UUID, idempotency_key: str, description: str = ""
) -> LedgerTransaction:
    """Release the whole hold back to its account.

    Raises NotFound, HoldNotActive (already captured, voided or expired) and IdempotencyMismatch.
    """
    request_hash = identifiers.request_hash({"kind": KIND_RELEASE, "hold_id": str(hold_id)})
    hold = _lock_hold(session=session, hold_id=hold_id)
    existing = _replay(session=session, idempotency_key=idempotency_key, request_hash=request_hash)
    if existing is not None:
        return existing
    if hold.status != HoldStatus.ACTIVE:
        raise HoldNotActive(status=str(hold.status))
    return _release(
        session=session,
        hold=hold,
        status=HoldStatus.VOIDED,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        description=description,
    )


def extend_hold(
    *,
    session: Session,
    hold_id: uuid.UUID,
    amount_minor: int,
    idempotency_key: str,
    expires_at: datetime | None = None,
) -> LedgerHold:
    """Reserve `amount_minor` more on an active hold, and move its expiry to `expires_at` if given.

    Raises NotFound, HoldNotActive, HoldExpired, InvalidAmount, InsufficientFunds (nothing changes)
    and IdempotencyMismatch.
    """
    amount = _require_amount(amount_minor)
    if expires_at is not None and expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware")
    request_hash = identifiers.request_hash({"kind": KIND_HOLD, "hold_id": str(hold_id), "extend_by": amount})
    hold = _lock_hold(session=session, hold_id=hold_id)
    if _replay(session=session, idempotency_key=idempotency_key, request_hash=request_hash) is not None:
        return hold
    _require_active(hold)
    currency = Currency(hold.currency)
    account = _account_by_id(session=session, account_id=hold.account_id)
    _write_transaction(
        session=session,
        legs=[_Leg(account.address, currency, -amount, 0), _Leg(f"{HOLD_PREFIX}{hold.id}", currency, amount, 0)],
        kind=KIND_HOLD,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        description="",
        metadata={"hold_id": str(hold.id), "hold_kind": hold.kind, "extension": True},
    )
    hold.amount_minor += amount
    if expires_at is not None:
        hold.expires_at = expires_at
    session.add(hold)
    session.flush()
    if expires_at is not None:
        _schedule_expiry(session=session, hold=hold)
    return hold


def expire_holds(*, session: Session, now: datetime | None = None) -> int:
    """Release active holds whose expiry has passed; returns how many. Running it twice changes nothing."""
    now = now or utcnow()
    due = (
        select(LedgerHold.id)
        .where(LedgerHold.status == HoldStatus.ACTIVE, col(LedgerHold.expires_at) <= now)
        .order_by(col(LedgerHold.expires_at))
        .limit(EXPIRE_BATCH)
    )
    if is_postgresql(session):
        # A hold being captured or voided right now is locked: skip it rather than wait; it is resolving.
        due = for_update(due, skip_locked=True)
    expired = 0
    for hold_id in session.exec(due).all():
        hold = _lock_hold(session=session, hold_id=hold_id)
        if hold.status != HoldStatus.ACTIVE or hold.expires_at is None or hold.expires_at > now:
            continue
        _release(
            session=session,
            hold=hold,
            status=HoldStatus.EXPIRED,
            idempotency_key=f"ledger:hold:{hold.id}:expire",
            request_hash=identifiers.request_hash({"kind": KIND_RELEASE, "hold_id": str(hold.id), "expired": True}),
            description="Hold expired",
        )
        expired += 1
    if expired == EXPIRE_BATCH:
        enqueue_job(session=session, kind=EXPIRE_HOLDS_JOB, payload={})
    return expired


@job_handler(EXPIRE_HOLDS_JOB)
def expire_holds_job(*, session: Session, payload: dict[str, Any]) -> None:  # noqa: ARG001  job interface
    """Durable job: release expired holds (enqueued at each hold's expiry time)."""
    expire_holds(session=session)


# --- internals ------------------------------------------------------------------------------------


def _require_amount(amount_minor: int) -> int:
    amount = require_positive(amount_minor)
    if amount > MAX_AMOUNT_MINOR:
        raise InvalidAmount("That amount is too large.")
    return amount


def _require_address(address: str) -> None:
    if not isinstance(address, str) or len(address) > 200 or not _ADDRESS.fullmatch(address):
        raise InvalidPosting(f"{address!r} is not a valid account address.")
    if address.startswith(HOLD_PREFIX):
        raise InvalidPosting("Hold accounts are moved only by the hold functions.")


def _transaction_by_key(*, session: Session, idempotency_key: str) -> LedgerTransaction | None:
    return session.exec(
        select(LedgerTransaction).where(LedgerTransaction.idempotency_key == idempotency_key)
    ).one_or_none()


def _replay(*, session: Session, idempotency_key: str, request_hash: str) -> LedgerTransaction | None:
    """The transaction already written under this key for this request, None if the key is unused."""
    existing = _transaction_by_key(session=session, idempotency_key=idempotency_key)
    if existing is not None and existing.request_hash != request_hash:
        raise IdempotencyMismatch()
    return existing


def _reversal_of(*, session: Session, transaction_id: uuid.UUID) -> LedgerTransaction | None:
    return session.exec(select(LedgerTransaction).where(LedgerTransaction.reverses_id == transaction_id)).one_or_none()


def _write_transaction(
    *,
    session: Session,
    legs: Sequence[_Leg],
    kind: str,
    idempotency_key: str,
    request_hash: str,
    description: str,
    metadata: dict[str, Any],
    reverses_id: uuid.UUID | None = None,
) -> _Written:
    """The one place that inserts transactions and entries and changes balances."""
    if not idempotency_key or len(idempotency_key) > 200:
        raise InvalidPosting("An idempotency key of 1 to 200 characters is required.")
    totals: dict[Currency, int] = defaultdict(int)
    for leg in legs:
        totals[leg.currency] += leg.amount_minor
    if len(legs) < 2 or any(totals.values()):
        raise ValueError(f"unbalanced ledger transaction: {dict(totals)}")
    values = {
        "id": uuid.uuid4(),
        "created_at": utcnow(),
        "reference": identifiers.human_reference("TX", 12),
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "kind": kind,
        "description": description[:200],
        "metadata_": metadata,
        "reverses_id": reverses_id,
    }
    if is_postgresql(session):
        return _write_transaction_on_server(session=session, values=values, legs=legs)
    # Given, not defaulted: pydantic inspects a default factory's signature on every construction.
    transaction = LedgerTransaction(**values)
    existing = _replay(session=session, idempotency_key=idempotency_key, request_hash=request_hash)
    if existing is not None:
        return _Written(existing, created=False)
    try:
        # Everything in one savepoint: a refusal or a lost race leaves nothing behind.
        with session.begin_nested():
            session.add(transaction)
            # Claim the key first: a concurrent twin blocks here on the unique index until we finish.
            session.flush()
            accounts = _accounts_for(session=session, pairs={(leg.address, leg.currency) for leg in legs})
            deltas: dict[uuid.UUID, int] = defaultdict(int)
            for leg in legs:
                deltas[accounts[leg.address, leg.currency].id] += leg.amount_minor
            _apply_deltas(session=session, deltas=deltas, accounts={a.id: a for a in accounts.values()})
            session.add_all(
                LedgerEntry(
                    transaction_id=transaction.id,
                    account_id=accounts[leg.address, leg.currency].id,
                    amount_minor=leg.amount_minor,
                    currency=str(leg.currency),
                    posting_index=leg.posting_index,
                    created_at=transaction.created_at,
                )
                for leg in legs
            )
            session.flush()
    except IntegrityError:
        winner = _transaction_by_key(session=session, idempotency_key=idempotency_key)
        if winner is None:
            raise
        if winner.request_hash != request_hash:
            raise IdempotencyMismatch() from None
        return _Written(winner, created=False)
    return _Written(transaction, created=True)


# The driver's own placeholders: the call goes straight to the DBAPI cursor (see below). The arrays
# are sent as array literals (`_array_literal`), which costs a fraction of dumping Python lists.
_LEDGER_WRITE = (
    "SELECT outcome, found_transaction_id, refused_address, refused_currency FROM ledger_write("
    "%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s::varchar[], %s::varchar[], %s::bigint[], %s::integer[],"
    " %s::boolean[])"
)


@functools.cache
def _transaction_class() -> Any:
    # An instance made by the class manager skips the mapper set-up that a query or a constructor
    # triggers, so make sure it has happened.
    configure_mappers()
    return instrumentation.manager_of_class(LedgerTransaction)


def _write_transaction_on_server(*, session: Session, values: dict[str, Any], legs: Sequence[_Leg]) -> _Written:
    """PostgreSQL: the same write as below in one round trip, through the `ledger_write` function.

    The function returns a refusal instead of raising, so nothing is written and the caller's
    transaction stays usable without a savepoint round trip.

    This is every money movement's hot path, so it spends as little Python as it can: the statement
    goes to the DBAPI cursor of the session's connection (SQLAlchemy's statement layer costs more
    than the call itself; a driver error is still translated, and a lost connection invalidated, by
    SQLAlchemy), and the transaction it returns is built the way a query loads a row.
    """
    parameters = (
        values["id"],
        values["created_at"],
        values["reference"],
        values["idempotency_key"],
        values["request_hash"],
        values["kind"],
        values["description"],
        json.dumps(values["metadata_"], default=str),
        values["reverses_id"],
        _array_literal([leg.address for leg in legs]),
        _array_literal([str(leg.currency) for leg in legs]),
        "{" + ",".join([str(leg.amount_minor) for leg in legs]) + "}",
        "{" + ",".join([str(leg.posting_index) for leg in legs]) + "}",
        "{" + ",".join(["t" if allows_negative(leg.address) else "f" for leg in legs]) + "}",
    )
    # Pending ORM changes are not flushed first: they reach the database with the commit, after this
    # write, so a row pointing at this transaction (a payment's credit) needs no second UPDATE.
    connection = session.connection()
    cursor = connection.connection.cursor()
    try:
        cursor.execute(_LEDGER_WRITE, parameters)
        outcome, found_id, refused_address, refused_currency = cursor.fetchone()
    except BaseException as error:
        # What SQLAlchemy's own execute does: wrap the driver's error (IntegrityError, ...) and, if
        # the connection is gone, invalidate it so the pool drops it and the caller can retry.
        connection._handle_dbapi_exception(error, _LEDGER_WRITE, parameters, cursor, None)
    finally:
        cursor.close()
    if outcome == "insufficient_funds":
        raise InsufficientFunds(address=refused_address, currency=refused_currency)
    if outcome == "mismatch":
        raise IdempotencyMismatch()
    if outcome == "already_reversed":
        raise AlreadyReversed()
    if outcome == "replayed":
        replayed = session.get(LedgerTransaction, found_id)
        assert replayed is not None
        return _Written(replayed, created=False)
    # Written by the server exactly as given: a detached object with its identity, no read back.
    transaction = _transaction_class().new_instance()
    transaction.__dict__.update(values)
    make_transient_to_detached(transaction)
    for cached in session.identity_map.values():
        if isinstance(cached, LedgerAccount):
            session.expire(cached, ["balance_minor"])
    return _Written(transaction, created=True)


def _array_literal(items: Sequence[str]) -> str:
    """A PostgreSQL array literal of strings, each quoted (so commas and braces stay inside it)."""
    return "{" + ",".join(['"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items]) + "}"


def _accounts_for(
    *, session: Session, pairs: Iterable[tuple[str, Currency]]
) -> dict[tuple[str, Currency], LedgerAccount]:
    wanted = set(pairs)
    found = {
        (account.address, Currency(account.currency)): account
        for account in session.exec(
            select(LedgerAccount).where(col(LedgerAccount.address).in_({address for address, _ in wanted}))
        ).all()
    }
    for address, currency in sorted(wanted - found.keys()):
        found[address, currency] = _create_account(session=session, address=address, currency=currency)
    return {pair: found[pair] for pair in wanted}


def _create_account(*, session: Session, address: str, currency: Currency) -> LedgerAccount:
    account = LedgerAccount(address=address, currency=str(currency), allow_negative=allows_negative(address))
    try:
        with session.begin_nested():
            session.add(account)
    except IntegrityError:
        # Created by a concurrent first use; it has committed by the time the unique index lets us through.
        existing = get_account(session=session, address=address, currency=currency)
        if existing is None:
            raise
        return existing
    return account


def _apply_deltas(*, session: Session, deltas: dict[uuid.UUID, int], accounts: dict[uuid.UUID, LedgerAccount]) -> None:
    # Ascending id order: two transactions over the same accounts lock them in the same order.
    for account_id in sorted(deltas):
        delta = deltas[account_id]
        if delta == 0 or accounts[account_id].allow_negative:
            continue
        statement = (
            update(LedgerAccount)
            .where(col(LedgerAccount.id) == account_id)
            .values(balance_minor=col(LedgerAccount.balance_minor) + delta)
        )
        if delta < 0:
            # Decided by the row as it is when locked, never by a value read earlier.
            statement = statement.where(col(LedgerAccount.balance_minor) + delta >= 0)
        result = session.exec(statement.execution_options(synchronize_session=False))  # type: ignore[call-overload]
        if result.rowcount != 1:
            account = accounts[account_id]
            raise InsufficientFunds(address=account.address, currency=account.currency)
        session.expire(accounts[account_id], ["balance_minor"])


def _lock_hold(*, session: Session, hold_id: uuid.UUID) -> LedgerHold:
    hold = session.exec(
        for_update(select(LedgerHold).where(LedgerHold.id == hold_id)).execution_options(populate_existing=True)
    ).one_or_none()
    if hold is None:
        raise NotFound("No such hold.")
    return hold


def _require_active(hold: LedgerHold) -> None:
    if hold.status != HoldStatus.ACTIVE:
        raise HoldNotActive(status=str(hold.status))
    if hold.expires_at is not None and hold.expires_at <= utcnow():
        raise HoldExpired()


def _account_by_id(*, session: Session, account_id: uuid.UUID) -> LedgerAccount:
    account = session.get(LedgerAccount, account_id)
    assert account is not None, "a hold's account exists (foreign key)"
    return account


def _release(
    *,
    session: Session,
    hold: LedgerHold,
    status: HoldStatus,
    idempotency_key: str,
    request_hash: str,
    description: str,
) -> LedgerTransaction:
    currency = Currency(hold.currency)
    account = _account_by_id(session=session, account_id=hold.account_id)
    written = _write_transaction(
        session=session,
        legs=[
            _Leg(f"{HOLD_PREFIX}{hold.id}", currency, -hold.amount_minor, 0),
            _Leg(account.address, currency, hold.amount_minor, 0),
        ],
        kind=KIND_RELEASE,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        description=description,
        metadata={"hold_id": str(hold.id), "released_minor": hold.amount_minor, "reason": str(status)},
    )
    _resolve(session=session, hold=hold, status=status, transaction=written.transaction, captured=0)
    return written.transaction


def _resolve(
    *, session: Session, hold: LedgerHold, status: HoldStatus, transaction: LedgerTransaction, captured: int
) -> None:
    hold.status = status
    hold.captured_minor = captured
    hold.resolved_at = utcnow()
    hold.resolution_transaction_id = transaction.id
    session.add(hold)
    session.flush()


def _schedule_expiry(*, session: Session, hold: LedgerHold) -> None:
    if hold.expires_at is None:
        return
    enqueue_job(
        session=session,
        kind=EXPIRE_HOLDS_JOB,
        payload={},
        run_at=hold.expires_at,
        dedupe_key=f"{EXPIRE_HOLDS_JOB}:{hold.id}:{hold.expires_at.isoformat()}",
    )
