"""Outgoing mail through the durable job queue: SMTP when configured, else the dev mailbox."""

from __future__ import annotations

import smtplib
import uuid
from email.message import EmailMessage
from typing import Any

from sqlmodel import Session, col, select

from paytime_app.errors import NotFound
from paytime_app.models.base import utcnow
from paytime_app.models.mail import MailMessage, MailStatus
from paytime_app.services.jobs import enqueue_job, job_handler
from paytime_app.settings import get_settings

SMTP_TIMEOUT_SECONDS = 15


def queue_mail(*, session: Session, to_address: str, subject: str, body_text: str) -> MailMessage:
    """Store a message and its delivery job in the caller's transaction."""
    message = MailMessage(to_address=to_address.lower(), subject=subject, body_text=body_text)
    session.add(message)
    session.flush()
    enqueue_job(session=session, kind="mail.deliver", payload={"mail_id": str(message.id)})
    return message


@job_handler("mail.deliver")
def deliver_mail(*, session: Session, payload: dict[str, Any]) -> None:
    """Send one stored message; a message already sent is left alone (the job may be retried)."""
    message = session.get(MailMessage, uuid.UUID(payload["mail_id"]))
    if message is None or message.status == MailStatus.SENT:
        return
    settings = get_settings()
    if settings.smtp_host:
        _send_smtp(message)
        message.delivered_via = "smtp"
    elif settings.dev_mailbox_enabled:
        message.delivered_via = "dev_mailbox"
    else:
        raise RuntimeError("SMTP_HOST is not configured, so mail cannot be delivered")
    message.status = MailStatus.SENT
    message.sent_at = utcnow()


def _send_smtp(message: MailMessage) -> None:
    settings = get_settings()
    email = EmailMessage()
    email["From"] = settings.mail_from
    email["To"] = message.to_address
    email["Subject"] = message.subject
    email["Message-ID"] = f"<{message.id}@paytime>"
    email.set_content(message.body_text)
    with smtplib.SMTP(settings.smtp_host or "", settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password or "")
        smtp.send_message(email)


def list_dev_mailbox(*, session: Session, to_address: str | None = None, limit: int = 50) -> list[MailMessage]:
    """Newest mail for the dev mailbox page; absent (NotFound) wherever real mail is configured.

    Raises NotFound when the dev mailbox is disabled.
    """
    if not get_settings().dev_mailbox_enabled:
        raise NotFound("The dev mailbox is only available when no SMTP server is configured.")
    statement = select(MailMessage).order_by(col(MailMessage.created_at).desc()).limit(limit)
    if to_address:
        statement = statement.where(col(MailMessage.to_address).contains(to_address.strip().lower()))
    return list(session.exec(statement).all())
