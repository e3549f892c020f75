"""Friends: shareable friend codes, search, and the request / accept / decline / cancel / unfriend /
block life of a pair of people.

Design overview
---------------
Each pair of people has at most one `Friendship` row (ordered ids, unique), so a duplicate
request, or two people asking each other at the same moment, meets the database's unique index
instead of a read-then-write race: the loser re-reads the row under a lock and is answered by it
("you already asked", "they already asked you: accept instead"). Every change locks the pair's row
and re-checks its status. The row is reused: after a decline, a cancel or an unfriend either person
may ask again. A block is the same row in status `blocked` with the blocker as `requester_id`; it
ends a friendship, refuses requests both ways, and hides both people from each other's searches.

Search never lists everyone: it needs a friend code or at least `MIN_NAME_QUERY` characters of a
name, returns at most `MAX_RESULTS` people, and leaves out the searcher, inactive accounts and
anyone blocked either way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, and_, col, or_, select

from paytime_app.bus import publish_after_commit
from paytime_app.db import for_update
from paytime_app.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from paytime_app.models.base import utcnow
from paytime_app.models.friends import FriendCode, Friendship, FriendshipStatus
from paytime_app.models.users import User
from paytime_app.services import rate_limits
from paytime_app.services.audit import record_audit
from paytime_app.services.identifiers import REFERENCE_ALPHABET, human_reference
from paytime_app.services.notifications import notify

CODE_PREFIX = "PT"
CODE_LENGTH = 6  # 30 bits: short enough to read out; searches are rate-limited, so codes are not guessed in bulk
MIN_NAME_QUERY = 3
MAX_RESULTS = 20
TOPIC = "friend.updated"
_CODE_CONFUSABLES = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})


class CannotFriendSelf(ValidationFailed):
    code = "cannot_friend_self"
    default_message = "You can't send a friend request to yourself."


class AlreadyFriends(Conflict):
    code = "already_friends"
    default_message = "You are already friends."


class RequestAlreadySent(Conflict):
    code = "request_already_sent"
    default_message = "You already sent a request; wait for an answer or cancel it."


class RequestAlreadyReceived(Conflict):
    code = "request_already_received"
    default_message = "They already sent you a request: accept it instead."


class Blocked(PermissionDenied):
    code = "blocked"
    default_message = "You can't send a friend request to this person."


class NotFriends(PermissionDenied):
    code = "not_friends"
    default_message = "You can only do that with a friend. Send them a friend request first."


class SearchTooShort(ValidationFailed):
    code = "search_too_short"
    default_message = f"Type a friend code, or at least {MIN_NAME_QUERY} letters of a name."


@dataclass(frozen=True)
class PersonMatch:
    user_id: uuid.UUID
    display_name: str
    relation: str  # none | friend | request_sent | request_received
    request_id: uuid.UUID | None


@dataclass(frozen=True)
class FriendView:
    user_id: uuid.UUID
    display_name: str
    since: datetime


@dataclass(frozen=True)
class RequestView:
    request_id: uuid.UUID
    user_id: uuid.UUID
    display_name: str
    requested_at: datetime
    incoming: bool


# --- codes and search ---------------------------------------------------------------------------------


def get_friend_code(*, session: Session, actor: User) -> str:
    """The actor's friend code, made on first use."""
    existing = session.exec(select(FriendCode.code).where(FriendCode.user_id == actor.id)).first()
    if existing is not None:
        return existing
    for _attempt in range(5):
        code = human_reference(CODE_PREFIX, CODE_LENGTH)
        try:
            with session.begin_nested():
                session.add(FriendCode(user_id=actor.id, code=code))
        except IntegrityError:
            # Another tab made this user's code, or (1 in a billion) the code is taken: read or retry.
            existing = session.exec(select(FriendCode.code).where(FriendCode.user_id == actor.id)).first()
            if existing is not None:
                return existing
            continue
        return code
    raise RuntimeError("could not find a free friend code")


def normalize_friend_code(text: str) -> str | None:
    """`pt-7kq2m9`, `7KQ2M9`, `PT 7KQ2M9` → `PT-7KQ2M9`; None if it cannot be a code."""
    compact = "".join(text.upper().split()).replace("-", "")
    compact = compact.removeprefix(CODE_PREFIX).translate(_CODE_CONFUSABLES)
    if len(compact) != CODE_LENGTH or any(char not in REFERENCE_ALPHABET for char in compact):
        return None
    return f"{CODE_PREFIX}-{compact}"


def search_people(*, session: Session, actor: User, query: str) -> list[PersonMatch]:
    """People matching a friend code exactly, or a name fragment; never the actor, never anyone
    blocked either way, at most MAX_RESULTS.

    Raises SearchTooShort (neither a code nor MIN_NAME_QUERY characters), RateLimited.
    """
    query = " ".join(query.split())[:80]
    code = normalize_friend_code(query)
    # A six-letter name can look like a code ("Okafor"): match either.
    matches_query = []
    if code is not None:
        matches_query.append(col(FriendCode.code) == code)
    if len(query) >= MIN_NAME_QUERY:
        escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        matches_query.append(col(User.display_name).ilike(f"%{escaped}%", escape="\\"))
    if not matches_query:
        raise SearchTooShort()
    rate_limits.enforce_rate_limit(rate_limits.PEOPLE_SEARCH_PER_USER, f"user:{actor.id}")
    statement = (
        select(User)
        .join(FriendCode, col(FriendCode.user_id) == User.id, isouter=True)
        .where(User.id != actor.id, col(User.is_active).is_(True), or_(*matches_query))
    )
    people = session.exec(statement.order_by(col(User.display_name), col(User.id)).limit(MAX_RESULTS * 2)).all()
    rows = _rows_with(session, actor.id, [person.id for person in people])
    matches = []
    for person in people:
        row = rows.get(person.id)
        if row is not None and row.status == FriendshipStatus.BLOCKED:
            continue
        matches.append(PersonMatch(person.id, person.display_name, *_relation(row, actor.id)))
    return matches[:MAX_RESULTS]


# --- transitions --------------------------------------------------------------------------------------


def send_friend_request(*, session: Session, actor: User, user_id: uuid.UUID) -> Friendship:
    """Ask someone to be friends.

    Raises CannotFriendSelf, NotFound (no such active user), RateLimited, Blocked (either way),
    AlreadyFriends, RequestAlreadySent, RequestAlreadyReceived (accept theirs instead).
    """
    if user_id == actor.id:
        raise CannotFriendSelf()
    other = session.get(User, user_id)
    if other is None or not other.is_active:
        raise NotFound("That person does not exist.")
    rate_limits.enforce_rate_limit(rate_limits.FRIEND_REQUESTS_PER_USER, f"user:{actor.id}")
    now = utcnow()
    row = _lock_pair(session, actor.id, user_id)
    if row is None:
        low, high = sorted((actor.id, user_id))
        fresh = Friendship(user_low_id=low, user_high_id=high, requester_id=actor.id, requested_at=now)
        try:
            with session.begin_nested():
                session.add(fresh)
        except IntegrityError:
            # They (or another tab) created the pair's row first: decide on it.
            row = _lock_pair(session, actor.id, user_id)
            assert row is not None
        else:
            _changed(session, fresh, actor, "friendship.requested", notify_id=user_id, kind="friend.requested")
            return fresh
    if row.status == FriendshipStatus.BLOCKED:
        raise Blocked()
    if row.status == FriendshipStatus.ACCEPTED:
        raise AlreadyFriends()
    if row.status == FriendshipStatus.PENDING:
        if row.requester_id == actor.id:
            raise RequestAlreadySent()
        raise RequestAlreadyReceived(request_id=str(row.id))
    row.status, row.requester_id, row.requested_at, row.responded_at = FriendshipStatus.PENDING, actor.id, now, None
    session.add(row)
    session.flush()
    _changed(session, row, actor, "friendship.requested", notify_id=user_id, kind="friend.requested")
    return row


def accept_friend_request(*, session: Session, actor: User, request_id: uuid.UUID) -> Friendship:
    """Accept a request someone sent the actor. Accepting twice returns the friendship.

    Raises NotFound (no such pending request to the actor).
    """
    row = _lock_request(session, actor, request_id)
    if row.status == FriendshipStatus.ACCEPTED:
        return row
    if row.status != FriendshipStatus.PENDING or row.requester_id == actor.id:
        raise NotFound("That friend request does not exist.")
    return _respond(session, row, actor, FriendshipStatus.ACCEPTED, "friend.accepted")


def decline_friend_request(*, session: Session, actor: User, request_id: uuid.UUID) -> Friendship:
    """Decline a request someone sent the actor; they may ask again later.

    Raises NotFound (no such pending request to the actor).
    """
    row = _lock_request(session, actor, request_id)
    if row.status != FriendshipStatus.PENDING or row.requester_id == actor.id:
        raise NotFound("That friend request does not exist.")
    return _respond(session, row, actor, FriendshipStatus.DECLINED, "friend.declined")


def cancel_friend_request(*, session: Session, actor: User, request_id: uuid.UUID) -> Friendship:
    """Withdraw a request the actor sent.

    Raises NotFound (no such pending request from the actor).
    """
    row = _lock_request(session, actor, request_id)
    if row.status != FriendshipStatus.PENDING or row.requester_id != actor.id:
        raise NotFound("That friend request does not exist.")
    return _respond(session, row, actor, FriendshipStatus.CANCELLED, None)


def unfriend(*, session: Session, actor: User, user_id: uuid.UUID) -> Friendship:
    """End a friendship (open IOUs stay and can still be settled).

    Raises NotFriends.
    """
    row = _lock_pair(session, actor.id, user_id)
    if row is None or row.status != FriendshipStatus.ACCEPTED:
        raise NotFriends("You are not friends with this person.")
    return _respond(session, row, actor, FriendshipStatus.REMOVED, None)


def block_user(*, session: Session, actor: User, user_id: uuid.UUID) -> Friendship:
    """Block someone: ends a friendship or request, refuses requests both ways, hides both from search.

    Raises CannotFriendSelf, NotFound (no such user).
    """
    if user_id == actor.id:
        raise CannotFriendSelf("You can't block yourself.")
    if session.get(User, user_id) is None:
        raise NotFound("That person does not exist.")
    row = _lock_pair(session, actor.id, user_id)
    now = utcnow()
    if row is None:
        low, high = sorted((actor.id, user_id))
        row = Friendship(user_low_id=low, user_high_id=high, requester_id=actor.id, requested_at=now)
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            row = _lock_pair(session, actor.id, user_id)
            assert row is not None
    if row.status == FriendshipStatus.BLOCKED:
        return row  # already blocked (by either side): nothing changes
    row.status, row.requester_id, row.responded_at = FriendshipStatus.BLOCKED, actor.id, now
    session.add(row)
    session.flush()
    _changed(session, row, actor, "friendship.blocked", notify_id=None)
    return row


def unblock_user(*, session: Session, actor: User, user_id: uuid.UUID) -> Friendship:
    """Lift a block the actor placed. Raises NotFound (no block by the actor)."""
    row = _lock_pair(session, actor.id, user_id)
    if row is None or row.status != FriendshipStatus.BLOCKED or row.requester_id != actor.id:
        raise NotFound("You have not blocked this person.")
    return _respond(session, row, actor, FriendshipStatus.REMOVED, None)


# --- reading ------------------------------------------------------------------------------------------


def are_friends(*, session: Session, user_id: uuid.UUID, other_id: uuid.UUID) -> bool:
    low, high = sorted((user_id, other_id))
    status = session.exec(
        select(Friendship.status).where(Friendship.user_low_id == low, Friendship.user_high_id == high)
    ).first()
    return status == FriendshipStatus.ACCEPTED


def require_friend(*, session: Session, actor: User, user_id: uuid.UUID) -> User:
    """The active friend `user_id` of the actor. Raises NotFriends (also for unknown people)."""
    other = session.get(User, user_id)
    if other is None or not other.is_active or not are_friends(session=session, user_id=actor.id, other_id=user_id):
        raise NotFriends()
    return other


def list_friends(*, session: Session, actor: User) -> list[FriendView]:
    """The actor's friends by name."""
    rows = _rows_of(session, actor.id, FriendshipStatus.ACCEPTED)
    people = _people(session, [row.other(actor.id) for row in rows])
    views = [
        FriendView(row.other(actor.id), people[row.other(actor.id)].display_name, row.responded_at or row.requested_at)
        for row in rows
    ]
    return sorted(views, key=lambda view: view.display_name.lower())


def list_friend_requests(*, session: Session, actor: User) -> list[RequestView]:
    """Pending requests to and from the actor, newest first."""
    rows = _rows_of(session, actor.id, FriendshipStatus.PENDING)
    people = _people(session, [row.other(actor.id) for row in rows])
    views = [
        RequestView(
            row.id,
            row.other(actor.id),
            people[row.other(actor.id)].display_name,
            row.requested_at,
            row.requester_id != actor.id,
        )
        for row in rows
    ]
    return sorted(views, key=lambda view: view.requested_at, reverse=True)


def list_blocked(*, session: Session, actor: User) -> list[FriendView]:
    """People the actor blocked."""
    rows = [row for row in _rows_of(session, actor.id, FriendshipStatus.BLOCKED) if row.requester_id == actor.id]
    people = _people(session, [row.other(actor.id) for row in rows])
    return [
        FriendView(row.other(actor.id), people[row.other(actor.id)].display_name, row.responded_at or row.requested_at)
        for row in rows
    ]


# --- helpers ------------------------------------------------------------------------------------------


def _pair_filter(user_id: uuid.UUID, other_id: uuid.UUID) -> ColumnElement[bool]:
    low, high = sorted((user_id, other_id))
    return and_(col(Friendship.user_low_id) == low, col(Friendship.user_high_id) == high)


def _lock_pair(session: Session, user_id: uuid.UUID, other_id: uuid.UUID) -> Friendship | None:
    # populate_existing: decide on the locked version, not a row read earlier in this session.
    return session.exec(
        for_update(select(Friendship).where(_pair_filter(user_id, other_id))).execution_options(populate_existing=True)
    ).first()


def _lock_request(session: Session, actor: User, request_id: uuid.UUID) -> Friendship:
    row = session.exec(
        for_update(select(Friendship).where(Friendship.id == request_id)).execution_options(populate_existing=True)
    ).first()
    if row is None or actor.id not in (row.user_low_id, row.user_high_id):
        raise NotFound("That friend request does not exist.")
    return row


def _respond(
    session: Session, row: Friendship, actor: User, status: FriendshipStatus, notification: str | None
) -> Friendship:
    other_id = row.other(actor.id)
    row.status, row.responded_at = status, utcnow()
    session.add(row)
    session.flush()
    _changed(
        session, row, actor, f"friendship.{status}", notify_id=other_id if notification else None, kind=notification
    )
    return row


def _changed(
    session: Session,
    row: Friendship,
    actor: User,
    action: str,
    *,
    notify_id: uuid.UUID | None,
    kind: str | None = None,
) -> None:
    """Audit the change, notify the other person when it concerns them, refresh both sides' tabs."""
    record_audit(
        session=session,
        action=action,
        actor=actor,
        target_type="friendship",
        target_id=row.id,
        data={"status": str(row.status)},
    )
    if notify_id is not None:
        assert kind is not None
        notify(session=session, recipient_id=notify_id, kind=kind, actor=actor, request_id=str(row.id))
    for user_id in (row.user_low_id, row.user_high_id):
        publish_after_commit(session, TOPIC, user_id=str(user_id))


def _rows_with(session: Session, user_id: uuid.UUID, other_ids: list[uuid.UUID]) -> dict[uuid.UUID, Friendship]:
    if not other_ids:
        return {}
    rows = session.exec(
        select(Friendship).where(
            or_(
                and_(col(Friendship.user_low_id) == user_id, col(Friendship.user_high_id).in_(other_ids)),
                and_(col(Friendship.user_high_id) == user_id, col(Friendship.user_low_id).in_(other_ids)),
            )
        )
    ).all()
    return {row.other(user_id): row for row in rows}


def _rows_of(session: Session, user_id: uuid.UUID, status: FriendshipStatus) -> list[Friendship]:
    return list(
        session.exec(
            select(Friendship).where(
                or_(col(Friendship.user_low_id) == user_id, col(Friendship.user_high_id) == user_id),
                Friendship.status == status,
            )
        ).all()
    )


def _people(session: Session, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, User]:
    if not user_ids:
        return {}
    return {user.id: user for user in session.exec(select(User).where(col(User.id).in_(user_ids))).all()}


def _relation(row: Friendship | None, actor_id: uuid.UUID) -> tuple[str, uuid.UUID | None]:
    if row is None:
        return "none", None
    if row.status == FriendshipStatus.ACCEPTED:
        return "friend", None
    if row.status == FriendshipStatus.PENDING:
        return ("request_sent" if row.requester_id == actor_id else "request_received"), row.id
    return "none", None
