"""The mock provider's hosted payment page (test mode): the payer chooses Pay or Fail."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import reflex as rx

from paytime_app.errors import DomainError
from paytime_app.money import format_money
from paytime_app.services.payments import complete_mock_checkout, describe_mock_checkout
from paytime_app.services.providers.base import ProviderPaymentStatus
from paytime_app.state.auth import AuthState


class MockCheckoutState(AuthState):
    amount: str = ""
    description: str = ""
    reference: str = ""
    error: str = ""
    settled: bool = False
    is_loading: bool = True
    is_paying: bool = False

    def _provider_reference(self) -> str:
        return str(
            self.router.url.query_parameters.get("provider_reference", "")
            or self.router.page.params.get("provider_reference", "")
        )[:80]

    @rx.event
    async def load_checkout(self) -> None:
        self.is_loading, self.error, self.is_paying = True, "", False
        try:
            view = await self._run(describe_mock_checkout, provider_reference=self._provider_reference())
        except DomainError as error:
            self.error = error.message
        else:
            self.amount = format_money(view.amount_minor, view.currency)
            self.description, self.reference, self.settled = view.description, view.reference, view.settled
        self.is_loading = False

    async def _finish(self, outcome: ProviderPaymentStatus) -> AsyncIterator[rx.event.EventSpec | None]:
        self.is_paying = True
        yield
        try:
            return_url = await self._run(
                complete_mock_checkout, provider_reference=self._provider_reference(), outcome=outcome
            )
        except DomainError as error:
            self.error, self.is_paying = error.message, False
            return
        target = f"{return_url}?payment={self.reference}"
        yield rx.call_script(f"window.location.assign({json.dumps(target)})")

    @rx.event
    async def pay(self) -> AsyncIterator[rx.event.EventSpec | None]:
        async for event in self._finish(ProviderPaymentStatus.SUCCEEDED):
            yield event

    @rx.event
    async def fail(self) -> AsyncIterator[rx.event.EventSpec | None]:
        async for event in self._finish(ProviderPaymentStatus.FAILED):
            yield event
