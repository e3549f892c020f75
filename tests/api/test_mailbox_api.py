"""The dev mailbox's attachment download: the recipient's browser gets the PDF, anyone else 404."""

# ruff: noqa: F811  the fixtures imported from test_bookings are requested by name, as arguments

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from paytime_app import routes
from paytime_app.api import create_api
from paytime_app.cookies import SESSION_COOKIE
from paytime_app.db import in_transaction, unit_of_work
from paytime_app.models.mail import MailMessage
from paytime_app.services.bookings import pay_booking
from paytime_app.services.sessions import ClientInfo, start_browser_session
from tests.services.test_bookings import book, buyer, new_event, organizer, person  # noqa: F401


@pytest.fixture
def client(engine):
    with TestClient(create_api(), follow_redirects=False) as client:
        yield client


def signed_in(client: TestClient, user) -> TestClient:
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, in_transaction(start_browser_session, user=user, client=ClientInfo()).token)
    return client


def test_mail_attachment_download_for_the_recipient_only(client, organizer, buyer):
    event, ticket_type = new_event(organizer)
    booking = in_transaction(pay_booking, actor=buyer, booking_id=book(buyer, event, ticket_type, 2).id)
    with unit_of_work() as session:
        message = session.exec(select(MailMessage).where(col(MailMessage.subject).contains(booking.reference))).one()
    url = routes.mail_attachment(str(message.id), 0)
    answer = signed_in(client, buyer).get(url)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/pdf"
    assert f'filename="tickets-{booking.reference}.pdf"' in answer.headers["content-disposition"]
    assert answer.content.startswith(b"%PDF")
    assert signed_in(client, buyer).get(routes.mail_attachment(str(message.id), 1)).status_code == 404
    assert signed_in(client, person("eve@example.com")).get(url).status_code == 404
    client.cookies.clear()
    assert client.get(url).status_code == 401
