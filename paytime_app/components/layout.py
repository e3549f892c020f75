"""The app shell: top bar with role-aware navigation, colour-mode switch, mobile menu, footer."""

from __future__ import annotations

import reflex as rx

from paytime_app import routes
from paytime_app.state.auth import AuthState
from paytime_app.state.notifications import NotificationsState


def brand() -> rx.Component:
    return rx.link(
        rx.hstack(
            rx.icon("wallet-cards", size=24, color=rx.color("accent", 9)),
            rx.heading("PayTime", size="5", weight="bold"),
            align="center",
            spacing="2",
        ),
        href=routes.HOME,
        underline="none",
        color=rx.color("gray", 12),
        aria_label="PayTime home",
    )


def nav_link(link: rx.Var) -> rx.Component:
    return rx.link(
        rx.hstack(rx.text(link["label"], size="2", weight="medium"), align="center"),
        href=link["href"],
        underline="none",
        color=rx.color("gray", 11),
        _hover={"color": rx.color("accent", 11)},
    )


def staff_menu() -> rx.Component:
    return rx.menu.root(
        rx.menu.trigger(
            rx.button(
                rx.text("Admin", size="2", weight="medium"),
                rx.icon("chevron-down", size=14),
                variant="ghost",
                color_scheme="gray",
                size="2",
            ),
        ),
        rx.menu.content(
            rx.foreach(
                AuthState.staff_links,
                # The link fills its row: a click anywhere on the item follows it, not only on the label.
                lambda link: rx.menu.item(
                    rx.link(
                        rx.hstack(rx.icon(link["icon"], size=14), link["label"], align="center"),
                        href=link["href"],
                        underline="none",
                        width="100%",
                    ),
                ),
            ),
        ),
    )


def account_menu() -> rx.Component:
    return rx.menu.root(
        rx.menu.trigger(
            rx.button(
                rx.avatar(fallback=AuthState.initials, size="1", radius="full"),
                rx.text(AuthState.display_name, size="2", weight="medium"),
                rx.icon("chevron-down", size=14),
                variant="ghost",
                size="2",
                aria_label="Account menu",
            ),
        ),
        rx.menu.content(
            rx.box(rx.badge(AuthState.role_label, variant="soft", radius="full"), padding="4px 8px"),
            rx.menu.item(rx.link("Account and security", href=routes.ACCOUNT, underline="none")),
            rx.menu.separator(),
            rx.menu.item("Sign out", color="red", on_click=AuthState.sign_out),
        ),
    )


def notification_row(notification: rx.Var) -> rx.Component:
    return rx.link(
        rx.hstack(
            rx.box(
                width="8px",
                height="8px",
                border_radius="50%",
                flex_shrink="0",
                margin_top="6px",
                background=rx.cond(notification["unread"] != "", rx.color("accent", 9), "transparent"),
            ),
            rx.vstack(
                rx.text(notification["text"], size="2", color=rx.color("gray", 12)),
                rx.text(notification["when"], size="1", color=rx.color("gray", 10)),
                spacing="0",
            ),
            align="start",
            spacing="2",
            padding="8px",
            border_radius="6px",
            _hover={"background": rx.color("gray", 3)},
            width="100%",
        ),
        href=notification["href"],
        underline="none",
        width="100%",
    )


def notification_centre() -> rx.Component:
    """The bell: unread badge, newest notifications, mark all read; loads when it mounts and opens."""
    return rx.popover.root(
        rx.popover.trigger(
            rx.box(
                rx.icon_button(rx.icon("bell", size=18), variant="ghost", size="2", aria_label="Notifications"),
                rx.cond(
                    NotificationsState.unread > 0,
                    rx.badge(
                        NotificationsState.unread_label,
                        color_scheme="red",
                        variant="solid",
                        radius="full",
                        size="1",
                        position="absolute",
                        top="-6px",
                        right="-8px",
                        aria_label="Unread notifications",
                        pointer_events="none",
                    ),
                    rx.fragment(),
                ),
                position="relative",
                on_mount=NotificationsState.load_notifications,
            ),
        ),
        rx.popover.content(
            rx.vstack(
                rx.hstack(
                    rx.heading("Notifications", size="3", as_="h2"),
                    rx.spacer(),
                    rx.button(
                        "Mark all read",
                        size="1",
                        variant="ghost",
                        on_click=NotificationsState.read_all,
                        disabled=NotificationsState.unread == 0,
                    ),
                    width="100%",
                    align="center",
                ),
                rx.cond(
                    NotificationsState.notifications.length() > 0,
                    rx.vstack(
                        rx.foreach(NotificationsState.notifications, notification_row),
                        spacing="0",
                        width="100%",
                        max_height="60vh",
                        overflow_y="auto",
                    ),
                    rx.text(
                        "Nothing yet. Friend requests, money you receive and IOU updates show up here.",
                        size="2",
                        color=rx.color("gray", 10),
                    ),
                ),
                spacing="2",
                width="100%",
            ),
            width="360px",
            max_width="calc(100vw - 24px)",
            align="end",
        ),
        on_open_change=NotificationsState.open_centre,
    )


def account_area() -> rx.Component:
    return rx.cond(
        AuthState.is_signed_in,
        account_menu(),
        rx.hstack(
            rx.link(rx.button("Sign in", variant="soft", size="2"), href=routes.SIGN_IN),
            rx.link(rx.button("Create account", size="2"), href=routes.SIGN_UP),
            spacing="2",
        ),
    )


def mobile_menu() -> rx.Component:
    return rx.menu.root(
        rx.menu.trigger(
            rx.icon_button(rx.icon("menu"), variant="ghost", size="3", aria_label="Open menu"),
        ),
        rx.menu.content(
            rx.foreach(
                AuthState.nav_links,
                lambda link: rx.menu.item(rx.link(link["label"], href=link["href"], underline="none")),
            ),
            rx.cond(
                AuthState.staff_links.length() > 0,
                rx.fragment(
                    rx.menu.separator(),
                    rx.text("Admin", size="1", weight="medium", color=rx.color("gray", 10), padding="4px 12px"),
                    rx.foreach(
                        AuthState.staff_links,
                        lambda link: rx.menu.item(rx.link(link["label"], href=link["href"], underline="none")),
                    ),
                ),
                rx.fragment(),
            ),
            rx.menu.separator(),
            rx.cond(
                AuthState.is_signed_in,
                rx.fragment(
                    rx.menu.item(rx.link("Account and security", href=routes.ACCOUNT, underline="none")),
                    rx.menu.item("Sign out", color="red", on_click=AuthState.sign_out),
                ),
                rx.fragment(
                    rx.menu.item(rx.link("Sign in", href=routes.SIGN_IN, underline="none")),
                    rx.menu.item(rx.link("Create account", href=routes.SIGN_UP, underline="none")),
                ),
            ),
        ),
    )


def top_bar() -> rx.Component:
    return rx.box(
        rx.hstack(
            brand(),
            rx.desktop_only(
                rx.hstack(
                    rx.foreach(AuthState.nav_links, nav_link),
                    rx.cond(AuthState.staff_links.length() > 0, staff_menu(), rx.fragment()),
                    spacing="5",
                    align="center",
                )
            ),
            rx.spacer(),
            rx.cond(AuthState.is_signed_in, notification_centre(), rx.fragment()),
            rx.desktop_only(account_area()),
            rx.color_mode.button(variant="ghost", size="2", aria_label="Switch light or dark mode"),
            rx.mobile_and_tablet(mobile_menu()),
            align="center",
            spacing="4",
            max_width="1120px",
            margin_x="auto",
            padding=["10px 12px", "12px 16px", "12px 24px"],
            width="100%",
        ),
        as_="header",
        border_bottom=f"1px solid {rx.color('gray', 5)}",
        background=rx.color("gray", 1),
        position="sticky",
        top="0",
        z_index="10",
        width="100%",
    )


def footer() -> rx.Component:
    return rx.box(
        rx.hstack(
            rx.text("© PayTime", size="1", color=rx.color("gray", 10)),
            rx.spacer(),
            rx.link("API docs", href="/api/docs", size="1", is_external=True),
            rx.link("Status", href="/api/health", size="1", is_external=True),
            max_width="1120px",
            margin_x="auto",
            padding=["16px 12px", "16px", "16px 24px"],
            width="100%",
        ),
        as_="footer",
        border_top=f"1px solid {rx.color('gray', 4)}",
        width="100%",
    )


def page_shell(*children: rx.Component) -> rx.Component:
    """Wrap a page's content in the shell; content is centred and readable from 375 px up."""
    return rx.flex(
        top_bar(),
        rx.box(
            *children,
            as_="main",
            flex="1",
            width="100%",
            max_width="1120px",
            margin_x="auto",
            padding=["20px 12px", "24px 16px", "32px 24px"],
        ),
        footer(),
        direction="column",
        min_height="100vh",
        background=rx.color("gray", 2),
    )
