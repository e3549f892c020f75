"""Prepaid calls billed by the second, paid from the caller's call-credits wallet.

Design overview
---------------
Rate: each call stores the rate it was placed at, `rate_per_minute_minor`, taken from
`RATE_PER_MINUTE_MINOR` by the call's currency (NGN: `DEFAULT_RATE_PER_MINUTE_MINOR` = 1000, i.e.
10 NGN a minute; USD: 5 cents). There is no setting for it yet. Cost: `cost_for(seconds, rate)` =
ceil(seconds * rate / 60) minor units, in integer arithmetic.

Start: the caller needs credits for at least one minute in `user:{id}:call_credits`. A ledger hold
moves up to `CHUNK_SECONDS` (5 minutes) of credits, or the whole balance if less, to the call's hold
account, so the wallet shows what is left to spend. The hold has no expiry of its own: the call's
durable jobs always resolve it. The call rings; `calls.ring_timeout` (60 s later) marks a call still
ringing `missed` and voids the hold. Declined, cancelled and missed calls cost nothing.

Covered time: the longest call the hold pays for, `covered_seconds(hold, rate)` = floor(hold * 60 /
rate) (the largest s with cost_for(s) <= hold). On answer `started_at` is set and `calls.extend_or_end`
is enqueued for shortly before the covered time runs out. That job extends the hold by another chunk
while the wallet has credits (re-enqueuing itself for the new covered end); when it has none, it
ends the call with `credits_exhausted` at exactly the covered time (waiting for it if it runs early).
Duration is capped at the covered time, so the cost never exceeds the hold and the wallet never goes
negative. A wallet holding a whole number of seconds' worth of credits ends at exactly 0; otherwise
at the remainder, less than one second's cost.

End: duration = whole seconds from answer to end (capped as above), cost = cost_for(duration); the
hold is captured for the cost to `platform:calls` and the rest released in ONE ledger transaction
(`capture_hold`; a zero cost voids the hold instead). Every transition locks the call row and
re-checks its status, so ending twice, or a party ending while the timer job fires, settles once;
ledger idempotency keys are derived from the call id as a second guard.

Parties: only the caller and the callee see a call (anyone else gets NotFound); only the callee
answers or declines; only the caller cancels; either ends. Calls to a phone number (E.164) are
recorded and held like any other, but no telephony provider answers them yet, so they end as missed
or cancelled.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, or_, select

from paytime_app.bus import publish_after_commit
from paytime_app.db import for_update
from paytime_app.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from paytime_app.models.base import utcnow
from paytime_app.models.calls import Call, CallStatus, CallType, EndReason
from paytime_app.models.ledger import LedgerHold, LedgerTransaction
from paytime_app.models.users import User
from paytime_app.money import Currency, format_money, parse_currency
from paytime_app.services import ledger
from paytime_app.services.audit import record_audit
from paytime_app.services.identifiers import request_hash
from paytime_app.services.jobs import enqueue_job, job_handler
from paytime_app.services.paging import page_bounds
from paytime_app.services.users import get_user_by_email
from paytime_app.services.wallets import WalletKind, wallet_address

DEFAULT_RATE_PER_MINUTE_MINOR = 1000  # 10 NGN a minute
RATE_PER_MINUTE_MINOR: dict[Currency, int] = {Currency.NGN: DEFAULT_RATE_PER_MINUTE_MINOR, Currency.USD: 5}
CHUNK_SECONDS = 5 * 60  # credits held at a time: at start and at each extension
RING_TIMEOUT = timedelta(seconds=60)
# The extend job runs this long before the covered time ends, so an extension lands before it is needed.
EXTEND_MARGIN = timedelta(seconds=20)
REVENUE_ADDRESS = "platform:calls"
HOLD_KIND = "call"
RING_TIMEOUT_JOB = "calls.ring_timeout"
EXTEND_OR_END_JOB = "calls.extend_or_end"
TOPIC = "call.updated"

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


class InvalidCallee(ValidationFailed):
    code = "invalid_callee"
    default_message = "That person cannot be called."


class InvalidPhone(ValidationFailed):
    code = "invalid_phone"
    default_message = "Enter the phone number in international format, for example +2348012345678."


class InsufficientCredits(Conflict):
    code = "insufficient_credits"
    default_message = "You need call credits for at least one minute. Buy call credits and try again."


class CallNotRinging(Conflict):
    code = "call_not_ringing"
    default_message = "This call is no longer ringing."


class NotYourCall(PermissionDenied):
    code = "not_your_call"
    default_message = "Only the person being called can do that."


class CallIdempotencyMismatch(Conflict):
    code = "idempotency_mismatch"
    default_message = "This idempotency key was already used for a different call."


class MonthlyTotal(NamedTuple):
    month: str  # 'YYYY-MM'
    calls: int
    seconds: int
    cost_minor: int
    currency: str


# --- pricing ---------------------------------------------------------------------------------------


def cost_for(seconds: int, rate_per_minute_minor: int) -> int:
    """ceil(seconds * rate / 60) minor units, in integers: 61 s at 1000/min costs 1017."""
    if seconds < 0 or rate_per_minute_minor <= 0:
        raise ValueError("seconds must be >= 0 and the rate > 0")
    return -(-seconds * rate_per_minute_minor // 60)


def covered_seconds(hold_minor: int, rate_per_minute_minor: int) -> int:
    """The longest duration whose cost fits in `hold_minor`: floor(hold * 60 / rate)."""
    return hold_minor * 60 // rate_per_minute_minor


def rate_for(currency: Currency | str) -> int:
    """The per-minute rate in minor units for calls paid in `currency`. Raises UnsupportedCurrency."""
    return RATE_PER_MINUTE_MINOR[parse_currency(str(currency))]


# --- transitions -------------------------------------------------------------------------------------


def start_call(
    *,
    session: Session,
    actor: User,
    callee_id: uuid.UUID | None = None,
    callee_phone: str | None = None,
    call_type: CallType | str,
    currency: str = "NGN",
    idempotency_key: str,
) -> Call:
    """Place a call: hold credits for up to CHUNK_SECONDS and ring the callee for RING_TIMEOUT.

    The same key and request return the same call.
    Raises InvalidCallee (unknown, inactive, self, or neither/both of user and phone), InvalidPhone,
    ValidationFailed (bad call type), UnsupportedCurrency, InsufficientCredits (less than one
    minute of credits; nothing is held) and CallIdempotencyMismatch.
    """
    money_currency = parse_currency(currency)
    try:
        kind = CallType(call_type)
    except ValueError:
        raise ValidationFailed("Choose an audio or a video call.", code="invalid_call_type") from None
    callee_phone = _checked_phone(callee_id, callee_phone)
    fingerprint = request_hash(
        {
            "callee_id": str(callee_id) if callee_id else None,
            "callee_phone": callee_phone,
            "call_type": str(kind),
            "currency": str(money_currency),
        }
    )
    existing = _by_key(session, actor.id, idempotency_key)
    if existing is not None:
        if existing.request_hash != fingerprint:
            raise CallIdempotencyMismatch()
        return existing
    if callee_id is not None:
        callee = session.get(User, callee_id)
        if callee is None or not callee.is_active or callee.id == actor.id:
            raise InvalidCallee()
    rate = rate_for(money_currency)
    wallet = wallet_address(actor.id, WalletKind.CALL_CREDITS)
    available = ledger.get_balance(session=session, address=wallet, currency=money_currency)
    if available < cost_for(60, rate):
        raise InsufficientCredits(needed_minor=cost_for(60, rate), available_minor=available)
    call = Call(
        caller_id=actor.id,
        callee_id=callee_id,
        callee_phone=callee_phone,
        call_type=kind,
        currency=str(money_currency),
        rate_per_minute_minor=rate,
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
    )
    try:
        # One savepoint for the row and its hold: a refused hold leaves no call behind.
        with session.begin_nested():
            session.add(call)
            session.flush()
            # The balance read above can be stale; the ledger decides on the locked row.
            hold = ledger.place_hold(
                session=session,
                address=wallet,
                currency=money_currency,
                amount_minor=min(available, cost_for(CHUNK_SECONDS, rate)),
                expires_at=None,
                idempotency_key=f"call:{call.id}:hold",
                kind=HOLD_KIND,
                description=f"Call on hold ({kind} call)",
            )
    except ledger.InsufficientFunds:
        raise InsufficientCredits() from None
    except IntegrityError:
        # A concurrent request with the same key won: answer as it did.
        winner = _by_key(session, actor.id, idempotency_key)
        if winner is None:
            raise
        if winner.request_hash != fingerprint:
            raise CallIdempotencyMismatch() from None
        return winner
    call.hold_id = hold.id
    session.add(call)
    session.flush()
    enqueue_job(
        session=session,
        kind=RING_TIMEOUT_JOB,
        payload={"call_id": str(call.id)},
        run_at=call.created_at + RING_TIMEOUT,
        dedupe_key=f"{RING_TIMEOUT_JOB}:{call.id}",
    )
    _changed(session, call, actor, "call.started")
    return call


def answer_call(*, session: Session, actor: User, call_id: uuid.UUID) -> Call:
    """The callee picks up: the call becomes active and the billing clock starts.

    Raises NotFound (not a party), NotYourCall (the caller), CallNotRinging.
    """
    call = _lock_party_call(session, actor, call_id)
    if call.callee_id != actor.id:
        raise NotYourCall()
    if call.status != CallStatus.RINGING:
        raise CallNotRinging(status=str(call.status))
    call.status = CallStatus.ACTIVE
    call.started_at = utcnow()
    session.add(call)
    session.flush()
    _schedule_extend_or_end(session, call, _hold(session, call))
    _changed(session, call, actor, "call.answered")
    return call


def decline_call(*, session: Session, actor: User, call_id: uuid.UUID) -> Call:
    """The callee refuses a ringing call: nothing is charged, the hold is released.

    Declining a declined call returns it unchanged. Raises NotFound, NotYourCall (the caller), CallNotRinging.
    """
    call = _lock_party_call(session, actor, call_id)
    if call.callee_id != actor.id:
        raise NotYourCall()
    if call.status == CallStatus.DECLINED:
        return call
    if call.status != CallStatus.RINGING:
        raise CallNotRinging(status=str(call.status))
    _close_unanswered(session, call, CallStatus.DECLINED, EndReason.DECLINED)
    _changed(session, call, actor, "call.declined")
    return call


def cancel_call(*, session: Session, actor: User, call_id: uuid.UUID) -> Call:
    """The caller hangs up before an answer: nothing is charged, the hold is released.

    Cancelling a cancelled call returns it unchanged. Raises NotFound, PermissionDenied (the callee
    declines instead), CallNotRinging.
    """
    call = _lock_party_call(session, actor, call_id)
    if call.caller_id != actor.id:
        raise PermissionDenied("Only the caller can cancel; decline the call instead.")
    if call.status == CallStatus.CANCELLED:
        return call
    if call.status != CallStatus.RINGING:
        raise CallNotRinging(status=str(call.status))
    _close_unanswered(session, call, CallStatus.CANCELLED, EndReason.CANCELLED)
    _changed(session, call, actor, "call.cancelled")
    return call


def end_call(*, session: Session, actor: User, call_id: uuid.UUID, now: datetime | None = None) -> Call:
    """Either party hangs up. An answered call is charged cost_for(whole seconds since the answer,
    capped at the covered time) and the rest released in one ledger transaction; a ringing call is
    cancelled (caller) or declined (callee) for nothing. Ending a finished call returns it unchanged.

    Raises NotFound (not a party).
    """
    call = _lock_party_call(session, actor, call_id)
    if call.status == CallStatus.RINGING:
        if actor.id == call.caller_id:
            _close_unanswered(session, call, CallStatus.CANCELLED, EndReason.CANCELLED)
            _changed(session, call, actor, "call.cancelled")
        else:
            _close_unanswered(session, call, CallStatus.DECLINED, EndReason.DECLINED)
            _changed(session, call, actor, "call.declined")
        return call
    if call.status != CallStatus.ACTIVE:
        return call  # already over: whoever ended it first settled it
    reason = EndReason.CALLER_ENDED if actor.id == call.caller_id else EndReason.CALLEE_ENDED
    _settle(session, call, now or utcnow(), reason)
    _changed(session, call, actor, "call.ended")
    return call


def buy_call_credits_from_wallet(
    *, session: Session, actor: User, amount_minor: int, currency: str, idempotency_key: str
) -> LedgerTransaction:
    """Move money from the actor's primary wallet to their call credits, in one ledger transfer.

    Raises InvalidAmount, UnsupportedCurrency, InsufficientFunds (the wallet has less) and
    IdempotencyMismatch (same key, another amount).
    """
    money_currency = parse_currency(currency)
    transaction = ledger.transfer(
        session=session,
        source=wallet_address(actor.id, WalletKind.PRIMARY),
        destination=wallet_address(actor.id, WalletKind.CALL_CREDITS),
        amount_minor=amount_minor,
        currency=money_currency,
        idempotency_key=f"user:{actor.id}:call_credits:{idempotency_key}",
        kind="call_credits_purchase",
        description="Call credits from wallet",
    )
    record_audit(
        session=session,
        action="call_credits.bought",
        actor=actor,
        target_type="ledger_transaction",
        target_id=transaction.id,
        data={"amount_minor": amount_minor, "currency": str(money_currency)},
    )
    publish_after_commit(session, "wallet.updated", user_id=str(actor.id))
    return transaction


# --- reading -----------------------------------------------------------------------------------------


def get_call(*, session: Session, actor: User, call_id: uuid.UUID) -> Call:
    """A call the actor is a party to; anyone else's looks missing. Raises NotFound."""
    call = session.get(Call, call_id)
    if call is None or actor.id not in (call.caller_id, call.callee_id):
        raise NotFound("That call does not exist.")
    return call


def list_calls(
    *,
    session: Session,
    actor: User,
    status: CallStatus | str | None = None,
    call_type: CallType | str | None = None,
    page: int = 1,
    page_size: int = 20,
) -> list[Call]:
    """The actor's calls (made or received), newest first, optionally of one status and type."""
    page, page_size = page_bounds(page, page_size)
    statement = select(Call).where(or_(Call.caller_id == actor.id, Call.callee_id == actor.id))
    if status is not None:
        statement = statement.where(Call.status == CallStatus(status))
    if call_type is not None:
        statement = statement.where(Call.call_type == CallType(call_type))
    return list(
        session.exec(
            statement.order_by(col(Call.created_at).desc(), col(Call.id))
            .offset((page - 1) * page_size)
            .limit(page_size)
        ).all()
    )


def monthly_totals(*, session: Session, actor: User) -> list[MonthlyTotal]:
    """Per month (UTC, by placing time) and currency, the calls the actor placed: count, billed seconds
    and cost, newest month first. Only the caller pays, so received calls are not counted."""
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    # Aggregated here rather than in SQL: month extraction differs between SQLite and PostgreSQL,
    # and one user's call history is small.
    rows = session.exec(
        select(Call.created_at, Call.currency, Call.duration_seconds, Call.cost_minor).where(Call.caller_id == actor.id)
    ).all()
    for created_at, currency, seconds, cost in rows:
        line = totals[created_at.strftime("%Y-%m"), currency]
        line[0] += 1
        line[1] += seconds
        line[2] += cost
    return [
        MonthlyTotal(month, calls, seconds, cost, currency)
        for (month, currency), (calls, seconds, cost) in sorted(totals.items(), key=lambda item: item[0], reverse=True)
    ]


def describe_cost(call: Call) -> str:
    """'₦10.17 for 1:01', for people."""
    minutes, seconds = divmod(call.duration_seconds, 60)
    return f"{format_money(call.cost_minor, call.currency)} for {minutes}:{seconds:02d}"


# --- durable jobs ------------------------------------------------------------------------------------


@job_handler(RING_TIMEOUT_JOB)
def ring_timeout_job(*, session: Session, payload: dict[str, Any]) -> None:
    """Durable job: a call still ringing RING_TIMEOUT after it was placed is missed; its hold is released."""
    call = _lock(session, uuid.UUID(payload["call_id"]))
    if call is None or call.status != CallStatus.RINGING:
        return  # answered, declined or cancelled meanwhile
    if utcnow() < call.created_at + RING_TIMEOUT:
        return  # cannot happen with the job's run_at; never end a call early
    _close_unanswered(session, call, CallStatus.MISSED, EndReason.MISSED)
    _changed(session, call, None, "call.missed")


@job_handler(EXTEND_OR_END_JOB)
def extend_or_end_job(*, session: Session, payload: dict[str, Any]) -> None:
    """Durable job: extend an active call's hold by a chunk if credits allow; else end it at the covered time."""
    call = _lock(session, uuid.UUID(payload["call_id"]))
    if call is None or call.status != CallStatus.ACTIVE:
        return  # ended by a party meanwhile: settled once, by them
    assert call.started_at is not None
    now = utcnow()
    hold = _hold(session, call)
    covered = covered_seconds(hold.amount_minor, call.rate_per_minute_minor)
    currency = Currency(call.currency)
    available = ledger.get_balance(
        session=session, address=wallet_address(call.caller_id, WalletKind.CALL_CREDITS), currency=currency
    )
    more = min(available, cost_for(CHUNK_SECONDS, call.rate_per_minute_minor))
    if more > 0 and covered_seconds(hold.amount_minor + more, call.rate_per_minute_minor) > covered:
        try:
            hold = ledger.extend_hold(
                session=session,
                hold_id=hold.id,
                amount_minor=more,
                # Unique per step: the hold's amount only grows.
                idempotency_key=f"call:{call.id}:extend:{hold.amount_minor}",
            )
        except ledger.InsufficientFunds:
            pass  # spent meanwhile (another call): nothing was written; end at the covered time below
        else:
            _schedule_extend_or_end(session, call, hold)
            _changed(session, call, None, "call.extended")
            return
    covered_end = call.started_at + timedelta(seconds=covered)
    if now < covered_end:
        # Out of credits but time left: come back at exactly the covered end (credits bought by then count).
        enqueue_job(
            session=session,
            kind=EXTEND_OR_END_JOB,
            payload={"call_id": str(call.id)},
            run_at=covered_end,
            dedupe_key=f"{EXTEND_OR_END_JOB}:{call.id}:{covered}:end",
        )
        return
    _settle(session, call, covered_end, EndReason.CREDITS_EXHAUSTED)
    _changed(session, call, None, "call.ended")


# --- helpers -----------------------------------------------------------------------------------------


def _checked_phone(callee_id: uuid.UUID | None, callee_phone: str | None) -> str | None:
    if (callee_id is None) == (callee_phone is None):
        raise InvalidCallee("Call either a user or a phone number.")
    if callee_phone is None:
        return None
    callee_phone = callee_phone.strip()
    if not _E164.fullmatch(callee_phone):
        raise InvalidPhone()
    return callee_phone


def _by_key(session: Session, caller_id: uuid.UUID, idempotency_key: str) -> Call | None:
    return session.exec(
        select(Call).where(Call.caller_id == caller_id, Call.idempotency_key == idempotency_key)
    ).first()


def _lock(session: Session, call_id: uuid.UUID) -> Call | None:
    # populate_existing: a row read before the lock may be stale; decide on the locked version.
    return session.exec(
        for_update(select(Call).where(Call.id == call_id)).execution_options(populate_existing=True)
    ).first()


def _lock_party_call(session: Session, actor: User, call_id: uuid.UUID) -> Call:
    # Lock before re-checking the status: a party ending and the timer job firing at once settle once.
    call = _lock(session, call_id)
    if call is None or actor.id not in (call.caller_id, call.callee_id):
        raise NotFound("That call does not exist.")
    return call


def _hold(session: Session, call: Call) -> LedgerHold:
    assert call.hold_id is not None, "every placed call has a hold"
    hold = ledger.get_hold(session=session, hold_id=call.hold_id)
    assert hold is not None
    return hold


def _schedule_extend_or_end(session: Session, call: Call, hold: LedgerHold) -> None:
    assert call.started_at is not None
    covered = covered_seconds(hold.amount_minor, call.rate_per_minute_minor)
    run_at = max(call.started_at + timedelta(seconds=covered) - EXTEND_MARGIN, call.started_at)
    enqueue_job(
        session=session,
        kind=EXTEND_OR_END_JOB,
        payload={"call_id": str(call.id)},
        run_at=run_at,
        dedupe_key=f"{EXTEND_OR_END_JOB}:{call.id}:{covered}",
    )


def _close_unanswered(session: Session, call: Call, status: CallStatus, reason: EndReason) -> None:
    """Finish a call that was never answered: nothing charged, the whole hold released."""
    if call.hold_id is not None:
        released = ledger.void_hold(
            session=session,
            hold_id=call.hold_id,
            idempotency_key=f"call:{call.id}:settle",
            description="Call not answered",
        )
        call.settlement_transaction_id = released.id
    call.status = status
    call.end_reason = reason
    call.ended_at = utcnow()
    session.add(call)
    session.flush()


def _settle(session: Session, call: Call, now: datetime, reason: EndReason) -> None:
    """Finish an answered call (locked, active): post the cost and release the rest in one transaction."""
    assert call.started_at is not None
    hold = _hold(session, call)
    elapsed = max(int((now - call.started_at).total_seconds()), 0)
    duration = min(elapsed, covered_seconds(hold.amount_minor, call.rate_per_minute_minor))
    cost = cost_for(duration, call.rate_per_minute_minor)
    key = f"call:{call.id}:settle"
    if cost:
        settlement = ledger.capture_hold(
            session=session,
            hold_id=hold.id,
            amount_minor=cost,
            destination=REVENUE_ADDRESS,
            idempotency_key=key,
            description=f"Call, {duration} s",
            metadata={"call_id": str(call.id), "duration_seconds": duration},
        )
    else:
        settlement = ledger.void_hold(session=session, hold_id=hold.id, idempotency_key=key, description="Call, 0 s")
    call.status = CallStatus.ENDED
    call.end_reason = reason
    call.ended_at = call.started_at + timedelta(seconds=duration) if duration < elapsed else now
    call.duration_seconds = duration
    call.cost_minor = cost
    call.settlement_transaction_id = settlement.id
    session.add(call)
    session.flush()


def _changed(session: Session, call: Call, actor: User | None, action: str) -> None:
    """Audit the transition and tell both parties' open tabs once it commits."""
    record_audit(
        session=session,
        action=action,
        actor=actor,
        target_type="call",
        target_id=call.id,
        data={"status": str(call.status), "cost_minor": call.cost_minor, "duration_seconds": call.duration_seconds},
    )
    for user_id in (call.caller_id, call.callee_id):
        if user_id is not None:
            publish_after_commit(session, TOPIC, user_id=str(user_id), call_id=str(call.id), status=str(call.status))


def place_call(
    *,
    session: Session,
    actor: User,
    callee: str,
    call_type: CallType | str,
    currency: str = "NGN",
    idempotency_key: str,
) -> Call:
    """Call someone by their PayTime email, or a phone number in E.164 form (`+` and digits).

    Raises what start_call raises; an email with no active account is InvalidCallee.
    """
    callee = callee.strip()
    if callee.startswith("+"):
        return start_call(
            session=session,
            actor=actor,
            callee_phone=callee,
            call_type=call_type,
            currency=currency,
            idempotency_key=idempotency_key,
        )
    person = get_user_by_email(session=session, email=callee)
    if person is None or not person.is_active:
        raise InvalidCallee("Nobody on PayTime uses that email. Check it, or call a phone number.")
    return start_call(
        session=session,
        actor=actor,
        callee_id=person.id,
        call_type=call_type,
        currency=currency,
        idempotency_key=idempotency_key,
    )
