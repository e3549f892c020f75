"""404, 403 and 500 pages that look like the product."""

from __future__ import annotations

import reflex as rx

from paytime_app import routes
from paytime_app.components.layout import page_shell


def error_panel(code: str, title: str, message: str) -> rx.Component:
    return page_shell(
        rx.center(
            rx.vstack(
                rx.text(code, size="9", weight="bold", color=rx.color("accent", 9)),
                rx.heading(title, size="6", as_="h1"),
                rx.text(message, color=rx.color("gray", 11), align="center", max_width="440px"),
                rx.link(rx.button("Back to home", size="3"), href=routes.HOME),
                align="center",
                spacing="3",
            ),
            padding_y="64px",
        )
    )


def not_found_page() -> rx.Component:
    return error_panel("404", "We can't find that page", "The link may be old or mistyped.")


def forbidden_page() -> rx.Component:
    return error_panel(
        "403", "You don't have access to this page", "Sign in with an account that has the right role, or ask an admin."
    )


def server_error_page() -> rx.Component:
    return error_panel(
        "500", "Something went wrong on our side", "We have logged the problem. Please try again in a moment."
    )
