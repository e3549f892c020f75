"""Accounts: creation, lookups, and administration by staff."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import Session, col, func, or_, select

from paytime_app.db import for_update
from paytime_app.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from paytime_app.models.base import utcnow
from paytime_app.models.sessions import ChallengePurpose
from paytime_app.models.users import Role, User
from paytime_app.services.access import may_grant, may_manage, require_staff_reader, require_user_manager
from paytime_app.services.audit import record_audit
from paytime_app.services.challenges import issue_challenge
from paytime_app.services.mail import queue_mail
from paytime_app.services.paging import page_bounds, page_count
from paytime_app.services.passwords import hash_password
from paytime_app.services.sessions import revoke_all_sessions
from paytime_app.services.two_factor import reset_two_factor


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


# --- user administration (admins change, viewers read) ------------------------------------------


@dataclass(frozen=True)
class UserPage:
    users: list[User]
    total: int
    page: int
    page_size: int
    manageable_ids: frozenset[uuid.UUID]
    grantable_roles: list[Role]

    @property
    def total_pages(self) -> int:
        return page_count(self.total, self.page_size)


def search_users(
    *, session: Session, actor: User, query: str = "", role: Role | None = None, page: int = 1, page_size: int = 25
) -> UserPage:
    """Users matching a name or email fragment, newest first; a page past the last one reads the last.

    Raises PermissionDenied unless the actor is staff.
    """
    require_staff_reader(actor)
    page, page_size = page_bounds(page, page_size)
    statement = select(User)
    if query.strip():
        pattern = f"%{query.strip().lower()}%"
        statement = statement.where(or_(col(User.email).ilike(pattern), col(User.display_name).ilike(pattern)))
    if role is not None:
        statement = statement.where(User.role == role)
    total = session.exec(select(func.count()).select_from(statement.subquery())).one()
    page = min(page, page_count(total, page_size))  # an old link or a hand-typed page lands on the last one
    users = session.exec(
        statement.order_by(col(User.created_at).desc(), col(User.id)).offset((page - 1) * page_size).limit(page_size)
    ).all()
    return UserPage(
        users=list(users),
        total=total,
        page=page,
        page_size=page_size,
        manageable_ids=frozenset(user.id for user in users if may_manage(actor, user)),
        grantable_roles=[role for role in Role if may_grant(actor, role)],
    )


def _managed_user(session: Session, actor: User, user_id: uuid.UUID) -> User:
    require_user_manager(actor)
    target = session.exec(for_update(select(User).where(User.id == user_id))).first()
    if target is None:
        raise NotFound("That user does not exist.")
    if not may_manage(actor, target):
        raise PermissionDenied(
            "You can't change this account."
            if actor.id != target.id
            else "You can't change your own role or status here."
        )
    return target


def change_user_role(
    *, session: Session, actor: User, user_id: uuid.UUID, role: Role, ip_address: str | None = None
) -> User:
    """Give a user another role.

    Raises PermissionDenied (viewer, own account, admin targets or admin roles unless super_admin), NotFound.
    """
    target = _managed_user(session, actor, user_id)
    if not may_grant(actor, role):
        raise PermissionDenied("Only a super admin can grant that role.")
    if target.role != role:
        record_audit(
            session=session,
            action="user.role_changed",
            actor=actor,
            target_type="user",
            target_id=target.id,
            ip_address=ip_address,
            data={"from": target.role, "to": role},
        )
        target.role = role
    return target


def set_user_active(
    *, session: Session, actor: User, user_id: uuid.UUID, active: bool, ip_address: str | None = None
) -> User:
    """Disable or re-enable an account; disabling ends its sessions at once, open tabs included.

    Raises PermissionDenied, NotFound.
    """
    target = _managed_user(session, actor, user_id)
    if target.is_active == active:
        return target
    target.is_active = active
    record_audit(
        session=session,
        action="user.enabled" if active else "user.disabled",
        actor=actor,
        target_type="user",
        target_id=target.id,
        ip_address=ip_address,
    )
    if not active:
        revoke_all_sessions(session=session, user=target, reason="account_disabled")
    return target


INVITATION_LIFETIME = timedelta(days=3)


def invite_user(
    *,
    session: Session,
    actor: User,
    email: str,
    display_name: str,
    role: Role,
    base_url: str,
    ip_address: str | None = None,
) -> User:
    """Create an account with a role and email its owner a link to choose a password.

    The account has no password until then, so nobody (the admin included) can sign in to it.
    Raises PermissionDenied (viewers; roles only a super admin grants), EmailTaken, ValidationFailed.
    """
    require_user_manager(actor)
    if not may_grant(actor, role):
        raise PermissionDenied("Only a super admin can grant that role.")
    user = create_user(
        session=session, email=email, display_name=display_name, password=None, role=role, email_verified=True
    )
    # The password-reset link doubles as the invitation: the same single-use token and page.
    issued = issue_challenge(
        session=session, user=user, purpose=ChallengePurpose.RESET_PASSWORD, lifetime=INVITATION_LIFETIME
    )
    queue_mail(
        session=session,
        to_address=user.email,
        subject="You have a PayTime account",
        body_text=(
            f"Hi {user.display_name},\n\n{actor.display_name} created a PayTime account for you ({role}).\n"
            f"Choose your password here:\n{base_url}/reset-password?token={issued.token}\n\n"
            "The link works once, for three days."
        ),
    )
    record_audit(
        session=session,
        action="user.created",
        actor=actor,
        target_type="user",
        target_id=user.id,
        ip_address=ip_address,
        data={"role": str(role)},
    )
    return user


def reset_user_two_factor(*, session: Session, actor: User, user_id: uuid.UUID, ip_address: str | None = None) -> User:
    """Turn off a user's 2FA (they lost their phone and their recovery codes).

    Raises PermissionDenied, NotFound, TwoFactorNotEnabled.
    """
    target = _managed_user(session, actor, user_id)
    reset_two_factor(session=session, user=target, actor=actor, ip_address=ip_address)
    return target
