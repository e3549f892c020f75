"""The account page: profile, two-factor authentication, sign-in methods, signed-in devices."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import reflex as rx

from paytime_app.errors import AuthenticationRequired, DomainError
from paytime_app.services.accounts import AccountOverview, get_account_overview, sign_out_everywhere
from paytime_app.services.oauth import enabled_oauth_providers, unlink_oauth_identity
from paytime_app.services.sessions import describe_user_agent, revoke_session
from paytime_app.services.two_factor import (
    begin_totp_enrollment,
    confirm_totp_enrollment,
    disable_two_factor,
    regenerate_recovery_codes,
)
from paytime_app.state.auth import AuthState

ACCOUNT_NOTICES = {
    "provider_linked": ("green", "Sign-in provider linked. You can now use it to sign in."),
    "oauth_already_linked": ("red", "That account is already linked to another PayTime account, or to this one."),
    "oauth_failed": ("red", "We couldn't complete linking with that provider. Try again."),
    "oauth_state_mismatch": ("red", "That linking attempt expired. Try again."),
}


class AccountState(AuthState):
    email: str = ""
    email_verified: bool = False
    two_factor_enabled: bool = False
    linked_providers: list[str] = []
    available_providers: list[str] = []
    sessions: list[dict[str, str]] = []
    enrollment_qr: str = ""
    enrollment_secret: str = ""
    recovery_codes: list[str] = []
    notice: str = ""
    notice_tone: str = "green"
    error: str = ""
    is_loading: bool = True
    is_busy: bool = False

    def _show(self, overview: AccountOverview) -> None:
        self.email = overview.user.email
        self.email_verified = overview.user.email_verified_at is not None
        self.two_factor_enabled = overview.two_factor_enabled
        self.linked_providers = overview.linked_providers
        self.available_providers = enabled_oauth_providers()
        self.sessions = [
            {
                "id": str(record.id),
                "device": describe_user_agent(record.user_agent),
                "ip": record.ip_address or "unknown address",
                "last_seen": record.last_seen_at.strftime("%d %b %Y, %H:%M UTC"),
                "current": "yes" if str(record.id) == self._session_id else "",
                "kind": record.kind,
            }
            for record in overview.sessions
        ]

    async def _refresh(self) -> None:
        self._show(await self._call_as_viewer(get_account_overview))

    @rx.event
    async def load_account(self) -> AsyncIterator[rx.event.EventSpec | None]:
        self.is_loading, self.error, self.recovery_codes, self.enrollment_qr = True, "", [], ""
        self.notice_tone, self.notice = ACCOUNT_NOTICES.get(
            self.router.url.query_parameters.get("notice", ""), ("green", "")
        )
        await self._load_viewer()
        if not self.is_signed_in:
            yield self._sign_in_redirect()
            return
        try:
            await self._refresh()
        except AuthenticationRequired:
            yield self._sign_in_redirect()
            return
        self.is_loading = False

    async def _act(self, service: Callable[..., Any], success: str, **kwargs: Any) -> Any:
        """Run one change as the viewer; show its refusal in words, or the success notice."""
        self.is_busy, self.error, self.notice = True, "", ""
        try:
            result = await self._call_as_viewer(service, **kwargs)
            await self._refresh()
        except DomainError as error:
            self.error = error.message
            result = None
        else:
            self.notice_tone, self.notice = "green", success
        self.is_busy = False
        return result

    @rx.event
    async def start_two_factor(self) -> None:
        enrollment = await self._act(begin_totp_enrollment, "", actor_param="user")
        if enrollment is not None:
            self.enrollment_qr = enrollment.qr_svg_data_url
            self.enrollment_secret = enrollment.secret
            self.notice = ""

    @rx.event
    async def confirm_two_factor(self, form: dict[str, str]) -> None:
        codes = await self._act(
            confirm_totp_enrollment,
            "Two-factor authentication is on.",
            actor_param="user",
            code=str(form.get("code", ""))[:20],
        )
        if codes is not None:
            self.recovery_codes = list(codes)
            self.enrollment_qr = self.enrollment_secret = ""

    @rx.event
    def cancel_two_factor_setup(self) -> None:
        self.enrollment_qr = self.enrollment_secret = ""

    @rx.event
    def dismiss_recovery_codes(self) -> None:
        self.recovery_codes = []

    @rx.event
    async def turn_off_two_factor(self, form: dict[str, str]) -> None:
        await self._act(
            disable_two_factor,
            "Two-factor authentication is off.",
            actor_param="user",
            code=str(form.get("code", ""))[:20],
        )

    @rx.event
    async def new_recovery_codes(self, form: dict[str, str]) -> None:
        codes = await self._act(
            regenerate_recovery_codes,
            "New recovery codes made; the old ones no longer work.",
            actor_param="user",
            code=str(form.get("code", ""))[:20],
        )
        if codes is not None:
            self.recovery_codes = list(codes)

    @rx.event
    async def unlink_provider(self, provider: str) -> None:
        await self._act(
            unlink_oauth_identity, "Sign-in provider unlinked.", actor_param="user", provider=str(provider)[:20]
        )

    @rx.event
    async def sign_out_device(self, session_id: str) -> None:
        try:
            target = uuid.UUID(str(session_id))
        except ValueError:
            self.error = "That device is not in your list."
            return
        await self._act(revoke_session, "That device is signed out.", actor_param="user", session_id=target)

    @rx.event
    async def sign_out_all_devices(self) -> None:
        # This tab's session ends too; the live push sends it to the sign-in page.
        await self._act(sign_out_everywhere, "Signed out everywhere.")
