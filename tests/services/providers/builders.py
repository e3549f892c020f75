"""Builders shared by the provider adapter tests."""

from __future__ import annotations

from paytime_app.money import Currency, Money
from paytime_app.services.providers.base import CheckoutRequest


def checkout_request(
    *,
    reference: str = "PAY-TEST0001",
    amount_minor: int = 125_050,
    currency: Currency = Currency.NGN,
    idempotency_key: str | None = None,
) -> CheckoutRequest:
    return CheckoutRequest(
        reference=reference,
        amount_minor=amount_minor,
        currency=currency,
        customer_email="ada@example.com",
        customer_name="Ada Obi",
        description="Wallet top-up",
        return_url="http://localhost:3000/payments/return",
        idempotency_key=idempotency_key or f"intent-{reference}",
    )


def naira(amount_minor: int = 125_050) -> Money:
    return Money(amount_minor, Currency.NGN)
