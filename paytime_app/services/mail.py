"""Outgoing mail through the durable job queue: SMTP when configured, else the dev mailbox.

Attachments are stored by reference (a kind, such as `booking_tickets`, and the id of what to
render), not as bytes: a booking's tickets are already rows, a PDF of 20 tickets with their QR codes
would be megabytes copied into the outbox, and the renderer registered for the kind (bookings
registers the ticket PDF) makes the file when the message is sent, off the buyer's request. A
retried or later-downloaded message therefore shows the tickets as they are then (a ticket cancelled
meanwhile says so), which is what the recipient should hold.
"""

from __future__ import annotations

import smtplib
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from typing import Any, Protocol

from sqlmodel import Session, col, select

from paytime_app.errors import NotFound
from paytime_app.models.base import utcnow
from paytime_app.models.mail import MailMessage, MailStatus
from paytime_app.models.users import User
from paytime_app.services.jobs import enqueue_job, job_handler
from paytime_app.settings import get_settings

SMTP_TIMEOUT_SECONDS = 15


@dataclass(frozen=True)
class Attachment:
    kind: str  # a registered renderer
    ref: str  # what it renders, e.g. a booking id
    filename: str
    content_type: str


class AttachmentRenderer(Protocol):
    def __call__(self, *, session: Session, ref: str) -> bytes: ...


_RENDERERS: dict[str, AttachmentRenderer] = {}


def attachment_renderer(kind: str) -> Callable[[AttachmentRenderer], AttachmentRenderer]:
    """Register the function that makes the bytes of attachments of `kind`."""

    def register(renderer: AttachmentRenderer) -> AttachmentRenderer:
        _RENDERERS[kind] = renderer
        return renderer

    return register


def queue_mail(
    *, session: Session, to_address: str, subject: str, body_text: str, attachments: tuple[Attachment, ...] = ()
) -> MailMessage:
    """Store a message and its delivery job in the caller's transaction."""
    unknown = [attachment.kind for attachment in attachments if attachment.kind not in _RENDERERS]
    if unknown:
        raise ValueError(f"no renderer registered for attachments {unknown!r}")
    message = MailMessage(
        to_address=to_address.lower(),
        subject=subject,
        body_text=body_text,
        attachments=[asdict(attachment) for attachment in attachments],
    )
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
        _send_smtp(build_email(session=session, message=message))
        message.delivered_via = "smtp"
    elif settings.dev_mailbox_enabled:
        message.delivered_via = "dev_mailbox"  # attachments are made when the recipient downloads them
    else:
        raise RuntimeError("SMTP_HOST is not configured, so mail cannot be delivered")
    message.status = MailStatus.SENT
    message.sent_at = utcnow()


def build_email(*, session: Session, message: MailMessage) -> EmailMessage:
    """The MIME message: plain text alone, or multipart/mixed with each attachment rendered now."""
    email = EmailMessage()
    email["From"] = get_settings().mail_from
    email["To"] = message.to_address
    email["Subject"] = message.subject
    email["Message-ID"] = f"<{message.id}@paytime>"
    email.set_content(message.body_text)
    for index in range(len(message.attachments)):
        filename, content_type, content = _render(session, message, index)
        maintype, subtype = content_type.split("/", 1)
        email.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return email


def _send_smtp(email: EmailMessage) -> None:
    settings = get_settings()
    with smtplib.SMTP(settings.smtp_host or "", settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password or "")
        smtp.send_message(email)


def _render(session: Session, message: MailMessage, index: int) -> tuple[str, str, bytes]:
    attachment = Attachment(**message.attachments[index])
    content = _RENDERERS[attachment.kind](session=session, ref=attachment.ref)
    return attachment.filename, attachment.content_type, content


def _require_dev_mailbox() -> None:
    if not get_settings().dev_mailbox_enabled:
        raise NotFound("The dev mailbox is only available when no SMTP server is configured.")


def list_dev_mailbox(*, session: Session, to_address: str | None = None, limit: int = 50) -> list[MailMessage]:
    """Newest mail for the dev mailbox page; absent (NotFound) wherever real mail is configured.

    Raises NotFound when the dev mailbox is disabled.
    """
    _require_dev_mailbox()
    statement = select(MailMessage).order_by(col(MailMessage.created_at).desc()).limit(limit)
    if to_address:
        statement = statement.where(col(MailMessage.to_address).contains(to_address.strip().lower()))
    return list(session.exec(statement).all())


def download_dev_attachment(*, session: Session, actor: User, mail_id: uuid.UUID, index: int) -> tuple[str, str, bytes]:
    """An attachment of a dev-mailbox message, for its recipient only: (filename, content type, bytes).

    Raises NotFound (dev mailbox disabled, no such message or attachment, or not the recipient).
    """
    _require_dev_mailbox()
    message = session.get(MailMessage, mail_id)
    if message is None or message.to_address != actor.email.lower() or not 0 <= index < len(message.attachments):
        raise NotFound("That attachment does not exist.")
    return _render(session, message, index)
