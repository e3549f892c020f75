"""The landing page: what PayTime does and the published events."""

from __future__ import annotations

import reflex as rx

from paytime_app import routes
from paytime_app.components.feedback import empty_state
from paytime_app.components.layout import page_shell
from paytime_app.state.auth import AuthState

FEATURES = (
    ("send", "Money between friends", "Send money, split costs and keep IOUs with people you trust."),
    ("ticket", "Tickets that scan", "Book seats without overselling; QR tickets work offline at the door."),
    ("phone-call", "Prepaid calls", "Buy call credits and pay by the second, never more."),
)


def feature_card(icon: str, title: str, text: str) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.icon(icon, size=22, color=rx.color("accent", 10)),
            rx.heading(title, size="3", as_="h3"),
            rx.text(text, size="2", color=rx.color("gray", 11)),
            spacing="2",
        ),
        size="2",
    )


def hero() -> rx.Component:
    return rx.vstack(
        rx.badge("Wallets · Events · Calls", variant="surface", radius="full"),
        rx.heading("Pay, get paid, and get in.", size="8", as_="h1"),
        rx.text(
            "One account for your wallet, your friends, your event tickets and your calls.",
            size="4",
            color=rx.color("gray", 11),
            max_width="560px",
        ),
        rx.hstack(
            rx.link(rx.button("Browse events", size="3"), href="#events"),
            rx.cond(
                AuthState.is_signed_in,
                rx.fragment(),
                rx.link(rx.button("Create account", size="3", variant="soft"), href=routes.SIGN_UP),
            ),
            spacing="3",
            wrap="wrap",
        ),
        spacing="4",
        padding_y=["8px", "24px"],
    )


def landing_page() -> rx.Component:
    return page_shell(
        hero(),
        rx.grid(
            *[feature_card(*feature) for feature in FEATURES],
            columns=rx.breakpoints(initial="1", sm="3"),
            spacing="4",
            margin_y="32px",
        ),
        rx.heading("Upcoming events", size="5", as_="h2", margin_bottom="12px", id="events"),
        empty_state(
            "calendar-x",
            "No events on sale yet",
            "Organizers are setting up. Published events will appear here with live seats left.",
        ),
    )
