"""Payment providers by slug: the one place that knows which adapters exist and which are configured.

`mock` is available in every run mode, production included: it is our test double and the embedded
default, and it cannot move real money, since a mock payment is settled only by a webhook signed
with MOCK_WEBHOOK_SECRET, which production refuses to start with at its default value. Whether the
mock is *offered* to customers in production is the payment service's and the UI's choice (e.g.
PAYMENT_PROVIDER_DEFAULT); this registry only answers "can this provider be used".

The others are available when their credentials are set. Instances are cached per settings object
(so tests that change settings get fresh adapters) because some keep state worth keeping: Monnify's
bearer token, Stripe's HTTP session. Circuit breakers live in `resilience`, per slug, not here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from paytime_app.services.providers.base import PaymentProvider, ProviderUnavailable
from paytime_app.services.providers.flutterwave import FlutterwaveProvider
from paytime_app.services.providers.mock import MockProvider
from paytime_app.services.providers.monnify import MonnifyProvider
from paytime_app.services.providers.stripe_provider import StripeProvider
from paytime_app.settings import Settings, get_settings

PROVIDER_SLUGS: tuple[str, ...] = ("mock", "stripe", "monnify", "flutterwave")

_FACTORIES: dict[str, Callable[[Settings], PaymentProvider]] = {
    "mock": MockProvider.from_settings,
    "stripe": StripeProvider.from_settings,
    "monnify": MonnifyProvider.from_settings,
    "flutterwave": FlutterwaveProvider.from_settings,
}

_cache_lock = threading.Lock()
_cache: dict[str, tuple[Settings, PaymentProvider]] = {}


def is_configured(slug: str, settings: Settings) -> bool:
    """True when the settings hold everything the provider needs."""
    if slug == "mock":
        return bool(settings.mock_webhook_secret)
    if slug == "stripe":
        return bool(settings.stripe_secret_key and settings.stripe_webhook_secret)
    if slug == "monnify":
        return bool(settings.monnify_api_key and settings.monnify_secret_key and settings.monnify_contract_code)
    if slug == "flutterwave":
        return bool(settings.flutterwave_secret_key and settings.flutterwave_secret_hash)
    return False


def available_providers() -> list[str]:
    """Slugs of the providers that can take payments with the current settings, mock first."""
    settings = get_settings()
    return [slug for slug in PROVIDER_SLUGS if is_configured(slug, settings)]


def get_provider(slug: str) -> PaymentProvider:
    """The adapter for `slug`. Raises ProviderUnavailable for an unknown or unconfigured provider."""
    settings = get_settings()
    if slug not in _FACTORIES:
        raise ProviderUnavailable(provider=slug, reason="unknown_provider")
    if not is_configured(slug, settings):
        raise ProviderUnavailable(provider=slug, reason="not_configured")
    with _cache_lock:
        cached = _cache.get(slug)
        if cached is not None and cached[0] is settings:
            return cached[1]
        provider = _FACTORIES[slug](settings)
        _cache[slug] = (settings, provider)
        return provider
