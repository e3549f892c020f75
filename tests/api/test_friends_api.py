"""REST API v1 friends and notifications: the same services as the pages, refusals as 4xx with codes,
and nobody sees or answers another person's requests."""

import pytest
from fastapi.testclient import TestClient

from paytime_app.api import create_api
from tests.helpers import api_person


@pytest.fixture
def client(engine):
    with TestClient(create_api()) as client:
        yield client


def test_find_by_code_request_accept_and_be_notified(client):
    ada, as_ada = api_person("ada@example.com", "Ada Obi")
    ben, as_ben = api_person("ben@example.com", "Ben Okafor")
    _eve, as_eve = api_person("eve@example.com", "Eve")
    code = client.get("/api/v1/friends", headers=as_ben).json()["friend_code"]
    [match] = client.get("/api/v1/friends/search", params={"q": code}, headers=as_ada).json()
    assert (match["user_id"], match["relation"]) == (str(ben.id), "none")
    sent = client.post("/api/v1/friends/requests", json={"user_id": str(ben.id)}, headers=as_ada)
    assert sent.status_code == 201
    request_id = sent.json()["id"]
    [incoming] = client.get("/api/v1/friends/requests", headers=as_ben).json()
    assert (incoming["id"], incoming["direction"], incoming["display_name"]) == (request_id, "incoming", "Ada Obi")
    # Nobody else can answer it, and Ada cannot accept her own request.
    for headers in (as_eve, as_ada):
        refused = client.post(f"/api/v1/friends/requests/{request_id}/accept", headers=headers)
        assert (refused.status_code, refused.json()["code"]) == (404, "not_found")
    notices = client.get("/api/v1/notifications", headers=as_ben).json()
    assert notices["unread"] == 1
    assert notices["notifications"][0]["text"] == "Ada Obi sent you a friend request."
    assert client.get("/api/v1/notifications", headers=as_eve).json() == {"unread": 0, "notifications": []}
    accepted = client.post(f"/api/v1/friends/requests/{request_id}/accept", headers=as_ben)
    assert accepted.json()["status"] == "accepted"
    assert [friend["user_id"] for friend in client.get("/api/v1/friends", headers=as_ada).json()["friends"]] == [
        str(ben.id)
    ]
    assert client.post("/api/v1/notifications/read", headers=as_ben).status_code == 204
    assert client.get("/api/v1/notifications", headers=as_ben).json()["unread"] == 0
    assert client.delete(f"/api/v1/friends/{ada.id}", headers=as_ben).status_code == 204
    assert client.get("/api/v1/friends", headers=as_ada).json()["friends"] == []


def test_friend_refusals_are_4xx_with_codes(client):
    ada, as_ada = api_person("ada@example.com", "Ada Obi")
    ben, as_ben = api_person("ben@example.com", "Ben Okafor")
    to_self = client.post("/api/v1/friends/requests", json={"user_id": str(ada.id)}, headers=as_ada)
    assert (to_self.status_code, to_self.json()["code"]) == (422, "cannot_friend_self")
    client.post("/api/v1/friends/requests", json={"user_id": str(ben.id)}, headers=as_ada)
    twice = client.post("/api/v1/friends/requests", json={"user_id": str(ben.id)}, headers=as_ada)
    assert (twice.status_code, twice.json()["code"]) == (409, "request_already_sent")
    crossed = client.post("/api/v1/friends/requests", json={"user_id": str(ada.id)}, headers=as_ben)
    assert (crossed.status_code, crossed.json()["code"]) == (409, "request_already_received")
    assert "request_id" in crossed.json()["details"]
    short = client.get("/api/v1/friends/search", params={"q": "a"}, headers=as_ada)
    assert (short.status_code, short.json()["code"]) == (422, "search_too_short")
    assert client.post(f"/api/v1/friends/{ada.id}/block", headers=as_ben).json()["status"] == "blocked"
    assert client.get("/api/v1/friends/search", params={"q": "Okafor"}, headers=as_ada).json() == []
    assert client.get("/api/v1/friends", headers=as_ben).json()["blocked"][0]["user_id"] == str(ada.id)
    blocked = client.post("/api/v1/friends/requests", json={"user_id": str(ben.id)}, headers=as_ada)
    assert (blocked.status_code, blocked.json()["code"]) == (403, "blocked")
    not_theirs = client.delete(f"/api/v1/friends/{ben.id}/block", headers=as_ada)
    assert (not_theirs.status_code, not_theirs.json()["code"]) == (404, "not_found")
