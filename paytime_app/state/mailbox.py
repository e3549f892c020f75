"""The dev mailbox: mail the app sent while no SMTP server is configured."""

from __future__ import annotations

from typing import Any

import reflex as rx

from paytime_app import routes
from paytime_app.errors import AuthenticationRequired, DomainError
from paytime_app.models.users import User
from paytime_app.services.mail import list_dev_mailbox
from paytime_app.state.auth import AuthState


def _email_of(*, session: Any, actor: User) -> str:  # noqa: ARG001  called as a service
    return actor.email


class MailboxState(AuthState):
    messages: list[dict[str, str]] = []
    # Every listed message's attachments, by message id; `href` only for the signed-in recipient.
    attachments: list[dict[str, str]] = []
    address_filter: str = ""
    is_loading: bool = True
    error: str = ""

    @rx.event
    async def load_messages(self) -> None:
        self.is_loading = True
        yield
        await self._load_viewer()
        viewer_email = ""
        if self.is_signed_in:
            try:
                viewer_email = await self._call_as_viewer(_email_of)
            except AuthenticationRequired:
                viewer_email = ""
        try:
            found = await self._call_service(list_dev_mailbox, to_address=self.address_filter or None)
        except DomainError as error:
            self.error = error.message
            self.messages = []
            self.attachments = []
        else:
            self.error = ""
            self.messages = [
                {
                    "id": str(message.id),
                    "to": message.to_address,
                    "subject": message.subject,
                    "body": message.body_text,
                    "status": str(message.status),
                    "sent_at": message.created_at.strftime("%d %b %Y, %H:%M UTC"),
                }
                for message in found
            ]
            self.attachments = [
                {
                    "mail_id": str(message.id),
                    "filename": str(attachment["filename"]),
                    "href": routes.mail_attachment(str(message.id), index)
                    if viewer_email and viewer_email.lower() == message.to_address
                    else "",
                }
                for message in found
                for index, attachment in enumerate(message.attachments)
            ]
        self.is_loading = False

    @rx.event
    def filter_by_address(self, form: dict[str, str]) -> rx.event.EventSpec:
        self.address_filter = str(form.get("address", ""))[:254]
        return MailboxState.load_messages
