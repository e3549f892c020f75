"""The wallet page: balances, holds, history, payments, top-up; refreshed live when a payment lands."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator

import reflex as rx

from paytime_app import routes
from paytime_app.cookies import SESSION_COOKIE
from paytime_app.errors import AuthenticationRequired, DomainError
from paytime_app.models.payments import PaymentPurpose
from paytime_app.models.sessions import SessionKind
from paytime_app.money import Currency, format_money, to_minor
from paytime_app.services.paging import page_count
from paytime_app.services.payments import list_own_payments, start_checkout, verify_payment
from paytime_app.services.providers.registry import available_providers
from paytime_app.services.wallets import WALLET_LABELS, WalletKind, list_wallets, wallet_history
from paytime_app.settings import get_settings
from paytime_app.state.auth import AuthState

HISTORY_PAGE_SIZE = 20
PROVIDER_LABELS = {
    "mock": "Test card (mock)",
    "stripe": "Card (Stripe)",
    "monnify": "Bank transfer (Monnify)",
    "flutterwave": "Card or USSD (Flutterwave)",
}


class WalletState(AuthState):
    wallets: list[dict[str, str]] = []
    history: list[dict[str, str]] = []
    payments: list[dict[str, str]] = []
    history_kind: str = str(WalletKind.PRIMARY)
    history_currency: str = str(Currency.NGN)
    history_page: int = 1
    history_total: int = 0
    providers: list[dict[str, str]] = []
    topup_error: str = ""
    notice: str = ""
    is_loading: bool = True
    is_paying: bool = False
    _topup_key: str = ""

    @rx.var
    def history_pages(self) -> int:
        return page_count(self.history_total, HISTORY_PAGE_SIZE)

    async def _refresh(self) -> None:
        views = await self._call_as_viewer(list_wallets)
        self.wallets = [
            {
                "label": WALLET_LABELS[view.kind],
                "currency": str(view.currency),
                "balance": format_money(view.balance_minor, view.currency),
                "held": format_money(view.held_minor, view.currency) if view.held_minor else "",
            }
            for view in views
        ]
        lines, self.history_total = await self._call_as_viewer(
            wallet_history,
            kind=WalletKind(self.history_kind),
            currency=Currency(self.history_currency),
            page=self.history_page,
            page_size=HISTORY_PAGE_SIZE,
        )
        self.history = [
            {
                "when": line.created_at.strftime("%d %b %Y, %H:%M"),
                "what": line.description,
                "reference": line.reference,
                "amount": format_money(line.amount_minor, line.currency),
                "direction": "in" if line.amount_minor > 0 else "out",
            }
            for line in lines
        ]
        payments = await self._call_as_viewer(list_own_payments, page=1, page_size=5)
        self.payments = [
            {
                "id": str(payment.id),
                "reference": payment.reference,
                "status": str(payment.status),
                "amount": format_money(payment.amount_minor, payment.currency),
                "provider": payment.provider,
                "when": payment.created_at.strftime("%d %b %Y, %H:%M"),
                "reason": payment.failure_reason or "",
            }
            for payment in payments
        ]

    @rx.event
    async def load_wallet(self) -> AsyncIterator[rx.event.EventSpec | None]:
        self.is_loading = True
        await self._load_viewer()
        if not self.is_signed_in:
            yield self._sign_in_redirect()
            return
        self.providers = [{"slug": slug, "label": PROVIDER_LABELS[slug]} for slug in available_providers()]
        self._topup_key = secrets.token_urlsafe(16)
        payment_reference = self.router.url.query_parameters.get("payment", "")
        self.notice = f"Back from checkout for {payment_reference[:20]}." if payment_reference else ""
        try:
            await self._refresh()
        except AuthenticationRequired:
            yield self._sign_in_redirect()
            return
        self.is_loading = False

    @rx.event
    async def refresh(self) -> None:
        """Pushed by the server when one of the viewer's payments changes."""
        try:
            await self._refresh()
        except AuthenticationRequired:
            return

    @rx.event
    async def show_history(self, kind_and_currency: str) -> None:
        kind, _, currency = str(kind_and_currency).partition(":")
        if kind in WalletKind.__members__.values() and currency in Currency.__members__.values():
            self.history_kind, self.history_currency, self.history_page = kind, currency, 1
            await self.refresh()

    @rx.event
    async def go_to_history_page(self, page: int) -> None:
        self.history_page = max(1, min(int(page), self.history_pages))
        await self.refresh()

    @rx.event
    async def submit_top_up(self, form: dict[str, str]) -> AsyncIterator[rx.event.EventSpec | None]:
        self.is_paying, self.topup_error = True, ""
        yield
        try:
            currency = Currency(str(form.get("currency", "NGN")))
            purpose = PaymentPurpose(str(form.get("purpose", PaymentPurpose.WALLET_TOPUP)))
            amount_minor = to_minor(str(form.get("amount", ""))[:20], currency)
            payment = await self._run(
                start_checkout,
                token=self._cookie(SESSION_COOKIE),
                kind=SessionKind.BROWSER,
                purpose=purpose,
                amount_minor=amount_minor,
                currency=str(currency),
                provider=str(form.get("provider", "mock"))[:20],
                idempotency_key=f"web:{self._topup_key}",
                return_url=f"{get_settings().base_url}{routes.WALLET}",
            )
        except ValueError:
            self.topup_error, self.is_paying = "Choose a currency and what to top up.", False
            return
        except DomainError as error:
            self.topup_error, self.is_paying = error.message, False
            self._topup_key = secrets.token_urlsafe(16)
            return
        self._topup_key = secrets.token_urlsafe(16)
        # The checkout is another site (or the mock's page): a full page load.
        yield rx.call_script(f"window.location.assign({json.dumps(payment.checkout_url)})")

    @rx.event
    async def verify(self, payment_id: str) -> None:
        self.notice = ""
        try:
            payment = await self._run(
                verify_payment,
                token=self._cookie(SESSION_COOKIE),
                kind=SessionKind.BROWSER,
                payment_id=uuid.UUID(str(payment_id)),
            )
        except (ValueError, DomainError) as error:
            self.notice = error.message if isinstance(error, DomainError) else "That payment does not exist."
            return
        self.notice = f"{payment.reference} is {payment.status}."
        await self.refresh()
