"""The dev mailbox: mail the app sent while no SMTP server is configured."""

from __future__ import annotations

import reflex as rx

from paytime_app.errors import DomainError
from paytime_app.services.mail import list_dev_mailbox
from paytime_app.state.auth import AuthState


class MailboxState(AuthState):
    messages: list[dict[str, str]] = []
    address_filter: str = ""
    is_loading: bool = True
    error: str = ""

    @rx.event
    async def load_messages(self) -> None:
        self.is_loading = True
        yield
        try:
            found = await self._call_service(list_dev_mailbox, to_address=self.address_filter or None)
        except DomainError as error:
            self.error = error.message
            self.messages = []
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
        self.is_loading = False

    @rx.event
    def filter_by_address(self, form: dict[str, str]) -> rx.event.EventSpec:
        self.address_filter = str(form.get("address", ""))[:254]
        return MailboxState.load_messages
