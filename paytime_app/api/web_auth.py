"""Browser auth routes: the only places that set or clear the HttpOnly session cookie.

Pages finish their sign-in steps over the websocket and then navigate here (a full page load) with
a single-use ticket; OAuth providers redirect back here.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from cryptography.exceptions import InvalidTag
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from paytime_app import routes
from paytime_app.cookies import DEVICE_COOKIE, OAUTH_COOKIE, SESSION_COOKIE, safe_next_path
from paytime_app.db import in_transaction
from paytime_app.errors import DomainError
from paytime_app.models.sessions import SessionKind
from paytime_app.services.accounts import SignInStepKind, open_browser_session, sign_in_with_provider
from paytime_app.services.crypto import open_secret, seal_secret
from paytime_app.services.oauth import finish_oauth, link_oauth_identity, start_oauth
from paytime_app.services.rate_limits import resolve_client_ip
from paytime_app.services.sessions import BROWSER_ABSOLUTE_LIFETIME, ClientInfo, call_as_user, end_session
from paytime_app.settings import get_settings

router = APIRouter(prefix="/api/auth", tags=["browser auth"], include_in_schema=False)

DEVICE_COOKIE_SECONDS = 400 * 24 * 3600


def client_info(request: Request) -> ClientInfo:
    peer = request.client.host if request.client else None
    ip = resolve_client_ip(
        peer=peer, forwarded_for=request.headers.get("x-forwarded-for"), trusted_hops=get_settings().trusted_proxy_hops
    )
    return ClientInfo(ip_address=ip, user_agent=request.headers.get("user-agent"))


def set_auth_cookie(response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        path="/",
        secure=get_settings().base_url.startswith("https://"),
    )


def sign_in_failed(code: str) -> RedirectResponse:
    return RedirectResponse(f"{routes.SIGN_IN}?notice={quote(code)}", status_code=303)


@router.get("/session")
def exchange_ticket(request: Request, ticket: str = "", next: str = "/") -> Response:
    """Turn a finished sign-in's ticket into a fresh session cookie, then go where the user was going."""
    try:
        opened = in_transaction(
            open_browser_session,
            ticket=ticket,
            device_token=request.cookies.get(DEVICE_COOKIE),
            client=client_info(request),
        )
    except DomainError as error:
        return sign_in_failed(error.code)
    response = RedirectResponse(safe_next_path(next), status_code=303)
    set_auth_cookie(response, SESSION_COOKIE, opened.issued.token, int(BROWSER_ABSOLUTE_LIFETIME.total_seconds()))
    set_auth_cookie(response, DEVICE_COOKIE, opened.device_token, DEVICE_COOKIE_SECONDS)
    return response


@router.get("/signed-out")
def signed_out(request: Request) -> Response:
    """Clear the session cookie (the session itself was already revoked by the sign-out handler)."""
    in_transaction(end_session, token=request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse(f"{routes.SIGN_IN}?notice=signed_out", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


OAUTH_FLOW_SECONDS = 600


def _oauth_redirect_uri(provider: str) -> str:
    return f"{get_settings().base_url}/api/auth/oauth/{provider}/callback"


@router.get("/oauth/{provider}/start")
def start_provider_sign_in(provider: str, intent: str = "sign_in", next: str = "/") -> Response:
    """Send the browser to Google or GitHub; the flow's secrets wait in a sealed, short-lived cookie."""
    try:
        started = start_oauth(provider=provider, redirect_uri=_oauth_redirect_uri(provider))
    except DomainError as error:
        return sign_in_failed(error.code)
    flow = {
        "provider": provider,
        "state": started.state,
        "verifier": started.code_verifier,
        "nonce": started.nonce,
        "intent": "link" if intent == "link" else "sign_in",
        "next": safe_next_path(next),
    }
    response = RedirectResponse(started.authorization_url, status_code=303)
    set_auth_cookie(
        response, OAUTH_COOKIE, seal_secret(json.dumps(flow).encode(), purpose="oauth_flow"), OAUTH_FLOW_SECONDS
    )
    return response


def _read_flow(request: Request, provider: str) -> dict[str, str] | None:
    sealed = request.cookies.get(OAUTH_COOKIE)
    if not sealed:
        return None
    try:
        flow = json.loads(open_secret(sealed, purpose="oauth_flow"))
    except (InvalidTag, ValueError):
        return None
    return flow if flow.get("provider") == provider else None


@router.get("/oauth/{provider}/callback")
def finish_provider_sign_in(
    request: Request, provider: str, code: str = "", state: str = "", error: str = ""
) -> Response:
    """Back from the provider: sign in (or link the identity to the signed-in account)."""
    flow = _read_flow(request, provider)
    if flow is None:
        return _clear_flow(sign_in_failed("oauth_state_mismatch"))
    if error:
        return _clear_flow(_oauth_failed(flow, "oauth_failed"))
    try:
        profile = finish_oauth(
            provider=provider,
            redirect_uri=_oauth_redirect_uri(provider),
            code=code,
            returned_state=state,
            expected_state=flow["state"],
            code_verifier=flow["verifier"],
            nonce=flow["nonce"],
        )
        if flow["intent"] == "link":
            call_as_user(
                link_oauth_identity,
                token=request.cookies.get(SESSION_COOKIE),
                session_kind=SessionKind.BROWSER,
                actor_param="user",
                profile=profile,
            )
            return _clear_flow(RedirectResponse(f"{routes.ACCOUNT}?notice=provider_linked", status_code=303))
        step = in_transaction(sign_in_with_provider, profile=profile, device_token=request.cookies.get(DEVICE_COOKIE))
    except DomainError as failure:
        return _clear_flow(_oauth_failed(flow, failure.code))
    if step.kind is SignInStepKind.DONE:
        target = f"{routes.API_SESSION}?ticket={quote(step.token)}&next={quote(flow['next'])}"
    else:
        target = f"{routes.SIGN_IN}?step={step.kind.value}&pending={quote(step.token)}&next={quote(flow['next'])}"
        if step.email_hint:
            target += f"&hint={quote(step.email_hint)}"
    return _clear_flow(RedirectResponse(target, status_code=303))


def _oauth_failed(flow: dict[str, str], code: str) -> RedirectResponse:
    if flow.get("intent") == "link":
        return RedirectResponse(f"{routes.ACCOUNT}?notice={quote(code)}", status_code=303)
    return sign_in_failed(code)


def _clear_flow(response: Response) -> Response:
    response.delete_cookie(OAUTH_COOKIE, path="/")
    return response
