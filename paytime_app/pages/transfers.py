"""The wallet page's "Send to a friend" card: amount and note, then a code step for large amounts."""

from __future__ import annotations

import reflex as rx

from paytime_app import routes
from paytime_app.components.feedback import error_callout
from paytime_app.components.forms import amount_fields, callout
from paytime_app.state.transfers import TransfersState


def step_up_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.callout(TransfersState.step_up_prompt, icon="shield-check", color_scheme="blue", width="100%"),
            rx.el.label(rx.text("Confirmation code", size="2", weight="medium"), html_for="step-up-code"),
            rx.input(
                id="step-up-code",
                name="code",
                placeholder="6-digit code",
                input_mode="numeric",
                auto_complete="one-time-code",
                required=True,
                size="3",
                width="100%",
            ),
            rx.hstack(
                rx.button("Confirm and send", type="submit", size="3", flex="1", loading=TransfersState.is_sending),
                rx.button(
                    "Cancel",
                    type="button",
                    variant="soft",
                    color_scheme="gray",
                    size="3",
                    on_click=TransfersState.cancel_step_up,
                ),
                width="100%",
            ),
            spacing="2",
            width="100%",
        ),
        on_submit=TransfersState.submit_step_up,
        reset_on_submit=True,
    )


def transfer_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.vstack(
                rx.text("To", size="2", weight="medium"),
                rx.select.root(
                    rx.select.trigger(placeholder="Choose a friend", aria_label="Send to", width="100%"),
                    rx.select.content(
                        rx.foreach(TransfersState.friends, lambda f: rx.select.item(f["name"], value=f["id"]))
                    ),
                    name="to_user_id",
                    value=TransfersState.selected_to,
                    on_change=TransfersState.choose_friend,
                    required=True,
                    size="3",
                ),
                spacing="1",
                width="100%",
            ),
            amount_fields(amount_id="send-amount", label="How much", placeholder="2500.00"),
            rx.vstack(
                rx.el.label(rx.text("Note", size="2", weight="medium"), html_for="send-note"),
                rx.input(
                    id="send-note",
                    name="note",
                    placeholder="What it's for (optional)",
                    max_length=140,
                    size="3",
                    width="100%",
                ),
                spacing="1",
                width="100%",
            ),
            rx.button("Send money", type="submit", size="3", width="100%", loading=TransfersState.is_sending),
            rx.text(
                "Large amounts (about $100 or more) ask for a confirmation code.", size="1", color=rx.color("gray", 10)
            ),
            spacing="3",
            width="100%",
        ),
        on_submit=TransfersState.submit_transfer,
        reset_on_submit=True,
    )


def send_money_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Send to a friend", size="4", as_="h2"),
            callout(TransfersState.notice, "green", "check"),
            error_callout(TransfersState.error),
            rx.cond(
                TransfersState.friends.length() > 0,
                rx.cond(TransfersState.step_up_method != "", step_up_form(), transfer_form()),
                rx.vstack(
                    rx.text(
                        "Add friends to send them money instantly from your wallet.",
                        size="2",
                        color=rx.color("gray", 10),
                    ),
                    rx.link(rx.button("Find friends", variant="soft"), href=routes.FRIENDS),
                    spacing="2",
                ),
            ),
            spacing="3",
            width="100%",
            on_mount=TransfersState.load_transfer_form,
        ),
        width="100%",
    )
