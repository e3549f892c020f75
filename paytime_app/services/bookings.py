"""Bookings: hold seats, pay, issue tickets, cancel and refund, without ever overselling.

Design overview
---------------
Availability lives in counters: `ticket_type.sold/held` and, when the event shares one capacity
across its types, `event.sold/held`. They change only here and only by conditional UPDATEs, e.g.
`UPDATE ticket_type SET held = held + :n WHERE id = :id AND sold + held + :n <= capacity`: the row
lock the UPDATE takes serialises buyers, and the WHERE decides on the row as it is when locked, so
two buyers of the last seat cannot both succeed (no read-then-write). CHECK constraints on both
tables (`sold + held <= capacity`) back it up. Rows are always locked in one order: booking →
event → ticket types (by id) → coupon, so concurrent holds, payments, expiries and cancellations
cannot deadlock.

Hold: `create_booking` reserves the seats (held counters), prices them at the tier in force,
applies a coupon (its `redeemed` counter is a conditional UPDATE too) and schedules the durable job
`bookings.expire_hold` at `expires_at` (setting BOOKING_HOLD_MINUTES, default 15). In a drop most
buyers are refused: one read (the key's booking, the event, its types) refuses them when the
counters already show too few seats, before any lock. Everyone else writes the booking, its items,
job and audit entry first and takes the seats last, so the hot event and type rows stay locked only
for the seat and coupon UPDATEs and the commit. A buyer who finds a type sold out first releases
holds that have expired but not yet been swept, then tries once more. A crash loses nothing: the
job rows are in the database and any worker runs them.

Pay: `pay_booking` (wallet) posts ONE ledger transaction: buyer wallet → `seller:{organizer}:earnings`
(total - fee) and to `platform:fees` (fee = total * PLATFORM_FEE_BPS, after the coupon), moves the
seats from held to sold and issues the tickets, all in one database transaction. A provider payment
(`start_booking_payment`) is a `payment` with purpose booking; when it succeeds, payments credits
the buyer's wallet and calls `_booking_payment_succeeded` in the same transaction, which pays the
booking from that money exactly as above. A payment arriving after the hold was swept is
accepted only if the seats can be taken again. Otherwise, as for a payment arriving after the
customer cancelled or paid another way, a `booking_refund` (destination `provider`) sends it back
through `payments.refund_to_payer` in the same transaction: the money is held in the wallet at once
and the durable job `payments.refund` asks the provider (once, keyed by the refund; retried with
backoff while it is down), then moves it to the provider's clearing account. The customer is told
either way (outcome note and notification), and again when the provider answers.

Tickets: one per attendee, or one group ticket admitting the whole quantity; each with a random
code and an Ed25519-signed QR payload (signing_keys.sign_payload; the key id is in the token).

Cancel: the customer cancels some or all tickets under the event's refund policy (default 100%
more than 7 days before the start, 75% > 3 days, 50% > 1 day, else 0); the organizer may cancel
with any percentage (cancelling an event refunds everything). The refund reverses the seller and
fee shares in proportion, in one ledger transaction keyed by the tickets, after locking the
booking and re-checking each ticket is still valid, so a ticket is refunded once. A booking paid
through a provider gets its refund back through that provider the same way as a late payment.
Cancelled tickets are revoked (status cancelled) and their seats return to sale.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import secrets
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, inspect, or_, text, union_all, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, SQLModel, col, select

from paytime_app.bus import publish_after_commit
from paytime_app.db import ahead_of_transaction, for_update, insert_unless_duplicate, is_postgresql, unit_of_work
from paytime_app.errors import Conflict, DomainError, NotFound, ValidationFailed
from paytime_app.models.audit import AuditLogEntry
from paytime_app.models.base import utcnow
from paytime_app.models.bookings import (
    Booking,
    BookingItem,
    BookingRefund,
    BookingStatus,
    CouponRedemption,
    RedemptionStatus,
    RefundDestination,
    Ticket,
    TicketStatus,
)
from paytime_app.models.events import Coupon, CouponKind, Event, EventStatus, TicketType
from paytime_app.models.jobs import Job
from paytime_app.models.payments import Payment, PaymentPurpose, PaymentRefund, PaymentStatus, RefundStatus
from paytime_app.models.sessions import SessionKind
from paytime_app.models.users import User
from paytime_app.money import Currency, Money, format_money
from paytime_app.services import ledger, payments
from paytime_app.services.audit import record_audit
from paytime_app.services.events import (
    CANCEL_EVENT_JOB,
    SEATS_TOPIC,
    code_matches,
    get_own_event,
    list_ticket_types,
    may_organize,
    price_in_force,
    refund_percent,
    sales_state,
    seats_left,
)
from paytime_app.services.identifiers import human_reference, request_hash
from paytime_app.services.jobs import enqueue_job, job_handler
from paytime_app.services.mail import Attachment, attachment_renderer, queue_mail
from paytime_app.services.notifications import notify
from paytime_app.services.paging import page_bounds
from paytime_app.services.sessions import authenticate_token
from paytime_app.services.signing_keys import get_active_signing_key, sign_payload
from paytime_app.services.ticket_pdf import render_tickets_pdf
from paytime_app.services.wallets import WalletKind, wallet_address
from paytime_app.settings import get_settings

logger = logging.getLogger("paytime.bookings")

EXPIRE_HOLD_JOB = "bookings.expire_hold"
TICKETS_ATTACHMENT = "booking_tickets"
REFUND_SETTLED_JOB = "bookings.refund_settled"
TOPIC = "booking.updated"
FEES_ADDRESS = "platform:fees"
MAX_TYPES_PER_BOOKING = 10
MAX_QUANTITY = 20
SWEEP_BATCH = 200
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_POSTGRESQL = postgresql.dialect()


class SoldOut(Conflict):
    code = "sold_out"
    default_message = "Sorry, there are not enough tickets left."


class SalesClosed(Conflict):
    code = "sales_closed"
    default_message = "Tickets are not on sale right now."


class CustomerLimitExceeded(Conflict):
    code = "customer_limit_exceeded"
    default_message = "That is more tickets than one customer may buy for this event."


class BookingLimitExceeded(ValidationFailed):
    code = "booking_limit_exceeded"
    default_message = "That is more tickets than one booking may hold."


class InvalidCoupon(ValidationFailed):
    code = "invalid_coupon"
    default_message = "That coupon code is not valid for this booking."


class CouponExhausted(Conflict):
    code = "coupon_exhausted"
    default_message = "That coupon has been used up."


class HoldExpired(Conflict):
    code = "hold_expired"
    default_message = "Your hold expired and the seats have been released. Please book again."


class BookingNotPayable(Conflict):
    code = "booking_not_payable"
    default_message = "This booking cannot be paid (it is cancelled, expired or already paid)."


class NotCancellable(Conflict):
    code = "not_cancellable"
    default_message = "These tickets cannot be cancelled."


class BookingIdempotencyMismatch(Conflict):
    code = "idempotency_mismatch"
    default_message = "This idempotency key was already used for a different booking."


@dataclass(frozen=True)
class TypeSales:
    ticket_type: TicketType
    sold: int
    held: int
    left: int
    revenue_minor: int


# --- holding ---------------------------------------------------------------------------------------


def create_booking(
    *,
    session: Session,
    actor: User,
    event_id: uuid.UUID,
    items: list[tuple[uuid.UUID, int]],
    idempotency_key: str,
    coupon_code: str = "",
    attendees: dict[uuid.UUID, list[str]] | None = None,
    group_ticket: bool = False,
    unlock_code: str = "",
    now: datetime | None = None,
) -> Booking:
    """Hold seats for BOOKING_HOLD_MINUTES at the prices in force; the same key and request return the same booking.

    Raises NotFound (event or type), ValidationFailed (quantities), SalesClosed, BookingLimitExceeded,
    CustomerLimitExceeded, SoldOut, InvalidCoupon, CouponExhausted, BookingIdempotencyMismatch.
    A refusal may come after rows were written in the caller's transaction, which the refusal rolls
    back (run it as its own transaction, as in_transaction and call_as_user do): no savepoints, so
    the seat rows stay locked for the fewest round trips.
    """
    now = now or utcnow()
    wanted = _checked_items(items)
    if is_postgresql(session) and _refused_at_a_glance(
        session, actor_id=actor.id, idempotency_key=idempotency_key, event_id=event_id, wanted=wanted, now=now
    ):
        # A drop's losers leave after one lean read, without any lock or ORM object: the UPDATE decides winners.
        raise SoldOut()
    names = {
        type_id: [str(name).strip()[:120] for name in list(people)[:MAX_QUANTITY]]
        for type_id, people in (attendees or {}).items()
    }
    code = coupon_code.strip().upper()[:40]
    fingerprint = request_hash(
        {
            "event_id": str(event_id),
            "items": sorted((str(type_id), quantity) for type_id, quantity in wanted.items()),
            "coupon": code,
            "group": group_ticket,
        }
    )
    look = _first_look(
        session, actor_id=actor.id, idempotency_key=idempotency_key, event_id=event_id, wanted=wanted, now=now
    )
    if look.existing is not None:
        if look.existing.request_hash != fingerprint:
            raise BookingIdempotencyMismatch()
        return look.existing
    event = look.event
    if event is None or event.status == EventStatus.DRAFT:
        raise NotFound("That event does not exist.")
    if look.visibly_sold_out(wanted):
        # A drop's losers leave after one read, without taking any lock; winners are decided by the UPDATE.
        raise SoldOut()
    # Lock the buyer: their own concurrent bookings are counted against the per-customer limit in turn.
    session.exec(for_update(select(User.id).where(User.id == actor.id))).one()
    _check_request(
        session=session, actor=actor, event=event, types=look.types, wanted=wanted, unlock_code=unlock_code, now=now
    )
    coupon = _usable_coupon(session=session, actor=actor, event=event, code=code, now=now) if code else None
    # Priced from the counters as read; checked again once the seat rows are locked.
    priced = {type_id: price_in_force(look.types[type_id], now) for type_id in wanted}
    hold = _new_hold(
        session,
        actor=actor,
        event=event,
        wanted=wanted,
        priced=priced,
        coupon=coupon,
        names=names,
        group_ticket=group_ticket,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        now=now,
    )
    taken = _store_hold(session, hold, wanted=wanted, now=now)
    if taken is None:
        # A concurrent request with the same key wrote its booking first; this one wrote nothing.
        winner = _by_key(session, actor.id, idempotency_key)
        assert winner is not None
        if winner.request_hash != fingerprint:
            raise BookingIdempotencyMismatch()
        return winner
    booking = hold.booking
    repriced = {
        type_id: price_in_force(look.types[type_id], now, taken=taken[type_id] - quantity)
        for type_id, quantity in wanted.items()
    }
    if repriced != priced:
        # A "first N" tier filled up between the read and the lock: the locked count sets the price.
        _reprice(session, hold, event=event, wanted=wanted, repriced=repriced, coupon=coupon)
    if coupon is not None:
        _take_redemption(session, coupon.id)
    _changed(session, booking)
    return booking


@dataclass(frozen=True)
class _NewHold:
    """The rows a hold writes, built before anything is locked."""

    booking: Booking
    items: dict[uuid.UUID, BookingItem]
    redemption: CouponRedemption | None
    job: Job
    audit: AuditLogEntry

    def rows(self) -> list[Any]:
        """Everything but the booking, in the order written (each refers only to rows before it)."""
        return [*self.items.values(), *([self.redemption] if self.redemption else []), self.job, self.audit]


def _new_hold(
    session: Session,
    *,
    actor: User,
    event: Event,
    wanted: dict[uuid.UUID, int],
    priced: dict[uuid.UUID, tuple[int, str]],
    coupon: Coupon | None,
    names: dict[uuid.UUID, list[str]],
    group_ticket: bool,
    idempotency_key: str,
    fingerprint: str,
    now: datetime,
) -> _NewHold:
    booking = Booking(
        reference=human_reference("BK", 8),
        event_id=event.id,
        user_id=actor.id,
        currency=event.currency,
        subtotal_minor=0,
        total_minor=0,
        group_ticket=group_ticket,
        coupon_id=coupon.id if coupon else None,
        expires_at=now + timedelta(minutes=get_settings().booking_hold_minutes),
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
    )
    _set_amounts(booking, event, wanted, priced, coupon)
    assert booking.expires_at is not None
    audit = record_audit(
        session=session,
        action="booking.held",
        actor=actor,
        target_type="booking",
        target_id=booking.id,
        data={"items": {str(k): v for k, v in wanted.items()}, "total_minor": booking.total_minor},
    )
    session.expunge(audit)  # written with the hold's other rows, by _store_hold
    return _NewHold(
        booking=booking,
        items={
            type_id: BookingItem(
                booking_id=booking.id,
                ticket_type_id=type_id,
                quantity=quantity,
                unit_price_minor=priced[type_id][0],
                tier_label=priced[type_id][1],
                attendee_names=names.get(type_id, []),
            )
            for type_id, quantity in wanted.items()
        },
        redemption=CouponRedemption(
            coupon_id=coupon.id, booking_id=booking.id, user_id=actor.id, discount_minor=booking.discount_minor
        )
        if coupon is not None
        else None,
        # This module's own job kind (registered below); a new booking's id is fresh, so no dedupe key.
        job=Job(kind=EXPIRE_HOLD_JOB, payload={"booking_id": str(booking.id)}, run_at=booking.expires_at),
        audit=audit,
    )


def _reprice(
    session: Session,
    hold: _NewHold,
    *,
    event: Event,
    wanted: dict[uuid.UUID, int],
    repriced: dict[uuid.UUID, tuple[int, str]],
    coupon: Coupon | None,
) -> None:
    for row in hold.rows():
        if row is not hold.job and inspect(row).transient:  # written by the hold's statement
            make_transient_to_detached(row)
            session.add(row)
    _set_amounts(hold.booking, event, wanted, repriced, coupon)
    for type_id, item in hold.items.items():
        item.unit_price_minor, item.tier_label = repriced[type_id]
    if hold.redemption is not None:
        hold.redemption.discount_minor = hold.booking.discount_minor
    hold.audit.data = {**hold.audit.data, "total_minor": hold.booking.total_minor}
    session.flush()


def _store_hold(
    session: Session, hold: _NewHold, *, wanted: dict[uuid.UUID, int], now: datetime
) -> dict[uuid.UUID, int] | None:
    """Write the hold and take its seats; each type's seats taken (sold + held) once ours are
    counted, or None if a concurrent request with the same key wrote its booking first (then
    nothing of this one is written). Raises SoldOut."""
    booking = hold.booking
    if is_postgresql(session):
        taken = _write_hold(session, hold, wanted=wanted, now=now)
        if taken is not None:
            make_transient_to_detached(booking)
            session.add(booking)
        return taken
    # One INSERT that steps aside for a concurrent request with the same key (it waits for that
    # transaction, then returns its booking): no savepoint to recover from a unique violation.
    if not insert_unless_duplicate(session, booking, unique_on=["user_id", "idempotency_key"]):
        return None
    make_transient_to_detached(booking)
    session.add(booking)
    session.add_all(hold.rows())
    session.flush()
    # Seats last: from here to the commit the event and type rows are locked.
    return _take_seats_freeing_expired(session, booking.event_id, wanted, now)


@dataclass(frozen=True)
class _FirstLook:
    existing: Booking | None
    event: Event | None
    types: dict[uuid.UUID, TicketType]  # the wanted types that belong to the event
    expired_holds: bool

    def visibly_sold_out(self, wanted: dict[uuid.UUID, int]) -> bool:
        """Whether the counters as read already show too few seats for visible types, with no expired
        hold to free. Only a refusal is decided from this read (as if the buyer had come a moment
        earlier); a seat is only ever taken by the conditional UPDATE in `_take_seats`.
        """
        event = self.event
        if event is None or event.status != EventStatus.PUBLISHED:
            return False
        if len(self.types) != len(wanted) or any(t.unlock_code for t in self.types.values()):
            return False  # the full checks say what is wrong, without revealing hidden types
        if all(seats_left(t, event) >= wanted[t.id] for t in self.types.values()) and (
            event.capacity is None or event.capacity - event.sold - event.held >= sum(wanted.values())
        ):
            return False
        return not self.expired_holds


# PostgreSQL, sent straight through the driver (prepared by psycopg after a few uses): in a drop,
# nine buyers in ten are refused, so the refusal costs one statement and no ORM work. True only
# when the key made no booking yet and `_FirstLook.visibly_sold_out` would say the same: the event
# is published, every wanted type is one of its visible types, the counters leave too few seats,
# and no hold of the event has expired unswept (a sweep could free seats).
_AT_A_GLANCE = """
SELECT e.status = 'published'
   AND NOT EXISTS (SELECT FROM booking WHERE user_id = %(actor_id)s AND idempotency_key = %(key)s)
   AND NOT EXISTS (
       SELECT FROM booking
        WHERE event_id = e.id AND status = 'held' AND expires_at <= %(now)s)
   AND (SELECT count(*) FROM ticket_type
         WHERE id = ANY(%(type_ids)s::uuid[]) AND event_id = e.id AND coalesce(unlock_code, '') = '') = %(types)s
   AND (e.capacity - e.sold - e.held < %(total)s
        OR EXISTS (
            SELECT FROM ticket_type t JOIN unnest(%(type_ids)s::uuid[], %(quantities)s::int[]) AS w(id, quantity)
                   ON t.id = w.id
             WHERE t.capacity - t.sold - t.held < w.quantity))
  FROM event e
 WHERE e.id = %(event_id)s
"""


def _refused_at_a_glance(
    session: Session,
    *,
    actor_id: uuid.UUID,
    idempotency_key: str,
    event_id: uuid.UUID,
    wanted: dict[uuid.UUID, int],
    now: datetime,
) -> bool:
    """Whether one lean read already shows the request would be refused as sold out (PostgreSQL)."""
    with ahead_of_transaction(session) as driver:
        row = driver.execute(
            _AT_A_GLANCE,
            {
                "actor_id": actor_id,
                "key": idempotency_key,
                "event_id": event_id,
                "now": now,
                # Array literals: psycopg dumps a string far more cheaply than a list of UUIDs.
                "type_ids": "{" + ",".join(map(str, wanted)) + "}",
                "quantities": "{" + ",".join(map(str, wanted.values())) + "}",
                "types": len(wanted),
                "total": sum(wanted.values()),
            },
        ).fetchone()
    return bool(row and row[0])


# Built once: building this statement cost about as much Python time as running it, and every
# refused buyer of a drop runs it. Its parameters take their columns' types.
_FIRST_LOOK = (
    select(  # type: ignore[call-overload]
        Event,
        TicketType,
        select(Booking.id)
        .where(Booking.user_id == bindparam("actor_id"), Booking.idempotency_key == bindparam("idempotency_key"))
        .scalar_subquery()
        .label("existing_id"),
        select(Booking.id)
        .where(
            Booking.event_id == bindparam("event_id"),
            Booking.status == BookingStatus.HELD,
            col(Booking.expires_at) <= bindparam("now"),
        )
        .exists()
        .label("expired_holds"),
    )
    .outerjoin(
        TicketType,
        and_(col(TicketType.event_id) == Event.id, col(TicketType.id).in_(bindparam("type_ids", expanding=True))),
    )
    .where(Event.id == bindparam("event_id"))
)


def _first_look(
    session: Session,
    *,
    actor_id: uuid.UUID,
    idempotency_key: str,
    event_id: uuid.UUID,
    wanted: dict[uuid.UUID, int],
    now: datetime,
) -> _FirstLook:
    """One round trip: the booking this key already made, the event, the wanted types of it, and
    whether any of its holds is past its expiry but not swept yet."""
    rows = session.exec(
        _FIRST_LOOK,
        params={
            "actor_id": actor_id,
            "idempotency_key": idempotency_key,
            "event_id": event_id,
            "now": now,
            "type_ids": list(wanted),
        },
    ).all()
    if not rows:
        return _FirstLook(_by_key(session, actor_id, idempotency_key), None, {}, expired_holds=False)
    existing_id = rows[0].existing_id
    return _FirstLook(
        existing=session.get(Booking, existing_id) if existing_id is not None else None,
        event=rows[0].Event,
        types={row.TicketType.id: row.TicketType for row in rows if row.TicketType is not None},
        expired_holds=rows[0].expired_holds,
    )


def _check_request(
    *,
    session: Session,
    actor: User,
    event: Event,
    types: dict[uuid.UUID, TicketType],
    wanted: dict[uuid.UUID, int],
    unlock_code: str,
    now: datetime,
) -> None:
    """Each wanted type exists (hidden ones with their code), is on sale and within the buyer's limits."""
    already = _customer_quantities(session, actor.id, list(wanted), now)
    for type_id, quantity in wanted.items():
        ticket_type = types.get(type_id)
        if ticket_type is None or (ticket_type.unlock_code and not code_matches(ticket_type.unlock_code, unlock_code)):
            raise NotFound("That ticket type does not exist.", code="unknown_ticket_type")
        on_sale, note = sales_state(ticket_type, event, now)
        if not on_sale:
            raise SalesClosed(note or None, ticket_type=ticket_type.name)
        if quantity > ticket_type.per_booking_max:
            raise BookingLimitExceeded(
                f"At most {ticket_type.per_booking_max} {ticket_type.name} tickets per booking.",
                maximum=ticket_type.per_booking_max,
            )
        mine = already.get(type_id, 0)
        if mine + quantity > ticket_type.per_customer_max:
            raise CustomerLimitExceeded(
                f"You can have at most {ticket_type.per_customer_max} {ticket_type.name} tickets"
                + (f"; you already have {mine}." if mine else "."),
                maximum=ticket_type.per_customer_max,
                already=mine,
            )


def _take_seats_freeing_expired(
    session: Session, event_id: uuid.UUID, wanted: dict[uuid.UUID, int], now: datetime
) -> dict[uuid.UUID, int]:
    try:
        return _take_seats(session, event_id, wanted, from_held=False)
    except SoldOut:
        # Seats may be tied up in holds that expired but were not swept yet: free them, try once more.
        if not expire_holds(session=session, event_id=event_id, now=now):
            raise
        return _take_seats(session, event_id, wanted, from_held=False)


def _write_hold(
    session: Session, hold: _NewHold, *, wanted: dict[uuid.UUID, int], now: datetime
) -> dict[uuid.UUID, int] | None:
    """PostgreSQL: take the seats and write the booking and the hold's other rows in one statement,
    the rows only if every seat was taken (what `_store_hold` returns; raises SoldOut).

    The rows' foreign-key checks lock the event and type rows FOR KEY SHARE. Written before the
    seats, by every buyer at once, those locks turned the hot rows' lockers into multixacts that
    every later read of the rows had to look up (the drop's refusals spent most of their database
    time there); written after the seat UPDATEs in the same statement, they fall on rows this
    transaction already holds, and one round trip does it all.
    """
    booking = hold.booking
    event_id = booking.event_id
    total = sum(wanted.values())
    for attempt in range(2):
        event_taken, taken, written = _hold_in_one_statement(session, hold, wanted)
        if written:
            return taken
        if len(taken) == len(wanted):
            # The seats were free, but this key's booking was written meanwhile: give them back.
            _release_seats(session, event_id, wanted, held=True)
            return None
        if event_taken:
            _release_seats(session, event_id, {t: wanted[t] for t in taken}, held=True, event_total=total)
        # Seats may be tied up in holds that expired but were not swept yet: free them, try once more.
        if attempt or not expire_holds(session=session, event_id=event_id, now=now):
            break
    if _by_key(session, booking.user_id, booking.idempotency_key) is not None:
        return None  # a concurrent request with this key took the last seats: it answers for this one
    missing = sorted(set(wanted) - set(taken))
    raise SoldOut(ticket_type_id=str(missing[0])) if event_taken else SoldOut()


def _hold_in_one_statement(
    session: Session, hold: _NewHold, wanted: dict[uuid.UUID, int]
) -> tuple[bool, dict[uuid.UUID, int], bool]:
    """Run the hold's statement: (event row taken, seats taken per type, booking and rows written)."""
    rows = hold.rows()
    statement = _hold_statement(len(wanted), tuple(type(row).__table__.name for row in rows))
    params = _seat_parameters(hold.booking.event_id, wanted)
    for prefix, row in [("b", hold.booking), *((f"r{index}", row) for index, row in enumerate(rows))]:
        for name, value in _column_values(row).items():
            params[f"{prefix}_{name}"] = value
    event_taken, taken, written = False, {}, False
    for type_id, count in session.connection().execute(statement, params).all():
        if type_id is not None:
            taken[type_id] = count
        elif count == -1:
            written = True
        else:
            event_taken = count == 1
    return event_taken, taken, written


def _column_values(row: Any) -> dict[str, Any]:
    mapper = inspect(row).mapper
    return {attribute.columns[0].name: getattr(row, attribute.key) for attribute in mapper.column_attrs}


@functools.cache
def _hold_statement(type_count: int, row_tables: tuple[str, ...]) -> Any:
    """The seat UPDATEs of `_seat_updates`, then the booking (unless its key is taken) and the rows
    of `row_tables`, each only if what comes before it was written. Built once per shape."""
    parts, last = _seat_updates(type_count, "held")
    tables = SQLModel.metadata.tables
    binds = []

    def insert(name: str, table_name: str, prefix: str, condition: str, tail: str = "") -> None:
        table = tables[table_name]
        columns = list(table.columns)
        values = ", ".join(
            f"CAST(:{prefix}_{column.name} AS {column.type.compile(dialect=_POSTGRESQL)})" for column in columns
        )
        names = ", ".join(column.name for column in columns)
        parts.append(
            f"{name} AS (INSERT INTO {table_name} ({names}) SELECT {values}"  # noqa: S608  names made here
            f" WHERE EXISTS (SELECT FROM {condition}){tail})"
        )
        binds.extend(bindparam(f"{prefix}_{column.name}", type_=column.type) for column in columns)

    insert("b", "booking", "b", last, " ON CONFLICT (user_id, idempotency_key) DO NOTHING RETURNING id")
    for index, table_name in enumerate(row_tables):
        insert(f"r{index}", table_name, f"r{index}", "b")
    outcome = " UNION ALL ".join(
        ["SELECT NULL::uuid, count(*)::int FROM e"]
        + [f"SELECT * FROM t{index}" for index in range(type_count)]  # noqa: S608  names made here
        + ["SELECT NULL::uuid, -1 FROM b"]
    )
    return text(f"WITH {', '.join(parts)} {outcome}").bindparams(*binds)


def set_attendee_names(
    *, session: Session, actor: User, booking_id: uuid.UUID, names: dict[uuid.UUID, list[str]]
) -> Booking:
    """Name the people the tickets are for, before paying (one name per ticket of each type).

    Raises NotFound, BookingNotPayable (no longer held).
    """
    booking = _lock_own_booking(session, actor, booking_id)
    if booking.status != BookingStatus.HELD:
        raise BookingNotPayable("Names can be changed only before paying.")
    for item in _items(session, booking):
        if item.ticket_type_id in names:
            item.attendee_names = [str(name).strip()[:120] for name in names[item.ticket_type_id][: item.quantity]]
            session.add(item)
    session.flush()
    return booking


# --- paying ----------------------------------------------------------------------------------------


def pay_booking(*, session: Session, actor: User, booking_id: uuid.UUID, now: datetime | None = None) -> Booking:
    """Pay a held booking from the wallet in the event's currency and issue the tickets; paying a
    confirmed booking returns it unchanged.

    Raises NotFound, BookingNotPayable, HoldExpired (swept and the seats are gone; nothing charged),
    InsufficientFunds (nothing changes).
    """
    booking = _lock_own_booking(session, actor, booking_id)
    if booking.status == BookingStatus.CONFIRMED:
        return booking
    if booking.status == BookingStatus.CANCELLED:
        raise BookingNotPayable(status=str(booking.status))
    with session.begin_nested():
        _confirm(session, booking, paid_with="wallet" if booking.total_minor else "free", now=now or utcnow())
    return booking


def start_booking_payment(
    *, token: str | None, kind: SessionKind, booking_id: uuid.UUID, provider: str, return_url: str
) -> Payment:
    """Pay a held booking through a provider: record the payment, link it, open its checkout.

    Raises SessionExpired, NotFound, BookingNotPayable, HoldExpired and what create_payment and
    open_checkout raise.
    """
    with unit_of_work() as session:
        actor, _ = authenticate_token(session=session, token=token, kind=kind)
        booking = _lock_own_booking(session, actor, booking_id)
        if booking.status != BookingStatus.HELD or booking.total_minor == 0:
            raise BookingNotPayable(status=str(booking.status))
        if booking.expires_at is not None and booking.expires_at <= utcnow():
            raise HoldExpired()
        # The same provider twice reuses the open checkout; after a failed attempt, a new payment.
        key = f"booking:{booking.id}:{provider}"
        previous = session.get(Payment, booking.payment_id) if booking.payment_id else None
        if previous is not None and previous.status in (PaymentStatus.FAILED, PaymentStatus.CANCELLED):
            key = f"{key}:after:{previous.id}"
        payment = payments.create_booking_payment(
            session=session,
            actor=actor,
            amount_minor=booking.total_minor,
            currency=booking.currency,
            provider=provider,
            idempotency_key=key,
        )
        booking.payment_id = payment.id
        session.add(booking)
    return payments.open_checkout(payment_id=payment.id, return_url=return_url)


@payments.on_payment_succeeded(PaymentPurpose.BOOKING)
def _booking_payment_succeeded(*, session: Session, payment: Payment) -> None:
    """The provider's money is in the buyer's wallet: pay the booking from it, or send it back."""
    booking = session.exec(
        for_update(select(Booking).where(Booking.payment_id == payment.id)).execution_options(populate_existing=True)
    ).first()
    if booking is None:
        return
    if booking.status == BookingStatus.CONFIRMED:
        _refund_unused_payment(session, booking, payment, "already_paid")
        return
    now = utcnow()
    late = booking.status == BookingStatus.EXPIRED or (booking.expires_at is not None and booking.expires_at <= now)
    try:
        with session.begin_nested():
            if booking.status == BookingStatus.CANCELLED:
                raise BookingNotPayable()
            _confirm(session, booking, paid_with="provider", now=now)
    except DomainError as refusal:
        _refund_unused_payment(session, booking, payment, refusal.code)
        return
    if late:
        booking.outcome_note = (
            "Your payment arrived after your hold expired; the seats were still free, so your booking is confirmed."
        )
        session.add(booking)
        _tell_buyer(session, booking, "booking.late_payment_accepted", payment.amount_minor)


# Why a provider payment could not pay its booking (the refusal's code), in the buyer's words.
_UNUSED_PAYMENT = {
    "already_paid": ("booking.duplicate_payment_refunding", "arrived after this booking was already paid"),
    BookingNotPayable.code: ("booking.cancelled_payment_refunding", "arrived after you cancelled this booking"),
    HoldExpired.code: ("booking.late_payment_refunding", "arrived after your hold expired and the seats were gone"),
}
_UNUSED_PREFIX = "unused_payment:"
_REFUND_KEY_PREFIX = "booking-refund:"


def _refund_unused_payment(session: Session, booking: Booking, payment: Payment, code: str) -> None:
    """Send a provider payment its booking could not use back through the provider, once, and say so."""
    kind, _ = _UNUSED_PAYMENT.get(code, _UNUSED_PAYMENT[HoldExpired.code])
    refund = BookingRefund(
        booking_id=booking.id,
        percent=100,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        destination=RefundDestination.PROVIDER,
        payment_id=payment.id,
        reason=f"{_UNUSED_PREFIX}{code}",
    )
    session.add(refund)
    session.flush()
    _send_back(session, refund)
    booking.outcome_note = _unused_payment_note(refund)
    booking.updated_at = utcnow()
    session.add(booking)
    record_audit(
        session=session,
        action="booking.late_payment_refunded",
        actor=None,
        target_type="booking",
        target_id=booking.id,
        data={"payment_id": str(payment.id), "code": code, "destination": str(refund.destination)},
    )
    if refund.destination == RefundDestination.WALLET:
        kind = "booking.refund_failed"
    _tell_buyer(session, booking, kind, refund.amount_minor)
    _changed(session, booking)


def _send_back(session: Session, refund: BookingRefund) -> None:
    """Ask for `refund` through its payment's provider (the durable job `payments.refund` calls it,
    retrying while the provider is down). A provider we can no longer refund through (its keys were
    removed, say) leaves the money in the buyer's wallet, where the payment credited it."""
    assert refund.payment_id is not None
    try:
        with session.begin_nested():
            payments.refund_to_payer(
                session=session,
                payment_id=refund.payment_id,
                amount_minor=refund.amount_minor,
                reason=refund.reason or "booking_cancelled",
                idempotency_key=f"{_REFUND_KEY_PREFIX}{refund.id}",
            )
    except DomainError as refusal:
        logger.warning("booking refund kept in the wallet", extra={"refund_id": str(refund.id), "code": refusal.code})
        refund.destination = RefundDestination.WALLET
        session.add(refund)


def _unused_payment_note(refund: BookingRefund, status: RefundStatus = RefundStatus.PENDING) -> str:
    code = refund.reason.removeprefix(_UNUSED_PREFIX)
    _, why = _UNUSED_PAYMENT.get(code, _UNUSED_PAYMENT[HoldExpired.code])
    if refund.destination == RefundDestination.WALLET:
        where = "It could not go back to your card or bank, so it is in your PayTime wallet."
    elif status == RefundStatus.SUCCEEDED:
        where = "It was refunded to your card or bank."
    else:
        where = "It is being refunded to your card or bank."
    return f"Your payment of {format_money(refund.amount_minor, refund.currency)} {why}. {where}"


@payments.on_refund_settled(PaymentPurpose.BOOKING)
def _booking_refund_settled(*, session: Session, refund: PaymentRefund) -> None:
    """The provider answered a booking's refund: the booking side follows in its own job.

    Not here, because the payment is locked now, and a cancellation locks the booking before the
    payment: taking the booking after the payment here could deadlock with it.
    """
    if refund.idempotency_key.startswith(_REFUND_KEY_PREFIX):  # else an admin's refund from the dashboard
        enqueue_job(
            session=session,
            kind=REFUND_SETTLED_JOB,
            payload={"refund_id": str(refund.id)},
            dedupe_key=f"{REFUND_SETTLED_JOB}:{refund.id}",
        )


@job_handler(REFUND_SETTLED_JOB)
def booking_refund_settled_job(*, session: Session, payload: dict[str, Any]) -> None:
    """Tell the buyer how their refund ended; a refused one stayed in their wallet."""
    refund = session.get(PaymentRefund, uuid.UUID(payload["refund_id"]))
    assert refund is not None
    booking_refund = session.get(BookingRefund, uuid.UUID(refund.idempotency_key.removeprefix(_REFUND_KEY_PREFIX)))
    assert booking_refund is not None
    booking = _lock_booking(session, booking_refund.booking_id)
    assert booking is not None
    failed = refund.status == RefundStatus.FAILED
    if failed:
        booking_refund.destination = RefundDestination.WALLET
        session.add(booking_refund)
    if booking_refund.reason.startswith(_UNUSED_PREFIX):
        booking.outcome_note = _unused_payment_note(booking_refund, RefundStatus(refund.status))
        booking.updated_at = utcnow()
        session.add(booking)
    _tell_buyer(session, booking, "booking.refund_failed" if failed else "booking.refund_sent", refund.amount_minor)
    _changed(session, booking)


def _tell_buyer(session: Session, booking: Booking, kind: str, amount_minor: int) -> None:
    notify(
        session=session,
        recipient_id=booking.user_id,
        kind=kind,
        amount_minor=amount_minor,
        currency=booking.currency,
        reference=booking.reference,
        booking_id=str(booking.id),
    )


def _confirm(session: Session, booking: Booking, *, paid_with: str, now: datetime) -> None:
    """Settle a locked, unconfirmed booking: seats to sold, money to the seller and the platform, tickets."""
    items = _items(session, booking)
    counts = {item.ticket_type_id: item.quantity for item in items}
    if booking.status == BookingStatus.HELD:
        # Not swept yet (even if past its expiry): its seats are still counted as held, so they are ours.
        _move_held_to_sold(session, booking.event_id, counts)
    elif booking.status == BookingStatus.EXPIRED:
        # Swept: take the seats again only if they are still free, decided by the conditional UPDATE.
        try:
            _take_seats(session, booking.event_id, counts, from_held=True)
        except SoldOut:
            raise HoldExpired() from None
        if booking.coupon_id is not None:
            _reclaim_coupon(session, booking)
    else:
        raise BookingNotPayable(status=str(booking.status))
    event = session.get(Event, booking.event_id)
    assert event is not None
    if booking.total_minor:
        buyer = wallet_address(booking.user_id, WalletKind.PRIMARY)
        postings = [
            ledger.Posting(
                buyer, _earnings_address(event), booking.total_minor - booking.fee_minor, Currency(booking.currency)
            )
        ]
        if booking.fee_minor:
            postings.append(ledger.Posting(buyer, FEES_ADDRESS, booking.fee_minor, Currency(booking.currency)))
        postings = [posting for posting in postings if posting.amount_minor > 0]
        transaction = ledger.post_transaction(
            session=session,
            postings=postings,
            kind="booking",
            idempotency_key=f"booking:{booking.id}:pay",
            description=f"Tickets: {event.title} ({booking.reference})"[:200],
            metadata={"booking_id": str(booking.id), "fee_minor": booking.fee_minor},
        )
        booking.ledger_transaction_id = transaction.id
    booking.status = BookingStatus.CONFIRMED
    booking.confirmed_at = booking.updated_at = now
    booking.paid_with = paid_with
    session.add(booking)
    session.flush()
    tickets = _issue_tickets(session, booking, event, items)
    record_audit(
        session=session,
        action="booking.confirmed",
        actor=None,
        target_type="booking",
        target_id=booking.id,
        data={"paid_with": paid_with, "total_minor": booking.total_minor, "tickets": len(tickets)},
    )
    buyer_user = session.get(User, booking.user_id)
    assert buyer_user is not None
    queue_mail(
        session=session,
        to_address=buyer_user.email,
        subject=f"Your tickets for {event.title} ({booking.reference})",
        body_text=(
            f"Hello {buyer_user.display_name},\n\nYour booking {booking.reference} is confirmed: "
            f"{len(tickets)} ticket(s) for {event.title}, {event.starts_at:%d %b %Y %H:%M} UTC at {event.venue}.\n"
            f"Total paid: {format_money(booking.total_minor, booking.currency)}.\n\n"
            f"Your tickets are attached as a PDF; they and their QR codes are also under My tickets in PayTime.\n"
            + "".join(f"- Ticket {ticket.code}\n" for ticket in tickets)
        ),
        attachments=(
            Attachment(
                kind=TICKETS_ATTACHMENT,
                ref=str(booking.id),
                filename=f"tickets-{booking.reference}.pdf",
                content_type="application/pdf",
            ),
        ),
    )
    _changed(session, booking)


@attachment_renderer(TICKETS_ATTACHMENT)
def _render_booking_tickets(*, session: Session, ref: str) -> bytes:
    """The confirmation mail's PDF: every ticket of the booking, as they are now."""
    rows = session.exec(
        select(Ticket, Event, TicketType)
        .join(Event, col(Ticket.event_id) == Event.id)
        .join(TicketType, col(Ticket.ticket_type_id) == TicketType.id)
        .where(Ticket.booking_id == uuid.UUID(ref))
        .order_by(col(Ticket.created_at), col(Ticket.code))
    ).all()
    if not rows:
        raise NotFound("That booking has no tickets.")
    return render_tickets_pdf([(ticket, event, ticket_type) for ticket, event, ticket_type in rows])


def _issue_tickets(session: Session, booking: Booking, event: Event, items: list[BookingItem]) -> list[Ticket]:
    kid = get_active_signing_key(session=session).kid
    types = {t.id: t for t in list_ticket_types(session=session, event_id=event.id)}
    holder = session.get(User, booking.user_id)
    assert holder is not None
    tickets = []
    for item in items:
        ticket_type = types[item.ticket_type_id]
        if booking.group_ticket:
            shapes = [(item.attendee_names[0] if item.attendee_names else holder.display_name, item.quantity)]
        else:
            shapes = [
                (
                    item.attendee_names[index]
                    if index < len(item.attendee_names) and item.attendee_names[index]
                    else holder.display_name,
                    1,
                )
                for index in range(item.quantity)
            ]
        for attendee, admits in shapes:
            code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(16))
            entries = ticket_type.entries_allowed * admits
            token = sign_payload(
                session=session,
                payload={"v": 1, "c": code, "e": str(event.id), "t": str(ticket_type.id), "a": admits, "n": entries},
            )
            ticket = Ticket(
                code=code,
                booking_id=booking.id,
                booking_item_id=item.id,
                event_id=event.id,
                ticket_type_id=ticket_type.id,
                holder_id=booking.user_id,
                attendee_name=attendee[:120],
                admits=admits,
                unit_price_minor=item.unit_price_minor,
                entries_allowed=entries,
                qr_payload=token,
                kid=kid,
            )
            session.add(ticket)
            tickets.append(ticket)
    session.flush()
    return tickets


# --- expiring --------------------------------------------------------------------------------------


def expire_hold(*, session: Session, booking_id: uuid.UUID, now: datetime | None = None) -> bool:
    """Release a held booking past its expiry: seats and coupon back. Returns whether it expired now."""
    now = now or utcnow()
    booking = _lock_booking(session, booking_id)
    if booking is None or booking.status != BookingStatus.HELD:
        return False
    if booking.expires_at is None or booking.expires_at > now:
        return False
    _release_hold(session, booking, BookingStatus.EXPIRED, now)
    return True


def expire_holds(*, session: Session, event_id: uuid.UUID | None = None, now: datetime | None = None) -> int:
    """Release every hold past its expiry (of one event, if given); returns how many."""
    now = now or utcnow()
    due = select(Booking.id).where(Booking.status == BookingStatus.HELD, col(Booking.expires_at) <= now)
    if event_id is not None:
        due = due.where(Booking.event_id == event_id)
    due = due.order_by(col(Booking.expires_at)).limit(SWEEP_BATCH)
    if is_postgresql(session):
        # A hold being paid or expired by someone else right now is locked: skip it, it is resolving.
        due = for_update(due, skip_locked=True)
    return sum(expire_hold(session=session, booking_id=booking_id, now=now) for booking_id in session.exec(due).all())


@job_handler(EXPIRE_HOLD_JOB)
def expire_hold_job(*, session: Session, payload: dict[str, Any]) -> None:
    """Durable job at each hold's expiry: give its seats back."""
    expire_hold(session=session, booking_id=uuid.UUID(payload["booking_id"]))


def _release_hold(session: Session, booking: Booking, status: BookingStatus, now: datetime) -> None:
    counts = {item.ticket_type_id: item.quantity for item in _items(session, booking)}
    _release_seats(session, booking.event_id, counts, held=True)
    _release_coupon(session, booking)
    booking.status = status
    booking.updated_at = now
    if status == BookingStatus.CANCELLED:
        booking.cancelled_at = now
    session.add(booking)
    session.flush()
    _changed(session, booking)


# --- cancelling ------------------------------------------------------------------------------------


def cancel_booking(
    *,
    session: Session,
    actor: User,
    booking_id: uuid.UUID,
    ticket_ids: list[uuid.UUID] | None = None,
    refund_percent_override: int | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> Booking:
    """Cancel a held booking (seats back), or some/all tickets of a confirmed one with a refund.

    The customer gets the event's policy percentage; the organizer (or an admin) may cancel any
    booking of their event and choose the percentage (default 100). Raises NotFound,
    NotCancellable, ValidationFailed, InsufficientFunds (the seller's earnings were paid out).
    """
    now = now or utcnow()
    booking = _lock_booking(session, booking_id)
    if booking is None:
        raise NotFound("That booking does not exist.")
    event = session.get(Event, booking.event_id)
    assert event is not None
    is_owner = booking.user_id == actor.id
    is_organizer = may_organize(actor, event)
    if not (is_owner or is_organizer):
        raise NotFound("That booking does not exist.")
    if refund_percent_override is not None and not is_organizer:
        raise NotFound("That booking does not exist.")
    if booking.status == BookingStatus.HELD:
        _release_hold(session, booking, BookingStatus.CANCELLED, now)
        record_audit(
            session=session, action="booking.cancelled", actor=actor, target_type="booking", target_id=booking.id
        )
        return booking
    if booking.status != BookingStatus.CONFIRMED:
        raise NotCancellable(status=str(booking.status))
    if is_organizer and not is_owner:
        percent = 100 if refund_percent_override is None else refund_percent_override
    elif refund_percent_override is not None:
        percent = refund_percent_override
    else:
        if event.starts_at <= now:
            raise NotCancellable("The event has started; tickets can no longer be cancelled.")
        percent = refund_percent(event, now)
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise ValidationFailed("Refund percentages are 0 to 100.", code="invalid_percent")
    chosen, valid = _tickets_to_cancel(session, booking, ticket_ids)
    _refund(session=session, booking=booking, event=event, chosen=chosen, valid=valid, percent=percent, reason=reason)
    counts: dict[uuid.UUID, int] = defaultdict(int)
    for ticket in chosen:
        ticket.status = TicketStatus.CANCELLED
        ticket.cancelled_at = now
        session.add(ticket)
        counts[ticket.ticket_type_id] += ticket.admits
    _release_seats(session, booking.event_id, dict(counts), held=False)
    if len(chosen) == len(valid):
        booking.status = BookingStatus.CANCELLED
        booking.cancelled_at = now
    booking.updated_at = now
    session.add(booking)
    session.flush()
    record_audit(
        session=session,
        action="booking.cancelled" if booking.status == BookingStatus.CANCELLED else "booking.partially_cancelled",
        actor=actor,
        target_type="booking",
        target_id=booking.id,
        data={"tickets": [ticket.code for ticket in chosen], "percent": percent, "reason": reason[:200]},
    )
    _changed(session, booking)
    return booking


def _tickets_to_cancel(
    session: Session, booking: Booking, ticket_ids: list[uuid.UUID] | None
) -> tuple[list[Ticket], list[Ticket]]:
    """The tickets to cancel (all valid ones if none named) and every still-valid ticket of the booking."""
    tickets = list(
        session.exec(
            select(Ticket).where(Ticket.booking_id == booking.id).order_by(col(Ticket.created_at), col(Ticket.code))
        ).all()
    )
    valid = [ticket for ticket in tickets if ticket.status == TicketStatus.VALID]
    if ticket_ids is None:
        chosen = valid
    else:
        wanted = set(ticket_ids)
        chosen = [ticket for ticket in tickets if ticket.id in wanted]
        if len(chosen) != len(wanted):
            raise NotFound("That ticket is not in this booking.", code="unknown_ticket")
        if any(ticket.status != TicketStatus.VALID for ticket in chosen):
            raise NotCancellable("One of these tickets is already cancelled.")
    if not chosen:
        raise NotCancellable("There is nothing left to cancel.")
    return chosen, valid


def _refund(
    *,
    session: Session,
    booking: Booking,
    event: Event,
    chosen: list[Ticket],
    valid: list[Ticket],
    percent: int,
    reason: str,
) -> BookingRefund:
    """Give back `percent` of what the chosen tickets cost, from the seller's and the fee's shares in proportion."""
    if len(chosen) == len(valid):
        # The last tickets carry what is left of the total, so a booking never refunds more than it paid.
        cancelled_before = booking.subtotal_minor - sum(t.unit_price_minor * t.admits for t in valid)
        value = booking.total_minor - _share(cancelled_before, booking)
    else:
        value = _share(sum(t.unit_price_minor * t.admits for t in chosen), booking)
    amount = value * percent // 100
    amount = min(amount, booking.total_minor - booking.refunded_minor)
    fee_part = amount * booking.fee_minor // booking.total_minor if booking.total_minor else 0
    refund = BookingRefund(
        booking_id=booking.id,
        ticket_ids=sorted(str(t.id) for t in chosen),
        percent=percent,
        amount_minor=amount,
        fee_part_minor=fee_part,
        currency=booking.currency,
        destination=RefundDestination.PROVIDER if booking.paid_with == "provider" else RefundDestination.WALLET,
        payment_id=booking.payment_id if booking.paid_with == "provider" else None,
        reason=reason.strip()[:200],
    )
    if amount:
        currency = Currency(booking.currency)
        buyer = wallet_address(booking.user_id, WalletKind.PRIMARY)
        postings = [
            ledger.Posting(_earnings_address(event), buyer, amount - fee_part, currency),
            ledger.Posting(FEES_ADDRESS, buyer, fee_part, currency),
        ]
        transaction = ledger.post_transaction(
            session=session,
            postings=[posting for posting in postings if posting.amount_minor > 0],
            kind="booking_refund",
            idempotency_key=f"booking:{booking.id}:refund:{request_hash({'tickets': refund.ticket_ids})[:32]}",
            description=f"Refund: {event.title} ({booking.reference})"[:200],
            metadata={"booking_id": str(booking.id), "percent": percent},
        )
        refund.ledger_transaction_id = transaction.id
        booking.refunded_minor += amount
    session.add(refund)
    if amount and refund.destination == RefundDestination.PROVIDER:
        # The shares came back to the wallet the payment credited; from there, back through the provider.
        session.flush()
        _send_back(session, refund)
    return refund


def _share(subtotal_part: int, booking: Booking) -> int:
    """What `subtotal_part` of the subtotal cost after the coupon (the discount spread in proportion)."""
    if booking.subtotal_minor == 0:
        return 0
    return subtotal_part * booking.total_minor // booking.subtotal_minor


@job_handler(CANCEL_EVENT_JOB)
def cancel_event_bookings_job(*, session: Session, payload: dict[str, Any]) -> None:
    """Durable job after an event is cancelled: release every hold and refund every booking in full."""
    event = session.get(Event, uuid.UUID(payload["event_id"]))
    if event is None:
        return
    organizer = session.get(User, event.organizer_id)
    assert organizer is not None
    open_bookings = session.exec(
        select(Booking.id).where(
            Booking.event_id == event.id, col(Booking.status).in_([BookingStatus.HELD, BookingStatus.CONFIRMED])
        )
    ).all()
    for booking_id in open_bookings:
        cancel_booking(
            session=session,
            actor=organizer,
            booking_id=booking_id,
            refund_percent_override=100,
            reason=payload.get("reason") or "event_cancelled",
        )


# --- reading ---------------------------------------------------------------------------------------


def get_booking(*, session: Session, actor: User, booking_id: uuid.UUID) -> Booking:
    """A booking of the actor's, or of an event they organize. Raises NotFound."""
    booking = session.get(Booking, booking_id)
    if booking is None:
        raise NotFound("That booking does not exist.")
    if booking.user_id != actor.id:
        event = session.get(Event, booking.event_id)
        if event is None or not may_organize(actor, event):
            raise NotFound("That booking does not exist.")
    return booking


def booking_items(*, session: Session, booking: Booking) -> list[BookingItem]:
    return _items(session, booking)


def list_own_bookings(
    *, session: Session, actor: User, page: int = 1, page_size: int = 20
) -> list[tuple[Booking, Event]]:
    """The actor's bookings with their events, newest first."""
    page, page_size = page_bounds(page, page_size)
    rows = session.exec(
        select(Booking, Event)
        .join(Event, col(Booking.event_id) == Event.id)
        .where(Booking.user_id == actor.id)
        .order_by(col(Booking.created_at).desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return [(booking, event) for booking, event in rows]


def list_own_tickets(*, session: Session, actor: User) -> list[tuple[Ticket, Event, TicketType]]:
    """The actor's tickets (valid and cancelled) with their events and types, next events first."""
    rows = session.exec(
        select(Ticket, Event, TicketType)
        .join(Event, col(Ticket.event_id) == Event.id)
        .join(TicketType, col(Ticket.ticket_type_id) == TicketType.id)
        .where(Ticket.holder_id == actor.id)
        .order_by(col(Event.starts_at), col(Ticket.created_at), col(Ticket.code))
    ).all()
    return [(ticket, event, ticket_type) for ticket, event, ticket_type in rows]


def get_ticket(*, session: Session, actor: User, ticket_id: uuid.UUID) -> tuple[Ticket, Event, TicketType]:
    """A ticket the actor holds, or of an event they organize. Raises NotFound."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("That ticket does not exist.")
    event = session.get(Event, ticket.event_id)
    ticket_type = session.get(TicketType, ticket.ticket_type_id)
    assert event is not None
    assert ticket_type is not None
    if ticket.holder_id != actor.id and not may_organize(actor, event):
        raise NotFound("That ticket does not exist.")
    return ticket, event, ticket_type


def list_booking_tickets(
    *, session: Session, actor: User, booking_id: uuid.UUID
) -> list[tuple[Ticket, Event, TicketType]]:
    """Every ticket of a booking the actor may see. Raises NotFound."""
    booking = get_booking(session=session, actor=actor, booking_id=booking_id)
    return [
        get_ticket(session=session, actor=actor, ticket_id=ticket.id)
        for ticket in session.exec(
            select(Ticket).where(Ticket.booking_id == booking.id).order_by(col(Ticket.created_at), col(Ticket.code))
        ).all()
    ]


def event_sales(*, session: Session, actor: User, event_id: uuid.UUID) -> list[TypeSales]:
    """Sold / held / left and revenue per ticket type, for the organizer. Raises NotFound."""
    event = get_own_event(session=session, actor=actor, event_id=event_id)
    revenue = dict(
        session.exec(
            select(Ticket.ticket_type_id, func.sum(Ticket.unit_price_minor * Ticket.admits))
            .where(Ticket.event_id == event.id, Ticket.status == TicketStatus.VALID)
            .group_by(col(Ticket.ticket_type_id))
        ).all()
    )
    return [
        TypeSales(
            ticket_type=ticket_type,
            sold=ticket_type.sold,
            held=ticket_type.held,
            left=seats_left(ticket_type, event),
            revenue_minor=int(revenue.get(ticket_type.id) or 0),
        )
        for ticket_type in list_ticket_types(session=session, event_id=event.id)
    ]


@dataclass(frozen=True)
class DaySales:
    day: str  # YYYY-MM-DD in UTC
    bookings: int
    revenue_minor: int


def sales_by_day(*, session: Session, actor: User, event_id: uuid.UUID) -> list[DaySales]:
    """Confirmed bookings and their takings per day (UTC), oldest first. Raises NotFound."""
    event = get_own_event(session=session, actor=actor, event_id=event_id)
    rows = session.exec(
        select(Booking.confirmed_at, Booking.total_minor, Booking.refunded_minor).where(
            Booking.event_id == event.id, col(Booking.confirmed_at).is_not(None)
        )
    ).all()
    days: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for confirmed_at, total, refunded in rows:
        day = days[confirmed_at.strftime("%Y-%m-%d")]
        day[0] += 1
        day[1] += total - refunded
    return [DaySales(day=day, bookings=count, revenue_minor=revenue) for day, (count, revenue) in sorted(days.items())]


def list_event_bookings(
    *, session: Session, actor: User, event_id: uuid.UUID, query: str = "", page: int = 1, page_size: int = 50
) -> tuple[list[tuple[Booking, User]], int]:
    """An event's bookings with their buyers, newest first, searchable by reference, name or email.

    Raises NotFound (not the organizer's event).
    """
    event = get_own_event(session=session, actor=actor, event_id=event_id)
    page, page_size = page_bounds(page, page_size, largest_size=1000)
    statement = select(Booking, User).join(User, col(Booking.user_id) == User.id).where(Booking.event_id == event.id)
    text = query.strip().lower()[:100]
    if text:
        pattern = f"%{text}%"
        statement = statement.where(
            or_(
                func.lower(Booking.reference).like(pattern),
                func.lower(User.email).like(pattern),
                func.lower(User.display_name).like(pattern),
            )
        )
    total = session.exec(select(func.count()).select_from(statement.subquery())).one()
    rows = session.exec(
        statement.order_by(col(Booking.created_at).desc()).offset((page - 1) * page_size).limit(page_size)
    ).all()
    return [(booking, user) for booking, user in rows], int(total)


def export_event_bookings_csv(*, session: Session, actor: User, event_id: uuid.UUID) -> str:
    """The event's bookings as CSV; cells a spreadsheet would run as formulas are neutralised.

    Raises NotFound.
    """
    rows, _total = list_event_bookings(session=session, actor=actor, event_id=event_id, page_size=1000)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["reference", "created_at", "status", "buyer", "email", "currency", "total_minor", "refunded_minor"]
    )
    for booking, user in rows:
        writer.writerow(
            [
                safe_csv_cell(value)
                for value in (
                    booking.reference,
                    booking.created_at.isoformat(),
                    str(booking.status),
                    user.display_name,
                    user.email,
                    booking.currency,
                    str(booking.total_minor),
                    str(booking.refunded_minor),
                )
            ]
        )
    return buffer.getvalue()


def safe_csv_cell(value: str) -> str:
    """Prefix a quote to text a spreadsheet would treat as a formula (=, +, -, @, tab, CR)."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


# --- counters ----------------------------------------------------------------------------------------


def _take_seats(
    session: Session, event_id: uuid.UUID, counts: dict[uuid.UUID, int], *, from_held: bool
) -> dict[uuid.UUID, int]:
    """Reserve seats by conditional UPDATEs (event first, then types by id), all or none; SoldOut if
    any has no room. Returns each type's seats taken (sold + held) once ours are counted.

    `from_held=False` adds to `held` (a new hold); True adds to `sold` (a late payment re-taking its seats).
    """
    column = "sold" if from_held else "held"
    total = sum(counts.values())
    if is_postgresql(session):
        event_taken, taken = _take_seats_in_one_statement(session, event_id, counts, column)
    else:
        event_taken, taken = _take_seats_one_by_one(session, event_id, counts, column)
    if len(taken) == len(counts):
        return taken
    if event_taken:
        # Give back what this call took (its rows are locked by us), so the caller may sweep and retry.
        _release_seats(session, event_id, {t: counts[t] for t in taken}, held=not from_held, event_total=total)
    missing = sorted(set(counts) - set(taken))
    raise SoldOut(ticket_type_id=str(missing[0])) if event_taken else SoldOut()


def _take_seats_in_one_statement(
    session: Session, event_id: uuid.UUID, counts: dict[uuid.UUID, int], column: str
) -> tuple[bool, dict[uuid.UUID, int]]:
    """PostgreSQL: every conditional UPDATE in one statement, so one round trip. A hot drop queues on
    these rows, and each round trip made while holding their locks waits for the client process
    (its other threads, its GIL) as well as for the network; here the only one left is the commit.
    Each UPDATE runs only if the one before it changed its row (the EXISTS), which also keeps the
    lock order: event, then types by id."""
    parts, _last = _seat_updates(len(counts), column)
    outcome = " UNION ALL ".join(
        ["SELECT NULL::uuid, count(*)::int FROM e"] + [f"SELECT * FROM t{index}" for index in range(len(counts))]  # noqa: S608  names made here
    )
    params = _seat_parameters(event_id, counts)
    rows = session.connection().execute(text(f"WITH {', '.join(parts)} {outcome}"), params).all()
    event_taken = any(type_id is None and taken == 1 for type_id, taken in rows)
    return event_taken, {type_id: taken for type_id, taken in rows if type_id is not None}


def _seat_updates(type_count: int, column: str) -> tuple[list[str], str]:
    """The conditional seat UPDATEs as WITH parts (`e`, then `t0`, `t1`… for the types by id), each
    run only if the one before it changed its row; and the name of the last one."""
    parts = [
        f"e AS (UPDATE event SET {column} = {column} + :total WHERE id = :event_id"  # noqa: S608  column is sold|held
        " AND (capacity IS NULL OR sold + held + :total <= capacity) RETURNING 1)"
    ]
    previous = "e"
    for index in range(type_count):
        parts.append(
            f"t{index} AS (UPDATE ticket_type SET {column} = {column} + :q{index} WHERE id = :t{index}"  # noqa: S608
            f" AND sold + held + :q{index} <= capacity AND EXISTS (SELECT FROM {previous}) RETURNING id, sold + held)"
        )
        previous = f"t{index}"
    return parts, previous


def _seat_parameters(event_id: uuid.UUID, counts: dict[uuid.UUID, int]) -> dict[str, Any]:
    params: dict[str, Any] = {"event_id": event_id, "total": sum(counts.values())}
    for index, type_id in enumerate(sorted(counts)):
        params[f"t{index}"], params[f"q{index}"] = type_id, counts[type_id]
    return params


def _take_seats_one_by_one(
    session: Session, event_id: uuid.UUID, counts: dict[uuid.UUID, int], column: str
) -> tuple[bool, dict[uuid.UUID, int]]:
    """SQLite (writers serialised): the same conditional UPDATEs, one statement each."""
    total = sum(counts.values())
    event_row = session.exec(  # type: ignore[call-overload]
        update(Event)
        .where(
            col(Event.id) == event_id,
            or_(col(Event.capacity).is_(None), col(Event.sold) + col(Event.held) + total <= col(Event.capacity)),
        )
        .values({column: getattr(Event, column) + total})
        .execution_options(synchronize_session=False)
    )
    if event_row.rowcount != 1:
        return False, {}
    taken: dict[uuid.UUID, int] = {}
    for type_id in sorted(counts):
        quantity = counts[type_id]
        row = session.exec(  # type: ignore[call-overload]
            update(TicketType)
            .where(
                col(TicketType.id) == type_id,
                col(TicketType.sold) + col(TicketType.held) + quantity <= col(TicketType.capacity),
            )
            .values({column: getattr(TicketType, column) + quantity})
            .returning(col(TicketType.sold) + col(TicketType.held))
            .execution_options(synchronize_session=False)
        ).first()
        if row is None:
            break
        taken[type_id] = row[0]
    return True, taken


def _move_held_to_sold(session: Session, event_id: uuid.UUID, counts: dict[uuid.UUID, int]) -> None:
    total = sum(counts.values())
    session.exec(  # type: ignore[call-overload]
        update(Event)
        .where(col(Event.id) == event_id)
        .values(held=col(Event.held) - total, sold=col(Event.sold) + total)
        .execution_options(synchronize_session=False)
    )
    for type_id in sorted(counts):
        session.exec(  # type: ignore[call-overload]
            update(TicketType)
            .where(col(TicketType.id) == type_id)
            .values(held=col(TicketType.held) - counts[type_id], sold=col(TicketType.sold) + counts[type_id])
            .execution_options(synchronize_session=False)
        )


def _release_seats(
    session: Session, event_id: uuid.UUID, counts: dict[uuid.UUID, int], *, held: bool, event_total: int | None = None
) -> None:
    column = "held" if held else "sold"
    total = sum(counts.values()) if event_total is None else event_total
    session.exec(  # type: ignore[call-overload]
        update(Event)
        .where(col(Event.id) == event_id)
        .values({column: getattr(Event, column) - total})
        .execution_options(synchronize_session=False)
    )
    for type_id in sorted(counts):
        session.exec(  # type: ignore[call-overload]
            update(TicketType)
            .where(col(TicketType.id) == type_id)
            .values({column: getattr(TicketType, column) - counts[type_id]})
            .execution_options(synchronize_session=False)
        )


# --- coupons ---------------------------------------------------------------------------------------


def _usable_coupon(*, session: Session, actor: User, event: Event, code: str, now: datetime) -> Coupon:
    """The event's active coupon with this code, if the buyer may still use it; else InvalidCoupon."""
    coupon = session.exec(select(Coupon).where(Coupon.event_id == event.id, Coupon.code == code)).first()
    if coupon is None or not coupon.is_active or (coupon.expires_at is not None and coupon.expires_at <= now):
        raise InvalidCoupon()
    used = session.exec(
        select(func.count())
        .select_from(CouponRedemption)
        .where(
            CouponRedemption.coupon_id == coupon.id,
            CouponRedemption.user_id == actor.id,
            CouponRedemption.status == RedemptionStatus.ACTIVE,
        )
    ).one()
    if used >= coupon.per_user_limit:
        raise InvalidCoupon("You have already used this coupon.", code="coupon_already_used")
    return coupon


def _set_amounts(
    booking: Booking,
    event: Event,
    wanted: dict[uuid.UUID, int],
    priced: dict[uuid.UUID, tuple[int, str]],
    coupon: Coupon | None,
) -> None:
    """Subtotal, coupon discount (InvalidCoupon if it does not apply), total and platform fee."""
    booking.subtotal_minor = sum(priced[type_id][0] * quantity for type_id, quantity in wanted.items())
    booking.discount_minor = 0
    if coupon is not None:
        scope = {uuid.UUID(type_id) for type_id in coupon.ticket_type_ids}
        scoped = sum(priced[t][0] * q for t, q in wanted.items() if not scope or t in scope)
        if not scoped:
            raise InvalidCoupon("That coupon does not apply to these tickets.")
        if booking.subtotal_minor < coupon.min_order_minor:
            raise InvalidCoupon(
                f"That coupon needs an order of at least {format_money(coupon.min_order_minor, event.currency)}."
            )
        if coupon.kind == CouponKind.PERCENT:
            booking.discount_minor = Money(scoped, Currency(event.currency)).percent(coupon.value).amount_minor
        else:
            booking.discount_minor = min(coupon.value, scoped)
    booking.total_minor = booking.subtotal_minor - booking.discount_minor
    booking.fee_minor = (
        Money(booking.total_minor, Currency(booking.currency)).percent(get_settings().platform_fee_bps).amount_minor
    )


def _take_redemption(session: Session, coupon_id: uuid.UUID) -> None:
    result = session.exec(  # type: ignore[call-overload]
        update(Coupon)
        .where(
            col(Coupon.id) == coupon_id,
            or_(col(Coupon.max_redemptions).is_(None), col(Coupon.redeemed) < col(Coupon.max_redemptions)),
        )
        .values(redeemed=col(Coupon.redeemed) + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise CouponExhausted()


def _release_coupon(session: Session, booking: Booking) -> None:
    redemption = session.exec(
        select(CouponRedemption).where(
            CouponRedemption.booking_id == booking.id, CouponRedemption.status == RedemptionStatus.ACTIVE
        )
    ).first()
    if redemption is None:
        return
    redemption.status = RedemptionStatus.RELEASED
    session.add(redemption)
    session.exec(  # type: ignore[call-overload]
        update(Coupon)
        .where(col(Coupon.id) == redemption.coupon_id)
        .values(redeemed=col(Coupon.redeemed) - 1)
        .execution_options(synchronize_session=False)
    )


def _reclaim_coupon(session: Session, booking: Booking) -> None:
    redemption = session.exec(select(CouponRedemption).where(CouponRedemption.booking_id == booking.id)).first()
    if redemption is None or redemption.status == RedemptionStatus.ACTIVE:
        return
    try:
        _take_redemption(session, redemption.coupon_id)
    except CouponExhausted:
        raise HoldExpired("Your hold expired and the coupon has been used up meanwhile.") from None
    redemption.status = RedemptionStatus.ACTIVE
    session.add(redemption)


# --- helpers -----------------------------------------------------------------------------------------


def _checked_items(items: list[tuple[uuid.UUID, int]]) -> dict[uuid.UUID, int]:
    wanted: dict[uuid.UUID, int] = defaultdict(int)
    for type_id, quantity in items:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise ValidationFailed("Choose at least one ticket.", code="invalid_quantity")
        wanted[type_id] += quantity
    if not wanted:
        raise ValidationFailed("Choose at least one ticket.", code="invalid_quantity")
    if len(wanted) > MAX_TYPES_PER_BOOKING:
        raise ValidationFailed("Too many ticket types in one booking.", code="invalid_quantity")
    if any(quantity > MAX_QUANTITY for quantity in wanted.values()):
        raise BookingLimitExceeded(f"At most {MAX_QUANTITY} tickets of a type per booking.", maximum=MAX_QUANTITY)
    return dict(wanted)


def _customer_quantities(
    session: Session, user_id: uuid.UUID, type_ids: list[uuid.UUID], now: datetime
) -> dict[uuid.UUID, int]:
    """Tickets of each type the customer holds (unexpired) or owns (valid), in one query."""
    rows = session.exec(  # type: ignore[call-overload]
        _CUSTOMER_QUANTITIES, params={"user_id": user_id, "type_ids": type_ids, "now": now}
    ).all()
    return {type_id: int(quantity) for type_id, quantity in rows}


def _customer_quantities_statement() -> Any:
    held = (
        select(col(BookingItem.ticket_type_id).label("type_id"), col(BookingItem.quantity).label("quantity"))
        .join(Booking, col(BookingItem.booking_id) == Booking.id)
        .where(
            Booking.user_id == bindparam("user_id"),
            col(BookingItem.ticket_type_id).in_(bindparam("type_ids", expanding=True)),
            Booking.status == BookingStatus.HELD,
            col(Booking.expires_at) > bindparam("now"),
        )
    )
    owned = select(col(Ticket.ticket_type_id), col(Ticket.admits)).where(
        Ticket.holder_id == bindparam("user_id"),
        col(Ticket.ticket_type_id).in_(bindparam("type_ids", expanding=True)),
        Ticket.status == TicketStatus.VALID,
    )
    mine = union_all(held, owned).subquery()
    return select(mine.c.type_id, func.sum(mine.c.quantity)).group_by(mine.c.type_id)


# Built once, as _FIRST_LOOK: every buyer who gets past the first look runs it.
_CUSTOMER_QUANTITIES = _customer_quantities_statement()


def _by_key(session: Session, user_id: uuid.UUID, idempotency_key: str) -> Booking | None:
    return session.exec(
        select(Booking).where(Booking.user_id == user_id, Booking.idempotency_key == idempotency_key)
    ).first()


def _items(session: Session, booking: Booking) -> list[BookingItem]:
    return list(
        session.exec(
            select(BookingItem).where(BookingItem.booking_id == booking.id).order_by(col(BookingItem.ticket_type_id))
        ).all()
    )


def _reload(session: Session, model: Any, row_id: uuid.UUID) -> Any:
    return session.exec(select(model).where(model.id == row_id).execution_options(populate_existing=True)).one()


def _lock_booking(session: Session, booking_id: uuid.UUID) -> Booking | None:
    # populate_existing: decide on the locked row, never on a version read before the lock.
    return session.exec(
        for_update(select(Booking).where(Booking.id == booking_id)).execution_options(populate_existing=True)
    ).first()


def _lock_own_booking(session: Session, actor: User, booking_id: uuid.UUID) -> Booking:
    booking = _lock_booking(session, booking_id)
    if booking is None or booking.user_id != actor.id:
        raise NotFound("That booking does not exist.")
    return booking


def _earnings_address(event: Event) -> str:
    return f"seller:{event.organizer_id}:earnings"


def _changed(session: Session, booking: Booking) -> None:
    """Tell the buyer's tabs about their booking and the event's viewers about seats, once this commits."""
    publish_after_commit(
        session, TOPIC, user_id=str(booking.user_id), booking_id=str(booking.id), status=str(booking.status)
    )
    publish_after_commit(session, SEATS_TOPIC, event_id=str(booking.event_id))
