"""Empty, loading and error states, and the page header every page starts with."""

from __future__ import annotations

import reflex as rx


def page_header(title: str, subtitle: str | rx.Var = "") -> rx.Component:
    return rx.vstack(
        rx.heading(title, size="7", as_="h1"),
        rx.cond(subtitle != "", rx.text(subtitle, color=rx.color("gray", 11), size="3"), rx.fragment()),
        spacing="1",
        margin_bottom="20px",
        width="100%",
    )


def empty_state(icon: str, title: str, message: str, *actions: rx.Component) -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.center(
                rx.icon(icon, size=28, color=rx.color("accent", 10)),
                width="56px",
                height="56px",
                border_radius="50%",
                background=rx.color("accent", 3),
            ),
            rx.heading(title, size="4", as_="h2"),
            rx.text(message, color=rx.color("gray", 11), align="center", max_width="420px"),
            *actions,
            align="center",
            spacing="3",
        ),
        padding="48px 16px",
        width="100%",
        border=f"1px dashed {rx.color('gray', 6)}",
        border_radius="12px",
        background=rx.color("gray", 1),
    )


def loading_rows(count: int = 3) -> rx.Component:
    return rx.vstack(*[rx.skeleton(height="56px", width="100%") for _ in range(count)], width="100%")


def error_callout(message: rx.Var | str) -> rx.Component:
    """A refusal in words; a state's empty message shows nothing."""
    shown = rx.callout(message, icon="triangle-alert", color_scheme="red", role="alert", width="100%")
    return rx.cond(message != "", shown, rx.fragment()) if isinstance(message, rx.Var) else shown
