"""Every API route, called anonymously and with the wrong kind of token, refuses.

Public routes are listed by name; every other route must answer 401 without a valid access token.
A new route is covered automatically, or this test names it.
"""

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from paytime_app.api import create_api
from paytime_app.db import in_transaction
from paytime_app.services.sessions import ClientInfo, issue_api_tokens, start_browser_session
from paytime_app.services.users import create_user

PUBLIC = {
    ("GET", "/api/health"),
    ("POST", "/api/v1/auth/register"),
    ("POST", "/api/v1/auth/token"),
    ("POST", "/api/v1/auth/device-check"),
    ("POST", "/api/v1/auth/refresh"),
    # Browser auth: each checks what it is given (a single-use ticket, a sealed OAuth flow cookie).
    ("GET", "/api/auth/session"),
    ("GET", "/api/auth/signed-out"),
    ("GET", "/api/auth/oauth/{provider}/start"),
    ("GET", "/api/auth/oauth/{provider}/callback"),
    # Published events are public (drafts look missing to everyone but their organizer).
    ("GET", "/api/v1/events"),
    ("GET", "/api/v1/events/{event_id}"),
    # Published events' covers are public; a draft's cover looks missing to all but its organizer
    # (tests/api/test_events_api.py).
    ("GET", "/api/media/events/{event_id}/{file_name}"),
    # Authenticated by the provider's signature on the raw body, not by a user.
    ("POST", "/api/webhooks/{provider}"),
}


def _flatten(routes: list) -> list[APIRoute]:
    found = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "include_context"):  # FastAPI keeps included routers as they are
            found.extend(_flatten(route.include_context.included_router.routes))
    return found


def api_routes() -> list[tuple[str, str]]:
    return sorted((method, route.path) for route in _flatten(create_api().routes) for method in route.methods)


def concrete(path: str) -> str:
    nil = "00000000-0000-0000-0000-000000000000"
    return (
        path.replace("{provider}", "google")
        .replace("{payment_id}", nil)
        .replace("{wallet_id}", nil)
        .replace("{call_id}", nil)
        .replace("{request_id}", nil)
        .replace("{user_id}", nil)
        .replace("{iou_id}", nil)
        .replace("{event_id}", nil)
        .replace("{booking_id}", nil)
        .replace("{ticket_id}", nil)
        .replace("{ticket_type_id}", nil)
        .replace("{application_id}", nil)
        .replace("{mail_id}", nil)
        .replace("{index}", "0")
    )


@pytest.fixture
def client(engine):
    with TestClient(create_api(), follow_redirects=False) as client:
        yield client


@pytest.fixture
def wrong_tokens(engine):
    user = in_transaction(
        create_user, email="m@example.com", display_name="M", password="pw-long-enough-1", email_verified=True
    )
    browser = in_transaction(start_browser_session, user=user, client=ClientInfo())
    api = in_transaction(issue_api_tokens, user=user, client=ClientInfo())
    return {"garbage": "not-a-token", "browser_cookie_token": browser.token, "refresh_token": api.refresh_token}


def test_there_are_protected_routes_to_check():
    assert len([route for route in api_routes() if route not in PUBLIC]) >= 2


@pytest.mark.parametrize(("method", "path"), [route for route in api_routes() if route not in PUBLIC])
def test_protected_route_refuses_without_a_valid_access_token(client, wrong_tokens, method, path):
    anonymous = client.request(method, concrete(path), json={})
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["code"] in ("authentication_required", "session_expired")
    for kind, token in wrong_tokens.items():
        response = client.request(method, concrete(path), json={}, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, f"{kind}: {response.status_code} {response.text}"
