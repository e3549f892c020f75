"""REST API v1 transfers: friends only, idempotent, refusals as 4xx with stable codes, step-up by email."""

import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import col, select

from paytime_app.api import create_api
from paytime_app.db import in_transaction, unit_of_work
from paytime_app.models.mail import MailMessage
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
    fund_wallet(ada, 500_00, "USD")
    return {"ada": (ada, as_ada), "ben": (ben, as_ben), "eve": (eve, as_eve)}


def balance(client, headers, currency="USD") -> int:
    wallets = client.get("/api/v1/wallets", headers=headers).json()
    return next(w["balance"] for w in wallets if w["kind"] == "wallet" and w["currency"] == currency)


def send(client, headers, key: str, **body):
    return client.post("/api/v1/transfers", json=body, headers={**headers, "Idempotency-Key": key})


def test_transfer_is_idempotent_and_lands_in_both_wallets(client, people):
    (_ada, as_ada), (ben, as_ben) = people["ada"], people["ben"]
    body = {"to_user_id": str(ben.id), "amount": 25_00, "currency": "USD", "note": "Taxi"}
    first = send(client, as_ada, "transfer-0001", **body)
    assert first.status_code == 201
    again = send(client, as_ada, "transfer-0001", **body)
    assert again.json()["id"] == first.json()["id"]
    assert (balance(client, as_ada), balance(client, as_ben)) == (475_00, 25_00)
    mismatch = send(client, as_ada, "transfer-0001", **{**body, "amount": 26_00})
    assert (mismatch.status_code, mismatch.json()["code"]) == (409, "idempotency_mismatch")
    [wallet] = [w for w in client.get("/api/v1/wallets", headers=as_ben).json() if w["currency"] == "USD"][:1]
    [line] = client.get(f"/api/v1/wallets/{wallet['id']}/transactions", headers=as_ben).json()
    assert line["description"] == "Transfer from Ada Obi · Taxi"


@pytest.mark.parametrize(
    ("who", "money", "refusal"),
    [
        ("eve", (1_00, "USD"), (403, "not_friends")),
        ("ben", (0, "USD"), (422, "invalid_amount")),
        ("ben", (-5, "USD"), (422, "invalid_amount")),
        ("ben", (1_00, "XYZ"), (422, "unsupported_currency")),
        ("ben", (1_00, "NGN"), (409, "insufficient_funds")),
        ("ben", (500_01, "USD"), (409, "insufficient_funds")),
    ],
)
def test_transfer_refusals_move_nothing(client, people, who, money, refusal):
    amount, currency = money
    as_ada = people["ada"][1]
    target = people[who][0]
    refused = send(client, as_ada, "transfer-bad1", to_user_id=str(target.id), amount=amount, currency=currency)
    assert (refused.status_code, refused.json()["code"]) == refusal
    assert balance(client, as_ada) == 500_00


def test_large_transfer_asks_for_an_emailed_code(client, people):
    (ada, as_ada), (ben, as_ben) = people["ada"], people["ben"]
    body = {"to_user_id": str(ben.id), "amount": 150_00, "currency": "USD"}
    asked = send(client, as_ada, "transfer-big1", **body)
    assert (asked.status_code, asked.json()["code"]) == (403, "step_up_required")
    details = asked.json()["details"]
    assert details["method"] == "email"
    assert balance(client, as_ben) == 0
    with unit_of_work() as session:
        mail = session.exec(
            select(MailMessage).where(MailMessage.to_address == ada.email).order_by(col(MailMessage.created_at).desc())
        ).first()
    code = re.search(r"Your code: (\d{6})", mail.body_text).group(1)
    done = send(client, as_ada, "transfer-big1", **body, otp=code, challenge=details["challenge"])
    assert done.status_code == 201, done.text
    assert balance(client, as_ben) == 150_00
