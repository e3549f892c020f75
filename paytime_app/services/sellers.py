"""Becoming a seller: a customer applies, a super_admin approves (the seller role) or rejects with a reason.

The applicant hears the decision twice: an email through the durable outbox and a live message to
their open tabs, both written in the same transaction as the decision.
"""

from __future__ import annotations

import re
import uuid

from sqlmodel import Session, col, func, select

from paytime_app.bus import publish_after_commit
from paytime_app.db import for_update
from paytime_app.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from paytime_app.models.base import utcnow
from paytime_app.models.sellers import ApplicationStatus, SellerApplication
from paytime_app.models.users import Role, User
from paytime_app.services.access import require_staff_reader
from paytime_app.services.audit import record_audit
from paytime_app.services.mail import queue_mail
from paytime_app.services.paging import page_bounds

TOPIC = "seller.application_decided"
SELLING_ROLES = frozenset({Role.SELLER, Role.ADMIN, Role.SUPER_ADMIN})
APPLICATIONS_PAGE_SIZE = 50
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"\+?[0-9 ()-]{6,20}")


class ApplicationPending(Conflict):
    code = "application_pending"
    default_message = "You already have an application waiting for a decision."


class AlreadySeller(Conflict):
    code = "already_seller"
    default_message = "You can already sell tickets."


class ApplicationDecided(Conflict):
    code = "application_decided"
    default_message = "This application has already been decided."


def apply_to_sell(
    *,
    session: Session,
    actor: User,
    organisation_name: str,
    contact_email: str,
    payout_country: str,
    contact_phone: str = "",
) -> SellerApplication:
    """Ask to become a seller. Raises ValidationFailed, AlreadySeller, ApplicationPending."""
    name = organisation_name.strip()
    email = contact_email.strip().lower()
    country = payout_country.strip().upper()
    phone = contact_phone.strip()
    if not 2 <= len(name) <= 120:
        raise ValidationFailed("Enter your organisation's name (2 to 120 characters).", code="invalid_organisation")
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise ValidationFailed("Enter a contact email address.", code="invalid_email")
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise ValidationFailed("Choose the country you will be paid in.", code="invalid_country")
    if phone and not _PHONE.fullmatch(phone):
        raise ValidationFailed("Enter the phone number with digits only, e.g. +2348012345678.", code="invalid_phone")
    if actor.role in SELLING_ROLES:
        raise AlreadySeller()
    # Lock the applicant: two submits at once must not leave two pending applications.
    session.exec(for_update(select(User.id).where(User.id == actor.id))).one()
    pending = session.exec(
        select(func.count())
        .select_from(SellerApplication)
        .where(SellerApplication.user_id == actor.id, SellerApplication.status == ApplicationStatus.PENDING)
    ).one()
    if pending:
        raise ApplicationPending()
    application = SellerApplication(
        user_id=actor.id, organisation_name=name, contact_email=email, contact_phone=phone, payout_country=country
    )
    session.add(application)
    session.flush()
    record_audit(
        session=session,
        action="seller.applied",
        actor=actor,
        target_type="seller_application",
        target_id=application.id,
        data={"organisation": name},
    )
    return application


def decide_application(
    *, session: Session, actor: User, application_id: uuid.UUID, approve: bool, reason: str = ""
) -> SellerApplication:
    """Approve (the applicant becomes a seller) or reject (a reason is required); notify the applicant.

    Raises PermissionDenied (only a super_admin decides), NotFound, ApplicationDecided, ValidationFailed.
    """
    if actor.role != Role.SUPER_ADMIN:
        raise PermissionDenied("Only a super admin can approve sellers.")
    reason = reason.strip()
    if not approve and not 3 <= len(reason) <= 500:
        raise ValidationFailed("Say why the application is rejected (3 to 500 characters).", code="reason_required")
    application = session.exec(
        for_update(select(SellerApplication).where(SellerApplication.id == application_id)).execution_options(
            populate_existing=True
        )
    ).first()
    if application is None:
        raise NotFound("That application does not exist.")
    if application.status != ApplicationStatus.PENDING:
        raise ApplicationDecided(status=str(application.status))
    applicant = session.get(User, application.user_id)
    assert applicant is not None
    application.status = ApplicationStatus.APPROVED if approve else ApplicationStatus.REJECTED
    application.reason = reason[:500]
    application.decided_by_id = actor.id
    application.decided_at = utcnow()
    session.add(application)
    if approve and applicant.role == Role.CUSTOMER:
        applicant.role = Role.SELLER
        session.add(applicant)
    session.flush()
    record_audit(
        session=session,
        action="seller.approved" if approve else "seller.rejected",
        actor=actor,
        target_type="seller_application",
        target_id=application.id,
        data={"user_id": str(applicant.id), "reason": application.reason},
    )
    if approve:
        subject = "You can now sell tickets on PayTime"
        body = (
            f"Hello {applicant.display_name},\n\nYour application for {application.organisation_name} was approved. "
            "Open PayTime and go to Organizer to create your first event.\n"
        )
    else:
        subject = "Your seller application on PayTime"
        body = (
            f"Hello {applicant.display_name},\n\nYour application for {application.organisation_name} was not "
            f"approved.\n\nReason: {application.reason}\n\nYou can apply again once you have addressed it.\n"
        )
    queue_mail(session=session, to_address=applicant.email, subject=subject, body_text=body)
    publish_after_commit(
        session, TOPIC, user_id=str(applicant.id), application_id=str(application.id), status=str(application.status)
    )
    return application


def get_own_application(*, session: Session, actor: User) -> SellerApplication | None:
    """The actor's latest application, or None."""
    return session.exec(
        select(SellerApplication)
        .where(SellerApplication.user_id == actor.id)
        .order_by(col(SellerApplication.created_at).desc())
        .limit(1)
    ).first()


def list_applications(
    *, session: Session, actor: User, status: ApplicationStatus | None = ApplicationStatus.PENDING, page: int = 1
) -> list[tuple[SellerApplication, User]]:
    """Applications with their applicants, oldest pending first. Raises PermissionDenied unless staff."""
    require_staff_reader(actor)
    page, page_size = page_bounds(page, APPLICATIONS_PAGE_SIZE)
    statement = select(SellerApplication, User).join(User, col(SellerApplication.user_id) == User.id)
    if status is not None:
        statement = statement.where(SellerApplication.status == status)
    rows = session.exec(
        statement.order_by(col(SellerApplication.created_at)).offset((page - 1) * page_size).limit(page_size)
    ).all()
    return [(application, user) for application, user in rows]


def require_seller(actor: User) -> None:
    """Raises PermissionDenied unless the actor may organise events (seller, admin, super_admin)."""
    if actor.role not in SELLING_ROLES:
        raise PermissionDenied("Apply to sell tickets first; a super admin approves sellers.")
