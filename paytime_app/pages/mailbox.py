"""Dev mailbox page: read the mail PayTime sent while no SMTP server is configured."""

from __future__ import annotations

import reflex as rx

from paytime_app.components.feedback import empty_state, error_callout, loading_rows, page_header
from paytime_app.components.forms import server_link
from paytime_app.components.layout import page_shell
from paytime_app.state.mailbox import MailboxState


def attachment_row(message: rx.Var, attachment: rx.Var) -> rx.Component:
    return rx.cond(
        attachment["mail_id"] == message["id"],
        rx.hstack(
            rx.icon("paperclip", size=14),
            rx.cond(
                attachment["href"] != "",
                server_link(rx.text(attachment["filename"], size="2"), attachment["href"]),
                rx.text(attachment["filename"], " (sign in as the recipient to download)", size="2"),
            ),
            align="center",
            spacing="2",
        ),
    )


def message_card(message: rx.Var) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.text(message["subject"], weight="bold"),
                rx.spacer(),
                rx.text(message["sent_at"], size="1", color=rx.color("gray", 10)),
                width="100%",
                wrap="wrap",
            ),
            rx.text("To ", message["to"], size="2", color=rx.color("gray", 11)),
            rx.text(message["body"], size="2", white_space="pre-wrap", word_break="break-word"),
            rx.foreach(MailboxState.attachments, lambda attachment: attachment_row(message, attachment)),
            spacing="2",
            width="100%",
        ),
        width="100%",
    )


def mailbox_page() -> rx.Component:
    return page_shell(
        page_header("Dev mailbox", "Mail sent while no SMTP server is configured. Never shown in production."),
        rx.form(
            rx.hstack(
                rx.input(name="address", placeholder="Filter by recipient", aria_label="Recipient", flex="1"),
                rx.button("Filter", type="submit"),
                width="100%",
            ),
            on_submit=MailboxState.filter_by_address,
            width="100%",
            margin_bottom="16px",
        ),
        rx.cond(
            MailboxState.is_loading,
            loading_rows(),
            rx.cond(
                MailboxState.error != "",
                error_callout(MailboxState.error),
                rx.cond(
                    MailboxState.messages.length() > 0,
                    rx.vstack(rx.foreach(MailboxState.messages, message_card), width="100%", spacing="3"),
                    empty_state("inbox", "No mail yet", "Verification links, receipts and tickets will show up here."),
                ),
            ),
        ),
    )
