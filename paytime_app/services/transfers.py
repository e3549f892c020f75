"""Sending money to a friend: one ledger transfer from wallet to wallet, with a step-up code for
large amounts.

Design overview
---------------
`transfer_to_friend` checks, in order: the amount and currency, the note, the recipient (an active
friend, never oneself), a retry (the same idempotency key returns the first transfer without asking
for a code again; the same key for another transfer is `idempotency_mismatch`), the balance, and
then the step-up: at or above `step_up_threshold(currency)` (settings, default the equivalent of 100
USD) the sender proves it is them. With an authenticator app enrolled that is a TOTP (or recovery)
code; otherwise a 6-digit code emailed to them, bound to this exact transfer (recipient, amount,
currency) and usable once. The first attempt without a code raises `StepUpRequired`, which keeps the
emailed challenge it created (nothing else has been written) and tells the caller how to ask.

The money moves in ONE ledger transaction (`friend_transfer`) keyed `user:{sender}:transfer:{key}`;
the ledger refuses a balance below zero on the locked account, so a stale balance read cannot
overdraw. Both wallets' histories read "Transfer to Ada" / "Transfer from Ben" from the
transaction's metadata, and both people's open tabs refresh; the recipient gets a notification.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlmodel import Session

from paytime_app.bus import publish_after_commit
from paytime_app.errors import DomainError, ValidationFailed
from paytime_app.models.ledger import LedgerTransaction
from paytime_app.models.sessions import ChallengePurpose
from paytime_app.models.users import User
from paytime_app.money import Currency, format_money, parse_currency, require_positive
from paytime_app.services import ledger, rate_limits
from paytime_app.services.accounts import mask_email
from paytime_app.services.audit import record_audit
from paytime_app.services.challenges import consume_code, issue_challenge
from paytime_app.services.friends import CannotFriendSelf, require_friend
from paytime_app.services.identifiers import request_hash
from paytime_app.services.mail import queue_mail
from paytime_app.services.notifications import notify
from paytime_app.services.two_factor import has_two_factor, verify_second_factor
from paytime_app.services.wallets import WalletKind, wallet_address
from paytime_app.settings import get_settings

TRANSFER_KIND = "friend_transfer"
MAX_NOTE = 140
STEP_UP_CODE_LIFETIME = timedelta(minutes=10)
WALLET_TOPIC = "wallet.updated"


class StepUpRequired(DomainError):
    code = "step_up_required"
    status_code = 403
    keeps_changes = True  # the emailed challenge it issued must survive the refusal
    default_message = "Confirm this transfer with a code."


class StepUpMismatch(ValidationFailed):
    code = "step_up_mismatch"
    default_message = "That code was sent for a different transfer. Start again to get a new one."


class InvalidNote(ValidationFailed):
    code = "invalid_note"
    default_message = f"Keep the note under {MAX_NOTE} characters."


def step_up_threshold(currency: Currency) -> int:
    """The smallest amount (minor units) that needs a step-up code."""
    settings = get_settings()
    return {
        Currency.USD: settings.transfer_step_up_usd_minor,
        Currency.NGN: settings.transfer_step_up_ngn_minor,
    }[currency]


def transfer_to_friend(
    *,
    session: Session,
    actor: User,
    to_user_id: uuid.UUID,
    amount_minor: int,
    currency: str,
    idempotency_key: str,
    note: str = "",
    step_up_code: str | None = None,
    step_up_token: str | None = None,
) -> LedgerTransaction:
    """Move `amount_minor` from the actor's wallet to a friend's wallet in one ledger transaction.

    Raises InvalidAmount, UnsupportedCurrency, InvalidNote, CannotFriendSelf, NotFriends,
    InsufficientFunds (nothing moved), IdempotencyMismatch, StepUpRequired (details: `method` totp
    or email, and for email a `challenge` token and `email_hint`), InvalidCode / CodeAlreadyUsed /
    CodeExpired / TooManyAttempts / StepUpMismatch for a wrong code, RateLimited.
    """
    money_currency = parse_currency(currency)
    require_positive(amount_minor)
    if amount_minor > ledger.MAX_AMOUNT_MINOR:
        raise ledger.InvalidAmount("That amount is too large.")
    note = " ".join(note.split())
    if len(note) > MAX_NOTE:
        raise InvalidNote()
    if to_user_id == actor.id:
        raise CannotFriendSelf("You can't send money to yourself.")
    friend = require_friend(session=session, actor=actor, user_id=to_user_id)
    key = f"user:{actor.id}:transfer:{idempotency_key}"
    source, destination = wallet_address(actor.id, WalletKind.PRIMARY), wallet_address(friend.id, WalletKind.PRIMARY)
    retry = ledger.get_transaction_by_key(session=session, idempotency_key=key) is not None
    if not retry:
        # A first attempt; a retry of a finished transfer is answered by the ledger without a code.
        rate_limits.enforce_rate_limit(rate_limits.MONEY_ACTION_PER_USER, f"user:{actor.id}")
        available = ledger.get_balance(session=session, address=source, currency=money_currency)
        if available < amount_minor:
            raise ledger.InsufficientFunds(
                "There is not enough money in your wallet.", available_minor=available, currency=str(money_currency)
            )
        if amount_minor >= step_up_threshold(money_currency):
            fingerprint = request_hash(
                {"to": str(friend.id), "amount_minor": amount_minor, "currency": str(money_currency)}
            )
            _require_step_up(
                session,
                actor,
                fingerprint=fingerprint,
                amount_minor=amount_minor,
                currency=money_currency,
                code=step_up_code,
                token=step_up_token,
            )
    transaction = ledger.transfer(
        session=session,
        source=source,
        destination=destination,
        amount_minor=amount_minor,
        currency=money_currency,
        idempotency_key=key,
        kind=TRANSFER_KIND,
        description=f"Transfer to {friend.display_name}",
        metadata={
            "from_user_id": str(actor.id),
            "to_user_id": str(friend.id),
            "note": note,
            "line_out": f"Transfer to {friend.display_name}",
            "line_in": f"Transfer from {actor.display_name}",
        },
    )
    if retry:
        return transaction  # the same transfer as the first attempt (else the ledger refused it)
    record_audit(
        session=session,
        action="transfer.sent",
        actor=actor,
        target_type="ledger_transaction",
        target_id=transaction.id,
        data={"to_user_id": str(friend.id), "amount_minor": amount_minor, "currency": str(money_currency)},
    )
    notify(
        session=session,
        recipient_id=friend.id,
        kind="transfer.received",
        actor=actor,
        amount_minor=amount_minor,
        currency=str(money_currency),
        note=note,
        reference=transaction.reference,
    )
    for user_id in (actor.id, friend.id):
        publish_after_commit(session, WALLET_TOPIC, user_id=str(user_id))
    return transaction


def _require_step_up(
    session: Session,
    actor: User,
    *,
    fingerprint: str,
    amount_minor: int,
    currency: Currency,
    code: str | None,
    token: str | None,
) -> None:
    """Check the actor's step-up proof for this transfer, or raise StepUpRequired saying how to give one."""
    code = (code or "").strip()
    if has_two_factor(session=session, user=actor):
        if not code:
            raise StepUpRequired("Enter the code from your authenticator app to confirm this transfer.", method="totp")
        verify_second_factor(session=session, user=actor, code=code)
        return
    if code and token:
        challenge = consume_code(session=session, token=token, purpose=ChallengePurpose.STEP_UP, code=code)
        if challenge.user_id != actor.id or challenge.context.get("request") != fingerprint:
            raise StepUpMismatch()
        return
    # Each emailed code costs a mail: cap them like new-device codes.
    rate_limits.enforce_rate_limit(rate_limits.DEVICE_CODES_PER_ACCOUNT, f"user:{actor.id}")
    issued = issue_challenge(
        session=session,
        user=actor,
        purpose=ChallengePurpose.STEP_UP,
        lifetime=STEP_UP_CODE_LIFETIME,
        with_code=True,
        context={"request": fingerprint},
    )
    queue_mail(
        session=session,
        to_address=actor.email,
        subject=f"{issued.code} confirms your PayTime transfer",
        body_text=(
            f"You are sending {format_money(amount_minor, currency)} from your PayTime wallet.\n\n"
            f"Your code: {issued.code}\n\nIt works once, for 10 minutes. If this wasn't you, "
            "change your password now."
        ),
    )
    raise StepUpRequired(
        f"We emailed a code to {mask_email(actor.email)}. Enter it to confirm this transfer.",
        method="email",
        challenge=issued.token,
        email_hint=mask_email(actor.email),
    )
