"""Notifications: stored per recipient, pushed to their open tabs once the change commits.

A notification is a row (recipient, kind, payload, read_at) written in the same transaction as the
change it reports, so a user who was away sees it on their next visit; `bus.publish_after_commit`
tells that recipient's open tabs (and only theirs: every message names one user id) to re-read.
The words are made from the kind and payload when shown, in one place (`describe_notification`).
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from sqlalchemy import Row, Uuid, any_, bindparam, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, func, select

from paytime_app.bus import publish_after_commit
from paytime_app.models.base import utcnow
from paytime_app.models.notifications import Notification
from paytime_app.models.users import User
from paytime_app.money import format_money

TOPIC = "notification.created"
MAX_LISTED = 50

# kind -> words; {name} is the other person, {amount} the formatted amount, {reference} an IOU's.
_TEXTS = {
    "friend.requested": "{name} sent you a friend request.",
    "friend.accepted": "{name} accepted your friend request.",
    "friend.declined": "{name} declined your friend request.",
    "transfer.received": "{name} sent you {amount}.",
    "iou.opened": "{name} says they owe you {amount} ({reference}).",
    "iou.acknowledged": "{name} acknowledged your IOU of {amount}.",
    "iou.paid": "{name} paid you {amount} for {reference}.",
    "iou.auto_paid": "{reference} for {amount} was paid automatically from the borrower's wallet.",
    "iou.overdue": "{reference} for {amount} is overdue.",
    "iou.cash_claimed": "{name} says they paid {amount} in cash for {reference}. Confirm or dispute it.",
    "iou.cash_confirmed": "{name} confirmed your cash payment of {amount} for {reference}.",
    "iou.cash_disputed": "{name} disputes your cash payment of {amount} for {reference}.",
    "iou.cancelled": "{name} cancelled {reference} for {amount}.",
    "booking.late_payment_accepted": "Your payment of {amount} arrived after your hold on {reference} expired;"
    " the seats were still free, so your booking is confirmed.",
    "booking.late_payment_refunding": "Your payment of {amount} for {reference} arrived after your hold expired"
    " and the seats were gone. It is being refunded to your card or bank.",
    "booking.cancelled_payment_refunding": "Your payment of {amount} for {reference} arrived after you cancelled."
    " It is being refunded to your card or bank.",
    "booking.duplicate_payment_refunding": "Your payment of {amount} for {reference} arrived after the booking"
    " was already paid. It is being refunded to your card or bank.",
    "booking.refund_sent": "{amount} for {reference} was refunded to your card or bank.",
    "booking.refund_failed": "{amount} for {reference} could not go back to your card or bank;"
    " it is in your PayTime wallet.",
}


def notify(
    *, session: Session, recipient_id: uuid.UUID, kind: str, actor: User | None = None, **payload: Any
) -> Notification:
    """Store a notification for `recipient_id` and push it to their tabs after commit.

    `actor` (who caused it) is recorded by name; amounts go in as `amount_minor` + `currency`.
    """
    if kind not in _TEXTS:
        raise ValueError(f"unknown notification kind {kind!r}")
    if actor is not None:
        payload = {"actor_id": str(actor.id), "actor_name": actor.display_name, **payload}
    notification = Notification(recipient_id=recipient_id, kind=kind, payload=payload)
    session.add(notification)
    session.flush()
    publish_after_commit(session, TOPIC, user_id=str(recipient_id), notification_id=str(notification.id), kind=kind)
    return notification


def describe_notification(notification: Notification) -> str:
    """The notification in words, for people."""
    payload = notification.payload
    amount = ""
    if "amount_minor" in payload and "currency" in payload:
        amount = format_money(int(payload["amount_minor"]), payload["currency"])
    text = _TEXTS.get(notification.kind, "Something happened.").format(
        name=payload.get("actor_name", "Someone"), amount=amount, reference=payload.get("reference", "")
    )
    note = str(payload.get("note") or "")
    return f"{text} “{note}”" if note else text


def list_notifications(*, session: Session, actor: User, limit: int = 20) -> list[Notification]:
    """The actor's newest notifications, read and unread."""
    limit = min(max(limit, 1), MAX_LISTED)
    return list(
        session.exec(
            select(Notification)
            .where(Notification.recipient_id == actor.id)
            .order_by(col(Notification.created_at).desc(), col(Notification.id))
            .limit(limit)
        ).all()
    )


def count_unread(*, session: Session, actor: User) -> int:
    """How many of the actor's notifications are unread."""
    return session.exec(
        select(func.count()).where(Notification.recipient_id == actor.id, col(Notification.read_at).is_(None))
    ).one()


def read_notification_centre(*, session: Session, actor: User, limit: int = 20) -> tuple[list[Notification], int]:
    """What the notification centre shows: the newest notifications and the unread count, in one read."""
    return list_notifications(session=session, actor=actor, limit=limit), count_unread(session=session, actor=actor)


def read_notification_centres(
    *, session: Session, recipient_ids: list[uuid.UUID], limit: int = 20
) -> dict[uuid.UUID, tuple[list[Notification], int]]:
    """The notification centre of many users at once (for live pushes, which run as nobody): each
    recipient's newest notifications and unread count, in two queries whatever the number of users."""
    limit = min(max(limit, 1), MAX_LISTED)
    if not recipient_ids:
        return {}
    rank = (
        func.row_number()
        .over(
            partition_by=col(Notification.recipient_id),
            order_by=(col(Notification.created_at).desc(), col(Notification.id)),
        )
        .label("rank")
    )
    ranked = select(Notification.id, rank).where(col(Notification.recipient_id).in_(recipient_ids)).subquery()
    newest = session.exec(
        select(Notification)
        .join(ranked, col(Notification.id) == ranked.c.id)
        .where(ranked.c.rank <= limit)
        .order_by(col(Notification.recipient_id), col(Notification.created_at).desc(), col(Notification.id))
    ).all()
    unread = dict(
        session.exec(
            select(Notification.recipient_id, func.count())
            .where(col(Notification.recipient_id).in_(recipient_ids), col(Notification.read_at).is_(None))
            .group_by(col(Notification.recipient_id))
        ).all()
    )
    listed: dict[uuid.UUID, list[Notification]] = {rid: [] for rid in recipient_ids}
    for notification in newest:
        listed[notification.recipient_id].append(notification)
    return {rid: (listed[rid], unread.get(rid, 0)) for rid in recipient_ids}


def _among(column: Any, values: str, dialect: str) -> ColumnElement[bool]:
    """`column` is one of the ids bound as `values` at execution: one array parameter on PostgreSQL.
    An IN list of 1,000 placeholders cost more to build and parse (SQLAlchemy and psycopg) than the
    query took to run; SQLite has no arrays and gets the IN list."""
    if dialect == "postgresql":
        return column == any_(bindparam(values, type_=ARRAY(Uuid())))
    return column.in_(bindparam(values, expanding=True))


@functools.cache
def _live_statements(dialect: str) -> tuple[Any, Any]:
    unread = (
        select(Notification.recipient_id, func.count())
        .where(_among(col(Notification.recipient_id), "recipients", dialect), col(Notification.read_at).is_(None))
        .group_by(col(Notification.recipient_id))
    )
    named = select(
        Notification.id,
        Notification.recipient_id,
        Notification.kind,
        Notification.payload,
        Notification.created_at,
        Notification.read_at,
    ).where(_among(col(Notification.id), "ids", dialect))
    return unread, named


def count_unread_by_recipient(*, session: Session, recipient_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """How many unread notifications each recipient has (0 for none), in one query for any number of users."""
    if not recipient_ids:
        return {}
    unread, _named = _live_statements(session.get_bind().dialect.name)
    counts: dict[uuid.UUID, int] = dict(session.execute(unread, {"recipients": recipient_ids}).all())
    return {rid: counts.get(rid, 0) for rid in recipient_ids}


def get_notifications_by_id(*, session: Session, notification_ids: list[uuid.UUID]) -> list[Row[Any]]:
    """The notifications with these ids (whoever they are for: callers check `recipient_id`), oldest
    first, as rows with Notification's fields; one query for any number of ids."""
    if not notification_ids:
        return []
    _unread, named = _live_statements(session.get_bind().dialect.name)
    found = session.execute(named, {"ids": notification_ids}).all()
    return sorted(found, key=lambda row: (row.created_at, row.id))


def mark_all_read(*, session: Session, actor: User) -> int:
    """Mark every unread notification of the actor read; returns how many changed."""
    result = session.exec(  # type: ignore[call-overload]
        update(Notification)
        .where(col(Notification.recipient_id) == actor.id, col(Notification.read_at).is_(None))
        .values(read_at=utcnow())
    )
    publish_after_commit(session, TOPIC, user_id=str(actor.id), kind="read")
    return result.rowcount
