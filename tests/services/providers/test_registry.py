"""Choosing a provider by slug: only known, configured providers; mock always."""

from __future__ import annotations

import pytest

from paytime_app.services.providers.base import ProviderPaymentStatus, ProviderUnavailable
from paytime_app.services.providers.flutterwave import FlutterwaveProvider
from paytime_app.services.providers.mock import MockProvider
from paytime_app.services.providers.monnify import MonnifyProvider
from paytime_app.services.providers.registry import available_providers, get_provider
from paytime_app.services.providers.stripe_provider import StripeProvider
from paytime_app.settings import get_settings
from tests.services.providers.builders import checkout_request, naira

PROVIDER_VARIABLES = (
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_API_BASE",
    "MONNIFY_API_KEY",
    "MONNIFY_SECRET_KEY",
    "MONNIFY_CONTRACT_CODE",
    "FLUTTERWAVE_SECRET_KEY",
    "FLUTTERWAVE_SECRET_HASH",
)


@pytest.fixture
def bare_env(settings_env):
    for name in PROVIDER_VARIABLES:
        settings_env.delenv(name, raising=False)
    return settings_env


@pytest.fixture
def configured_env(bare_env, fake_providers):
    for name, value in fake_providers.settings_env().items():
        bare_env.setenv(name, value)
    get_settings.cache_clear()
    return bare_env


def test_available_providers_without_keys_only_mock(bare_env):
    assert available_providers() == ["mock"]


def test_available_providers_with_keys_all(configured_env):
    assert available_providers() == ["mock", "stripe", "monnify", "flutterwave"]


def test_available_providers_partial_keys_not_configured(bare_env):
    bare_env.setenv("STRIPE_SECRET_KEY", "sk_test_x")  # no webhook secret: webhooks could not be verified
    bare_env.setenv("MONNIFY_API_KEY", "MK_TEST_X")
    get_settings.cache_clear()
    assert available_providers() == ["mock"]
    with pytest.raises(ProviderUnavailable) as caught:
        get_provider("stripe")
    assert caught.value.details == {"provider": "stripe", "reason": "not_configured"}


def test_get_provider_unknown_refused(bare_env):
    with pytest.raises(ProviderUnavailable) as caught:
        get_provider("paypal")
    assert caught.value.code == "provider_unavailable"
    assert caught.value.details["reason"] == "unknown_provider"


def test_get_provider_mock_in_every_mode(bare_env):
    assert isinstance(get_provider("mock"), MockProvider)


def test_get_provider_each_slug_its_adapter(configured_env):
    adapters = {"stripe": StripeProvider, "monnify": MonnifyProvider, "flutterwave": FlutterwaveProvider}
    for slug, adapter in adapters.items():
        provider = get_provider(slug)
        assert isinstance(provider, adapter)
        assert provider.slug == slug


def test_get_provider_same_instance_until_settings_change(configured_env):
    first = get_provider("monnify")
    assert get_provider("monnify") is first
    get_settings.cache_clear()
    assert get_provider("monnify") is not first


def test_get_provider_stripe_reaches_configured_api_base(configured_env, fake_providers):
    session = get_provider("stripe").create_checkout(checkout_request())
    assert session.provider_reference in fake_providers.stripe_sessions


def test_get_provider_mock_shares_checkouts_between_instances(bare_env):
    """Without Redis the mock store is per process, shared by every instance in it."""
    session = get_provider("mock").create_checkout(checkout_request(reference="PAY-REGISTRY"))
    get_settings.cache_clear()
    other = get_provider("mock")
    other.settle_checkout(provider_reference=session.provider_reference, outcome=ProviderPaymentStatus.SUCCEEDED)
    payment = other.fetch_payment(
        provider_reference=session.provider_reference, reference="PAY-REGISTRY", expected=naira()
    )
    assert payment.status is ProviderPaymentStatus.SUCCEEDED
