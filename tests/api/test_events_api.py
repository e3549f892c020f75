"""REST API v1 event covers and ticket types: an organizer uploads a cover (multipart), bad files are 4xx
with stable codes, the cover is served with cache headers (a draft's only to its organizer), and
organizers read back every ticket type field they set."""

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from paytime_app.api import create_api
from paytime_app.cookies import SESSION_COOKIE
from paytime_app.db import in_transaction
from paytime_app.models.users import Role
from paytime_app.services.covers import MAX_BYTES
from paytime_app.services.sessions import ClientInfo, issue_api_tokens, start_browser_session
from paytime_app.services.users import create_user
from tests.services.test_covers import picture

START = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)


@pytest.fixture
def client(engine):
    with TestClient(create_api()) as client:
        yield client


def person(email: str, role: Role = Role.CUSTOMER) -> dict[str, str]:
    user = in_transaction(
        create_user, email=email, display_name=email.split("@", maxsplit=1)[0], password=None, role=role
    )
    issued = in_transaction(issue_api_tokens, user=user, client=ClientInfo())
    return {"Authorization": f"Bearer {issued.token}"}


@pytest.fixture
def organizer(engine):
    return person("org@example.com", Role.SELLER)


@pytest.fixture
def event_id(client, organizer):
    created = client.post(
        "/api/v1/organizer/events",
        headers=organizer,
        json={
            "title": "Afrobeats Live",
            "starts_at": START.isoformat(),
            "ends_at": (START + timedelta(hours=5)).isoformat(),
        },
    )
    assert created.status_code == 201, created.text
    return created.json()["id"]


def upload(client, who, event_id, data: bytes, *, name: str = "cover.jpg", content_type: str = "image/jpeg"):
    return client.put(
        f"/api/v1/organizer/events/{event_id}/cover", headers=who, files={"file": (name, data, content_type)}
    )


def test_organizer_uploads_a_cover_served_privately_while_draft_then_publicly(client, organizer, event_id):
    response = upload(client, organizer, event_id, picture((2400, 1200)))
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["cover_width"], body["cover_height"]) == (1600, 800)
    cover_url, thumb_url = body["cover_url"], body["cover_thumb_url"]
    assert cover_url.startswith(f"/api/media/events/{event_id}/")
    assert thumb_url.endswith("-thumb.webp")

    assert client.get(cover_url).status_code == 404  # a draft looks missing to strangers
    assert client.get(cover_url, headers=person("eve@example.com")).status_code == 404
    own = client.get(cover_url, headers=organizer)
    assert own.status_code == 200
    assert own.headers["content-type"] == "image/webp"
    assert own.headers["cache-control"].startswith("private")
    assert own.content[:4] == b"RIFF"

    client.post(
        f"/api/v1/organizer/events/{event_id}/ticket-types",
        headers=organizer,
        json={"name": "Std", "price": 100, "capacity": 3},
    )
    client.post(f"/api/v1/organizer/events/{event_id}/publish", headers=organizer)
    public = client.get(thumb_url)
    assert public.status_code == 200
    assert public.headers["cache-control"] == "public, max-age=31536000, immutable"
    listed = client.get("/api/v1/events").json()["events"][0]
    assert (listed["cover_url"], listed["cover_thumb_url"]) == (cover_url, thumb_url)
    assert client.get(f"/api/v1/events/{event_id}").json()["cover_url"] == cover_url


def test_a_browser_session_cookie_also_reads_a_drafts_cover(client):
    seller = in_transaction(create_user, email="s@example.com", display_name="S", password=None, role=Role.SELLER)
    api = {"Authorization": f"Bearer {in_transaction(issue_api_tokens, user=seller, client=ClientInfo()).token}"}
    own_event = client.post(
        "/api/v1/organizer/events",
        headers=api,
        json={"title": "Mine", "starts_at": START.isoformat(), "ends_at": (START + timedelta(hours=1)).isoformat()},
    ).json()["id"]
    url = upload(client, api, own_event, picture()).json()["cover_url"]
    cookie = in_transaction(start_browser_session, user=seller, client=ClientInfo()).token
    client.cookies.set(SESSION_COOKIE, cookie)
    assert client.get(url).status_code == 200
    client.cookies.set(SESSION_COOKIE, "stale")
    assert client.get(url).status_code == 404


def test_replacing_a_cover_retires_the_old_url(client, organizer, event_id):
    old = upload(client, organizer, event_id, picture()).json()["cover_url"]
    new = upload(
        client, organizer, event_id, picture((1200, 1200), fmt="PNG"), name="x.png", content_type="image/png"
    ).json()
    assert new["cover_url"] != old
    assert client.get(old, headers=organizer).status_code == 404
    removed = client.delete(f"/api/v1/organizer/events/{event_id}/cover", headers=organizer)
    assert removed.json()["cover_url"] is None
    assert client.get(new["cover_url"], headers=organizer).status_code == 404


@pytest.mark.parametrize(
    "case",
    [
        (b"# just notes, saved as cover.png\n" * 50, 422, "cover_not_an_image"),
        (b"\xff\xd8\xff\xe0" + b"\0" * (MAX_BYTES + 10), 413, "cover_too_large"),
        (picture((4000, 500), fmt="PNG"), 422, "cover_dimensions"),
        (picture((120, 90), fmt="GIF"), 422, "cover_dimensions"),
    ],
    ids=["text-named-png", "over-5-mb", "8-to-1-strip", "tiny"],
)
def test_bad_uploads_are_refused_with_stable_codes(client, organizer, event_id, case):
    data, status, code = case
    response = upload(client, organizer, event_id, data, name="cover.png", content_type="image/png")
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert client.get(f"/api/v1/organizer/events/{event_id}", headers=organizer).json()["cover_url"] is None


def test_another_organizer_cannot_set_or_remove_the_cover(client, organizer, event_id):
    rival = person("rival@example.com", Role.SELLER)
    assert upload(client, rival, event_id, picture()).status_code == 404
    assert client.delete(f"/api/v1/organizer/events/{event_id}/cover", headers=rival).status_code == 404
    assert upload(client, person("c@example.com"), event_id, picture()).status_code == 404


def test_organizer_reads_back_every_ticket_type_field(client, organizer, event_id):
    until = (START - timedelta(days=5)).isoformat()
    created = client.post(
        f"/api/v1/organizer/events/{event_id}/ticket-types",
        headers=organizer,
        json={
            "name": "Regular",
            "price": 500_000,
            "capacity": 100,
            "per_booking_max": 6,
            "per_customer_max": 8,
            "entries_allowed": 2,
            "attributes": {"Gate": "B", "Includes": "One drink"},
            "price_tiers": [{"label": "Early bird", "price_minor": 350_000, "until": until}],
            "unlock_code": "FRIENDS",
        },
    ).json()["ticket_types"][0]
    assert created["per_booking_max"] == 6
    assert created["per_customer_max"] == 8
    assert created["entries_allowed"] == 2
    assert created["attributes"] == {"Gate": "B", "Includes": "One drink"}
    assert created["price_tiers"] == [{"label": "Early bird", "price_minor": 350_000, "until": until, "first_n": None}]
    assert created["unlock_code"] == "FRIENDS"
