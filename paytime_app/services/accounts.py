"""Signing up, verifying email, signing in step by step, and resetting passwords.

Design overview: signing in is a short sequence of proofs, each leaving a single-use challenge for
the next: the password, then the second factor if the user enrolled one, then an emailed code if
the device is new (when that check is on). When every proof is in, the browser gets a session
ticket (60 seconds, single use, bound to the device cookie) that an API route exchanges for the
HttpOnly session cookie; API clients get their tokens directly. Answers never reveal whether an
email is registered: unknown emails cost the same password-hashing time and get the same words.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlmodel import Session, select

from paytime_app.errors import AuthenticationRequired, DomainError, PermissionDenied, ValidationFailed
from paytime_app.models.base import utcnow
from paytime_app.models.sessions import ChallengePurpose, KnownDevice, UserSession
from paytime_app.models.users import User
from paytime_app.services import rate_limits
from paytime_app.services.audit import record_audit
from paytime_app.services.challenges import (
    consume_code,
    consume_link,
    issue_challenge,
    peek_challenge,
    void_pending_sign_ins,
)
from paytime_app.services.crypto import new_token
from paytime_app.services.jobs import enqueue_job, job_handler
from paytime_app.services.mail import queue_mail
from paytime_app.services.oauth import OAuthProfile, list_linked_providers, sign_in_with_oauth
from paytime_app.services.passwords import (
    check_password_strength,
    hash_password,
    spend_verification_time,
    verify_password,
)
from paytime_app.services.sessions import (
    AccountDisabled,
    ClientInfo,
    IssuedSession,
    issue_api_tokens,
    list_active_sessions,
    revoke_all_sessions,
    start_browser_session,
)
from paytime_app.services.two_factor import has_two_factor, verify_second_factor
from paytime_app.services.users import create_user, get_user_by_email, normalize_email
from paytime_app.settings import get_settings

VERIFY_EMAIL_LIFETIME = timedelta(hours=48)
RESET_PASSWORD_LIFETIME = timedelta(hours=1)
SIGN_IN_STEP_LIFETIME = timedelta(minutes=5)
DEVICE_CODE_LIFETIME = timedelta(minutes=5)
SESSION_TICKET_LIFETIME = timedelta(seconds=60)


class InvalidCredentials(AuthenticationRequired):
    code = "invalid_credentials"
    default_message = "That email and password don't match an account."


class EmailNotVerified(PermissionDenied):
    code = "email_not_verified"
    default_message = "Confirm your email address first. We can send the link again."


class SecondFactorRequired(AuthenticationRequired):
    code = "otp_required"
    default_message = "Enter the 6-digit code from your authenticator app."


class DeviceCheckRequired(AuthenticationRequired):
    code = "device_check_required"
    keeps_changes = True  # the emailed code and its challenge must outlive this refusal
    default_message = "We emailed you a 6-digit code to confirm this new device."


class SignInStepKind(StrEnum):
    SECOND_FACTOR = "second_factor"
    DEVICE_CODE = "device_code"
    DONE = "done"


@dataclass(frozen=True)
class SignInStep:
    """What the person must do next; `token` carries the sign-in to that step."""

    kind: SignInStepKind
    user: User
    token: str = ""
    email_hint: str = ""


def _ip_key(client: ClientInfo) -> str:
    return rate_limits.ip_rate_limit_key(client.ip_address or "unknown")


def device_hash(device_token: str | None) -> str | None:
    return hashlib.sha256(device_token.encode()).hexdigest() if device_token else None


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}{'•' * max(len(local) - 1, 2)}@{domain}"


# --- sign up and email verification -------------------------------------------------------------


def register_account(
    *, session: Session, email: str, password: str, display_name: str, base_url: str, client: ClientInfo
) -> None:
    """Create an unverified account and email its verification link.

    The outcome looks the same whether or not the email was registered: the owner of an existing
    account gets a note instead of a second account. Raises WeakPassword, ValidationFailed,
    RateLimited.
    """
    rate_limits.enforce_rate_limit(rate_limits.SIGN_UP_PER_IP, _ip_key(client))
    email = normalize_email(email)
    check_password_strength(password, email=email)
    existing = get_user_by_email(session=session, email=email)
    if existing is not None:
        spend_verification_time(password)
        queue_mail(
            session=session,
            to_address=email,
            subject="Someone tried to sign up with your email",
            body_text=(
                f"Someone tried to create a PayTime account with {email}.\n\n"
                f"If it was you, sign in at {base_url}/sign-in or reset your password at "
                f"{base_url}/forgot-password. If not, you can ignore this email."
            ),
        )
        return
    user = create_user(session=session, email=email, display_name=display_name, password=password)
    _send_verification(session=session, user=user, base_url=base_url)


def _send_verification(*, session: Session, user: User, base_url: str) -> None:
    issued = issue_challenge(
        session=session, user=user, purpose=ChallengePurpose.VERIFY_EMAIL, lifetime=VERIFY_EMAIL_LIFETIME
    )
    queue_mail(
        session=session,
        to_address=user.email,
        subject="Confirm your email for PayTime",
        body_text=(
            f"Hi {user.display_name},\n\nConfirm your email address to start using PayTime:\n"
            f"{base_url}/verify-email?token={issued.token}\n\nThe link works once, for 48 hours."
        ),
    )


def verify_email(*, session: Session, token: str) -> User:
    """Mark the email behind a verification link as confirmed.

    Raises LinkInvalid or LinkExpired.
    """
    challenge = consume_link(session=session, token=token, purpose=ChallengePurpose.VERIFY_EMAIL)
    user = session.get(User, challenge.user_id)
    assert user is not None
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    return user


def resend_verification(*, session: Session, email: str, base_url: str, client: ClientInfo) -> None:
    """Send a fresh verification link if the account exists and is unverified; silent otherwise.

    Raises RateLimited.
    """
    rate_limits.enforce_rate_limit(rate_limits.SIGN_UP_PER_IP, _ip_key(client))
    user = get_user_by_email(session=session, email=email)
    if user is not None and user.is_active and user.email_verified_at is None:
        _send_verification(session=session, user=user, base_url=base_url)


# --- signing in ---------------------------------------------------------------------------------


def sign_in_with_password(
    *,
    session: Session,
    email: str,
    password: str,
    client: ClientInfo,
    device_token: str | None,
    for_browser: bool = False,
) -> SignInStep:
    """First proof: the password. A browser's finished sign-in carries a session ticket.

    Raises InvalidCredentials, EmailNotVerified, AccountDisabled, RateLimited.
    """
    account_key = email.strip().lower()
    rate_limits.enforce_rate_limit(rate_limits.SIGN_IN_PER_IP, _ip_key(client))
    if not account_key:
        # No account to count the attempt against; answered like an unknown email, in as long.
        spend_verification_time(password)
        raise InvalidCredentials()
    rate_limits.enforce_rate_limit(rate_limits.SIGN_IN_PER_ACCOUNT, account_key)
    user = get_user_by_email(session=session, email=account_key)
    if user is None or user.password_hash is None:
        spend_verification_time(password)
        raise InvalidCredentials()
    if not verify_password(user.password_hash, password):
        raise InvalidCredentials()
    if not user.is_active:
        raise AccountDisabled()
    if user.email_verified_at is None:
        raise EmailNotVerified()
    rate_limits.clear_rate_limit(rate_limits.SIGN_IN_PER_ACCOUNT, account_key)
    step = next_sign_in_step(session=session, user=user, device_token=device_token, second_factor_done=False)
    return _with_ticket(session, step, device_token) if for_browser else step


def next_sign_in_step(
    *, session: Session, user: User, device_token: str | None, second_factor_done: bool
) -> SignInStep:
    """The next proof this sign-in still needs, or DONE."""
    if not second_factor_done and has_two_factor(session=session, user=user):
        issued = issue_challenge(
            session=session,
            user=user,
            purpose=ChallengePurpose.SECOND_FACTOR,
            lifetime=SIGN_IN_STEP_LIFETIME,
            context={"device": device_hash(device_token)},
        )
        return SignInStep(kind=SignInStepKind.SECOND_FACTOR, user=user, token=issued.token)
    if get_settings().new_device_check_enabled and not _is_known_device(session, user, device_token):
        # Each sign-in mails a fresh code; cap them so a leaked password can't keep guessing (or flood the inbox).
        rate_limits.enforce_rate_limit(rate_limits.DEVICE_CODES_PER_ACCOUNT, f"user:{user.id}")
        issued = issue_challenge(
            session=session,
            user=user,
            purpose=ChallengePurpose.NEW_DEVICE,
            lifetime=DEVICE_CODE_LIFETIME,
            with_code=True,
            context={"device": device_hash(device_token)},
        )
        queue_mail(
            session=session,
            to_address=user.email,
            subject=f"{issued.code} is your PayTime sign-in code",
            body_text=(
                f"Someone is signing in to your PayTime account from a new device.\n\n"
                f"Your code: {issued.code}\n\nIt works once, for 5 minutes. If this wasn't you, "
                "change your password now."
            ),
        )
        return SignInStep(
            kind=SignInStepKind.DEVICE_CODE, user=user, token=issued.token, email_hint=mask_email(user.email)
        )
    return SignInStep(kind=SignInStepKind.DONE, user=user)


def _is_known_device(session: Session, user: User, device_token: str | None) -> bool:
    digest = device_hash(device_token)
    return (
        digest is not None
        and session.exec(
            select(KnownDevice).where(KnownDevice.user_id == user.id, KnownDevice.device_hash == digest)
        ).first()
        is not None
    )


def _pending_user(session: Session, challenge_user_id: object) -> User:
    user = session.get(User, challenge_user_id)
    if user is None or not user.is_active:
        raise AccountDisabled()
    return user


def submit_second_factor(
    *, session: Session, pending_token: str, code: str, device_token: str | None, for_browser: bool = False
) -> SignInStep:
    """Second proof: a TOTP or recovery code.

    Raises LinkInvalid/LinkExpired (the step timed out), InvalidCode, CodeAlreadyUsed, RateLimited.
    """
    challenge = peek_challenge(session=session, token=pending_token, purpose=ChallengePurpose.SECOND_FACTOR)
    if challenge.context.get("device") != device_hash(device_token):
        raise DomainError("This sign-in step belongs to another browser. Start again.", code="link_invalid")
    user = _pending_user(session, challenge.user_id)
    verify_second_factor(session=session, user=user, code=code)
    consume_link(session=session, token=pending_token, purpose=ChallengePurpose.SECOND_FACTOR)
    step = next_sign_in_step(session=session, user=user, device_token=device_token, second_factor_done=True)
    return _with_ticket(session, step, device_token) if for_browser else step


def submit_device_code(
    *, session: Session, pending_token: str, code: str, device_token: str | None, for_browser: bool = False
) -> SignInStep:
    """Last proof on a new device: the emailed code.

    Raises CodeInvalid, CodeExpired, TooManyAttempts, LinkInvalid.
    """
    challenge = consume_code(session=session, token=pending_token, purpose=ChallengePurpose.NEW_DEVICE, code=code)
    if challenge.context.get("device") != device_hash(device_token):
        raise DomainError("This sign-in step belongs to another browser. Start again.", code="link_invalid")
    step = SignInStep(kind=SignInStepKind.DONE, user=_pending_user(session, challenge.user_id))
    return _with_ticket(session, step, device_token) if for_browser else step


def remember_device(*, session: Session, user: User, device_token: str, label: str) -> None:
    """Record the device as seen, so it skips the new-device check next time."""
    digest = device_hash(device_token)
    known = session.exec(
        select(KnownDevice).where(KnownDevice.user_id == user.id, KnownDevice.device_hash == digest)
    ).first()
    if known is None:
        session.add(KnownDevice(user_id=user.id, device_hash=digest or "", label=label[:120]))
    else:
        known.last_seen_at = utcnow()


def _with_ticket(session: Session, step: SignInStep, device_token: str | None) -> SignInStep:
    """A finished browser sign-in gets a 60-second single-use ticket to exchange for its cookie."""
    if step.kind is not SignInStepKind.DONE:
        return step
    issued = issue_challenge(
        session=session,
        user=step.user,
        purpose=ChallengePurpose.SESSION_TICKET,
        lifetime=SESSION_TICKET_LIFETIME,
        context={"device": device_hash(device_token)},
    )
    return dataclasses.replace(step, token=issued.token)


@dataclass(frozen=True)
class OpenedSession:
    issued: IssuedSession
    device_token: str


def open_browser_session(
    *, session: Session, ticket: str, device_token: str | None, client: ClientInfo
) -> OpenedSession:
    """Exchange a sign-in ticket for a new session; the ticket only works from the device it was issued for.

    The device is remembered (given a device token if it had none) so it skips the new-device check
    next time. Raises LinkInvalid, LinkExpired, AccountDisabled.
    """
    challenge = consume_link(session=session, token=ticket, purpose=ChallengePurpose.SESSION_TICKET)
    if challenge.context.get("device") != device_hash(device_token):
        raise DomainError("This sign-in link belongs to another browser.", code="link_invalid")
    user = _pending_user(session, challenge.user_id)
    device_token = device_token or new_token()
    remember_device(session=session, user=user, device_token=device_token, label=client.user_agent or "")
    issued = start_browser_session(session=session, user=user, client=client)
    return OpenedSession(issued=issued, device_token=device_token)


# --- password reset -----------------------------------------------------------------------------


def request_password_reset(*, session: Session, email: str, base_url: str, client: ClientInfo) -> None:
    """Queue a reset email; the lookup happens in a background job, so the answer and its timing are
    the same whether or not the email is registered.

    Raises ValidationFailed (no email given), RateLimited.
    """
    account_key = email.strip().lower()[:254]
    if not account_key:
        raise ValidationFailed("Enter the email address of your account.", code="invalid_email")
    rate_limits.enforce_rate_limit(rate_limits.PASSWORD_RESET_PER_IP, _ip_key(client))
    rate_limits.enforce_rate_limit(rate_limits.PASSWORD_RESET_PER_ACCOUNT, account_key)
    enqueue_job(
        session=session, kind="accounts.send_password_reset", payload={"email": account_key, "base_url": base_url}
    )


@job_handler("accounts.send_password_reset")
def send_password_reset(*, session: Session, payload: dict[str, Any]) -> None:
    """Email a reset link if the account exists and is active; otherwise do nothing."""
    user = get_user_by_email(session=session, email=payload["email"])
    if user is None or not user.is_active:
        return
    issued = issue_challenge(
        session=session, user=user, purpose=ChallengePurpose.RESET_PASSWORD, lifetime=RESET_PASSWORD_LIFETIME
    )
    queue_mail(
        session=session,
        to_address=user.email,
        subject="Reset your PayTime password",
        body_text=(
            f"Hi {user.display_name},\n\nChoose a new password here:\n"
            f"{payload['base_url']}/reset-password?token={issued.token}\n\n"
            "The link works once, for one hour. If you didn't ask for it, ignore this email."
        ),
    )


def reset_password(*, session: Session, token: str, new_password: str, client: ClientInfo) -> User:
    """Set a new password from a reset link and end every session of the account.

    Raises LinkInvalid, LinkExpired, WeakPassword.
    """
    challenge = peek_challenge(session=session, token=token, purpose=ChallengePurpose.RESET_PASSWORD)
    user = session.get(User, challenge.user_id)
    assert user is not None
    check_password_strength(new_password, email=user.email)
    consume_link(session=session, token=token, purpose=ChallengePurpose.RESET_PASSWORD)
    user.password_hash = hash_password(new_password)
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()  # the link proved the mailbox is theirs
    revoke_all_sessions(session=session, user=user, reason="password_reset")
    void_pending_sign_ins(session=session, user=user)
    record_audit(
        session=session,
        action="account.password_reset",
        actor=user,
        target_type="user",
        target_id=user.id,
        ip_address=client.ip_address,
    )
    queue_mail(
        session=session,
        to_address=user.email,
        subject="Your PayTime password was changed",
        body_text="Your password was just changed and every device was signed out. "
        "If this wasn't you, reset your password again and contact support.",
    )
    return user


def check_reset_link(*, session: Session, token: str) -> None:
    """Whether a reset link can still be used, so the page can say so before the user types.

    Raises LinkInvalid or LinkExpired.
    """
    peek_challenge(session=session, token=token, purpose=ChallengePurpose.RESET_PASSWORD)


# --- the account page ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountOverview:
    user: User
    two_factor_enabled: bool
    linked_providers: list[str]
    sessions: list[UserSession]


def get_account_overview(*, session: Session, actor: User) -> AccountOverview:
    """What the account page shows the signed-in user about their own account."""
    return AccountOverview(
        user=actor,
        two_factor_enabled=has_two_factor(session=session, user=actor),
        linked_providers=list_linked_providers(session=session, user=actor),
        sessions=list_active_sessions(session=session, user=actor),
    )


def sign_out_everywhere(*, session: Session, actor: User) -> int:
    """End every session of the actor, this one included; returns how many were ended."""
    return len(revoke_all_sessions(session=session, user=actor, reason="signed_out_everywhere"))


def sign_in_with_provider(*, session: Session, profile: OAuthProfile, device_token: str | None) -> SignInStep:
    """Sign in (or up) with a verified Google/GitHub identity; 2FA and the new-device check still apply.

    Raises OAuthEmailInUse, OAuthEmailMissing, AccountDisabled.
    """
    user = sign_in_with_oauth(session=session, profile=profile)
    step = next_sign_in_step(session=session, user=user, device_token=device_token, second_factor_done=False)
    return _with_ticket(session, step, device_token)


# --- API clients ----------------------------------------------------------------------------------


def sign_in_for_api(
    *, session: Session, email: str, password: str, otp: str | None, device_token: str | None, client: ClientInfo
) -> IssuedSession:
    """Password (and TOTP) in one request; a new device first gets an emailed code to confirm.

    Raises InvalidCredentials, EmailNotVerified, AccountDisabled, RateLimited, SecondFactorRequired,
    InvalidCode, CodeAlreadyUsed, DeviceCheckRequired (details carry the challenge to answer).
    """
    step = sign_in_with_password(
        session=session, email=email, password=password, client=client, device_token=device_token
    )
    if step.kind is SignInStepKind.SECOND_FACTOR:
        if not otp:
            raise SecondFactorRequired()
        step = submit_second_factor(session=session, pending_token=step.token, code=otp, device_token=device_token)
    if step.kind is SignInStepKind.DEVICE_CODE:
        raise DeviceCheckRequired(challenge=step.token, sent_to=step.email_hint)
    return _issue_for_device(session, step.user, device_token, client)


def confirm_api_device(
    *, session: Session, challenge: str, code: str, device_token: str | None, client: ClientInfo
) -> IssuedSession:
    """Answer the new-device check with the emailed code and receive tokens.

    Raises CodeInvalid, CodeExpired, TooManyAttempts, LinkInvalid.
    """
    step = submit_device_code(session=session, pending_token=challenge, code=code, device_token=device_token)
    return _issue_for_device(session, step.user, device_token, client)


def _issue_for_device(session: Session, user: User, device_token: str | None, client: ClientInfo) -> IssuedSession:
    if device_token:
        remember_device(session=session, user=user, device_token=device_token, label=client.user_agent or "API")
    return issue_api_tokens(session=session, user=user, client=client)
