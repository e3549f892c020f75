"""Sign in (password, second factor, new-device code), sign up, confirm email, reset password."""

from __future__ import annotations

import reflex as rx

from paytime_app import routes
from paytime_app.components.feedback import error_callout
from paytime_app.components.forms import auth_card, callout, field, server_link, submit_button
from paytime_app.state.accounts import PasswordResetState, SignInState, SignUpState, VerifyEmailState


def _oauth_button(provider: rx.Var) -> rx.Component:
    return server_link(
        rx.button(
            rx.cond(provider == "google", rx.icon("globe", size=18), rx.icon("code-xml", size=18)),
            rx.cond(provider == "google", "Continue with Google", "Continue with GitHub"),
            variant="outline",
            size="3",
            width="100%",
            type="button",
            tab_index=-1,
        ),
        href=routes.API_OAUTH + provider + "/start?intent=sign_in&next=" + SignInState.next_path,
        aria_label=rx.cond(provider == "google", "Continue with Google", "Continue with GitHub"),
        style={"width": "100%"},
    )


def _password_step() -> rx.Component:
    return rx.vstack(
        rx.form(
            rx.vstack(
                field("Email", "email", type_="email", auto_complete="email", placeholder="you@example.com"),
                field("Password", "password", type_="password", auto_complete="current-password"),
                rx.link("Forgot your password?", href=routes.FORGOT_PASSWORD, size="2"),
                submit_button("Sign in", SignInState.is_submitting),
                spacing="4",
                width="100%",
            ),
            on_submit=SignInState.submit_password,
            reset_on_submit=False,
            width="100%",
        ),
        rx.cond(
            SignInState.error_code == "email_not_verified",
            rx.button(
                "Send the confirmation link again",
                variant="soft",
                width="100%",
                on_click=SignInState.resend_verification_email,
            ),
            rx.fragment(),
        ),
        rx.cond(
            SignInState.oauth_providers.length() > 0,
            rx.vstack(
                rx.hstack(
                    rx.separator(size="4"),
                    rx.text("or", size="1", color=rx.color("gray", 10)),
                    rx.separator(size="4"),
                    align="center",
                    width="100%",
                ),
                rx.foreach(SignInState.oauth_providers, _oauth_button),
                width="100%",
                spacing="3",
            ),
            rx.fragment(),
        ),
        rx.text("New to PayTime? ", rx.link("Create an account", href=routes.SIGN_UP), size="2"),
        spacing="4",
        width="100%",
    )


def _code_step() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.cond(
                SignInState.step == "second_factor",
                rx.text("Enter the 6-digit code from your authenticator app, or one of your recovery codes.", size="2"),
                rx.text(
                    "We emailed a 6-digit code to ",
                    rx.text.strong(SignInState.email_hint),
                    " to confirm this new device. It works for 5 minutes.",
                    size="2",
                ),
            ),
            field(
                "Code",
                "code",
                auto_complete="one-time-code",
                input_mode="text",
                placeholder="123456",
                max_length=20,
                auto_focus=True,
            ),
            submit_button("Continue", SignInState.is_submitting),
            rx.button("Start again", variant="ghost", type="button", on_click=SignInState.start_over),
            spacing="4",
            width="100%",
        ),
        on_submit=SignInState.submit_code,
        reset_on_submit=True,
        width="100%",
    )


def sign_in_page() -> rx.Component:
    return auth_card(
        "Sign in",
        "Welcome back. Sign in to your wallet, tickets and calls.",
        callout(SignInState.notice, SignInState.notice_tone),
        error_callout(SignInState.error),
        rx.cond(SignInState.step == "password", _password_step(), _code_step()),
    )


def sign_up_page() -> rx.Component:
    return auth_card(
        "Create your account",
        "Send money to friends, book events and make calls with one account.",
        rx.cond(
            SignUpState.submitted_email != "",
            rx.vstack(
                callout(
                    "Check your inbox: we sent a confirmation link to "
                    + SignUpState.submitted_email
                    + ". It works for 48 hours.",
                    "green",
                    "mail-check",
                ),
                rx.link(rx.button("Go to sign in", size="3", width="100%"), href=routes.SIGN_IN, width="100%"),
                width="100%",
                spacing="3",
            ),
            rx.form(
                rx.vstack(
                    error_callout(SignUpState.error),
                    field("Your name", "display_name", auto_complete="name", placeholder="Ada Obi", max_length=80),
                    field("Email", "email", type_="email", auto_complete="email", placeholder="you@example.com"),
                    field(
                        "Password",
                        "password",
                        type_="password",
                        auto_complete="new-password",
                        hint="At least 10 characters. Avoid common passwords.",
                        min_length=10,
                    ),
                    submit_button("Create account", SignUpState.is_submitting),
                    rx.text("Already have an account? ", rx.link("Sign in", href=routes.SIGN_IN), size="2"),
                    spacing="4",
                    width="100%",
                ),
                on_submit=SignUpState.submit_sign_up,
                reset_on_submit=False,
                width="100%",
            ),
        ),
    )


def verify_email_page() -> rx.Component:
    return auth_card(
        "Confirm your email",
        "One moment while we check your link.",
        rx.match(
            VerifyEmailState.outcome,
            ("confirmed", callout(VerifyEmailState.message, "green", "circle-check")),
            ("failed", error_callout(VerifyEmailState.message)),
            rx.hstack(rx.spinner(), rx.text("Checking…"), align="center"),
        ),
        rx.link(rx.button("Go to sign in", size="3", width="100%"), href=routes.SIGN_IN, width="100%"),
    )


def forgot_password_page() -> rx.Component:
    return auth_card(
        "Reset your password",
        "Enter your account's email and we'll send you a link to choose a new password.",
        rx.cond(
            PasswordResetState.request_sent,
            callout(
                "If an account uses that email, a reset link is on its way. It works once, for one hour.",
                "green",
                "mail-check",
            ),
            rx.form(
                rx.vstack(
                    error_callout(PasswordResetState.error),
                    field("Email", "email", type_="email", auto_complete="email", placeholder="you@example.com"),
                    submit_button("Send reset link", PasswordResetState.is_submitting),
                    spacing="4",
                    width="100%",
                ),
                on_submit=PasswordResetState.submit_reset_request,
                width="100%",
            ),
        ),
        rx.link("Back to sign in", href=routes.SIGN_IN, size="2"),
    )


def reset_password_page() -> rx.Component:
    return auth_card(
        "Choose a new password",
        "Changing it signs you out on every device.",
        rx.cond(
            PasswordResetState.password_changed,
            rx.vstack(
                callout("Password changed. Every device was signed out.", "green", "circle-check"),
                rx.link(rx.button("Sign in", size="3", width="100%"), href=routes.SIGN_IN, width="100%"),
                width="100%",
            ),
            rx.cond(
                PasswordResetState.link_usable,
                rx.form(
                    rx.vstack(
                        error_callout(PasswordResetState.error),
                        field(
                            "New password",
                            "password",
                            type_="password",
                            auto_complete="new-password",
                            hint="At least 10 characters. Avoid common passwords.",
                            min_length=10,
                        ),
                        field(
                            "Repeat the new password",
                            "confirm_password",
                            type_="password",
                            auto_complete="new-password",
                        ),
                        submit_button("Change password", PasswordResetState.is_submitting),
                        spacing="4",
                        width="100%",
                    ),
                    on_submit=PasswordResetState.submit_new_password,
                    reset_on_submit=False,
                    width="100%",
                ),
                rx.vstack(
                    error_callout(PasswordResetState.error),
                    rx.link(
                        rx.button("Ask for a new link", size="3", width="100%"),
                        href=routes.FORGOT_PASSWORD,
                        width="100%",
                    ),
                    width="100%",
                ),
            ),
        ),
    )
