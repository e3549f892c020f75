"""The booking confirmation mail carries the tickets PDF: listed by reference in the outbox, sent as
MIME multipart with application/pdf over SMTP, downloadable from the dev mailbox by its recipient only."""

# ruff: noqa: F811  the fixtures imported from test_bookings are requested by name, as arguments

import pytest
from sqlmodel import col, select

from paytime_app.db import in_transaction, unit_of_work
from paytime_app.errors import NotFound
from paytime_app.models.mail import MailMessage
from paytime_app.services.bookings import cancel_booking, list_booking_tickets, pay_booking
from paytime_app.services.jobs import run_due_jobs
from paytime_app.services.mail import download_dev_attachment
from paytime_app.services.ticket_pdf import render_tickets_pdf
from paytime_app.settings import get_settings
from tests.services.test_bookings import (  # noqa: F401  fixtures are used by name
    _closed_breakers,
    _ledger_stays_consistent,
    book,
    buyer,
    clock,
    new_event,
    organizer,
    person,
    tickets_of,
)
from tests.services.test_mail import smtp_inbox


def paid(organizer, buyer, quantity=2):
    event, ticket_type = new_event(organizer)
    booking = book(buyer, event, ticket_type, quantity)
    return in_transaction(pay_booking, actor=buyer, booking_id=booking.id)


def confirmation(booking) -> MailMessage:
    with unit_of_work() as session:
        return session.exec(select(MailMessage).where(col(MailMessage.subject).contains(booking.reference))).one()


def test_confirmation_mail_lists_the_tickets_pdf_by_reference(organizer, buyer, clock):
    booking = paid(organizer, buyer)
    message = confirmation(booking)
    assert message.to_address == buyer.email
    assert message.attachments == [
        {
            "kind": "booking_tickets",
            "ref": str(booking.id),
            "filename": f"tickets-{booking.reference}.pdf",
            "content_type": "application/pdf",
        }
    ]


def test_confirmation_mail_is_sent_as_multipart_with_the_pdf(organizer, buyer, clock, settings_env):
    booking = paid(organizer, buyer, quantity=3)
    with smtp_inbox(settings_env, lambda received: any(booking.reference in m["Subject"] for m in received)) as inbox:
        while run_due_jobs(worker_id="mail"):
            pass
    (sent,) = [m for m in inbox if booking.reference in m["Subject"]]
    assert sent.get_content_type() == "multipart/mixed"
    parts = [part for part in sent.walk() if not part.is_multipart()]
    assert [part.get_content_type() for part in parts] == ["text/plain", "application/pdf"]
    assert booking.reference in parts[0].get_payload(decode=True).decode()
    pdf = parts[1]
    assert pdf.get_filename() == f"tickets-{booking.reference}.pdf"
    content = pdf.get_payload(decode=True)
    assert content.startswith(b"%PDF")
    assert confirmation(booking).delivered_via == "smtp"


def test_dev_mailbox_attachment_is_the_pdf_for_its_recipient_only(organizer, buyer, clock):
    booking = paid(organizer, buyer)
    message = confirmation(booking)
    filename, content_type, content = in_transaction(download_dev_attachment, actor=buyer, mail_id=message.id, index=0)
    assert (filename, content_type) == (f"tickets-{booking.reference}.pdf", "application/pdf")
    assert content.startswith(b"%PDF")
    stranger = person("eve@example.com")
    for actor, index in ((stranger, 0), (buyer, 1), (buyer, -1), (organizer, 0)):
        with pytest.raises(NotFound):
            in_transaction(download_dev_attachment, actor=actor, mail_id=message.id, index=index)


def test_attachment_is_rendered_when_sent_so_a_cancelled_ticket_says_so(organizer, buyer, clock):
    booking = paid(organizer, buyer, quantity=2)
    first = tickets_of(booking)[0]
    message = confirmation(booking)
    _, _, before = in_transaction(download_dev_attachment, actor=buyer, mail_id=message.id, index=0)
    in_transaction(cancel_booking, actor=buyer, booking_id=booking.id, ticket_ids=[first.id])
    _, _, after = in_transaction(download_dev_attachment, actor=buyer, mail_id=message.id, index=0)
    as_now = in_transaction(
        lambda session: render_tickets_pdf(list_booking_tickets(session=session, actor=buyer, booking_id=booking.id))
    )
    assert after == as_now
    assert before != after


def test_dev_mailbox_downloads_are_absent_where_smtp_is_configured(organizer, buyer, clock, settings_env):
    booking = paid(organizer, buyer)
    message = confirmation(booking)
    settings_env.setenv("SMTP_HOST", "127.0.0.1")
    get_settings.cache_clear()
    with pytest.raises(NotFound):
        in_transaction(download_dev_attachment, actor=buyer, mail_id=message.id, index=0)
