"""Accounts: creation and lookups. Sign-in, sessions and roles management build on these."""

from __future__ import annotations

from sqlmodel import Session, select

from paytime_app.errors import Conflict, ValidationFailed
from paytime_app.models.base import utcnow
from paytime_app.models.users import Role, User
from paytime_app.services.passwords import hash_password


class EmailTaken(Conflict):
    code = "email_taken"
    default_message = "An account with that email already exists."


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or " " in email or len(email) > 254:
        raise ValidationFailed("Enter a valid email address.", code="invalid_email")
    return email


def get_user_by_email(*, session: Session, email: str) -> User | None:
    return session.exec(select(User).where(User.email == email.strip().lower())).first()


def create_user(
    *,
    session: Session,
    email: str,
    display_name: str,
    password: str | None,
    role: Role = Role.CUSTOMER,
    email_verified: bool = False,
) -> User:
    """Create an account.

    Raises EmailTaken if the email is registered, ValidationFailed for a malformed email or name.
    """
    email = normalize_email(email)
    display_name = display_name.strip()
    if not 1 <= len(display_name) <= 80:
        raise ValidationFailed("Enter a name of 1 to 80 characters.", code="invalid_name")
    if get_user_by_email(session=session, email=email) is not None:
        raise EmailTaken()
    user = User(
        email=email,
        display_name=display_name,
        password_hash=hash_password(password) if password else None,
        role=role,
        email_verified_at=utcnow() if email_verified else None,
    )
    session.add(user)
    session.flush()
    return user
