"""Signing up, confirming email, signing in step by step, and resetting a password."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import quote

import reflex as rx

from paytime_app import routes
from paytime_app.cookies import safe_next_path
from paytime_app.errors import DomainError
from paytime_app.services.accounts import (
    SignInStep,
    SignInStepKind,
    check_reset_link,
    register_account,
    request_password_reset,
    resend_verification,
    reset_password,
    sign_in_with_password,
    submit_device_code,
    submit_second_factor,
    verify_email,
)
from paytime_app.services.oauth import enabled_oauth_providers
from paytime_app.settings import get_settings
from paytime_app.state.auth import AuthState

# Notices arrive as codes in the URL (from redirects); the words live here.
NOTICES: dict[str, tuple[str, str]] = {
    "email_verified": ("green", "Email confirmed. Sign in to continue."),
    "password_reset": ("green", "Password changed and every device signed out. Sign in with the new password."),
    "signed_out": ("blue", "You are signed out."),
    "session_expired": ("amber", "Your session ended. Please sign in again."),
    "link_invalid": ("red", "That sign-in link is no longer valid. Please sign in again."),
    "link_expired": ("red", "That sign-in link has expired. Please sign in again."),
    "account_disabled": ("red", "This account is disabled. Contact support if you think this is a mistake."),
    "oauth_failed": ("red", "We couldn't complete sign-in with that provider. Try again or use your password."),
    "oauth_state_mismatch": ("red", "That sign-in attempt expired or was started elsewhere. Try again."),
    "oauth_email_in_use": (
        "amber",
        "An account with this email already exists. Sign in with your password, "
        "then link the provider from your account page.",
    ),
    "oauth_provider_unavailable": ("red", "That sign-in provider is not available right now."),
}


class SignInState(AuthState):
    step: str = "password"
    error: str = ""
    error_code: str = ""
    notice: str = ""
    notice_tone: str = "blue"
    email_hint: str = ""
    is_submitting: bool = False
    next_path: str = "/"
    oauth_providers: list[str] = []
    _pending_token: str = ""
    _email: str = ""

    @rx.event
    async def load_sign_in(self) -> rx.event.EventSpec | None:
        await self._load_viewer()
        params = self.router.url.query_parameters
        self.next_path = safe_next_path(params.get("next"))
        if self.is_signed_in:
            return rx.redirect(self.next_path)
        self.notice_tone, self.notice = NOTICES.get(params.get("notice", ""), ("blue", ""))
        self.step, self.error, self.error_code, self._pending_token = "password", "", "", ""
        self.is_submitting = False
        self.oauth_providers = enabled_oauth_providers()
        # A provider sign-in that still needs a second factor or a device code continues here.
        if params.get("step") in (SignInStepKind.SECOND_FACTOR, SignInStepKind.DEVICE_CODE) and params.get("pending"):
            self.step, self._pending_token = params["step"], params["pending"]
            self.email_hint = params.get("hint", "")[:254]
        return None

    def _advance(self, step: SignInStep) -> rx.event.EventSpec | None:
        if step.kind is SignInStepKind.DONE:
            target = f"{routes.API_SESSION}?ticket={quote(step.token)}&next={quote(self.next_path)}"
            # A full page load, so the API route can set the HttpOnly cookie.
            return rx.call_script(f"window.location.assign({json.dumps(target)})")
        self.step = step.kind.value
        self._pending_token = step.token
        self.email_hint = step.email_hint
        self.is_submitting = False
        return None

    def _refuse(self, error: DomainError) -> None:
        self.error, self.error_code, self.is_submitting = error.message, error.code, False

    @rx.event
    async def submit_password(self, form: dict[str, str]) -> AsyncIterator[rx.event.EventSpec | None]:
        self.is_submitting, self.error, self.error_code, self.notice = True, "", "", ""
        yield
        self._email = str(form.get("email", ""))[:254]
        try:
            step = await self._call_service(
                sign_in_with_password,
                email=self._email,
                password=str(form.get("password", "")),
                client=self._client(),
                device_token=self._device_token(),
                for_browser=True,
            )
        except DomainError as error:
            self._refuse(error)
            return
        yield self._advance(step)

    @rx.event
    async def submit_code(self, form: dict[str, str]) -> AsyncIterator[rx.event.EventSpec | None]:
        self.is_submitting, self.error, self.error_code = True, "", ""
        yield
        code = str(form.get("code", ""))[:32]
        service = submit_second_factor if self.step == SignInStepKind.SECOND_FACTOR else submit_device_code
        try:
            step = await self._call_service(
                service,
                pending_token=self._pending_token,
                code=code,
                device_token=self._device_token(),
                for_browser=True,
            )
        except DomainError as error:
            self._refuse(error)
            if error.code in ("link_invalid", "link_expired", "code_expired", "too_many_attempts"):
                self.step, self._pending_token = "password", ""
            return
        yield self._advance(step)

    @rx.event
    def start_over(self) -> None:
        self.step, self._pending_token, self.error, self.error_code = "password", "", "", ""

    @rx.event
    async def resend_verification_email(self) -> None:
        try:
            await self._call_service(
                resend_verification, email=self._email, base_url=get_settings().base_url, client=self._client()
            )
        except DomainError as error:
            self._refuse(error)
            return
        self.error, self.error_code = "", ""
        self.notice_tone, self.notice = "green", "If that account still needs confirming, a new link is on its way."


class SignUpState(AuthState):
    error: str = ""
    is_submitting: bool = False
    submitted_email: str = ""

    @rx.event
    async def load_sign_up(self) -> rx.event.EventSpec | None:
        await self._load_viewer()
        self.error, self.submitted_email, self.is_submitting = "", "", False
        return rx.redirect(routes.HOME) if self.is_signed_in else None

    @rx.event
    async def submit_sign_up(self, form: dict[str, str]) -> AsyncIterator[None]:
        self.is_submitting, self.error = True, ""
        yield
        email = str(form.get("email", ""))[:254]
        try:
            await self._call_service(
                register_account,
                email=email,
                password=str(form.get("password", "")),
                display_name=str(form.get("display_name", ""))[:80],
                base_url=get_settings().base_url,
                client=self._client(),
            )
        except DomainError as error:
            self.error = error.message
        else:
            self.submitted_email = email.strip().lower()
        self.is_submitting = False


class VerifyEmailState(AuthState):
    outcome: str = "checking"
    message: str = ""

    @rx.event
    async def load_verification(self) -> None:
        self.outcome = "checking"
        yield
        token = self.router.url.query_parameters.get("token", "")
        try:
            await self._call_service(verify_email, token=token)
        except DomainError as error:
            self.outcome, self.message = "failed", error.message
        else:
            self.outcome, self.message = "confirmed", "Your email is confirmed. You can sign in now."


class PasswordResetState(AuthState):
    error: str = ""
    is_submitting: bool = False
    request_sent: bool = False
    link_usable: bool = True
    password_changed: bool = False

    @rx.event
    async def load_forgot_password(self) -> None:
        self.error, self.request_sent, self.is_submitting = "", False, False

    @rx.event
    async def submit_reset_request(self, form: dict[str, str]) -> AsyncIterator[None]:
        self.is_submitting, self.error = True, ""
        yield
        try:
            await self._call_service(
                request_password_reset,
                email=str(form.get("email", ""))[:254],
                base_url=get_settings().base_url,
                client=self._client(),
            )
        except DomainError as error:
            self.error = error.message
        else:
            self.request_sent = True
        self.is_submitting = False

    @rx.event
    async def load_reset_password(self) -> None:
        self.error, self.password_changed, self.is_submitting = "", False, False
        try:
            await self._call_service(check_reset_link, token=self.router.url.query_parameters.get("token", ""))
        except DomainError as error:
            self.link_usable, self.error = False, error.message
        else:
            self.link_usable = True

    @rx.event
    async def submit_new_password(self, form: dict[str, str]) -> AsyncIterator[None]:
        self.is_submitting, self.error = True, ""
        yield
        password = str(form.get("password", ""))
        if password != str(form.get("confirm_password", "")):
            self.error, self.is_submitting = "The two passwords don't match.", False
            return
        try:
            await self._call_service(
                reset_password,
                token=self.router.url.query_parameters.get("token", ""),
                new_password=password,
                client=self._client(),
            )
        except DomainError as error:
            self.error = error.message
        else:
            self.password_changed = True
        self.is_submitting = False
