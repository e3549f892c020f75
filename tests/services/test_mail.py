import contextlib
import time
from collections.abc import Callable, Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from paytime_app.db import in_transaction, unit_of_work
from paytime_app.errors import NotFound
from paytime_app.models.jobs import Job
from paytime_app.models.mail import MailMessage, MailStatus
from paytime_app.services.jobs import run_due_jobs
from paytime_app.services.mail import list_dev_mailbox, queue_mail
from paytime_app.settings import get_settings
from tests.helpers import free_port


class Inbox(Message):
    def __init__(self) -> None:
        super().__init__()
        self.received: list = []

    def handle_message(self, message) -> None:
        self.received.append(message)


def test_queue_mail_writes_message_and_job_together(engine):
    message = in_transaction(queue_mail, to_address="Ada@Example.com", subject="Hi", body_text="Hello")
    with unit_of_work() as session:
        jobs = session.exec(Job.__table__.select()).all()
        assert len(jobs) == 1
        assert session.get(MailMessage, message.id).to_address == "ada@example.com"


def test_mail_lands_in_dev_mailbox_without_smtp(engine):
    in_transaction(queue_mail, to_address="ada@example.com", subject="Verify", body_text="link")
    run_due_jobs(worker_id="w1")
    found = in_transaction(list_dev_mailbox, to_address="ada@")
    assert [(m.subject, m.status, m.delivered_via) for m in found] == [("Verify", MailStatus.SENT, "dev_mailbox")]
    assert in_transaction(list_dev_mailbox, to_address="ben@") == []


@contextlib.contextmanager
def smtp_inbox(settings_env, wait_for: Callable[[list], bool]) -> Iterator[list]:
    """A local SMTP server the settings point at; on leaving, waits (5 s at most) until `wait_for(received)`."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings_env.setenv("SMTP_HOST", "127.0.0.1")
        settings_env.setenv("SMTP_PORT", str(port))
        settings_env.setenv("SMTP_STARTTLS", "false")
        get_settings.cache_clear()
        yield inbox.received
        deadline = time.monotonic() + 5
        while not wait_for(inbox.received) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        controller.stop()


def test_mail_is_sent_over_smtp_when_configured(engine, settings_env):
    with smtp_inbox(settings_env, bool) as received:
        in_transaction(queue_mail, to_address="ben@example.com", subject="Receipt", body_text="Paid ₦1,000.00")
        run_due_jobs(worker_id="w1")
    assert len(received) == 1
    assert received[0]["To"] == "ben@example.com"
    assert received[0]["Subject"] == "Receipt"
    with pytest.raises(NotFound):
        in_transaction(list_dev_mailbox)


def test_dev_mailbox_is_absent_in_production(engine, settings_env):
    settings_env.setenv("PAYTIME_ENV", "production")
    settings_env.setenv("SECRET_KEY", "s" * 40)
    settings_env.setenv("MOCK_WEBHOOK_SECRET", "m" * 40)
    with pytest.raises(NotFound):
        in_transaction(list_dev_mailbox)
