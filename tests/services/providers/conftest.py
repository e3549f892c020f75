"""Fixtures for the provider adapters: fake provider APIs on loopback, closed breakers, quick retries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paytime_app.services.providers.resilience import RetryPolicy, reset_breakers
from tests.fake_payment_providers import FakePaymentProviders


@pytest.fixture(autouse=True)
def _closed_breakers() -> Iterator[None]:
    """Breakers are per process; each test starts and ends with every circuit closed."""
    reset_breakers()
    yield
    reset_breakers()


@pytest.fixture
def fake_providers() -> Iterator[FakePaymentProviders]:
    with FakePaymentProviders() as fake:
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def quick_policy(sleeps: list[float]) -> RetryPolicy:
    """The production policy's attempts and delays, with the sleeps recorded instead of slept."""
    return RetryPolicy(sleep=sleeps.append)
