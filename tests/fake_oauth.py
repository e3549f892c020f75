"""A fake Google (OpenID Connect) and GitHub (OAuth 2.0) provider on loopback for tests.

It checks what the real providers check, so the real client code is exercised end to end:
client id and secret, the redirect_uri (same at /authorize and /token, optionally from a
registered list), PKCE (S256 challenge against the verifier), single-use, expiring codes, and
Bearer tokens on the GitHub API. The id_token is signed RS256 with a fresh RSA key per instance
(published at /jwks) and carries the nonce from the authorization request.

The /authorize endpoints approve at once and answer 302 to redirect_uri with code and state, as
the identity the test configured, so httpx (or a browser) can follow them without a login page:

    with FakeOAuthProvider() as provider:
        for name, value in provider.settings_env().items():
            monkeypatch.setenv(name, value)
        provider.next_identity = {"sub": "1001", "email": "ada@example.com", "email_verified": True,
                                  "name": "Ada"}
        ...

Knobs for misbehaviour: `tamper_nonce` (id_token carries another nonce), `id_token_overrides`
(replace or add claims, e.g. {"aud": "someone-else"}; a value of None removes the claim),
`sign_with_unpublished_key` (signature by a key absent from /jwks), `deny` (the user clicks
"Cancel": redirect with error=access_denied), `allowed_redirect_uris` (registered URIs; None
accepts any). `requests` records (method, path) of every request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit, urlunsplit

from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.loopback import LoopbackServer

GOOGLE_CLIENT_ID = "fake-google-client-id.apps.example"
GOOGLE_CLIENT_SECRET = "fake-google-client-secret"
GITHUB_CLIENT_ID = "fake-github-client-id"
GITHUB_CLIENT_SECRET = "fake-github-client-secret"

CODE_LIFETIME_SECONDS = 600
TOKEN_LIFETIME_SECONDS = 3600
DEFAULT_IDENTITY = {"sub": "100000001", "email": "oauth.user@example.com", "email_verified": True, "name": "OAuth User"}


@dataclass
class _Grant:
    kind: str  # "google" or "github"
    client_id: str
    redirect_uri: str
    code_challenge: str
    scope: str
    nonce: str | None
    identity: dict[str, Any]
    expires_at: float


@dataclass
class _AccessToken:
    kind: str
    scope: str
    identity: dict[str, Any]
    expires_at: float


@dataclass
class FakeOAuthProvider(LoopbackServer):
    """Google-like OIDC and GitHub-like OAuth endpoints on 127.0.0.1; see the module docstring."""

    host: str = "127.0.0.1"
    port: int = 0
    next_identity: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_IDENTITY))
    tamper_nonce: bool = False
    id_token_overrides: dict[str, Any] = field(default_factory=dict)
    sign_with_unpublished_key: bool = False
    deny: bool = False
    allowed_redirect_uris: set[str] | None = None
    requests: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._grants: dict[str, _Grant] = {}
        self._tokens: dict[str, _AccessToken] = {}
        self.signing_key = _rsa_key()
        self.unpublished_key = _rsa_key()

    # -- lifecycle -------------------------------------------------------------------------------

    def _make_server(self) -> ThreadingHTTPServer:
        handler = type("FakeOAuthHandler", (_Handler,), {"provider": self})
        return ThreadingHTTPServer((self.host, self.port), handler)

    def settings_env(self) -> dict[str, str]:
        """Environment variables that point PayTime at this provider."""
        return {
            "GOOGLE_CLIENT_ID": GOOGLE_CLIENT_ID,
            "GOOGLE_CLIENT_SECRET": GOOGLE_CLIENT_SECRET,
            "GOOGLE_DISCOVERY_URL": f"{self.base_url}/.well-known/openid-configuration",
            "GITHUB_CLIENT_ID": GITHUB_CLIENT_ID,
            "GITHUB_CLIENT_SECRET": GITHUB_CLIENT_SECRET,
            "GITHUB_AUTHORIZE_URL": f"{self.base_url}/login/oauth/authorize",
            "GITHUB_TOKEN_URL": f"{self.base_url}/login/oauth/access_token",
            "GITHUB_API_URL": self.base_url,
        }

    # -- state shared with the handler -----------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        base = self.base_url
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "jwks_uri": f"{base}/jwks",
            "userinfo_endpoint": f"{base}/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nonce", "email", "email_verified", "name"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.signing_key.as_dict(private=False)]}

    def issue_code(self, grant: _Grant) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[code] = grant
        return code

    def redeem_code(self, code: str) -> _Grant | None:
        """A code works once: it is removed on the first attempt, whether that attempt succeeds or not."""
        with self._lock:
            grant = self._grants.pop(code, None)
        if grant is None or grant.expires_at < time.time():
            return None
        return grant

    def issue_access_token(self, grant: _Grant) -> str:
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = _AccessToken(
                grant.kind, grant.scope, dict(grant.identity), time.time() + TOKEN_LIFETIME_SECONDS
            )
        return token

    def access_token(self, token: str, kind: str) -> _AccessToken | None:
        with self._lock:
            found = self._tokens.get(token)
        if found is None or found.kind != kind or found.expires_at < time.time():
            return None
        return found

    def id_token(self, grant: _Grant, access_token: str) -> str:
        now = int(time.time())
        identity = grant.identity
        claims: dict[str, Any] = {
            "iss": self.base_url,
            "aud": grant.client_id,
            "azp": grant.client_id,
            "sub": str(identity["sub"]),
            "iat": now,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "at_hash": _half_hash(access_token),
        }
        for name in ("email", "email_verified", "name"):
            if identity.get(name) is not None:
                claims[name] = identity[name]
        if grant.nonce is not None:
            claims["nonce"] = f"tampered-{grant.nonce}" if self.tamper_nonce else grant.nonce
        for name, value in self.id_token_overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        key = self.unpublished_key if self.sign_with_unpublished_key else self.signing_key
        return jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=["RS256"])


def _rsa_key() -> RSAKey:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = RSAKey.import_key(private_key, parameters={"use": "sig", "alg": "RS256"})
    key.ensure_kid()
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def s256_challenge(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def _half_hash(value: str) -> str:
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return _b64url(digest[: len(digest) // 2])


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _github_identity(identity: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The /user and /user/emails answers for a configured identity (GitHub ids are integers)."""
    sub = str(identity["sub"])
    user_id: int | str = int(sub) if sub.isdigit() else sub
    email = identity.get("email")
    login = identity.get("login") or (email.partition("@")[0] if email else f"user{sub}")
    user = {
        "id": user_id,
        "login": login,
        "name": identity.get("name"),
        "email": identity.get("public_email"),  # GitHub shows only a chosen public email here
        "type": "User",
    }
    emails = identity.get("emails")
    if emails is None:
        emails = (
            [{"email": email, "primary": True, "verified": bool(identity.get("email_verified")), "visibility": None}]
            if email
            else []
        )
    return user, emails


class _Handler(BaseHTTPRequestHandler):
    provider: FakeOAuthProvider
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    # -- plumbing --------------------------------------------------------------------------------

    def _query(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(urlsplit(self.path).query).items()}

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8") if length else ""
        return {key: values[0] for key, values in parse_qs(body).items()}

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json", headers)

    def _text(self, status: int, text: str) -> None:
        self._send(status, text.encode(), "text/plain; charset=utf-8")

    def _redirect(self, location: str) -> None:
        self._send(302, b"", "text/plain", {"Location": location})

    def _client_credentials(self, form: dict[str, str]) -> tuple[str | None, str | None]:
        """client_secret_basic or client_secret_post, as both providers accept."""
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                decoded = base64.b64decode(header[6:], validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return None, None
            client_id, _, client_secret = decoded.partition(":")
            return unquote_plus(client_id), unquote_plus(client_secret)
        return form.get("client_id"), form.get("client_secret")

    def _bearer(self) -> str | None:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        return token if scheme.lower() in ("bearer", "token") and token else None

    # -- routing ---------------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        self.provider.requests.append(("GET", path))
        routes = {
            "/.well-known/openid-configuration": lambda: self._json(200, self.provider.discovery()),
            "/jwks": lambda: self._json(200, self.provider.jwks()),
            "/authorize": lambda: self._authorize("google"),
            "/login/oauth/authorize": lambda: self._authorize("github"),
            "/user": self._github_user,
            "/user/emails": self._github_emails,
        }
        route = routes.get(path)
        if route is None:
            self._json(404, {"message": "Not Found"})
            return
        route()

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        self.provider.requests.append(("POST", path))
        if path == "/token":
            self._google_token()
        elif path == "/login/oauth/access_token":
            self._github_token()
        else:
            self._json(404, {"message": "Not Found"})

    # -- authorization endpoint (both providers) -------------------------------------------------

    def _authorize(self, kind: str) -> None:
        provider = self.provider
        params = self._query()
        expected_client = GOOGLE_CLIENT_ID if kind == "google" else GITHUB_CLIENT_ID
        redirect_uri = params.get("redirect_uri", "")
        # Errors about the client or redirect_uri are shown, never redirected: redirecting to an
        # unverified URI would make the provider an open redirector.
        if params.get("client_id") != expected_client:
            self._text(400, "invalid_client: unknown client_id")
            return
        if not redirect_uri.startswith(("http://", "https://")) or (
            provider.allowed_redirect_uris is not None and redirect_uri not in provider.allowed_redirect_uris
        ):
            self._text(400, "redirect_uri_mismatch")
            return
        state = params.get("state")

        def fail(error: str) -> None:
            reply = {"error": error}
            if state is not None:
                reply["state"] = state
            self._redirect(_with_query(redirect_uri, reply))

        if params.get("response_type", "code") != "code":
            fail("unsupported_response_type")
            return
        scope = params.get("scope", "")
        if kind == "google" and "openid" not in scope.split():
            fail("invalid_scope")
            return
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            fail("invalid_request")
            return
        if provider.deny:
            fail("access_denied")
            return
        grant = _Grant(
            kind=kind,
            client_id=expected_client,
            redirect_uri=redirect_uri,
            code_challenge=params["code_challenge"],
            scope=scope,
            nonce=params.get("nonce"),
            identity=dict(provider.next_identity),
            expires_at=time.time() + CODE_LIFETIME_SECONDS,
        )
        reply = {"code": provider.issue_code(grant)}
        if state is not None:
            reply["state"] = state
        self._redirect(_with_query(redirect_uri, reply))

    def _redeem(self, form: dict[str, str], kind: str) -> tuple[_Grant | None, str | None]:
        """Check a token request; (grant, None) or (None, error code)."""
        expected = (
            (GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET) if kind == "google" else (GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET)
        )
        if self._client_credentials(form) != expected:
            return None, "invalid_client"
        if form.get("grant_type", "authorization_code") != "authorization_code":
            return None, "unsupported_grant_type"
        grant = self.provider.redeem_code(form.get("code", ""))
        if grant is None or grant.kind != kind or grant.client_id != expected[0]:
            return None, "invalid_grant"
        if form.get("redirect_uri") != grant.redirect_uri:
            return None, "redirect_uri_mismatch"
        verifier = form.get("code_verifier", "")
        if not 43 <= len(verifier) <= 128 or not secrets.compare_digest(s256_challenge(verifier), grant.code_challenge):
            return None, "invalid_grant"
        return grant, None

    # -- Google-like token endpoint --------------------------------------------------------------

    def _google_token(self) -> None:
        grant, error = self._redeem(self._form(), "google")
        if grant is None:
            self._json(401 if error == "invalid_client" else 400, {"error": error})
            return
        access_token = self.provider.issue_access_token(grant)
        self._json(
            200,
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECONDS - 1,
                "scope": grant.scope,
                "id_token": self.provider.id_token(grant, access_token),
            },
        )

    # -- GitHub-like endpoints -------------------------------------------------------------------

    def _github_token(self) -> None:
        grant, error = self._redeem(self._form(), "github")
        # GitHub answers errors with 200 and an "error" field.
        github_error = {
            "invalid_client": "incorrect_client_credentials",
            "invalid_grant": "bad_verification_code",
        }.get(error or "", error)
        if grant is None:
            payload = {
                "error": github_error or "bad_verification_code",
                "error_description": "The request was refused.",
            }
        else:
            payload = {
                "access_token": self.provider.issue_access_token(grant),
                "token_type": "bearer",
                "scope": grant.scope,
            }
        if "application/json" in self.headers.get("Accept", ""):
            self._json(200, payload)
        else:
            self._send(200, urlencode(payload).encode(), "application/x-www-form-urlencoded")

    def _github_token_or_401(self) -> _AccessToken | None:
        token = self._bearer()
        found = self.provider.access_token(token, "github") if token else None
        if found is None:
            self._json(401, {"message": "Bad credentials"})
        return found

    def _github_user(self) -> None:
        token = self._github_token_or_401()
        if token is not None:
            user, _ = _github_identity(token.identity)
            self._json(200, user)

    def _github_emails(self) -> None:
        token = self._github_token_or_401()
        if token is None:
            return
        if "user:email" not in token.scope.replace(",", " ").split():
            self._json(404, {"message": "Not Found"})
            return
        _, emails = _github_identity(token.identity)
        self._json(200, emails)
