"""Single-use proofs: email links (a 256-bit token) and emailed 6-digit codes bound to a token.

Only digests are stored. A link is consumed by a conditional UPDATE (`used_at IS NULL`), so two
clicks racing each other cannot both succeed. A code allows a few attempts; each wrong guess is
counted in the database before the answer is given, so parallel guesses cannot exceed the limit.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from paytime_app.errors import DomainError
from paytime_app.models.base import utcnow
from paytime_app.models.sessions import AuthChallenge, ChallengePurpose
from paytime_app.models.users import User
from paytime_app.services.crypto import digest_code, digest_token, new_numeric_code, new_token

MAX_CODE_ATTEMPTS = 5


class ChallengeError(DomainError):
    status_code = 400


class LinkInvalid(ChallengeError):
    code = "link_invalid"
    default_message = "This link is not valid. It may have been used already."


class LinkExpired(ChallengeError):
    code = "link_expired"
    default_message = "This link has expired. Ask for a new one."


class CodeInvalid(ChallengeError):
    code = "invalid_code"
    keeps_changes = True  # the wrong attempt stays counted
    default_message = "That code is not right. Check the latest email and try again."


class CodeExpired(ChallengeError):
    code = "code_expired"
    default_message = "That code has expired. Start again to get a new one."


class TooManyAttempts(ChallengeError):
    code = "too_many_attempts"
    status_code = 429
    default_message = "Too many wrong codes. Start again to get a new one."


@dataclass(frozen=True)
class IssuedChallenge:
    challenge: AuthChallenge
    token: str
    code: str | None


def issue_challenge(
    *,
    session: Session,
    user: User,
    purpose: ChallengePurpose,
    lifetime: timedelta,
    with_code: bool = False,
    context: dict[str, Any] | None = None,
) -> IssuedChallenge:
    """Create a challenge; earlier unused ones of the same purpose for this user stop working."""
    now = utcnow()
    session.exec(  # type: ignore[call-overload]
        update(AuthChallenge)
        .where(
            col(AuthChallenge.user_id) == user.id,
            col(AuthChallenge.purpose) == purpose,
            col(AuthChallenge.used_at).is_(None),
        )
        .values(used_at=now)
    )
    token = new_token()
    code = new_numeric_code() if with_code else None
    challenge = AuthChallenge(
        user_id=user.id,
        purpose=purpose,
        token_hash=digest_token(token),
        code_hash=digest_code(code, purpose=purpose) if code else None,
        expires_at=now + lifetime,
        context=context or {},
    )
    session.add(challenge)
    session.flush()
    return IssuedChallenge(challenge=challenge, token=token, code=code)


def _find(session: Session, token: str, purpose: ChallengePurpose) -> AuthChallenge | None:
    return session.exec(
        select(AuthChallenge).where(AuthChallenge.token_hash == digest_token(token), AuthChallenge.purpose == purpose)
    ).first()


def consume_link(*, session: Session, token: str, purpose: ChallengePurpose) -> AuthChallenge:
    """Use a link token once.

    Raises LinkInvalid (unknown or already used) or LinkExpired.
    """
    challenge = _find(session, token, purpose)
    if challenge is None or challenge.used_at is not None:
        raise LinkInvalid()
    if challenge.expires_at <= utcnow():
        raise LinkExpired()
    claimed = session.exec(  # type: ignore[call-overload]
        update(AuthChallenge)
        .where(col(AuthChallenge.id) == challenge.id, col(AuthChallenge.used_at).is_(None))
        .values(used_at=utcnow())
    )
    if claimed.rowcount != 1:
        raise LinkInvalid()
    session.refresh(challenge)
    return challenge


def peek_challenge(*, session: Session, token: str, purpose: ChallengePurpose) -> AuthChallenge:
    """An unused, unexpired challenge, without consuming it.

    Raises LinkInvalid or LinkExpired.
    """
    challenge = _find(session, token, purpose)
    if challenge is None or challenge.used_at is not None:
        raise LinkInvalid()
    if challenge.expires_at <= utcnow():
        raise LinkExpired()
    return challenge


def consume_code(*, session: Session, token: str, purpose: ChallengePurpose, code: str) -> AuthChallenge:
    """Check an emailed code against its challenge and use it once.

    Raises CodeInvalid, CodeExpired, TooManyAttempts or LinkInvalid (unknown challenge).
    """
    challenge = _find(session, token, purpose)
    if challenge is None or challenge.used_at is not None or challenge.code_hash is None:
        raise LinkInvalid("This sign-in step is no longer valid. Start again.")
    if challenge.expires_at <= utcnow():
        raise CodeExpired()
    counted = session.exec(  # type: ignore[call-overload]
        update(AuthChallenge)
        .where(
            col(AuthChallenge.id) == challenge.id,
            col(AuthChallenge.used_at).is_(None),
            col(AuthChallenge.attempts) < MAX_CODE_ATTEMPTS,
        )
        .values(attempts=AuthChallenge.attempts + 1)
    )
    if counted.rowcount != 1:
        raise TooManyAttempts()
    if not hmac.compare_digest(challenge.code_hash, digest_code(code.strip(), purpose=purpose)):
        raise CodeInvalid()
    return consume_link(session=session, token=token, purpose=purpose)


SIGN_IN_PURPOSES = (ChallengePurpose.SECOND_FACTOR, ChallengePurpose.NEW_DEVICE, ChallengePurpose.SESSION_TICKET)


def void_pending_sign_ins(*, session: Session, user: User) -> None:
    """Stop every half-finished sign-in of the user (after a password reset, a sign-in started with
    the old password must not be able to finish)."""
    session.exec(  # type: ignore[call-overload]
        update(AuthChallenge)
        .where(
            col(AuthChallenge.user_id) == user.id,
            col(AuthChallenge.used_at).is_(None),
            col(AuthChallenge.purpose).in_(SIGN_IN_PURPOSES),
        )
        .values(used_at=utcnow())
    )
