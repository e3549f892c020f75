"""REST API v1 IOUs: open against a friend, pay once, cash confirmed by the lender; another user's IOU
id looks missing; refusals are 4xx with stable codes."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from paytime_app.api import create_api
from paytime_app.db import in_transaction
from paytime_app.services.friends import accept_friend_request, send_friend_request
from tests.helpers import api_person, fund_wallet


@pytest.fixture
def client(engine):
    with TestClient(create_api()) as client:
        yield client


@pytest.fixture
def people(client):
    ada, as_ada = api_person("ada@example.com", "Ada Obi")
    ben, as_ben = api_person("ben@example.com", "Ben Okafor")
    eve, as_eve = api_person("eve@example.com", "Eve")
    request = in_transaction(send_friend_request, actor=ada, user_id=ben.id)
    in_transaction(accept_friend_request, actor=ben, request_id=request.id)
    fund_wallet(ben, 10_000_00)
    return {"ada": (ada, as_ada), "ben": (ben, as_ben), "eve": (eve, as_eve)}


def open_one(client, headers, key: str, **body):
    return client.post("/api/v1/ious", json=body, headers={**headers, "Idempotency-Key": key})


def test_iou_open_pay_and_totals(client, people):
    (ada, as_ada), (_ben, as_ben), (_eve, as_eve) = people["ada"], people["ben"], people["eve"]
    opened = open_one(
        client, as_ben, "iou-key-0001", lender_id=str(ada.id), amount=3_000_00, currency="NGN", method="wallet"
    )
    assert opened.status_code == 201, opened.text
    iou = opened.json()
    assert (iou["status"], iou["due_date"], iou["direction"], iou["counterpart_name"]) == (
        "pending",
        (datetime.now(UTC).date() + timedelta(days=7)).isoformat(),
        "owe",
        "Ada Obi",
    )
    assert client.get("/api/v1/ious/totals", headers=as_ada).json()["owed"] == {"NGN": 3_000_00}
    [seen] = client.get("/api/v1/ious", params={"direction": "owed"}, headers=as_ada).json()
    assert (seen["id"], seen["direction"]) == (iou["id"], "owed")
    # Another user's IOU id looks missing, whatever they try.
    for action in ("pay", "paid-in-cash", "confirm-cash", "dispute-cash", "acknowledge", "cancel"):
        refused = client.post(f"/api/v1/ious/{iou['id']}/{action}", headers=as_eve)
        assert (refused.status_code, refused.json()["code"]) == (404, "not_found"), action
    assert client.get(f"/api/v1/ious/{iou['id']}", headers=as_eve).status_code == 404
    lender_pays = client.post(f"/api/v1/ious/{iou['id']}/pay", headers=as_ada)
    assert (lender_pays.status_code, lender_pays.json()["code"]) == (403, "only_borrower")
    paid = client.post(f"/api/v1/ious/{iou['id']}/pay", headers=as_ben).json()
    assert (paid["status"], paid["paid_via"]) == ("paid", "wallet")
    assert client.post(f"/api/v1/ious/{iou['id']}/pay", headers=as_ben).json()["status"] == "paid"
    assert client.get("/api/v1/ious", params={"status": "paid"}, headers=as_ada).json()[0]["id"] == iou["id"]
    assert client.get("/api/v1/ious/totals", headers=as_ada).json()["owed"] == {}


def test_cash_claim_then_lender_confirms(client, people):
    (ada, as_ada), (_ben, as_ben) = people["ada"], people["ben"]
    iou = open_one(
        client, as_ben, "iou-key-0002", lender_id=str(ada.id), amount=50_00, currency="USD", method="cash"
    ).json()
    assert client.post(f"/api/v1/ious/{iou['id']}/paid-in-cash", headers=as_ben).json()["cash_claimed"] is True
    confirmed = client.post(f"/api/v1/ious/{iou['id']}/confirm-cash", headers=as_ada).json()
    assert (confirmed["status"], confirmed["paid_via"]) == ("paid", "cash")


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    [
        ({"lender": "eve"}, 403, "not_friends"),
        ({"amount": 0}, 422, "invalid_amount"),
        ({"currency": "EUR"}, 422, "unsupported_currency"),
        ({"method": "card"}, 422, "invalid_input"),
        ({"due_date": "2000-01-01"}, 422, "invalid_due_date"),
    ],
)
def test_iou_refusals_are_4xx_with_codes(client, people, changes, status, code):
    as_ben = people["ben"][1]
    lender = people[changes.get("lender", "ada")][0]
    body = {"lender_id": str(lender.id), "amount": 100, "currency": "NGN", "method": "cash"}
    body.update((name, value) for name, value in changes.items() if name != "lender")
    refused = open_one(client, as_ben, "iou-key-bad1", **body)
    assert (refused.status_code, refused.json()["code"]) == (status, code)
    assert client.get("/api/v1/ious", headers=as_ben).json() == []


def test_borrower_cannot_cancel_after_acknowledgement(client, people):
    (ada, as_ada), (_ben, as_ben) = people["ada"], people["ben"]
    iou = open_one(
        client, as_ben, "iou-key-0003", lender_id=str(ada.id), amount=100, currency="NGN", method="cash"
    ).json()
    assert client.post(f"/api/v1/ious/{iou['id']}/acknowledge", headers=as_ada).json()["acknowledged"] is True
    refused = client.post(f"/api/v1/ious/{iou['id']}/cancel", headers=as_ben)
    assert (refused.status_code, refused.json()["code"]) == (409, "already_acknowledged")
    assert client.post(f"/api/v1/ious/{iou['id']}/cancel", headers=as_ada).json()["status"] == "cancelled"
