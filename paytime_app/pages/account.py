"""Account and security: profile, two-factor authentication, sign-in methods, devices."""

from __future__ import annotations

import reflex as rx

from paytime_app import routes
from paytime_app.components.feedback import error_callout, loading_rows, page_header
from paytime_app.components.forms import callout, server_link
from paytime_app.components.layout import page_shell
from paytime_app.components.tables import data_table
from paytime_app.state.account import AccountState


def section(title: str, description: str, *children: rx.Component) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading(title, size="4", as_="h2"),
            rx.text(description, size="2", color=rx.color("gray", 11)),
            *children,
            spacing="3",
            width="100%",
        ),
        size="3",
        width="100%",
    )


def code_form(button: str, handler: rx.EventHandler, *, color_scheme: str = "teal") -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.input(
                name="code",
                placeholder="6-digit code",
                aria_label="Authenticator code",
                max_length=20,
                auto_complete="one-time-code",
                required=True,
                size="3",
                flex="1",
                min_width="0",
            ),
            rx.button(button, type="submit", size="3", loading=AccountState.is_busy, color_scheme=color_scheme),
            width="100%",
            wrap="wrap",
        ),
        on_submit=handler,
        reset_on_submit=True,
        width="100%",
    )


def profile_section() -> rx.Component:
    return section(
        "Profile",
        "Your name and the email you sign in with.",
        rx.data_list.root(
            rx.data_list.item(rx.data_list.label("Name"), rx.data_list.value(AccountState.display_name)),
            rx.data_list.item(
                rx.data_list.label("Email"),
                rx.data_list.value(
                    rx.hstack(
                        rx.text(AccountState.email),
                        rx.cond(
                            AccountState.email_verified,
                            rx.badge("confirmed", color_scheme="green"),
                            rx.badge("not confirmed", color_scheme="amber"),
                        ),
                        wrap="wrap",
                    )
                ),
            ),
            rx.data_list.item(rx.data_list.label("Role"), rx.data_list.value(AccountState.role_label)),
        ),
    )


def recovery_codes_panel() -> rx.Component:
    return rx.vstack(
        callout(
            "Save these recovery codes somewhere safe. Each works once if you lose your phone. "
            "They won't be shown again.",
            "amber",
            "key-round",
        ),
        rx.grid(
            rx.foreach(AccountState.recovery_codes, lambda code: rx.code(code, size="3", variant="outline")),
            columns="2",
            spacing="2",
            width="100%",
        ),
        rx.button("I have saved them", on_click=AccountState.dismiss_recovery_codes, variant="soft"),
        spacing="3",
        width="100%",
    )


def two_factor_section() -> rx.Component:
    return section(
        "Two-factor authentication",
        "Ask for a code from your authenticator app when you sign in.",
        rx.cond(
            AccountState.recovery_codes.length() > 0,
            recovery_codes_panel(),
            rx.cond(
                AccountState.two_factor_enabled,
                rx.vstack(
                    rx.hstack(
                        rx.badge("On", color_scheme="green", size="2"),
                        rx.text("Sign-in asks for a code from your app.", size="2"),
                        align="center",
                    ),
                    rx.text("Turn it off, or make new recovery codes, with a current code:", size="2"),
                    code_form("Turn off", AccountState.turn_off_two_factor, color_scheme="red"),
                    code_form("New recovery codes", AccountState.new_recovery_codes),
                    spacing="3",
                    width="100%",
                ),
                rx.cond(
                    AccountState.enrollment_qr != "",
                    rx.vstack(
                        rx.text("1. Scan this QR code with your authenticator app (or type the key below).", size="2"),
                        rx.image(
                            src=AccountState.enrollment_qr,
                            width="180px",
                            height="180px",
                            alt="QR code for your authenticator app",
                            background="white",
                            padding="8px",
                            border_radius="8px",
                        ),
                        rx.code(AccountState.enrollment_secret, size="2", word_break="break-all"),
                        rx.text("2. Enter the 6-digit code it shows:", size="2"),
                        code_form("Turn on", AccountState.confirm_two_factor),
                        rx.button("Cancel", variant="ghost", on_click=AccountState.cancel_two_factor_setup),
                        spacing="3",
                        width="100%",
                    ),
                    rx.hstack(
                        rx.badge("Off", color_scheme="gray", size="2"),
                        rx.button(
                            "Set up two-factor authentication",
                            on_click=AccountState.start_two_factor,
                            loading=AccountState.is_busy,
                        ),
                        align="center",
                        wrap="wrap",
                    ),
                ),
            ),
        ),
    )


def provider_row(provider: rx.Var) -> rx.Component:
    linked = AccountState.linked_providers.contains(provider)
    return rx.hstack(
        rx.text(rx.cond(provider == "google", "Google", "GitHub"), weight="medium"),
        rx.cond(linked, rx.badge("linked", color_scheme="green"), rx.badge("not linked", color_scheme="gray")),
        rx.spacer(),
        rx.cond(
            linked,
            rx.button("Unlink", variant="soft", color_scheme="red", on_click=AccountState.unlink_provider(provider)),
            server_link(
                rx.button("Link", variant="soft", tab_index=-1),
                href=routes.API_OAUTH + provider + "/start?intent=link",
                aria_label=rx.cond(provider == "google", "Link Google", "Link GitHub"),
            ),
        ),
        align="center",
        width="100%",
    )


def providers_section() -> rx.Component:
    return rx.cond(
        AccountState.available_providers.length() > 0,
        section(
            "Sign-in methods",
            "Link Google or GitHub to sign in without your password. We never link accounts by email alone.",
            rx.foreach(AccountState.available_providers, provider_row),
        ),
        rx.fragment(),
    )


def session_row(row: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.hstack(
                    rx.text(row["device"], weight="medium"),
                    rx.cond(row["current"] == "yes", rx.badge("this device", color_scheme="teal"), rx.fragment()),
                    rx.cond(row["kind"] == "api", rx.badge("API", color_scheme="gray"), rx.fragment()),
                    wrap="wrap",
                ),
                rx.text(row["ip"], size="1", color=rx.color("gray", 10)),
                spacing="1",
            )
        ),
        rx.table.cell(rx.text(row["last_seen"], size="2")),
        rx.table.cell(
            rx.button(
                "Sign out",
                size="1",
                variant="soft",
                color_scheme="red",
                on_click=AccountState.sign_out_device(row["id"]),
                aria_label="Sign out " + row["device"],
            ),
        ),
    )


def devices_section() -> rx.Component:
    return section(
        "Signed-in devices",
        "Where your account is signed in right now. Sign out anything you don't recognise.",
        data_table(["Device", "Last active", ""], AccountState.sessions, session_row),
        rx.button(
            "Sign out everywhere", color_scheme="red", variant="outline", on_click=AccountState.sign_out_all_devices
        ),
    )


def account_page() -> rx.Component:
    return page_shell(
        page_header("Account and security", "Manage how you sign in and where you're signed in."),
        callout(AccountState.notice, AccountState.notice_tone, "circle-check"),
        error_callout(AccountState.error),
        rx.cond(
            AccountState.is_loading,
            loading_rows(4),
            rx.vstack(
                profile_section(),
                two_factor_section(),
                providers_section(),
                devices_section(),
                spacing="4",
                width="100%",
                margin_top="16px",
            ),
        ),
    )
