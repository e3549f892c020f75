"""REST API v1 calls: only the parties see a call, only the callee answers, ending bills by the second."""

import pytest
import time_machine
from fastapi.testclient import TestClient

from paytime_app.api import create_api
from paytime_app.db import in_transaction
from paytime_app.money import Currency
from paytime_app.services.ledger import transfer
from paytime_app.services.sessions import ClientInfo, issue_api_tokens
from paytime_app.services.users import create_user
from paytime_app.services.wallets import WalletKind, wallet_address


@pytest.fixture
def client(engine):
    with TestClient(create_api()) as client:
        yield client


def person(email: str, credits_minor: int = 0) -> tuple[object, dict[str, str]]:
    user = in_transaction(
        create_user,
        email=email,
        display_name=email.split("@", maxsplit=1)[0],
        password="pw-long-enough-1",
        email_verified=True,
    )
    if credits_minor:
        in_transaction(
            transfer,
            source="world",
            destination=wallet_address(user.id, WalletKind.CALL_CREDITS),
            amount_minor=credits_minor,
            currency=Currency.NGN,
            idempotency_key=f"fund:{user.id}",
            kind="demo_funding",
        )
    issued = in_transaction(issue_api_tokens, user=user, client=ClientInfo())
    return user, {"Authorization": f"Bearer {issued.token}"}


def test_call_answered_and_ended_returns_duration_and_cost(client):
    _caller, caller = person("caller@example.com", credits_minor=100_000)
    callee_user, callee = person("callee@example.com")
    _other, stranger = person("stranger@example.com")
    with time_machine.travel("2026-11-23 12:00:00+00:00", tick=False) as clock:
        placed = client.post(
            "/api/v1/calls",
            headers={**caller, "Idempotency-Key": "call-0001"},
            json={"callee_id": str(callee_user.id), "type": "video"},
        )
        assert placed.status_code == 201
        call_id = placed.json()["id"]
        assert client.get(f"/api/v1/calls/{call_id}", headers=stranger).status_code == 404
        assert client.post(f"/api/v1/calls/{call_id}/answer", headers=stranger).status_code == 404
        assert client.post(f"/api/v1/calls/{call_id}/answer", headers=caller).status_code == 403
        assert client.post(f"/api/v1/calls/{call_id}/answer", headers=callee).json()["status"] == "active"
        clock.shift(61)
        ended = client.post(f"/api/v1/calls/{call_id}/end", headers=callee).json()
    assert ended["duration_seconds"] == 61
    assert ended["cost"] == 1017
    assert client.post(f"/api/v1/calls/{call_id}/end", headers=caller).json()["cost"] == 1017
    assert [call["id"] for call in client.get("/api/v1/calls?status=ended", headers=caller).json()] == [call_id]
    assert client.get("/api/v1/calls?status=missed", headers=caller).json() == []


def test_call_refusals_are_4xx_with_codes(client):
    _broke, broke = person("broke@example.com")
    refused = client.post(
        "/api/v1/calls", headers={**broke, "Idempotency-Key": "call-0002"}, json={"phone": "+2348012345678"}
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "insufficient_credits"
    bad_phone = client.post(
        "/api/v1/calls", headers={**broke, "Idempotency-Key": "call-0003"}, json={"phone": "0801234"}
    )
    assert bad_phone.status_code == 422
    both = client.post(
        "/api/v1/calls",
        headers={**broke, "Idempotency-Key": "call-0004"},
        json={"phone": "+2348012345678", "callee_id": "00000000-0000-0000-0000-000000000000"},
    )
    assert both.status_code == 422
    assert both.json()["code"] == "invalid_input"
