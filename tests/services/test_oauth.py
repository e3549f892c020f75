"""OAuth sign-in: the real authlib client code against a fake Google/GitHub on loopback."""

import contextlib
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlmodel import select

from paytime_app.db import in_transaction, unit_of_work
from paytime_app.errors import DomainError
from paytime_app.models.audit import AuditLogEntry
from paytime_app.models.credentials import OAuthIdentity
from paytime_app.models.users import Role, User
from paytime_app.services.oauth import (
    OAuthProfile,
    OAuthStart,
    clear_oauth_metadata_cache,
    enabled_oauth_providers,
    finish_oauth,
    link_oauth_identity,
    list_linked_providers,
    sign_in_with_oauth,
    start_oauth,
    unlink_oauth_identity,
)
from paytime_app.services.users import create_user
from paytime_app.settings import get_settings
from tests.fake_oauth import GITHUB_CLIENT_ID, GOOGLE_CLIENT_ID, FakeOAuthProvider, s256_challenge

REDIRECT_URI = "http://127.0.0.1:3000/oauth/{provider}/callback"
OAUTH_ENV = (
    "GOOGLE_CLIENT_ID",
    "GOOGLE_CLIENT_SECRET",
    "GITHUB_CLIENT_ID",
    "GITHUB_CLIENT_SECRET",
)


@pytest.fixture
def provider(settings_env):
    clear_oauth_metadata_cache()
    with FakeOAuthProvider() as fake:
        for name, value in fake.settings_env().items():
            settings_env.setenv(name, value)
        get_settings.cache_clear()
        yield fake
    clear_oauth_metadata_cache()


def authorize(start: OAuthStart) -> dict[str, str]:
    """What a browser does: visit the authorization URL; the provider redirects back at once."""
    response = httpx.get(start.authorization_url, follow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    return {key: values[0] for key, values in parse_qs(location.query).items()}


def sign_in_flow(provider_name: str, **overrides) -> OAuthProfile:
    redirect_uri = REDIRECT_URI.format(provider=provider_name)
    start = start_oauth(provider=provider_name, redirect_uri=redirect_uri)
    callback = authorize(start)
    arguments = {
        "provider": provider_name,
        "redirect_uri": redirect_uri,
        "code": callback.get("code"),
        "returned_state": callback.get("state"),
        "expected_state": start.state,
        "code_verifier": start.code_verifier,
        "nonce": start.nonce,
    }
    arguments.update(overrides)
    return finish_oauth(**arguments)


@contextlib.contextmanager
def refused(code: str):
    """Assert the block raises a DomainError with this code."""
    with pytest.raises(DomainError) as info:
        yield info
    assert info.value.code == code, f"{info.value.code} != {code}: {info.value.message}"


def audit_actions(user_id=None) -> list[str]:
    with unit_of_work() as session:
        statement = select(AuditLogEntry)
        if user_id is not None:
            statement = statement.where(AuditLogEntry.actor_id == user_id)
        return sorted(entry.action for entry in session.exec(statement).all())


def identities() -> list[tuple[str, str]]:
    with unit_of_work() as session:
        return sorted((row.provider, row.subject) for row in session.exec(select(OAuthIdentity)).all())


def make_user(email: str, *, password: str | None = "correct horse battery staple") -> User:
    return in_transaction(create_user, email=email, display_name="Existing", password=password)


# -- configuration ---------------------------------------------------------------------------------


def test_enabled_oauth_providers_lists_only_configured(settings_env):
    for name in OAUTH_ENV:
        settings_env.delenv(name, raising=False)
    get_settings.cache_clear()
    assert enabled_oauth_providers() == []
    settings_env.setenv("GITHUB_CLIENT_ID", "id")
    get_settings.cache_clear()
    assert enabled_oauth_providers() == []
    settings_env.setenv("GITHUB_CLIENT_SECRET", "secret")
    get_settings.cache_clear()
    assert enabled_oauth_providers() == ["github"]


def test_enabled_oauth_providers_both_when_configured(provider):
    assert enabled_oauth_providers() == ["google", "github"]


@pytest.mark.parametrize("name", ["facebook", "", "GOOGLE"])
def test_start_oauth_unknown_provider_refused(provider, name):
    with refused("oauth_provider_unavailable"):
        start_oauth(provider=name, redirect_uri="http://127.0.0.1/cb")


def test_start_oauth_disabled_provider_refused(provider, settings_env):
    settings_env.delenv("GITHUB_CLIENT_SECRET")
    get_settings.cache_clear()
    with refused("oauth_provider_unavailable"):
        start_oauth(provider="github", redirect_uri="http://127.0.0.1/cb")


def test_start_oauth_unreachable_discovery_refused(provider, settings_env):
    settings_env.setenv("GOOGLE_DISCOVERY_URL", f"{provider.base_url}/missing/openid-configuration")
    get_settings.cache_clear()
    with refused("oauth_provider_unavailable"):
        start_oauth(provider="google", redirect_uri="http://127.0.0.1/cb")


# -- starting the flow -----------------------------------------------------------------------------


def test_start_oauth_google_url_has_state_pkce_and_nonce(provider):
    start = start_oauth(provider="google", redirect_uri=REDIRECT_URI.format(provider="google"))
    url = urlsplit(start.authorization_url)
    params = {key: values[0] for key, values in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{provider.base_url}/authorize"
    assert params["client_id"] == GOOGLE_CLIENT_ID
    assert params["response_type"] == "code"
    assert params["redirect_uri"] == REDIRECT_URI.format(provider="google")
    assert set(params["scope"].split()) == {"openid", "email", "profile"}
    assert params["state"] == start.state
    assert params["nonce"] == start.nonce
    assert params["code_challenge_method"] == "S256"
    assert params["code_challenge"] == s256_challenge(start.code_verifier)
    assert "code_verifier" not in params
    # 128+ bits of randomness: token_urlsafe(16) is 22 characters.
    assert len(start.state) >= 22
    assert start.nonce is not None
    assert len(start.nonce) >= 22
    assert 43 <= len(start.code_verifier) <= 128


def test_start_oauth_twice_uses_fresh_secrets(provider):
    first = start_oauth(provider="google", redirect_uri="http://127.0.0.1/cb")
    second = start_oauth(provider="google", redirect_uri="http://127.0.0.1/cb")
    assert first.state != second.state
    assert first.nonce != second.nonce
    assert first.code_verifier != second.code_verifier


def test_start_oauth_github_has_pkce_and_no_nonce(provider):
    start = start_oauth(provider="github", redirect_uri=REDIRECT_URI.format(provider="github"))
    url = urlsplit(start.authorization_url)
    params = {key: values[0] for key, values in parse_qs(url.query).items()}
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{provider.base_url}/login/oauth/authorize"
    assert params["client_id"] == GITHUB_CLIENT_ID
    assert params["state"] == start.state
    assert params["code_challenge"] == s256_challenge(start.code_verifier)
    assert params["code_challenge_method"] == "S256"
    assert "user:email" in params["scope"].split()
    assert start.nonce is None
    assert "nonce" not in params


# -- finishing the flow: Google --------------------------------------------------------------------


def test_finish_oauth_google_returns_profile(provider):
    provider.next_identity = {"sub": "g-42", "email": "Ada@Example.com", "email_verified": True, "name": "Ada L"}
    profile = sign_in_flow("google")
    assert profile == OAuthProfile(
        provider="google", subject="g-42", email="ada@example.com", email_verified=True, display_name="Ada L"
    )
    assert ("GET", "/jwks") in provider.requests
    assert ("POST", "/token") in provider.requests


def test_finish_oauth_google_unverified_email_reported_unverified(provider):
    provider.next_identity = {"sub": "g-43", "email": "bo@example.com", "email_verified": False, "name": ""}
    profile = sign_in_flow("google")
    assert profile.email == "bo@example.com"
    assert profile.email_verified is False
    assert profile.display_name == "bo"


def test_finish_oauth_state_mismatch_refused(provider):
    with refused("oauth_state_mismatch"):
        sign_in_flow("google", returned_state="forged-state-value-of-enough-length")
    # Refused before the code is spent: no token request reached the provider.
    assert ("POST", "/token") not in provider.requests


@pytest.mark.parametrize("returned", [None, ""])
def test_finish_oauth_state_missing_refused(provider, returned):
    with refused("oauth_state_mismatch"):
        sign_in_flow("github", returned_state=returned)


def test_finish_oauth_wrong_nonce_in_id_token_refused(provider):
    provider.tamper_nonce = True
    with refused("oauth_failed"):
        sign_in_flow("google")


def test_finish_oauth_nonce_of_another_flow_refused(provider):
    with refused("oauth_failed"):
        sign_in_flow("google", nonce="nonce-from-another-sign-in-attempt")


def test_finish_oauth_google_without_nonce_refused(provider):
    with refused("oauth_failed"):
        sign_in_flow("google", nonce=None)


def test_finish_oauth_wrong_pkce_verifier_refused(provider):
    with refused("oauth_failed"):
        sign_in_flow("google", code_verifier="x" * 64)
    # The fake provider refused it at the token endpoint, as a real one would.
    assert ("POST", "/token") in provider.requests


def test_finish_oauth_github_wrong_pkce_verifier_refused(provider):
    with refused("oauth_failed"):
        sign_in_flow("github", code_verifier="y" * 64)


def test_finish_oauth_code_reused_refused(provider):
    start = start_oauth(provider="google", redirect_uri="http://127.0.0.1/cb")
    callback = authorize(start)
    arguments = {
        "provider": "google",
        "redirect_uri": "http://127.0.0.1/cb",
        "code": callback["code"],
        "returned_state": callback["state"],
        "expected_state": start.state,
        "code_verifier": start.code_verifier,
        "nonce": start.nonce,
    }
    assert finish_oauth(**arguments).subject
    with refused("oauth_failed"):
        finish_oauth(**arguments)


def test_finish_oauth_redirect_uri_changed_refused(provider):
    with refused("oauth_failed"):
        sign_in_flow("google", redirect_uri="http://127.0.0.1:3000/elsewhere")


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "another-client"},
        {"azp": "another-client"},
        {"iss": "https://evil.example"},
        {"exp": int(time.time()) - 3600},
        {"exp": None},
        {"sub": None},
        {"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"},
    ],
    ids=["aud", "azp", "iss", "expired", "no-exp", "no-sub", "at_hash"],
)
def test_finish_oauth_bad_id_token_claims_refused(provider, overrides):
    provider.id_token_overrides = overrides
    with refused("oauth_failed"):
        sign_in_flow("google")


def test_finish_oauth_id_token_signed_by_unknown_key_refused(provider):
    provider.sign_with_unpublished_key = True
    with refused("oauth_failed"):
        sign_in_flow("google")


def test_finish_oauth_wrong_client_secret_refused(provider, settings_env):
    start = start_oauth(provider="google", redirect_uri="http://127.0.0.1/cb")
    callback = authorize(start)
    settings_env.setenv("GOOGLE_CLIENT_SECRET", "not-the-secret")
    get_settings.cache_clear()
    with refused("oauth_failed"):
        finish_oauth(
            provider="google",
            redirect_uri="http://127.0.0.1/cb",
            code=callback["code"],
            returned_state=callback["state"],
            expected_state=start.state,
            code_verifier=start.code_verifier,
            nonce=start.nonce,
        )


def test_finish_oauth_user_denied_refused(provider):
    provider.deny = True
    start = start_oauth(provider="github", redirect_uri="http://127.0.0.1/cb")
    callback = authorize(start)
    assert callback == {"error": "access_denied", "state": start.state}
    with refused("oauth_failed"):
        sign_in_flow("github")


def test_finish_oauth_provider_unreachable_refused(provider):
    start = start_oauth(provider="google", redirect_uri="http://127.0.0.1/cb")
    callback = authorize(start)
    provider.stop()
    with refused("oauth_failed"):
        finish_oauth(
            provider="google",
            redirect_uri="http://127.0.0.1/cb",
            code=callback["code"],
            returned_state=callback["state"],
            expected_state=start.state,
            code_verifier=start.code_verifier,
            nonce=start.nonce,
        )


# -- finishing the flow: GitHub --------------------------------------------------------------------


def test_finish_oauth_github_uses_id_and_primary_verified_email(provider):
    provider.next_identity = {
        "sub": "583231",
        "login": "octocat",
        "name": "The Octocat",
        "emails": [
            {"email": "old@example.com", "primary": False, "verified": True},
            {"email": "Octo@Example.com", "primary": True, "verified": True},
        ],
    }
    profile = sign_in_flow("github")
    assert profile == OAuthProfile(
        provider="github",
        subject="583231",
        email="octo@example.com",
        email_verified=True,
        display_name="The Octocat",
    )
    assert ("GET", "/user") in provider.requests
    assert ("GET", "/user/emails") in provider.requests


def test_finish_oauth_github_unverified_primary_email_ignored(provider):
    provider.next_identity = {
        "sub": "77",
        "login": "newbie",
        "emails": [{"email": "newbie@example.com", "primary": True, "verified": False}],
    }
    profile = sign_in_flow("github")
    assert profile.subject == "77"
    assert profile.email is None
    assert profile.email_verified is False
    assert profile.display_name == "newbie"


def test_sign_in_with_oauth_github_new_user_created(engine, provider):
    provider.next_identity = {"sub": "9001", "email": "gh@example.com", "email_verified": True, "name": "Gee"}
    user = in_transaction(sign_in_with_oauth, profile=sign_in_flow("github"))
    assert user.email == "gh@example.com"
    assert identities() == [("github", "9001")]


def test_sign_in_with_oauth_no_email_refused(engine, provider):
    provider.next_identity = {"sub": "78", "login": "ghost", "emails": []}
    with refused("oauth_email_missing"):
        in_transaction(sign_in_with_oauth, profile=sign_in_flow("github"))
    assert identities() == []


# -- accounts --------------------------------------------------------------------------------------


def test_sign_in_with_oauth_new_user_created_and_linked(engine, provider):
    provider.next_identity = {"sub": "g-1", "email": "new@example.com", "email_verified": True, "name": "New Person"}
    user = in_transaction(sign_in_with_oauth, profile=sign_in_flow("google"))
    assert user.email == "new@example.com"
    assert user.display_name == "New Person"
    assert user.password_hash is None
    assert user.role == Role.CUSTOMER
    assert user.email_verified_at is not None
    assert identities() == [("google", "g-1")]
    assert in_transaction(list_linked_providers, user=user) == ["google"]
    assert audit_actions(user.id) == ["oauth.signed_up"]


def test_sign_in_with_oauth_unverified_email_account_unverified(engine, provider):
    provider.next_identity = {"sub": "g-2", "email": "unv@example.com", "email_verified": False, "name": "U"}
    user = in_transaction(sign_in_with_oauth, profile=sign_in_flow("google"))
    assert user.email_verified_at is None


def test_sign_in_with_oauth_same_subject_returns_same_user(engine, provider):
    provider.next_identity = {"sub": "g-3", "email": "same@example.com", "email_verified": True, "name": "Same"}
    first = in_transaction(sign_in_with_oauth, profile=sign_in_flow("google"))
    # The provider may show another email later; the subject is what identifies the person.
    provider.next_identity = {"sub": "g-3", "email": "renamed@example.com", "email_verified": True, "name": "Same"}
    second = in_transaction(sign_in_with_oauth, profile=sign_in_flow("google"))
    assert second.id == first.id
    with unit_of_work() as session:
        assert len(session.exec(select(User)).all()) == 1
    assert audit_actions() == ["oauth.signed_up"]


def test_sign_in_with_oauth_existing_email_not_linked(engine, provider):
    existing = make_user("owner@example.com")
    provider.next_identity = {"sub": "g-evil", "email": "OWNER@example.com", "email_verified": True, "name": "X"}
    profile = sign_in_flow("google")
    with refused("oauth_email_in_use") as info:
        in_transaction(sign_in_with_oauth, profile=profile)
    assert "password" in info.value.message
    assert "link" in info.value.message
    assert identities() == []
    with unit_of_work() as session:
        assert [user.id for user in session.exec(select(User)).all()] == [existing.id]


def test_sign_in_with_oauth_existing_passwordless_email_not_linked(engine, provider):
    make_user("other@example.com", password=None)
    provider.next_identity = {"sub": "7", "email": "other@example.com", "email_verified": True, "name": "X"}
    with refused("oauth_email_in_use"):
        in_transaction(sign_in_with_oauth, profile=sign_in_flow("github"))
    assert identities() == []


def test_sign_in_with_oauth_disabled_user_refused(engine, provider):
    provider.next_identity = {"sub": "g-4", "email": "off@example.com", "email_verified": True, "name": "Off"}
    user = in_transaction(sign_in_with_oauth, profile=sign_in_flow("google"))
    with unit_of_work() as session:
        session.get(User, user.id).is_active = False
    with refused("account_disabled"):
        in_transaction(sign_in_with_oauth, profile=sign_in_flow("google"))


# -- linking and unlinking -------------------------------------------------------------------------


def test_link_oauth_identity_then_sign_in_reaches_same_user(engine, provider):
    user = make_user("linker@example.com")
    provider.next_identity = {"sub": "4242", "email": "linker-gh@example.com", "email_verified": True, "name": "L"}
    identity = in_transaction(link_oauth_identity, user=user, profile=sign_in_flow("github"))
    assert (identity.user_id, identity.provider, identity.subject) == (user.id, "github", "4242")
    assert in_transaction(list_linked_providers, user=user) == ["github"]
    assert audit_actions(user.id) == ["oauth.linked"]
    signed_in = in_transaction(sign_in_with_oauth, profile=sign_in_flow("github"))
    assert signed_in.id == user.id


def test_link_oauth_identity_subject_linked_to_other_user_refused(engine, provider):
    provider.next_identity = {"sub": "g-5", "email": "first@example.com", "email_verified": True, "name": "First"}
    in_transaction(sign_in_with_oauth, profile=sign_in_flow("google"))
    other = make_user("second@example.com")
    with refused("oauth_already_linked"):
        in_transaction(link_oauth_identity, user=other, profile=sign_in_flow("google"))
    assert in_transaction(list_linked_providers, user=other) == []


def test_link_oauth_identity_provider_already_linked_refused(engine, provider):
    user = make_user("twice@example.com")
    provider.next_identity = {"sub": "g-6", "email": "twice@example.com", "email_verified": True, "name": "T"}
    in_transaction(link_oauth_identity, user=user, profile=sign_in_flow("google"))
    provider.next_identity = {"sub": "g-7", "email": "twice2@example.com", "email_verified": True, "name": "T"}
    with refused("oauth_already_linked"):
        in_transaction(link_oauth_identity, user=user, profile=sign_in_flow("google"))
    assert identities() == [("google", "g-6")]


def test_unlink_oauth_identity_with_password_removes_link(engine, provider):
    user = make_user("unlink@example.com")
    provider.next_identity = {"sub": "g-8", "email": "unlink@example.com", "email_verified": True, "name": "U"}
    in_transaction(link_oauth_identity, user=user, profile=sign_in_flow("google"))
    in_transaction(unlink_oauth_identity, user=user, provider="google")
    assert in_transaction(list_linked_providers, user=user) == []
    assert audit_actions(user.id) == ["oauth.linked", "oauth.unlinked"]
    # Once unlinked, that Google account no longer reaches this user (and its email is taken).
    with refused("oauth_email_in_use"):
        in_transaction(sign_in_with_oauth, profile=sign_in_flow("google"))


def test_unlink_oauth_identity_last_sign_in_method_refused(engine, provider):
    provider.next_identity = {"sub": "g-9", "email": "only@example.com", "email_verified": True, "name": "Only"}
    user = in_transaction(sign_in_with_oauth, profile=sign_in_flow("google"))
    with refused("last_sign_in_method"):
        in_transaction(unlink_oauth_identity, user=user, provider="google")
    assert in_transaction(list_linked_providers, user=user) == ["google"]


def test_unlink_oauth_identity_other_provider_linked_allowed(engine, provider):
    provider.next_identity = {"sub": "g-10", "email": "two@example.com", "email_verified": True, "name": "Two"}
    user = in_transaction(sign_in_with_oauth, profile=sign_in_flow("google"))
    provider.next_identity = {"sub": "1010", "email": "two@example.com", "email_verified": True, "name": "Two"}
    in_transaction(link_oauth_identity, user=user, profile=sign_in_flow("github"))
    assert in_transaction(list_linked_providers, user=user) == ["github", "google"]
    in_transaction(unlink_oauth_identity, user=user, provider="google")
    assert in_transaction(list_linked_providers, user=user) == ["github"]
    with refused("last_sign_in_method"):
        in_transaction(unlink_oauth_identity, user=user, provider="github")


def test_unlink_oauth_identity_not_linked_refused(engine):
    user = make_user("none@example.com")
    with refused("oauth_not_linked"):
        in_transaction(unlink_oauth_identity, user=user, provider="github")
