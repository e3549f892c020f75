"""REST API v1 events and bookings: an organizer publishes, customers book and pay, refusals are 4xx
with stable codes, and nobody sees another customer's bookings or tickets."""

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from paytime_app.api import create_api
from paytime_app.db import build_engine, get_engine, in_transaction, use_engine
from paytime_app.models.users import Role
from paytime_app.money import Currency
from paytime_app.services.ledger import transfer
from paytime_app.services.sessions import ClientInfo, issue_api_tokens
from paytime_app.services.users import create_user
from paytime_app.services.wallets import WalletKind, wallet_address
from tests.helpers import run_at_once

START = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)


@pytest.fixture
def client(engine):
    with TestClient(create_api()) as client:
        yield client


def person(email: str, role: Role = Role.CUSTOMER, funds_minor: int = 0) -> dict[str, str]:
    user = in_transaction(
        create_user, email=email, display_name=email.split("@", maxsplit=1)[0], password=None, role=role
    )
    if funds_minor:
        in_transaction(
            transfer,
            source="world",
            destination=wallet_address(user.id, WalletKind.PRIMARY),
            amount_minor=funds_minor,
            currency=Currency.NGN,
            idempotency_key=f"fund:{user.id}",
            kind="demo_funding",
        )
    issued = in_transaction(issue_api_tokens, user=user, client=ClientInfo())
    return {"Authorization": f"Bearer {issued.token}"}


def published_event(client, organizer, capacity: int = 10, price: int = 250_000) -> tuple[str, str]:
    created = client.post(
        "/api/v1/organizer/events",
        headers=organizer,
        json={
            "title": "Afrobeats Live",
            "venue": "Eko Hotel",
            "venue_type": "hotel",
            "starts_at": START.isoformat(),
            "ends_at": (START + timedelta(hours=5)).isoformat(),
        },
    )
    assert created.status_code == 201, created.text
    event_id = created.json()["id"]
    typed = client.post(
        f"/api/v1/organizer/events/{event_id}/ticket-types",
        headers=organizer,
        json={"name": "Regular", "price": price, "capacity": capacity, "attributes": {"Gate": "B"}},
    )
    assert typed.status_code == 201, typed.text
    type_id = typed.json()["ticket_types"][0]["id"]
    assert (
        client.post(f"/api/v1/organizer/events/{event_id}/publish", headers=organizer).json()["status"] == "published"
    )
    return event_id, type_id


def book(client, who, event_id, type_id, quantity=1, **extra):
    return client.post(
        "/api/v1/bookings",
        headers={**who, "Idempotency-Key": f"key-{uuid.uuid4()}"},
        json={"event_id": event_id, "items": [{"ticket_type_id": type_id, "quantity": quantity}], **extra},
    )


def test_publish_book_pay_and_download_tickets(client):
    organizer = person("org@example.com", Role.SELLER)
    ada = person("ada@example.com", funds_minor=5_000_000)
    eve = person("eve@example.com", funds_minor=5_000_000)
    event_id, type_id = published_event(client, organizer)
    listed = client.get("/api/v1/events?q=afro&venue_type=hotel").json()
    assert listed["total"] == 1
    assert listed["events"][0]["min_price"] == 250_000
    detail = client.get(f"/api/v1/events/{event_id}").json()
    assert detail["ticket_types"][0]["seats_left"] == 10
    assert detail["ticket_types"][0]["attributes"] == {"Gate": "B"}

    held = book(client, ada, event_id, type_id, 2, attendees=[{"ticket_type_id": type_id, "names": ["Ada", "Obi"]}])
    assert held.status_code == 201, held.text
    booking = held.json()
    assert (booking["status"], booking["total"]) == ("held", 500_000)
    assert client.get(f"/api/v1/events/{event_id}").json()["ticket_types"][0]["seats_left"] == 8

    assert client.post(f"/api/v1/bookings/{booking['id']}/pay", headers=eve, json={}).status_code == 404
    paid = client.post(f"/api/v1/bookings/{booking['id']}/pay", headers=ada, json={"method": "wallet"})
    assert paid.status_code == 200, paid.text
    assert paid.json()["booking"]["status"] == "confirmed"

    tickets = client.get("/api/v1/tickets", headers=ada).json()
    assert sorted(t["attendee_name"] for t in tickets) == ["Ada", "Obi"]
    assert all(t["qr_payload"].count(".") == 2 and t["kid"] for t in tickets)
    ticket_id = tickets[0]["id"]
    pdf = client.get(f"/api/v1/tickets/{ticket_id}/pdf", headers=ada)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert client.get(f"/api/v1/bookings/{booking['id']}/pdf", headers=ada).content.startswith(b"%PDF")
    for path in (
        f"/api/v1/tickets/{ticket_id}",
        f"/api/v1/tickets/{ticket_id}/pdf",
        f"/api/v1/bookings/{booking['id']}",
    ):
        assert client.get(path, headers=eve).status_code == 404, path
    assert client.get("/api/v1/tickets", headers=eve).json() == []

    sales = client.get(f"/api/v1/organizer/events/{event_id}", headers=organizer).json()["ticket_types"][0]
    assert (sales["sold"], sales["held"], sales["left"], sales["revenue"]) == (2, 0, 8, 500_000)
    assert [
        b["reference"] for b in client.get(f"/api/v1/organizer/events/{event_id}/bookings", headers=organizer).json()
    ] == [booking["reference"]]
    assert client.get(f"/api/v1/organizer/events/{event_id}/bookings", headers=eve).status_code == 404

    cancelled = client.post(f"/api/v1/bookings/{booking['id']}/cancel", headers=ada, json={"ticket_ids": [ticket_id]})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["refunded"] == 250_000  # 30 days before: 100%
    assert client.get(f"/api/v1/tickets/{ticket_id}", headers=ada).json()["status"] == "cancelled"


def test_booking_refusals_are_4xx_with_stable_codes(client):
    organizer = person("org@example.com", Role.SELLER)
    ada = person("ada@example.com")
    event_id, type_id = published_event(client, organizer, capacity=2)
    sold_out = book(client, ada, event_id, type_id, 3)
    assert (sold_out.status_code, sold_out.json()["code"]) == (409, "sold_out")
    bad_coupon = book(client, ada, event_id, type_id, 1, coupon_code="NOPE")
    assert (bad_coupon.status_code, bad_coupon.json()["code"]) == (422, "invalid_coupon")
    too_many = book(client, ada, event_id, type_id, 21)
    assert too_many.status_code == 422
    held = book(client, ada, event_id, type_id, 1).json()
    broke = client.post(f"/api/v1/bookings/{held['id']}/pay", headers=ada, json={"method": "wallet"})
    assert (broke.status_code, broke.json()["code"]) == (409, "insufficient_funds")
    missing = book(client, ada, str(uuid.uuid4()), type_id, 1)
    assert missing.status_code == 404
    same_key = {**ada, "Idempotency-Key": "fixed-key-123"}
    body = {"event_id": event_id, "items": [{"ticket_type_id": type_id, "quantity": 1}]}
    first = client.post("/api/v1/bookings", headers=same_key, json=body)
    assert client.post("/api/v1/bookings", headers=same_key, json=body).json()["id"] == first.json()["id"]


def test_hold_request_checks_the_token_then_the_key_and_body(client):
    organizer = person("org@example.com", Role.SELLER)
    ada = person("ada@example.com")
    event_id, type_id = published_event(client, organizer)
    body = {"event_id": event_id, "items": [{"ticket_type_id": type_id, "quantity": 1}]}
    stranger = client.post("/api/v1/bookings", headers={"Authorization": "Bearer nope"}, content=b"{not json")
    assert (stranger.status_code, stranger.json()["code"]) == (401, "session_expired")
    keyless = client.post("/api/v1/bookings", headers=ada, json=body)
    assert (keyless.status_code, keyless.json()["code"]) == (422, "invalid_input")
    assert keyless.json()["details"]["fields"] == [{"field": "Idempotency-Key", "message": "Field required"}]
    short_key = client.post("/api/v1/bookings", headers={**ada, "Idempotency-Key": "short"}, json=body)
    assert short_key.status_code == 422
    not_json = client.post("/api/v1/bookings", headers={**ada, "Idempotency-Key": "key-12345"}, content=b"{")
    assert (not_json.status_code, not_json.json()["code"]) == (422, "invalid_input")
    no_items = client.post(
        "/api/v1/bookings", headers={**ada, "Idempotency-Key": "key-12345"}, json={"event_id": event_id, "items": []}
    )
    assert no_items.json()["details"]["fields"][0]["field"] == "items"
    held = client.post("/api/v1/bookings", headers={**ada, "Idempotency-Key": "key-12345"}, json=body)
    assert held.status_code == 201, held.text
    assert held.json()["items"] == [{"ticket_type_id": type_id, "quantity": 1, "unit_price": 250_000, "tier": ""}]
    schema = client.get("/api/openapi.json").json()["paths"]["/api/v1/bookings"]["post"]
    documented = schema["requestBody"]["content"]["application/json"]["schema"]
    assert documented["title"] == "BookingRequest"
    assert documented["properties"]["items"]["items"]["properties"]["quantity"]["maximum"] == 20
    assert "$ref" not in str(documented)
    assert [parameter["name"] for parameter in schema["parameters"]] == ["Idempotency-Key"]


def test_provider_payment_returns_a_checkout(client):
    organizer = person("org@example.com", Role.SELLER)
    ada = person("ada@example.com")
    event_id, type_id = published_event(client, organizer)
    held = book(client, ada, event_id, type_id, 1).json()
    started = client.post(
        f"/api/v1/bookings/{held['id']}/pay", headers=ada, json={"method": "provider", "provider": "mock"}
    )
    assert started.status_code == 200, started.text
    assert started.json()["checkout_url"]
    assert started.json()["booking"]["status"] == "held"


def test_only_sellers_organize_and_only_their_own_events(client):
    customer = person("c@example.com")
    organizer = person("org@example.com", Role.SELLER)
    rival = person("rival@example.com", Role.SELLER)
    refused = client.post(
        "/api/v1/organizer/events",
        headers=customer,
        json={"title": "Mine", "starts_at": START.isoformat(), "ends_at": (START + timedelta(hours=1)).isoformat()},
    )
    assert refused.status_code == 403
    event_id, _type_id = published_event(client, organizer)
    assert client.get(f"/api/v1/organizer/events/{event_id}", headers=rival).status_code == 404
    assert client.post(f"/api/v1/organizer/events/{event_id}/cancel", headers=rival).status_code == 404
    assert client.post(f"/api/v1/organizer/events/{event_id}/duplicate", headers=customer).status_code == 404


def test_seller_application_through_the_api(client):
    ada = person("ada@example.com")
    boss = person("boss@example.com", Role.SUPER_ADMIN)
    admin = person("admin@example.com", Role.ADMIN)
    applied = client.post(
        "/api/v1/seller-applications",
        headers=ada,
        json={"organisation_name": "Ada Events", "contact_email": "ada@events.ng", "payout_country": "NG"},
    )
    assert applied.status_code == 201
    application_id = applied.json()["id"]
    assert client.get("/api/v1/seller-applications", headers=ada).status_code == 403
    assert [a["id"] for a in client.get("/api/v1/seller-applications", headers=admin).json()] == [application_id]
    decision = {"approve": True}
    assert (
        client.post(f"/api/v1/seller-applications/{application_id}/decision", headers=admin, json=decision).status_code
        == 403
    )
    approved = client.post(f"/api/v1/seller-applications/{application_id}/decision", headers=boss, json=decision)
    assert approved.json()["status"] == "approved"
    assert client.get("/api/v1/me", headers=ada).json()["role"] == "seller"


def test_concurrent_buyers_through_the_api_never_oversell(client, engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("row-level concurrency is proven on PostgreSQL")
    organizer = person("org@example.com", Role.SELLER)
    event_id, type_id = published_event(client, organizer, capacity=20, price=0)
    buyers = [person(f"b{i}@example.com") for i in range(200)]
    lock = threading.Lock()

    def attempt():
        with lock:
            who = buyers.pop()
        response = book(client, who, event_id, type_id, 1)
        return response.status_code, response.json().get("code")

    outcomes = run_at_once(200, attempt)
    assert outcomes.count((201, None)) == 20
    assert outcomes.count((409, "sold_out")) == 180
    assert client.get(f"/api/v1/events/{event_id}").json()["ticket_types"][0]["seats_left"] == 0


def test_database_refusing_connections_is_a_retryable_503(client):
    working = get_engine()
    use_engine(build_engine("postgresql+psycopg://nobody@127.0.0.1:1/none"))
    try:
        response = client.get("/api/v1/events")
    finally:
        use_engine(working)
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "1"
