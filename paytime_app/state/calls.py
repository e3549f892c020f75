"""The calls page: credits, place a call, the incoming/ongoing call with its running cost, history."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import reflex as rx

from paytime_app.errors import AuthenticationRequired, DomainError
from paytime_app.models.calls import Call, CallStatus
from paytime_app.money import Currency, format_money, to_minor
from paytime_app.services.calls import (
    answer_call,
    buy_call_credits_from_wallet,
    cancel_call,
    cost_for,
    decline_call,
    describe_cost,
    end_call,
    list_calls,
    monthly_totals,
    place_call,
)
from paytime_app.services.wallets import WalletKind, list_wallets
from paytime_app.state.auth import AuthState

LIVE_STATUSES = (CallStatus.RINGING, CallStatus.ACTIVE)


class CallsState(AuthState):
    credits: list[dict[str, str]] = []
    calls: list[dict[str, str]] = []
    totals: list[dict[str, str]] = []
    live_call_id: str = ""
    live_status: str = ""
    live_role: str = ""  # caller | callee
    live_rate_minor: int = 0
    live_currency: str = "NGN"
    live_started_epoch: float = 0.0
    elapsed_seconds: int = 0
    status_filter: str = "all"
    error: str = ""
    notice: str = ""
    is_loading: bool = True
    _key: str = ""
    _ticking: bool = False

    @rx.var
    def running_cost(self) -> str:
        if self.live_rate_minor <= 0:
            return ""
        return format_money(cost_for(self.elapsed_seconds, self.live_rate_minor), self.live_currency)

    @rx.var
    def running_time(self) -> str:
        minutes, seconds = divmod(self.elapsed_seconds, 60)
        return f"{minutes}:{seconds:02d}"

    def _show_call(self, call: Call | None) -> None:
        if call is None:
            self.live_call_id = self.live_status = self.live_role = ""
            self.elapsed_seconds = 0
            return
        self.live_call_id, self.live_status = str(call.id), str(call.status)
        self.live_role = "caller" if str(call.caller_id) == self.user_id else "callee"
        self.live_rate_minor, self.live_currency = call.rate_per_minute_minor, call.currency
        self.live_started_epoch = call.started_at.timestamp() if call.started_at else 0.0

    async def _refresh(self) -> None:
        wallets = await self._call_as_viewer(list_wallets)
        self.credits = [
            {
                "currency": str(view.currency),
                "balance": format_money(view.balance_minor, view.currency),
                "held": format_money(view.held_minor, view.currency) if view.held_minor else "",
            }
            for view in wallets
            if view.kind == WalletKind.CALL_CREDITS
        ]
        status = None if self.status_filter == "all" else CallStatus(self.status_filter)
        calls = await self._call_as_viewer(list_calls, status=status, page=1, page_size=20)
        self.calls = [
            {
                "id": str(call.id),
                "when": call.created_at.strftime("%d %b %Y, %H:%M"),
                "type": str(call.call_type),
                "direction": "out" if str(call.caller_id) == self.user_id else "in",
                "status": str(call.status),
                "cost": describe_cost(call) if call.status == CallStatus.ENDED else "—",
            }
            for call in calls
        ]
        live = await self._call_as_viewer(list_calls, status=None, page=1, page_size=5)
        self._show_call(next((call for call in live if call.status in LIVE_STATUSES), None))
        self.totals = [
            {
                "month": total.month,
                "calls": str(total.calls),
                "cost": format_money(total.cost_minor, total.currency),
                "minutes": f"{total.seconds // 60}:{total.seconds % 60:02d}",
            }
            for total in await self._call_as_viewer(monthly_totals)
        ]

    @rx.event
    async def load_calls(self) -> AsyncIterator[rx.event.EventSpec | None]:
        self.is_loading, self.error, self.notice = True, "", ""
        await self._load_viewer()
        if not self.is_signed_in:
            yield self._sign_in_redirect()
            return
        self._key = secrets.token_urlsafe(12)
        try:
            await self._refresh()
        except AuthenticationRequired:
            yield self._sign_in_redirect()
            return
        self.is_loading = False
        yield CallsState.tick

    @rx.event
    async def refresh(self) -> AsyncIterator[rx.event.EventSpec | None]:
        """Pushed by the server when a call of the viewer's changes (incoming, answered, ended)."""
        try:
            await self._refresh()
        except AuthenticationRequired:
            return
        yield CallsState.tick

    @rx.event
    async def filter_status(self, status: str) -> None:
        if status == "all" or status in CallStatus.__members__.values():
            self.status_filter = status
            await self._refresh_quietly()

    async def _refresh_quietly(self) -> None:
        try:
            await self._refresh()
        except AuthenticationRequired:
            return

    @rx.event(background=True)
    async def tick(self) -> None:
        """While a call is answered, count its seconds once a second (the server bills, this only shows)."""
        async with self:
            if self._ticking:
                return
            self._ticking = True
        try:
            while True:
                async with self:
                    if self.live_status != CallStatus.ACTIVE or not self.live_started_epoch:
                        self.elapsed_seconds = 0
                        return
                    self.elapsed_seconds = max(0, int(time.time() - self.live_started_epoch))
                await asyncio.sleep(1)
        finally:
            async with self:
                self._ticking = False

    async def _act(self, service: Callable[..., Any], success: str, **kwargs: Any) -> None:
        self.error, self.notice = "", ""
        try:
            await self._call_as_viewer(service, **kwargs)
            await self._refresh()
        except DomainError as error:
            self.error = error.message
        else:
            self.notice = success

    @rx.event
    async def submit_call(self, form: dict[str, str]) -> AsyncIterator[rx.event.EventSpec | None]:
        target = str(form.get("callee", "")).strip()[:254]
        await self._act(
            place_call,
            "Calling…",
            callee=target,
            call_type=str(form.get("call_type", "audio"))[:10],
            currency=str(form.get("currency", "NGN"))[:3],
            idempotency_key=f"web:{self._key}",
        )
        self._key = secrets.token_urlsafe(12)
        yield CallsState.tick

    def _live_id(self) -> uuid.UUID | None:
        try:
            return uuid.UUID(self.live_call_id)
        except ValueError:
            return None

    @rx.event
    async def answer(self) -> AsyncIterator[rx.event.EventSpec | None]:
        if (call_id := self._live_id()) is not None:
            await self._act(answer_call, "Connected.", call_id=call_id)
        yield CallsState.tick

    @rx.event
    async def decline(self) -> None:
        if (call_id := self._live_id()) is not None:
            await self._act(decline_call, "Call declined.", call_id=call_id)

    @rx.event
    async def hang_up(self) -> None:
        call_id = self._live_id()
        if call_id is None:
            return
        if self.live_status == CallStatus.RINGING and self.live_role == "caller":
            await self._act(cancel_call, "Call cancelled; nothing was charged.", call_id=call_id)
        else:
            await self._act(end_call, "Call ended.", call_id=call_id)

    @rx.event
    async def buy_credits(self, form: dict[str, str]) -> None:
        self.error, self.notice = "", ""
        try:
            currency = Currency(str(form.get("currency", "NGN")))
            amount_minor = to_minor(str(form.get("amount", ""))[:20], currency)
        except ValueError:
            self.error = "Choose a currency."
            return
        except DomainError as error:
            self.error = error.message
            return
        await self._act(
            buy_call_credits_from_wallet,
            "Call credits added from your wallet.",
            amount_minor=amount_minor,
            currency=str(currency),
            idempotency_key=f"web:{self._key}",
        )
        self._key = secrets.token_urlsafe(12)
