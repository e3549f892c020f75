"""Server-side sessions.

Design overview: signing in creates a `user_session` row and hands out random tokens whose SHA-256
is all we store. A browser gets one token in an HttpOnly cookie; an API client gets an access token
(short-lived) and a refresh token (long-lived) for the same row, and each is only accepted where it
belongs. Every request re-reads the row, so revoking it (sign out, sign out everywhere, password
reset, account disabled) ends access at once. Refreshing rotates both tokens; presenting an old
refresh token again means it was stolen, so the whole session is revoked.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import bindparam, update
from sqlmodel import Session, col, or_, select

from paytime_app.bus import publish_after_commit
from paytime_app.db import unit_of_work
from paytime_app.errors import AuthenticationRequired, NotFound
from paytime_app.models.base import utcnow
from paytime_app.models.sessions import SessionKind, UserSession
from paytime_app.models.users import User
from paytime_app.services.access import STAFF_READERS
from paytime_app.services.crypto import digest_token, new_token

T = TypeVar("T")

BROWSER_IDLE_LIFETIME = timedelta(days=7)
BROWSER_ABSOLUTE_LIFETIME = timedelta(days=30)
ACCESS_TOKEN_LIFETIME = timedelta(minutes=15)
REFRESH_TOKEN_LIFETIME = timedelta(days=30)
# Writing last_seen on every websocket event would turn reads into writes; once a minute is enough.
TOUCH_INTERVAL = timedelta(minutes=1)
REFRESH_REUSE_GRACE = timedelta(seconds=10)
# Staff dashboards show staff sign-ins (and sign-outs, from "sessions.ended") as they happen.
STAFF_SIGNED_IN = "staff.signed_in"


class SessionExpired(AuthenticationRequired):
    code = "session_expired"
    default_message = "Your session has ended. Please sign in again."


class AccountDisabled(AuthenticationRequired):
    code = "account_disabled"
    status_code = 403
    default_message = "This account is disabled. Contact support if you think this is a mistake."


@dataclass(frozen=True)
class ClientInfo:
    ip_address: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class IssuedSession:
    record: UserSession
    token: str
    refresh_token: str | None = None


def start_browser_session(*, session: Session, user: User, client: ClientInfo) -> IssuedSession:
    """A new session with a new id and token (never reuses one from before sign-in)."""
    now = utcnow()
    token = new_token()
    record = UserSession(
        user_id=user.id,
        kind=SessionKind.BROWSER,
        token_hash=digest_token(token),
        token_expires_at=now + BROWSER_IDLE_LIFETIME,
        expires_at=now + BROWSER_ABSOLUTE_LIFETIME,
        ip_address=client.ip_address,
        user_agent=(client.user_agent or "")[:400] or None,
    )
    session.add(record)
    session.flush()
    if user.role in STAFF_READERS:
        publish_after_commit(session, STAFF_SIGNED_IN, session_id=str(record.id))
    return IssuedSession(record=record, token=token)


def issue_api_tokens(*, session: Session, user: User, client: ClientInfo) -> IssuedSession:
    """An API session: an access token and a refresh token that only works at the refresh endpoint."""
    now = utcnow()
    access, refresh = new_token(), new_token()
    record = UserSession(
        user_id=user.id,
        kind=SessionKind.API,
        token_hash=digest_token(access),
        token_expires_at=now + ACCESS_TOKEN_LIFETIME,
        refresh_token_hash=digest_token(refresh),
        expires_at=now + REFRESH_TOKEN_LIFETIME,
        ip_address=client.ip_address,
        user_agent=(client.user_agent or "")[:400] or None,
    )
    session.add(record)
    session.flush()
    return IssuedSession(record=record, token=access, refresh_token=refresh)


# Built once: building it cost about as much Python time as running it, on every request.
_SESSION_AND_USER = (
    select(UserSession, User)
    .join(User, col(User.id) == UserSession.user_id)
    .where(UserSession.token_hash == bindparam("token_hash"), UserSession.kind == bindparam("kind"))
)


def authenticate_token(*, session: Session, token: str | None, kind: SessionKind) -> tuple[User, UserSession]:
    """The user behind a browser cookie or API access token.

    Raises SessionExpired (missing, unknown, revoked or expired) or AccountDisabled.
    """
    if not token:
        raise SessionExpired("Please sign in.", code="authentication_required")
    # Session and user in one round trip: every authenticated request and page load starts here.
    found = session.exec(_SESSION_AND_USER, params={"token_hash": digest_token(token), "kind": kind}).first()
    now = utcnow()
    if found is None:
        raise SessionExpired()
    record, user = found
    if record.revoked_at is not None or record.token_expires_at <= now or record.expires_at <= now:
        raise SessionExpired()
    if not user.is_active:
        raise AccountDisabled()
    if now - record.last_seen_at >= TOUCH_INTERVAL:
        record.last_seen_at = now
        if kind is SessionKind.BROWSER:
            record.token_expires_at = min(now + BROWSER_IDLE_LIFETIME, record.expires_at)
    return user, record


class RefreshTokenReused(SessionExpired):
    code = "invalid_refresh_token"
    keeps_changes = True  # the session stays revoked although the request is refused
    default_message = "That refresh token was already used; the session has been ended for safety."


def refresh_api_tokens(*, session: Session, refresh_token: str, client: ClientInfo) -> IssuedSession:
    """Rotate an API session's tokens.

    Raises SessionExpired; a replaced refresh token presented again ends its session (RefreshTokenReused).
    """
    digest = digest_token(refresh_token)
    record = session.exec(select(UserSession).where(UserSession.refresh_token_hash == digest)).first()
    if record is None:
        _end_session_of_reused_token(session, digest)
        raise SessionExpired("That refresh token is not valid.", code="invalid_refresh_token")
    now = utcnow()
    if record.revoked_at is not None or record.expires_at <= now:
        raise SessionExpired()
    user = session.get(User, record.user_id)
    if user is None or not user.is_active:
        raise AccountDisabled()
    access, refresh = new_token(), new_token()
    rotated = session.exec(  # type: ignore[call-overload]
        update(UserSession)
        .where(col(UserSession.id) == record.id, col(UserSession.refresh_token_hash) == digest)
        .values(
            token_hash=digest_token(access),
            refresh_token_hash=digest_token(refresh),
            previous_refresh_token_hash=digest,
            token_expires_at=now + ACCESS_TOKEN_LIFETIME,
            last_seen_at=now,
            ip_address=client.ip_address or record.ip_address,
        )
    )
    if rotated.rowcount != 1:
        raise SessionExpired("That refresh token was already used.", code="invalid_refresh_token")
    session.refresh(record)
    return IssuedSession(record=record, token=access, refresh_token=refresh)


def _end_session_of_reused_token(session: Session, digest: str) -> None:
    reused = session.exec(select(UserSession).where(UserSession.previous_refresh_token_hash == digest)).first()
    # Two refreshes racing from one client are not theft: only a reuse after the grace period ends it.
    if reused is not None and reused.revoked_at is None and utcnow() - reused.last_seen_at > REFRESH_REUSE_GRACE:
        reused.revoked_at = utcnow()
        reused.revoked_reason = "refresh_token_reused"
        announce_sessions_ended(session=session, session_ids=[reused.id])
        raise RefreshTokenReused()


def list_active_sessions(*, session: Session, user: User) -> list[UserSession]:
    """The user's own signed-in devices, most recently used first."""
    now = utcnow()
    return list(
        session.exec(
            select(UserSession)
            .where(
                UserSession.user_id == user.id,
                col(UserSession.revoked_at).is_(None),
                col(UserSession.expires_at) > now,
                # A browser session idle past its window is over; an API session lives on through refreshes.
                or_(col(UserSession.kind) == SessionKind.API, col(UserSession.token_expires_at) > now),
            )
            .order_by(col(UserSession.last_seen_at).desc())
        ).all()
    )


def revoke_session(*, session: Session, user: User, session_id: uuid.UUID, reason: str = "signed_out") -> UserSession:
    """End one of the user's own sessions.

    Raises NotFound for a session that is not theirs (another user's id looks like a missing one).
    """
    record = session.get(UserSession, session_id)
    if record is None or record.user_id != user.id:
        raise NotFound("That session does not exist.")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        record.revoked_reason = reason
        announce_sessions_ended(session=session, session_ids=[record.id])
    return record


def revoke_all_sessions(
    *, session: Session, user: User, reason: str, keep_session_id: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """End every session of the user (but `keep_session_id`); their open tabs are told after commit."""
    statement = select(UserSession.id).where(UserSession.user_id == user.id, col(UserSession.revoked_at).is_(None))
    if keep_session_id is not None:
        statement = statement.where(UserSession.id != keep_session_id)
    ended = list(session.exec(statement).all())
    if ended:
        session.exec(  # type: ignore[call-overload]
            update(UserSession).where(col(UserSession.id).in_(ended)).values(revoked_at=utcnow(), revoked_reason=reason)
        )
        announce_sessions_ended(session=session, session_ids=ended)
    return ended


def announce_sessions_ended(*, session: Session, session_ids: list[uuid.UUID]) -> None:
    """Tell the open tabs of these sessions, once this transaction commits, that they are signed out."""
    if session_ids:
        publish_after_commit(session, "sessions.ended", session_ids=[str(sid) for sid in session_ids])


def end_session(*, session: Session, token: str | None) -> None:
    """Sign out: revoke the session behind a browser token, if any, and tell its open tabs."""
    if not token:
        return
    record = session.exec(select(UserSession).where(UserSession.token_hash == digest_token(token))).first()
    if record is not None and record.revoked_at is None:
        record.revoked_at = utcnow()
        record.revoked_reason = "signed_out"
        announce_sessions_ended(session=session, session_ids=[record.id])


def call_as_user(
    service: Callable[..., T],
    /,
    *,
    token: str | None,
    session_kind: SessionKind,
    actor_param: str = "actor",
    **kwargs: Any,
) -> T:
    """Run a service in one transaction as the user behind `token`, re-checked on every call.

    The user is passed as `actor` (or `actor_param`, for services about "the user" such as 2FA).
    Raises SessionExpired or AccountDisabled before the service runs.
    """
    with unit_of_work() as session:
        user, _record = authenticate_token(session=session, token=token, kind=session_kind)
        return service(session=session, **{actor_param: user}, **kwargs)


_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("python-httpx", "API client"),
    ("curl/", "curl"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


def describe_user_agent(user_agent: str | None) -> str:
    """'Chrome on Linux' from a User-Agent header, for the devices list."""
    agent = user_agent or ""
    browser = next((name for marker, name in _BROWSERS if marker in agent), "Unknown browser")
    system = next((name for marker, name in _SYSTEMS if marker in agent), "")
    return f"{browser} on {system}" if system else browser


def end_session_by_api_token(*, session: Session, actor: User, access_token: str) -> None:
    """API logout: revoke the session behind this access token (the caller was authenticated with it)."""
    record = session.exec(
        select(UserSession).where(UserSession.token_hash == digest_token(access_token), UserSession.user_id == actor.id)
    ).one()
    record.revoked_at = utcnow()
    record.revoked_reason = "signed_out"
