"""Sign-in with Google and GitHub: the OAuth 2.0 authorization-code flow and linked identities.

Design overview
---------------
The flow has two halves around the browser's visit to the provider:

1. `start_oauth` builds the provider's authorization URL with authlib's `OAuth2Client` and returns
   the secrets the caller must keep server-side (in the visitor's session, never in the URL or a
   readable cookie) until the callback: a random `state` (CSRF: the callback must be for a flow
   this browser started), a PKCE `code_verifier` (RFC 7636, S256 only: a stolen code is useless
   without it) and, for Google, an OpenID Connect `nonce` (binds the id_token to this flow, so a
   token replayed from another sign-in is refused).
2. `finish_oauth` checks the returned state, exchanges the code (with the verifier) at the token
   endpoint and turns the answer into an `OAuthProfile`. Google: the id_token is verified against
   the provider's JWKS (RS256 only), then iss, aud (our client id), exp and nonce are checked; the
   subject is `sub`. GitHub has no id_token: the access token reads `/user` and `/user/emails`; the
   subject is the numeric user id and the email is the primary *verified* address.
   Anything the provider sends is untrusted input: every failure on this path is one refusal,
   `oauth_failed`, logged with its cause, never a raw exception.

Google's endpoints come from its discovery document; it and the JWKS are cached per process for an
hour (a signature by an unknown key id refetches the JWKS once, which is how key rotation works).

Accounts are linked by (provider, subject), never by email: an email is a claim the provider makes
today, while the subject is the provider's stable id for the person. `sign_in_with_oauth` therefore
refuses (`oauth_email_in_use`) when the email already belongs to an account that is not linked:
otherwise whoever controls an OAuth account showing that address (an unverified address, a recycled
address, a compromised provider) would take over the PayTime account. The owner signs in with the
password and links the provider from account settings (`link_oauth_identity`).

The database backs these rules: (provider, subject) and (user_id, provider) are unique, so two
concurrent sign-ups or links of the same identity cannot both commit.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError
from joserfc.jwk import KeySet
from sqlmodel import Session, select

from paytime_app.errors import Conflict, DomainError, NotFound, ValidationFailed
from paytime_app.models.credentials import OAuthIdentity
from paytime_app.models.users import User
from paytime_app.services.audit import record_audit
from paytime_app.services.sessions import AccountDisabled
from paytime_app.services.users import create_user, get_user_by_email, normalize_email
from paytime_app.settings import Settings, get_settings

with warnings.catch_warnings():
    # authlib 1.9 prefers the `httpx2` package and warns when it falls back to `httpx`, which is the
    # one PayTime pins; the fallback is the same client code.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated", category=DeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client

logger = logging.getLogger("paytime.oauth")

GOOGLE = "google"
GITHUB = "github"
PROVIDERS = (GOOGLE, GITHUB)

HTTP_TIMEOUT_SECONDS = 10
METADATA_MAX_AGE_SECONDS = 3600
ID_TOKEN_ALGORITHMS = ("RS256",)
ID_TOKEN_LEEWAY_SECONDS = 60
GOOGLE_SCOPE = "openid email profile"
GITHUB_SCOPE = "read:user user:email"
GITHUB_API_HEADERS = {
    "Accept": "application/vnd.github+json",
    "X-GitHub-Api-Version": "2022-11-28",
    "User-Agent": "PayTime",
}


class OAuthProviderUnavailable(DomainError):
    code = "oauth_provider_unavailable"
    status_code = 404
    default_message = "Signing in with that provider is not available."


class OAuthStateMismatch(DomainError):
    code = "oauth_state_mismatch"
    status_code = 400
    default_message = "This sign-in link has expired or was not started here. Please try again."


class OAuthFailed(DomainError):
    code = "oauth_failed"
    status_code = 400
    default_message = "Signing in with that provider did not work. Please try again."


class OAuthEmailInUse(Conflict):
    code = "oauth_email_in_use"
    default_message = (
        "An account with this email already exists. Sign in with your password, then link this "
        "provider from account settings."
    )


class OAuthEmailMissing(ValidationFailed):
    code = "oauth_email_missing"
    default_message = "That account has no verified email address we can use. Add one with the provider first."


class OAuthAlreadyLinked(Conflict):
    code = "oauth_already_linked"
    default_message = "That sign-in is already linked to an account."


class OAuthNotLinked(NotFound):
    code = "oauth_not_linked"
    default_message = "That provider is not linked to your account."


class LastSignInMethod(Conflict):
    code = "last_sign_in_method"
    default_message = "This is your only way to sign in. Set a password or link another provider first."


@dataclass(frozen=True)
class OAuthStart:
    """Where to send the browser, and the secrets to keep server-side until the callback."""

    authorization_url: str
    state: str
    code_verifier: str
    nonce: str | None


@dataclass(frozen=True)
class OAuthProfile:
    """Who the provider says signed in; `subject` is the provider's stable id for them."""

    provider: str
    subject: str
    email: str | None
    email_verified: bool
    display_name: str


@dataclass(frozen=True)
class _Client:
    provider: str
    client_id: str
    client_secret: str
    scope: str
    token_endpoint_auth_method: str


# ---------------------------------------------------------------------------------------------
# Provider configuration and cached metadata


def enabled_oauth_providers() -> list[str]:
    """The providers whose client id and secret are configured, in display order."""
    settings = get_settings()
    return [provider for provider in PROVIDERS if _credentials(settings, provider) is not None]


def _credentials(settings: Settings, provider: str) -> tuple[str, str] | None:
    if provider == GOOGLE:
        client_id, client_secret = settings.google_client_id, settings.google_client_secret
    elif provider == GITHUB:
        client_id, client_secret = settings.github_client_id, settings.github_client_secret
    else:
        return None
    return (client_id, client_secret) if client_id and client_secret else None


def _client_for(provider: str) -> _Client:
    credentials = _credentials(get_settings(), provider)
    if credentials is None:
        raise OAuthProviderUnavailable(provider=provider)
    client_id, client_secret = credentials
    if provider == GOOGLE:
        return _Client(provider, client_id, client_secret, GOOGLE_SCOPE, "client_secret_basic")
    # GitHub documents the client credentials as form fields of the token request.
    return _Client(provider, client_id, client_secret, GITHUB_SCOPE, "client_secret_post")


def _oauth2_client(client: _Client, redirect_uri: str) -> OAuth2Client:
    return OAuth2Client(
        client_id=client.client_id,
        client_secret=client.client_secret,
        scope=client.scope,
        redirect_uri=redirect_uri,
        token_endpoint_auth_method=client.token_endpoint_auth_method,
        code_challenge_method="S256",
        timeout=HTTP_TIMEOUT_SECONDS,
    )


class _JsonCache:
    """Per-process cache of provider documents (discovery, JWKS), refreshed after `max_age`."""

    _entries: ClassVar[dict[str, tuple[float, dict[str, Any]]]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def get(cls, url: str, *, force: bool = False) -> dict[str, Any]:
        now = time.monotonic()
        with cls._lock:
            cached = cls._entries.get(url)
        if cached is not None and not force and now - cached[0] < METADATA_MAX_AGE_SECONDS:
            return cached[1]
        response = httpx.get(url, timeout=HTTP_TIMEOUT_SECONDS, headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
        if not isinstance(document, dict):
            raise ValueError(f"{url} did not return a JSON object")
        with cls._lock:
            cls._entries[url] = (now, document)
        return document

    @classmethod
    def clear(cls) -> None:
        with cls._lock:
            cls._entries.clear()


def clear_oauth_metadata_cache() -> None:
    """Forget cached discovery documents and key sets (tests, or after a provider incident)."""
    _JsonCache.clear()


def _google_metadata() -> dict[str, Any]:
    metadata = _JsonCache.get(get_settings().google_discovery_url)
    for field in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(metadata.get(field), str):
            raise ValueError(f"discovery document has no {field}")
    return metadata


def _endpoints(provider: str) -> tuple[str, str]:
    """(authorization endpoint, token endpoint)."""
    if provider == GOOGLE:
        metadata = _google_metadata()
        return metadata["authorization_endpoint"], metadata["token_endpoint"]
    settings = get_settings()
    return settings.github_authorize_url, settings.github_token_url


# ---------------------------------------------------------------------------------------------
# The flow


def start_oauth(*, provider: str, redirect_uri: str) -> OAuthStart:
    """Build the authorization URL with fresh state, PKCE (S256) and, for Google, a nonce.

    Raises OAuthProviderUnavailable for an unknown or unconfigured provider, or when Google's
    discovery document cannot be fetched.
    """
    client = _client_for(provider)
    try:
        authorize_url, _token_url = _endpoints(provider)
    except (httpx.HTTPError, ValueError) as error:
        logger.warning("oauth discovery for %s failed: %r", provider, error, extra={"provider": provider})
        raise OAuthProviderUnavailable(provider=provider) from error
    state = secrets.token_urlsafe(32)
    # 64 random bytes -> 86 unreserved characters, inside RFC 7636's 43..128.
    code_verifier = secrets.token_urlsafe(64)
    nonce = secrets.token_urlsafe(32) if provider == GOOGLE else None
    extra: dict[str, str] = {"nonce": nonce} if nonce else {}
    with _oauth2_client(client, redirect_uri) as oauth:
        url, _ = oauth.create_authorization_url(authorize_url, state=state, code_verifier=code_verifier, **extra)
    return OAuthStart(authorization_url=url, state=state, code_verifier=code_verifier, nonce=nonce)


def finish_oauth(
    *,
    provider: str,
    redirect_uri: str,
    code: str | None,
    returned_state: str | None,
    expected_state: str | None,
    code_verifier: str,
    nonce: str | None,
) -> OAuthProfile:
    """Check the callback's state, exchange the code and return who signed in.

    Raises OAuthStateMismatch when the state is missing or not the one this flow started with,
    OAuthFailed for anything the provider refuses or answers wrongly (bad code or verifier, bad
    id_token signature, issuer, audience, expiry or nonce), OAuthProviderUnavailable when the
    provider is not configured.
    """
    client = _client_for(provider)
    # Constant-time comparison: the state is a secret bound to this browser's session.
    if not returned_state or not expected_state or not hmac.compare_digest(returned_state, expected_state):
        raise OAuthStateMismatch()
    if not code or not code_verifier:
        raise OAuthFailed()
    if provider == GOOGLE and not nonce:
        raise OAuthFailed()
    try:
        with _oauth2_client(client, redirect_uri) as oauth:
            _authorize_url, token_url = _endpoints(provider)
            token = oauth.fetch_token(
                token_url, grant_type="authorization_code", code=code, code_verifier=code_verifier
            )
            if provider == GOOGLE:
                assert nonce is not None
                return _google_profile(client, token, nonce)
            return _github_profile(oauth)
    except DomainError:
        raise
    except Exception as error:
        # Untrusted input from the network: one refusal, whatever the cause; the log keeps it.
        logger.warning("oauth sign-in with %s failed: %r", provider, error, extra={"provider": provider})
        raise OAuthFailed() from error


def _google_profile(client: _Client, token: dict[str, Any], nonce: str) -> OAuthProfile:
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise OAuthFailed()
    metadata = _google_metadata()
    jwks_uri = metadata["jwks_uri"]
    try:
        decoded = jwt.decode(id_token, KeySet.import_key_set(_JsonCache.get(jwks_uri)), algorithms=ID_TOKEN_ALGORITHMS)
    except InvalidKeyIdError:
        # Signed by a key we have not seen: the provider rotated keys. Refetch once.
        decoded = jwt.decode(
            id_token, KeySet.import_key_set(_JsonCache.get(jwks_uri, force=True)), algorithms=ID_TOKEN_ALGORITHMS
        )
    issuers = [metadata["issuer"]]
    if metadata["issuer"] == "https://accounts.google.com":
        issuers.append("accounts.google.com")  # Google documents both forms of its issuer.
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {
            "iss": {"essential": True, "values": issuers},
            "aud": {"essential": True, "value": client.client_id},
            "exp": {"essential": True},
            "sub": {"essential": True},
            "nonce": {"essential": True},
        },
        {"nonce": nonce, "client_id": client.client_id, "access_token": token.get("access_token")},
    )
    # Checks iss, aud, exp, iat, azp, at_hash and that nonce equals the one this flow sent.
    claims.validate(leeway=ID_TOKEN_LEEWAY_SECONDS)
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject:
        raise OAuthFailed()
    email = _clean_email(claims.get("email"))
    verified = claims.get("email_verified") in (True, "true")
    name = claims.get("name") if isinstance(claims.get("name"), str) else ""
    return OAuthProfile(
        provider=GOOGLE,
        subject=subject,
        email=email,
        email_verified=bool(email and verified),
        display_name=_display_name(name, email),
    )


def _github_profile(oauth: OAuth2Client) -> OAuthProfile:
    api = get_settings().github_api_url.rstrip("/")
    user_response = oauth.get(f"{api}/user", headers=GITHUB_API_HEADERS)
    user_response.raise_for_status()
    user = user_response.json()
    if not isinstance(user, dict) or not isinstance(user.get("id"), int | str) or user.get("id") in ("", None):
        raise OAuthFailed()
    emails_response = oauth.get(f"{api}/user/emails", headers=GITHUB_API_HEADERS)
    emails_response.raise_for_status()
    emails = emails_response.json()
    if not isinstance(emails, list):
        raise OAuthFailed()
    # Only the primary address, and only once GitHub has verified it: a public profile email is
    # whatever the user typed.
    primary = next(
        (
            entry.get("email")
            for entry in emails
            if isinstance(entry, dict) and entry.get("primary") is True and entry.get("verified") is True
        ),
        None,
    )
    email = _clean_email(primary)
    name = user.get("name") if isinstance(user.get("name"), str) else ""
    login = user.get("login") if isinstance(user.get("login"), str) else ""
    return OAuthProfile(
        provider=GITHUB,
        subject=str(user["id"]),
        email=email,
        email_verified=email is not None,
        display_name=_display_name(name or login, email),
    )


def _clean_email(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return normalize_email(value)
    except ValidationFailed:
        return None


def _display_name(name: str, email: str | None) -> str:
    name = " ".join(name.split())[:80]
    if name:
        return name
    return (email.partition("@")[0] if email else "PayTime user")[:80]


# ---------------------------------------------------------------------------------------------
# Accounts and linked identities


def get_oauth_identity(*, session: Session, provider: str, subject: str) -> OAuthIdentity | None:
    """The identity linked to this provider subject, if any."""
    return session.exec(
        select(OAuthIdentity).where(OAuthIdentity.provider == provider, OAuthIdentity.subject == subject)
    ).first()


def sign_in_with_oauth(*, session: Session, profile: OAuthProfile) -> User:
    """The account linked to the profile's subject, or a new customer account linked to it.

    Never links by email. Raises AccountDisabled for a disabled account, OAuthEmailInUse when the
    email belongs to an account not linked to this subject, OAuthEmailMissing when there is no
    email to create an account with.
    """
    identity = get_oauth_identity(session=session, provider=profile.provider, subject=profile.subject)
    if identity is not None:
        user = session.get(User, identity.user_id)
        assert user is not None  # the foreign key cascades deletes
        if not user.is_active:
            raise AccountDisabled()
        if profile.email and identity.email != profile.email:
            identity.email = profile.email  # informational: what the provider showed last
            session.add(identity)
        return user
    if profile.email is None:
        raise OAuthEmailMissing()
    if get_user_by_email(session=session, email=profile.email) is not None:
        # Refuse rather than link: see the module docstring.
        raise OAuthEmailInUse()
    # A concurrent sign-up with the same subject or email fails on the unique constraints at flush.
    user = create_user(
        session=session,
        email=profile.email,
        display_name=profile.display_name,
        password=None,
        email_verified=profile.email_verified,
    )
    identity = _add_identity(session=session, user_id=user.id, profile=profile)
    record_audit(
        session=session,
        action="oauth.signed_up",
        actor=user,
        target_type="user",
        target_id=user.id,
        data={"provider": profile.provider, "subject": profile.subject, "identity_id": str(identity.id)},
    )
    return user


def link_oauth_identity(*, session: Session, user: User, profile: OAuthProfile) -> OAuthIdentity:
    """Link a provider account to a signed-in user.

    Raises OAuthAlreadyLinked when the subject is linked to any account or the user already has
    this provider linked.
    """
    if get_oauth_identity(session=session, provider=profile.provider, subject=profile.subject) is not None:
        raise OAuthAlreadyLinked()
    if _identity_for(session=session, user=user, provider=profile.provider) is not None:
        raise OAuthAlreadyLinked(f"A {profile.provider} account is already linked. Unlink it first.")
    identity = _add_identity(session=session, user_id=user.id, profile=profile)
    record_audit(
        session=session,
        action="oauth.linked",
        actor=user,
        target_type="oauth_identity",
        target_id=identity.id,
        data={"provider": profile.provider, "subject": profile.subject},
    )
    return identity


def unlink_oauth_identity(*, session: Session, user: User, provider: str) -> None:
    """Remove a linked provider.

    Raises OAuthNotLinked when it is not linked, LastSignInMethod when it is the user's only way
    to sign in (no password and no other linked provider).
    """
    identity = _identity_for(session=session, user=user, provider=provider)
    if identity is None:
        raise OAuthNotLinked()
    others = [linked for linked in list_linked_providers(session=session, user=user) if linked != provider]
    if user.password_hash is None and not others:
        raise LastSignInMethod()
    record_audit(
        session=session,
        action="oauth.unlinked",
        actor=user,
        target_type="oauth_identity",
        target_id=identity.id,
        data={"provider": provider, "subject": identity.subject},
    )
    session.delete(identity)
    session.flush()


def list_linked_providers(*, session: Session, user: User) -> list[str]:
    """The providers linked to the user, sorted."""
    rows = session.exec(select(OAuthIdentity.provider).where(OAuthIdentity.user_id == user.id)).all()
    return sorted(rows)


def _identity_for(*, session: Session, user: User, provider: str) -> OAuthIdentity | None:
    return session.exec(
        select(OAuthIdentity).where(OAuthIdentity.user_id == user.id, OAuthIdentity.provider == provider)
    ).first()


def _add_identity(*, session: Session, user_id: uuid.UUID, profile: OAuthProfile) -> OAuthIdentity:
    identity = OAuthIdentity(user_id=user_id, provider=profile.provider, subject=profile.subject, email=profile.email)
    session.add(identity)
    session.flush()
    return identity
