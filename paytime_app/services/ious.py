"""IOUs between friends: the borrower records what they owe a friend, and settles it by wallet, in
cash (confirmed by the lender), or automatically from their wallet on the due date.

Design overview
---------------
Opening: only the borrower opens an IOU, against a friend (the lender), for a positive amount in a
supported currency, due on a date (default `DEFAULT_DUE_DAYS` from today, UTC; never in the past),
with a method: `cash`, `wallet`, or `auto_wallet` (charged from the borrower's wallet on the due
date). The same idempotency key and request return the same IOU. Opening enqueues the durable
due-date job `ious.due` in the same transaction.

States: pending → paid | overdue | cancelled; overdue → paid | cancelled. The lender may
acknowledge an IOU; the borrower may cancel only before that, the lender at any time while it is
open (forgiving the debt). Only the borrower pays: by wallet (ONE ledger transfer borrower →
lender, key `iou:{id}:settle`), or by claiming a cash payment, which counts only when the lender
confirms it (a dispute clears the claim). Paying an IOU already paid returns it unchanged.

Due date (`ious.due`, safe to run on every worker and to retry): an `auto_wallet` IOU still open
at the start of its due date (UTC) is charged from the borrower's wallet if the balance allows,
else it becomes overdue; any other IOU still pending when its due date is over becomes overdue.
Every transition locks the IOU row and re-checks its status first, so two payments at once, or a
payment racing the due-date job, settle once; the ledger key is the second guard.

Both parties' open tabs refresh on every change (`iou.updated`) and the other party is notified.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, or_, select

from paytime_app.bus import publish_after_commit
from paytime_app.db import for_update
from paytime_app.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from paytime_app.models.base import utcnow
from paytime_app.models.ious import OPEN_STATUSES, Iou, IouMethod, IouStatus
from paytime_app.models.users import User
from paytime_app.money import parse_currency, require_positive
from paytime_app.services import ledger, rate_limits
from paytime_app.services.audit import record_audit
from paytime_app.services.friends import CannotFriendSelf, require_friend
from paytime_app.services.identifiers import human_reference, request_hash
from paytime_app.services.jobs import enqueue_job, job_handler
from paytime_app.services.notifications import notify
from paytime_app.services.paging import page_bounds
from paytime_app.services.transfers import WALLET_TOPIC
from paytime_app.services.wallets import WalletKind, wallet_address

DEFAULT_DUE_DAYS = 7
MAX_DUE_DAYS = 366 * 2
MAX_NOTE = 200
DUE_JOB = "ious.due"
PAYMENT_KIND = "iou_payment"
TOPIC = "iou.updated"


class InvalidDueDate(ValidationFailed):
    code = "invalid_due_date"
    default_message = "Choose a due date from today up to two years ahead."


class InvalidMethod(ValidationFailed):
    code = "invalid_method"
    default_message = "Choose how you will pay: cash, wallet, or automatic wallet debit on the due date."


class InvalidNote(ValidationFailed):
    code = "invalid_note"
    default_message = f"Keep the note under {MAX_NOTE} characters."


class IouNotOpen(Conflict):
    code = "iou_not_open"
    default_message = "This IOU is already settled or cancelled."


class OnlyBorrower(PermissionDenied):
    code = "only_borrower"
    default_message = "Only the person who owes the money can do that."


class OnlyLender(PermissionDenied):
    code = "only_lender"
    default_message = "Only the person who is owed the money can do that."


class AlreadyAcknowledged(Conflict):
    code = "already_acknowledged"
    default_message = "Your friend has acknowledged this IOU; only they can cancel it now."


class NoCashClaim(Conflict):
    code = "no_cash_claim"
    default_message = "There is no cash payment waiting for confirmation."


class IouIdempotencyMismatch(Conflict):
    code = "idempotency_mismatch"
    default_message = "This idempotency key was already used for a different IOU."


@dataclass(frozen=True)
class IouLine:
    """An IOU as one party sees it."""

    iou: Iou
    direction: str  # owe (the viewer borrowed) | owed (the viewer lent)
    counterpart_id: uuid.UUID
    counterpart_name: str


@dataclass(frozen=True)
class IouTotals:
    """Open (pending or overdue) amounts, in minor units."""

    owe_by_currency: dict[str, int]
    owed_by_currency: dict[str, int]
    # (friend name, currency) -> (I owe them, they owe me)
    by_friend: list[tuple[str, str, int, int]]


# --- opening --------------------------------------------------------------------------------------------


def open_iou(
    *,
    session: Session,
    actor: User,
    lender_id: uuid.UUID,
    amount_minor: int,
    currency: str,
    method: IouMethod | str,
    idempotency_key: str,
    due_date: date | None = None,
    note: str = "",
) -> Iou:
    """The actor (borrower) records that they owe a friend `amount_minor`, due on `due_date`.

    Raises InvalidAmount, UnsupportedCurrency, InvalidMethod, InvalidDueDate, InvalidNote,
    CannotFriendSelf, NotFriends, IouIdempotencyMismatch, RateLimited (a retry of an opened IOU is
    never limited).
    """
    money_currency = parse_currency(currency)
    require_positive(amount_minor)
    if amount_minor > ledger.MAX_AMOUNT_MINOR:
        raise ledger.InvalidAmount("That amount is too large.")
    try:
        iou_method = IouMethod(method)
    except ValueError:
        raise InvalidMethod() from None
    today = utcnow().date()
    due = due_date or today + timedelta(days=DEFAULT_DUE_DAYS)
    if not today <= due <= today + timedelta(days=MAX_DUE_DAYS):
        raise InvalidDueDate()
    note = " ".join(note.split())
    if len(note) > MAX_NOTE:
        raise InvalidNote()
    if lender_id == actor.id:
        raise CannotFriendSelf("You can't owe yourself.")
    fingerprint = request_hash(
        {
            "lender_id": str(lender_id),
            "amount_minor": amount_minor,
            "currency": str(money_currency),
            "method": str(iou_method),
            "due_date": due.isoformat(),
            "note": note,
        }
    )
    existing = _by_key(session, actor.id, idempotency_key)
    if existing is not None:
        if existing.request_hash != fingerprint:
            raise IouIdempotencyMismatch()
        return existing
    lender = require_friend(session=session, actor=actor, user_id=lender_id)
    rate_limits.enforce_rate_limit(rate_limits.IOUS_OPENED_PER_USER, f"user:{actor.id}")
    iou = Iou(
        reference=human_reference("IOU", 6),
        borrower_id=actor.id,
        lender_id=lender.id,
        amount_minor=amount_minor,
        currency=str(money_currency),
        method=iou_method,
        due_date=due,
        note=note,
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
    )
    try:
        with session.begin_nested():
            session.add(iou)
    except IntegrityError:
        # A concurrent request with the same key won: answer as it did.
        winner = _by_key(session, actor.id, idempotency_key)
        if winner is None:
            raise
        if winner.request_hash != fingerprint:
            raise IouIdempotencyMismatch() from None
        return winner
    enqueue_job(
        session=session,
        kind=DUE_JOB,
        payload={"iou_id": str(iou.id)},
        run_at=due_job_time(iou),
        dedupe_key=f"{DUE_JOB}:{iou.id}",
    )
    _changed(session, iou, actor, "iou.opened", notify_id=lender.id)
    return iou


def due_job_time(iou: Iou) -> datetime:
    """When the due-date job acts: the start of the due date (UTC) for automatic debits, so the charge
    lands on the due date; the end of the due date for the rest, which are late only after it."""
    day = iou.due_date if iou.method == IouMethod.AUTO_WALLET else iou.due_date + timedelta(days=1)
    return datetime.combine(day, time(0, 0), tzinfo=UTC)


# --- transitions ------------------------------------------------------------------------------------------


def acknowledge_iou(*, session: Session, actor: User, iou_id: uuid.UUID) -> Iou:
    """The lender confirms the IOU is right; from then on only the lender can cancel it.

    Raises NotFound (not a party), OnlyLender, IouNotOpen.
    """
    iou = _lock_party_iou(session, actor, iou_id)
    if iou.lender_id != actor.id:
        raise OnlyLender()
    if iou.status not in OPEN_STATUSES:
        raise IouNotOpen()
    if iou.acknowledged_at is None:
        iou.acknowledged_at = utcnow()
        session.add(iou)
        session.flush()
        _changed(session, iou, actor, "iou.acknowledged", notify_id=iou.borrower_id)
    return iou


def cancel_iou(*, session: Session, actor: User, iou_id: uuid.UUID) -> Iou:
    """Cancel an open IOU: the lender at any time (forgiving it), the borrower only before the lender
    acknowledged it. Cancelling a cancelled IOU returns it unchanged.

    Raises NotFound (not a party), IouNotOpen (paid), AlreadyAcknowledged (the borrower, too late).
    """
    iou = _lock_party_iou(session, actor, iou_id)
    if iou.status == IouStatus.CANCELLED:
        return iou
    if iou.status not in OPEN_STATUSES:
        raise IouNotOpen()
    if actor.id == iou.borrower_id and iou.acknowledged_at is not None:
        raise AlreadyAcknowledged()
    if actor.id == iou.borrower_id and iou.status != IouStatus.PENDING:
        raise AlreadyAcknowledged("This IOU is overdue; only your friend can cancel it now.")
    iou.status, iou.cancelled_at, iou.cancelled_by_id, iou.cash_claimed_at = (
        IouStatus.CANCELLED,
        utcnow(),
        actor.id,
        None,
    )
    session.add(iou)
    session.flush()
    _changed(session, iou, actor, "iou.cancelled", notify_id=_other(iou, actor.id))
    return iou


def pay_iou_from_wallet(*, session: Session, actor: User, iou_id: uuid.UUID) -> Iou:
    """The borrower pays the whole IOU from their wallet to the lender's, in one ledger transaction.
    Paying an IOU already paid returns it unchanged (a double click pays once).

    Raises NotFound (not a party), OnlyBorrower, IouNotOpen (cancelled), InsufficientFunds (nothing moved).
    """
    # Lock before re-checking: two payments at once, or a payment racing the due-date job, pay once.
    iou = _lock_party_iou(session, actor, iou_id)
    if iou.borrower_id != actor.id:
        raise OnlyBorrower()
    if iou.status == IouStatus.PAID:
        return iou
    if iou.status not in OPEN_STATUSES:
        raise IouNotOpen()
    _settle_by_wallet(session, iou, IouMethod.WALLET)
    _changed(session, iou, actor, "iou.paid", notify_id=iou.lender_id)
    return iou


def claim_cash_payment(*, session: Session, actor: User, iou_id: uuid.UUID) -> Iou:
    """The borrower says they paid in cash; it counts once the lender confirms. Claiming twice is a no-op.

    Raises NotFound (not a party), OnlyBorrower, IouNotOpen.
    """
    iou = _lock_party_iou(session, actor, iou_id)
    if iou.borrower_id != actor.id:
        raise OnlyBorrower()
    if iou.status not in OPEN_STATUSES:
        raise IouNotOpen()
    if iou.cash_claimed_at is None:
        iou.cash_claimed_at, iou.cash_disputed_at = utcnow(), None
        session.add(iou)
        session.flush()
        _changed(session, iou, actor, "iou.cash_claimed", notify_id=iou.lender_id)
    return iou


def confirm_cash_payment(*, session: Session, actor: User, iou_id: uuid.UUID) -> Iou:
    """The lender confirms the cash arrived: the IOU is paid (no money moves in PayTime).

    Raises NotFound (not a party), OnlyLender, IouNotOpen, NoCashClaim.
    """
    iou = _lock_party_iou(session, actor, iou_id)
    if iou.lender_id != actor.id:
        raise OnlyLender()
    if iou.status == IouStatus.PAID and iou.paid_via == IouMethod.CASH:
        return iou
    if iou.status not in OPEN_STATUSES:
        raise IouNotOpen()
    if iou.cash_claimed_at is None:
        raise NoCashClaim()
    iou.status, iou.paid_at, iou.paid_via = IouStatus.PAID, utcnow(), IouMethod.CASH
    session.add(iou)
    session.flush()
    _changed(session, iou, actor, "iou.cash_confirmed", notify_id=iou.borrower_id)
    return iou


def dispute_cash_payment(*, session: Session, actor: User, iou_id: uuid.UUID) -> Iou:
    """The lender says the cash did not arrive: the claim is cleared and the IOU stays open.

    Raises NotFound (not a party), OnlyLender, IouNotOpen, NoCashClaim.
    """
    iou = _lock_party_iou(session, actor, iou_id)
    if iou.lender_id != actor.id:
        raise OnlyLender()
    if iou.status not in OPEN_STATUSES:
        raise IouNotOpen()
    if iou.cash_claimed_at is None:
        raise NoCashClaim()
    iou.cash_claimed_at, iou.cash_disputed_at = None, utcnow()
    session.add(iou)
    session.flush()
    _changed(session, iou, actor, "iou.cash_disputed", notify_id=iou.borrower_id)
    return iou


# --- reading ---------------------------------------------------------------------------------------------


def get_iou(*, session: Session, actor: User, iou_id: uuid.UUID) -> IouLine:
    """An IOU the actor is a party to; anyone else's looks missing. Raises NotFound."""
    iou = session.get(Iou, iou_id)
    if iou is None or actor.id not in (iou.borrower_id, iou.lender_id):
        raise NotFound("That IOU does not exist.")
    return _lines(session, actor, [iou])[0]


def list_ious(
    *,
    session: Session,
    actor: User,
    direction: str = "all",
    status: IouStatus | str | None = None,
    page: int = 1,
    page_size: int = 20,
) -> list[IouLine]:
    """The actor's IOUs, newest first: `owe` (they borrowed), `owed` (they lent) or `all`; optionally
    of one status. Raises ValidationFailed for an unknown direction or status."""
    page, page_size = page_bounds(page, page_size)
    if direction == "owe":
        statement = select(Iou).where(Iou.borrower_id == actor.id)
    elif direction == "owed":
        statement = select(Iou).where(Iou.lender_id == actor.id)
    elif direction == "all":
        statement = select(Iou).where(or_(Iou.borrower_id == actor.id, Iou.lender_id == actor.id))
    else:
        raise ValidationFailed("Choose owe, owed or all.", code="invalid_direction")
    if status is not None:
        try:
            statement = statement.where(Iou.status == IouStatus(status))
        except ValueError:
            raise ValidationFailed("Unknown IOU status.", code="invalid_status") from None
    ious = session.exec(
        statement.order_by(col(Iou.created_at).desc(), col(Iou.id)).offset((page - 1) * page_size).limit(page_size)
    ).all()
    return _lines(session, actor, list(ious))


def iou_totals(*, session: Session, actor: User) -> IouTotals:
    """What the actor owes and is owed on open IOUs, per currency and per friend."""
    owe: dict[str, int] = defaultdict(int)
    owed: dict[str, int] = defaultdict(int)
    friends: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    # Summed here: a person's open IOUs are few, and the per-friend names come with them.
    rows = session.exec(
        select(Iou, User)
        .join(User, or_(col(User.id) == Iou.lender_id, col(User.id) == Iou.borrower_id))
        .where(
            or_(Iou.borrower_id == actor.id, Iou.lender_id == actor.id),
            col(Iou.status).in_([str(status) for status in OPEN_STATUSES]),
            User.id != actor.id,
        )
    ).all()
    for iou, other in rows:
        side = 0 if iou.borrower_id == actor.id else 1
        (owe if side == 0 else owed)[iou.currency] += iou.amount_minor
        friends[other.display_name, iou.currency][side] += iou.amount_minor
    return IouTotals(
        owe_by_currency=dict(sorted(owe.items())),
        owed_by_currency=dict(sorted(owed.items())),
        by_friend=[(name, currency, i_owe, owed_me) for (name, currency), (i_owe, owed_me) in sorted(friends.items())],
    )


# --- the due-date job ----------------------------------------------------------------------------------


@job_handler(DUE_JOB)
def iou_due_job(*, session: Session, payload: dict[str, Any]) -> None:
    """Durable job: charge an automatic IOU on its due date (else mark it overdue); mark any other IOU
    still pending after its due date overdue. Re-runs and races with a payment change nothing twice."""
    iou = _lock(session, uuid.UUID(payload["iou_id"]))
    if iou is None or iou.status != IouStatus.PENDING:
        return  # paid, cancelled or already overdue meanwhile
    if utcnow() < due_job_time(iou):
        return  # never act early (the job's run_at makes this unreachable)
    if iou.method == IouMethod.AUTO_WALLET:
        try:
            # A savepoint: a refused charge writes nothing, and the IOU is marked overdue instead.
            with session.begin_nested():
                _settle_by_wallet(session, iou, IouMethod.AUTO_WALLET)
        except ledger.InsufficientFunds:
            pass
        else:
            _changed(session, iou, None, "iou.auto_paid", notify_id=iou.lender_id, also_notify=iou.borrower_id)
            return
    iou.status = IouStatus.OVERDUE
    session.add(iou)
    session.flush()
    _changed(session, iou, None, "iou.overdue", notify_id=iou.borrower_id, also_notify=iou.lender_id)


# --- helpers -------------------------------------------------------------------------------------------


def _by_key(session: Session, borrower_id: uuid.UUID, idempotency_key: str) -> Iou | None:
    return session.exec(
        select(Iou).where(Iou.borrower_id == borrower_id, Iou.idempotency_key == idempotency_key)
    ).first()


def _lock(session: Session, iou_id: uuid.UUID) -> Iou | None:
    # populate_existing: a row read before the lock may be stale; decide on the locked version.
    return session.exec(
        for_update(select(Iou).where(Iou.id == iou_id)).execution_options(populate_existing=True)
    ).first()


def _lock_party_iou(session: Session, actor: User, iou_id: uuid.UUID) -> Iou:
    iou = _lock(session, iou_id)
    if iou is None or actor.id not in (iou.borrower_id, iou.lender_id):
        raise NotFound("That IOU does not exist.")
    return iou


def _other(iou: Iou, user_id: uuid.UUID) -> uuid.UUID:
    return iou.lender_id if user_id == iou.borrower_id else iou.borrower_id


def _settle_by_wallet(session: Session, iou: Iou, via: IouMethod) -> None:
    """Move the IOU's amount borrower → lender in one ledger transaction and mark it paid (row locked)."""
    people = {
        user.id: user for user in session.exec(select(User).where(col(User.id).in_([iou.borrower_id, iou.lender_id])))
    }
    borrower, lender = people[iou.borrower_id], people[iou.lender_id]
    transaction = ledger.transfer(
        session=session,
        source=wallet_address(iou.borrower_id, WalletKind.PRIMARY),
        destination=wallet_address(iou.lender_id, WalletKind.PRIMARY),
        amount_minor=iou.amount_minor,
        currency=parse_currency(iou.currency),
        idempotency_key=f"iou:{iou.id}:settle",
        kind=PAYMENT_KIND,
        description=f"{iou.reference} paid",
        metadata={
            "iou_id": str(iou.id),
            "line_out": f"{iou.reference} to {lender.display_name}",
            "line_in": f"{iou.reference} from {borrower.display_name}",
        },
    )
    iou.status, iou.paid_at, iou.paid_via = IouStatus.PAID, utcnow(), via
    iou.settlement_transaction_id, iou.cash_claimed_at = transaction.id, None
    session.add(iou)
    session.flush()
    for user_id in (iou.borrower_id, iou.lender_id):
        publish_after_commit(session, WALLET_TOPIC, user_id=str(user_id))


def _changed(
    session: Session,
    iou: Iou,
    actor: User | None,
    kind: str,
    *,
    notify_id: uuid.UUID,
    also_notify: uuid.UUID | None = None,
) -> None:
    """Audit the transition, notify the other party (both, for the job's), refresh both parties' tabs."""
    record_audit(
        session=session,
        action=kind,
        actor=actor,
        target_type="iou",
        target_id=iou.id,
        data={"status": str(iou.status), "amount_minor": iou.amount_minor, "currency": iou.currency},
    )
    for recipient_id in filter(None, (notify_id, also_notify)):
        notify(
            session=session,
            recipient_id=recipient_id,
            kind=kind,
            actor=actor,
            iou_id=str(iou.id),
            reference=iou.reference,
            amount_minor=iou.amount_minor,
            currency=iou.currency,
        )
    for user_id in (iou.borrower_id, iou.lender_id):
        publish_after_commit(session, TOPIC, user_id=str(user_id), iou_id=str(iou.id), status=str(iou.status))


def _lines(session: Session, actor: User, ious: list[Iou]) -> list[IouLine]:
    other_ids = {_other(iou, actor.id) for iou in ious}
    names = (
        dict(session.exec(select(User.id, User.display_name).where(col(User.id).in_(other_ids))).all())
        if other_ids
        else {}
    )
    return [
        IouLine(
            iou=iou,
            direction="owe" if iou.borrower_id == actor.id else "owed",
            counterpart_id=_other(iou, actor.id),
            counterpart_name=names.get(_other(iou, actor.id), "Someone"),
        )
        for iou in ious
    ]
