"""REST API v1 money routes and the webhook route, through the HTTP layer."""

import pytest
from fastapi.testclient import TestClient

from paytime_app.api import create_api
from paytime_app.db import in_transaction
from paytime_app.services.providers.base import ProviderPaymentStatus
from paytime_app.services.providers.registry import get_provider
from paytime_app.services.sessions import ClientInfo, issue_api_tokens
from paytime_app.services.users import create_user


@pytest.fixture
def client(engine):
    with TestClient(create_api()) as client:
        yield client


def api_headers(email: str) -> dict[str, str]:
    user = in_transaction(
        create_user,
        email=email,
        display_name=email.split("@", maxsplit=1)[0],
        password="pw-long-enough-1",
        email_verified=True,
    )
    issued = in_transaction(issue_api_tokens, user=user, client=ClientInfo())
    return {"Authorization": f"Bearer {issued.token}"}


def start(client, headers, key="key-00000001", amount=150_000):
    return client.post(
        "/api/v1/payments",
        headers={**headers, "Idempotency-Key": key},
        json={"purpose": "wallet_topup", "amount": amount, "currency": "NGN", "provider": "mock"},
    )


def test_top_up_through_api_and_webhook(client):
    headers = api_headers("payer@example.com")
    started = start(client, headers)
    assert started.status_code == 201
    payment = started.json()
    assert payment["status"] == "processing"
    payment_path = payment["checkout_url"].split("/pay/mock/")[1]
    assert payment_path.startswith("mock_")
    assert start(client, headers).json()["id"] == payment["id"], "same Idempotency-Key, same payment"
    mismatch = start(client, headers, amount=1)
    assert mismatch.status_code == 409
    assert mismatch.json()["code"] == "idempotency_mismatch"

    webhook_headers, body = get_provider("mock").settle_checkout(
        provider_reference=payment_path, outcome=ProviderPaymentStatus.SUCCEEDED
    )
    delivered = client.post("/api/webhooks/mock", headers=webhook_headers, content=body)
    assert delivered.json() == {"status": "processed", "payment": payment["reference"]}
    assert client.post("/api/webhooks/mock", headers=webhook_headers, content=body).json()["status"] == "duplicate"

    wallets = {(w["kind"], w["currency"]): w for w in client.get("/api/v1/wallets", headers=headers).json()}
    assert wallets[("wallet", "NGN")]["balance"] == 150_000
    lines = client.get(f"/api/v1/wallets/{wallets[('wallet', 'NGN')]['id']}/transactions", headers=headers).json()
    assert [line["amount"] for line in lines] == [150_000]
    detail = client.get(f"/api/v1/payments/{payment['id']}", headers=headers).json()
    assert detail["status"] == "succeeded"
    assert [(step["status"], step["source"]) for step in detail["timeline"]] == [
        ("pending", "api"),
        ("processing", "api"),
        ("succeeded", "webhook"),
    ]


def test_tampered_webhook_is_400_and_writes_nothing(client):
    headers = api_headers("payer2@example.com")
    payment = start(client, headers).json()
    webhook_headers, body = get_provider("mock").settle_checkout(
        provider_reference=payment["checkout_url"].split("/pay/mock/")[1], outcome=ProviderPaymentStatus.SUCCEEDED
    )
    tampered = client.post("/api/webhooks/mock", headers=webhook_headers, content=body.replace(b"150000", b"990000"))
    assert tampered.status_code == 400
    assert tampered.json()["code"] == "webhook_rejected"
    assert client.get(f"/api/v1/payments/{payment['id']}", headers=headers).json()["status"] == "processing"
    assert client.post("/api/webhooks/nowhere", content=b"{}").status_code == 404


def test_other_users_payment_and_wallet_are_not_found(client):
    owner = api_headers("owner@example.com")
    stranger = api_headers("stranger@example.com")
    payment = start(client, owner).json()
    assert client.get(f"/api/v1/payments/{payment['id']}", headers=stranger).status_code == 404
    assert client.post(f"/api/v1/payments/{payment['id']}/verify", headers=stranger).status_code == 404
    assert client.get("/api/v1/payments", headers=stranger).json() == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"purpose": "wallet_topup", "amount": 0, "currency": "NGN", "provider": "mock"}, "invalid_amount"),
        ({"purpose": "wallet_topup", "amount": 100, "currency": "EUR", "provider": "mock"}, "unsupported_currency"),
        ({"purpose": "booking", "amount": 100, "currency": "NGN", "provider": "mock"}, "purpose_not_supported"),
        ({"purpose": "wallet_topup", "amount": 100, "currency": "NGN", "provider": "paypal"}, "unknown_provider"),
        ({"purpose": "wallet_topup", "amount": 100, "currency": "NGN", "provider": "stripe"}, "provider_unavailable"),
        ({"purpose": "wallet_topup", "amount": 1.5, "currency": "NGN", "provider": "mock"}, "invalid_input"),
    ],
)
def test_bad_payment_requests_are_4xx_with_codes(client, body, code):
    response = client.post(
        "/api/v1/payments", headers={**api_headers("bad@example.com"), "Idempotency-Key": "k-123456"}, json=body
    )
    # Bad input is the caller's (4xx); a known provider that is not configured here is ours (503).
    assert response.status_code == (503 if code == "provider_unavailable" else 422)
    assert response.json()["code"] == code


def test_missing_idempotency_key_is_422(client):
    response = client.post(
        "/api/v1/payments",
        headers=api_headers("nokey@example.com"),
        json={"purpose": "wallet_topup", "amount": 100, "currency": "NGN", "provider": "mock"},
    )
    assert response.status_code == 422
