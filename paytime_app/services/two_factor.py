"""TOTP two-factor authentication with recovery codes.

Design overview: enrollment is two steps. `begin_totp_enrollment` stores a fresh secret, sealed at
rest with purpose "totp", as an *unconfirmed* credential and hands back the secret, its otpauth://
URI and a QR code; nothing is enforced yet. `confirm_totp_enrollment` proves the authenticator app
holds the secret (one valid code), marks the credential confirmed and issues ten single-use
recovery codes, shown once and stored only as HMAC digests. From then on `verify_second_factor`
accepts either a TOTP code or a recovery code.

Every code works exactly once. A TOTP code is accepted for the current 30-second step and one step
either side (clock drift); the accepted step is written with a conditional
`UPDATE ... SET last_used_step = :step WHERE last_used_step < :step`, so of two concurrent
submissions of the same code only one changes a row, and a code older than the last one used is
refused too. Recovery codes are consumed the same way (`WHERE used_at IS NULL`). The database makes
the decision, never a read-then-write in Python. Disabling 2FA or regenerating recovery codes needs
a fresh code; admins can reset a locked-out user's 2FA. Changes to one user's 2FA lock that user's
row so a double-submitted enrollment cannot leave two secrets or two sets of recovery codes.

Guessing is limited by the callers' rate limits on OTP attempts, not here: a refused code rolls
back with the caller's transaction, so nothing it would write here would survive.
"""

from __future__ import annotations

import base64
import hmac
import re
import secrets
import time
from dataclasses import dataclass

import pyotp
import qrcode
import qrcode.image.svg
from sqlalchemy import delete, update
from sqlmodel import Session, col, func, select

from paytime_app.db import for_update
from paytime_app.errors import DomainError
from paytime_app.models.base import utcnow
from paytime_app.models.credentials import RecoveryCode, TotpCredential
from paytime_app.models.users import User
from paytime_app.services.audit import record_audit
from paytime_app.services.crypto import digest_code, open_secret, seal_secret
from paytime_app.services.rate_limits import CODE_ENTRY, clear_rate_limit, enforce_rate_limit

ISSUER = "PayTime"
SEAL_PURPOSE = "totp"
RECOVERY_PURPOSE = "recovery"
# Accept the previous and the next 30-second step as well, for phones whose clocks drift.
VALID_WINDOW = 1
RECOVERY_CODE_COUNT = 10
# Crockford's base32: 32 symbols without I, L, O, U, so 8 symbols carry 40 bits and read aloud well.
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
RECOVERY_CODE_LENGTH = 8
_TOTP_CODE = re.compile(r"\d{6}")
_CONFUSABLES = str.maketrans({"o": "0", "i": "1", "l": "1"})


class TwoFactorError(DomainError):
    code = "two_factor_error"
    default_message = "Two-factor authentication could not be completed."


class InvalidCode(TwoFactorError):
    code = "invalid_code"
    status_code = 422
    default_message = "That code is not valid. Check your authenticator app and try again."


class CodeAlreadyUsed(TwoFactorError):
    code = "code_already_used"
    status_code = 422
    default_message = "That code has already been used. Wait for the next code and try again."


class TwoFactorNotEnabled(TwoFactorError):
    code = "two_factor_not_enabled"
    status_code = 409
    default_message = "Two-factor authentication is not turned on for this account."


class TotpAlreadyEnabled(TwoFactorError):
    code = "totp_already_enabled"
    status_code = 409
    default_message = "An authenticator app is already set up for this account."


class TotpEnrollmentNotStarted(TwoFactorError):
    code = "totp_enrollment_not_started"
    status_code = 409
    default_message = "Start setting up your authenticator app first."


@dataclass(frozen=True)
class TotpEnrollment:
    """What the setup page shows: the secret for manual entry, and the same as a QR code."""

    secret: str
    provisioning_uri: str
    qr_svg_data_url: str


def begin_totp_enrollment(*, session: Session, user: User) -> TotpEnrollment:
    """Store a new unconfirmed secret (replacing a pending one); raises TotpAlreadyEnabled."""
    _lock_user(session=session, user=user)
    credential = _get_credential(session=session, user=user)
    if credential is not None and credential.confirmed_at is not None:
        raise TotpAlreadyEnabled()
    secret = pyotp.random_base32()
    sealed = seal_secret(secret.encode(), purpose=SEAL_PURPOSE)
    if credential is None:
        session.add(TotpCredential(user_id=user.id, secret_encrypted=sealed))
    else:
        credential.secret_encrypted = sealed
        credential.last_used_step = 0
        session.add(credential)
    session.flush()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    return TotpEnrollment(secret=secret, provisioning_uri=uri, qr_svg_data_url=_qr_svg_data_url(uri))


def confirm_totp_enrollment(*, session: Session, user: User, code: str) -> list[str]:
    """Turn 2FA on and return the recovery codes, shown once.

    Raises TotpEnrollmentNotStarted, TotpAlreadyEnabled, InvalidCode, or RateLimited.
    """
    enforce_rate_limit(CODE_ENTRY, f"user:{user.id}")
    _lock_user(session=session, user=user)
    credential = _get_credential(session=session, user=user)
    if credential is None:
        raise TotpEnrollmentNotStarted()
    if credential.confirmed_at is not None:
        raise TotpAlreadyEnabled()
    step = _matching_step(secret=_open(credential), code=_normalize(code))
    if step is None:
        raise InvalidCode()
    credential.confirmed_at = utcnow()
    # The confirming code is spent: it cannot be replayed as a sign-in code.
    credential.last_used_step = step
    session.add(credential)
    codes = _replace_recovery_codes(session=session, user=user)
    record_audit(session=session, action="two_factor.enabled", actor=user, target_type="user", target_id=user.id)
    return codes


def has_two_factor(*, session: Session, user: User) -> bool:
    """Whether the user has a confirmed authenticator, so sign-in must ask for a second factor."""
    statement = select(TotpCredential.id).where(
        TotpCredential.user_id == user.id, col(TotpCredential.confirmed_at).is_not(None)
    )
    return session.exec(statement).first() is not None


def verify_second_factor(*, session: Session, user: User, code: str) -> str:
    """Accept a TOTP or recovery code once; returns "totp" or "recovery_code".

    Raises TwoFactorNotEnabled, InvalidCode, CodeAlreadyUsed (a replayed or outdated TOTP step, a
    used recovery code), or RateLimited (every path that checks a code counts against one limit).
    """
    enforce_rate_limit(CODE_ENTRY, f"user:{user.id}")
    statement = select(TotpCredential).where(
        TotpCredential.user_id == user.id, col(TotpCredential.confirmed_at).is_not(None)
    )
    credential = session.exec(statement).first()
    if credential is None:
        raise TwoFactorNotEnabled()
    normalized = _normalize(code)
    if _TOTP_CODE.fullmatch(normalized):
        _use_totp_code(session=session, user=user, secret=_open(credential), code=normalized)
        kind = "totp"
    else:
        _use_recovery_code(session=session, user=user, code=normalized)
        kind = "recovery_code"
    clear_rate_limit(CODE_ENTRY, f"user:{user.id}")
    return kind


def disable_two_factor(*, session: Session, user: User, code: str) -> None:
    """Turn 2FA off after a fresh code; raises TwoFactorNotEnabled, InvalidCode, or CodeAlreadyUsed."""
    _lock_user(session=session, user=user)
    method = verify_second_factor(session=session, user=user, code=code)
    _delete_two_factor(session=session, user=user)
    record_audit(
        session=session,
        action="two_factor.disabled",
        actor=user,
        target_type="user",
        target_id=user.id,
        data={"verified_with": method},
    )


def regenerate_recovery_codes(*, session: Session, user: User, code: str) -> list[str]:
    """Replace all recovery codes after a fresh code; raises TwoFactorNotEnabled, InvalidCode, CodeAlreadyUsed."""
    _lock_user(session=session, user=user)
    method = verify_second_factor(session=session, user=user, code=code)
    codes = _replace_recovery_codes(session=session, user=user)
    record_audit(
        session=session,
        action="two_factor.recovery_codes_regenerated",
        actor=user,
        target_type="user",
        target_id=user.id,
        data={"verified_with": method},
    )
    return codes


def reset_two_factor(*, session: Session, user: User, actor: User, ip_address: str | None = None) -> None:
    """Remove a user's 2FA for an admin (the caller checks the role); raises TwoFactorNotEnabled."""
    _lock_user(session=session, user=user)
    if _get_credential(session=session, user=user) is None:
        raise TwoFactorNotEnabled()
    _delete_two_factor(session=session, user=user)
    record_audit(
        session=session,
        action="two_factor.reset",
        actor=actor,
        target_type="user",
        target_id=user.id,
        ip_address=ip_address,
    )


def _use_totp_code(*, session: Session, user: User, secret: str, code: str) -> None:
    step = _matching_step(secret=secret, code=code)
    if step is None:
        raise InvalidCode()
    # Compare-and-set in one statement: two requests carrying the same code race here, and only one
    # moves last_used_step forward (PostgreSQL re-checks the WHERE after the first commits; SQLite
    # runs one writer at a time). It also refuses an older step once a newer one was used.
    result = session.exec(  # type: ignore[call-overload]
        update(TotpCredential)
        .where(
            col(TotpCredential.user_id) == user.id,
            col(TotpCredential.confirmed_at).is_not(None),
            col(TotpCredential.last_used_step) < step,
        )
        .values(last_used_step=step)
    )
    if result.rowcount != 1:
        raise CodeAlreadyUsed()


def _use_recovery_code(*, session: Session, user: User, code: str) -> None:
    if len(code) != RECOVERY_CODE_LENGTH or any(symbol not in RECOVERY_ALPHABET for symbol in code):
        raise InvalidCode()
    code_hash = digest_code(code, purpose=RECOVERY_PURPOSE)
    # Consume with a conditional UPDATE so two concurrent uses of one code cannot both succeed.
    result = session.exec(  # type: ignore[call-overload]
        update(RecoveryCode)
        .where(
            col(RecoveryCode.user_id) == user.id,
            col(RecoveryCode.code_hash) == code_hash,
            col(RecoveryCode.used_at).is_(None),
        )
        .values(used_at=utcnow())
    )
    if result.rowcount != 1:
        known = select(RecoveryCode.id).where(RecoveryCode.user_id == user.id, RecoveryCode.code_hash == code_hash)
        raise CodeAlreadyUsed() if session.exec(known).first() is not None else InvalidCode()
    remaining = session.exec(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, col(RecoveryCode.used_at).is_(None))
    ).one()
    record_audit(
        session=session,
        action="two_factor.recovery_code_used",
        actor=user,
        target_type="user",
        target_id=user.id,
        data={"remaining": remaining},
    )


def _matching_step(*, secret: str, code: str) -> int | None:
    """The newest time step within the window whose code equals `code`, compared in constant time."""
    if not _TOTP_CODE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret)
    current = int(time.time()) // totp.interval
    matched = None
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            matched = step
    return matched


def _replace_recovery_codes(*, session: Session, user: User) -> list[str]:
    session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))  # type: ignore[call-overload]
    codes: set[str] = set()
    while len(codes) < RECOVERY_CODE_COUNT:
        codes.add("".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH)))
    for code in codes:
        session.add(RecoveryCode(user_id=user.id, code_hash=digest_code(code, purpose=RECOVERY_PURPOSE)))
    session.flush()
    half = RECOVERY_CODE_LENGTH // 2
    return sorted(f"{code[:half]}-{code[half:]}" for code in codes)


def _delete_two_factor(*, session: Session, user: User) -> None:
    session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))  # type: ignore[call-overload]
    session.exec(delete(TotpCredential).where(col(TotpCredential.user_id) == user.id))  # type: ignore[call-overload]


def _lock_user(*, session: Session, user: User) -> None:
    # Serialise 2FA changes per user (enroll, confirm, disable, regenerate, reset) on PostgreSQL;
    # SQLite's BEGIN IMMEDIATE already runs one writer at a time.
    session.exec(for_update(select(User.id).where(User.id == user.id))).first()


def _get_credential(*, session: Session, user: User) -> TotpCredential | None:
    return session.exec(select(TotpCredential).where(TotpCredential.user_id == user.id)).first()


def _open(credential: TotpCredential) -> str:
    return open_secret(credential.secret_encrypted, purpose=SEAL_PURPOSE).decode()


def _normalize(code: str) -> str:
    """Codes as people type them: any case, with spaces or dashes; O, I and L read as 0, 1, 1."""
    cleaned = "".join(symbol for symbol in code.lower() if not symbol.isspace() and symbol != "-")
    return cleaned.translate(_CONFUSABLES)


def _qr_svg_data_url(uri: str) -> str:
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathFillImage, box_size=10, border=2)
    svg = image.to_string(encoding="unicode")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
