"""REST API v1 auth: tokens, refresh, logout, /me, and refusals with stable codes."""

import pyotp
import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlmodel import col, select

from paytime_app.api import create_api
from paytime_app.db import in_transaction, unit_of_work
from paytime_app.models.mail import MailMessage
from paytime_app.models.users import User
from paytime_app.services.two_factor import begin_totp_enrollment, confirm_totp_enrollment
from paytime_app.services.users import create_user

PASSWORD = "a-long-river-at-dawn"
DEVICE = "device-0123456789abcdef"


@pytest.fixture
def client(engine):
    with TestClient(create_api()) as client:
        yield client


@pytest.fixture
def user(engine):
    return in_transaction(
        create_user, email="api@example.com", display_name="Api User", password=PASSWORD, email_verified=True
    )


def tokens(client, **extra):
    return client.post("/api/v1/auth/token", json={"email": "api@example.com", "password": PASSWORD, **extra})


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_token_me_refresh_logout(client, user):
    issued = tokens(client)
    assert issued.status_code == 200
    body = issued.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    me = client.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == "api@example.com"
    assert me.json()["two_factor_enabled"] is False

    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]}).json()
    assert client.get("/api/v1/me", headers=bearer(body["access_token"])).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(refreshed["access_token"])).status_code == 200

    assert client.post("/api/v1/auth/logout", headers=bearer(refreshed["access_token"])).status_code == 204
    after = client.get("/api/v1/me", headers=bearer(refreshed["access_token"]))
    assert after.status_code == 401
    assert after.json()["code"] == "session_expired"


def test_refresh_token_is_never_an_access_token(client, user):
    body = tokens(client).json()
    refused = client.get("/api/v1/me", headers=bearer(body["refresh_token"]))
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"


def test_wrong_password_and_unknown_email_look_the_same(client, user):
    wrong = client.post("/api/v1/auth/token", json={"email": "api@example.com", "password": "nope-nope-nope"})
    unknown = client.post("/api/v1/auth/token", json={"email": "ghost@example.com", "password": "nope-nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {"code": "invalid_credentials", "message": "That email and password don't match an account."}
    )


def test_anonymous_me_is_401(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_required"


def test_malformed_body_is_422_with_fields(client):
    response = client.post("/api/v1/auth/token", json={"email": "x@example.com"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"
    assert response.json()["details"]["fields"][0]["field"] == "password"
    assert (
        client.post(
            "/api/v1/auth/token", content=b"{not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )


def test_two_factor_requires_otp_over_api(client, user):
    with time_machine.travel("2026-11-23 10:00:00+00:00", tick=False):
        secret = in_transaction(begin_totp_enrollment, user=user).secret
        in_transaction(confirm_totp_enrollment, user=user, code=pyotp.TOTP(secret).now())
    with time_machine.travel("2026-11-23 10:01:00+00:00", tick=False):
        missing = tokens(client)
        assert missing.status_code == 401
        assert missing.json()["code"] == "otp_required"
        assert tokens(client, otp=pyotp.TOTP(secret).now()).status_code == 200
        replay = tokens(client, otp=pyotp.TOTP(secret).now())
        assert replay.json()["code"] == "code_already_used"


def test_new_device_check_over_api(client, user, settings_env):
    settings_env.setenv("NEW_DEVICE_CHECK", "true")
    first = tokens(client, device_id=DEVICE)
    assert first.status_code == 401
    assert first.json()["code"] == "device_check_required"
    challenge = first.json()["details"]["challenge"]
    with unit_of_work() as session:
        mail = session.exec(select(MailMessage).order_by(col(MailMessage.created_at).desc())).first()
    code = mail.subject.split()[0]
    assert client.post(
        "/api/v1/auth/device-check", json={"challenge": challenge, "code": "000000", "device_id": DEVICE}
    ).json()["code"] in ("invalid_code", "link_invalid")
    confirmed = client.post(
        "/api/v1/auth/device-check", json={"challenge": challenge, "code": code, "device_id": DEVICE}
    )
    assert confirmed.status_code == 200
    assert tokens(client, device_id=DEVICE).status_code == 200, "a known device is not asked again"


def test_sign_in_rate_limit_is_429_with_retry_after(client, user):
    for _ in range(5):
        assert (
            client.post(
                "/api/v1/auth/token", json={"email": "api@example.com", "password": "wrong-wrong-1"}
            ).status_code
            == 401
        )
    limited = client.post("/api/v1/auth/token", json={"email": "api@example.com", "password": PASSWORD})
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) > 0


def test_register_answers_the_same_for_existing_email(client, user):
    fresh = client.post(
        "/api/v1/auth/register", json={"email": "new@example.com", "password": PASSWORD, "display_name": "New"}
    )
    taken = client.post(
        "/api/v1/auth/register", json={"email": "api@example.com", "password": PASSWORD, "display_name": "Again"}
    )
    assert fresh.status_code == taken.status_code == 202
    assert fresh.json() == taken.json()
    with unit_of_work() as session:
        assert len(session.exec(select(User)).all()) == 2
    weak = client.post(
        "/api/v1/auth/register", json={"email": "w@example.com", "password": "short", "display_name": "W"}
    )
    assert weak.status_code == 422
    assert weak.json()["code"] == "weak_password"
