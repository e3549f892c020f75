"""REST API v1: accounts and tokens. Access tokens go in `Authorization: Bearer …`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from paytime_app.api.web_auth import client_info
from paytime_app.db import in_transaction
from paytime_app.models.sessions import SessionKind
from paytime_app.models.users import User
from paytime_app.services.accounts import confirm_api_device, register_account, sign_in_for_api
from paytime_app.services.sessions import (
    ACCESS_TOKEN_LIFETIME,
    IssuedSession,
    authenticate_token,
    call_as_user,
    end_session_by_api_token,
    refresh_api_tokens,
)
from paytime_app.services.two_factor import has_two_factor
from paytime_app.settings import get_settings

router = APIRouter(prefix="/api/v1", tags=["auth"])
bearer = HTTPBearer(auto_error=False, description="An access token from POST /api/v1/auth/token")
BearerToken = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _authenticated_token(credentials: BearerToken) -> str:
    """Check the access token before anything else about the request, so a stranger learns nothing."""
    token = credentials.credentials if credentials else None
    in_transaction(authenticate_token, token=token, kind=SessionKind.API)
    assert token is not None
    return token


# Services re-check the token in their own transaction; this dependency makes refusals come first.
AccessToken = Annotated[str, Depends(_authenticated_token)]


class RegisterRequest(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=256)
    display_name: str = Field(max_length=80)


class TokenRequest(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=256)
    otp: str | None = Field(default=None, max_length=20, description="TOTP or recovery code, if 2FA is on")
    device_id: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="A stable random id of this client; unknown devices get an email code",
    )


class DeviceCheckRequest(BaseModel):
    challenge: str = Field(max_length=200)
    code: str = Field(max_length=20)
    device_id: str | None = Field(default=None, min_length=16, max_length=200)


class RefreshRequest(BaseModel):
    refresh_token: str = Field(max_length=200)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105  the OAuth 2 token type, not a secret
    expires_in: int


class Me(BaseModel):
    id: str
    email: str
    display_name: str
    role: str
    email_verified: bool
    two_factor_enabled: bool


def _pair(issued: IssuedSession) -> TokenPair:
    assert issued.refresh_token is not None
    return TokenPair(
        access_token=issued.token,
        refresh_token=issued.refresh_token,
        expires_in=int(ACCESS_TOKEN_LIFETIME.total_seconds()),
    )


@router.post("/auth/register", status_code=202, response_model=dict[str, str])
def register(body: RegisterRequest, request: Request) -> dict[str, str]:
    """Create an account and email a confirmation link. The answer is the same for a registered email."""
    in_transaction(
        register_account,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        base_url=get_settings().base_url,
        client=client_info(request),
    )
    return {"status": "verification_sent"}


@router.post("/auth/token", response_model=TokenPair)
def issue_tokens(body: TokenRequest, request: Request) -> TokenPair:
    """Sign in. Errors: invalid_credentials, otp_required, device_check_required (answer at
    /auth/device-check), email_not_verified, account_disabled, rate_limited."""
    return _pair(
        in_transaction(
            sign_in_for_api,
            email=body.email,
            password=body.password,
            otp=body.otp,
            device_token=body.device_id,
            client=client_info(request),
        )
    )


@router.post("/auth/device-check", response_model=TokenPair)
def check_device(body: DeviceCheckRequest, request: Request) -> TokenPair:
    """Answer the emailed new-device code and receive tokens."""
    return _pair(
        in_transaction(
            confirm_api_device,
            challenge=body.challenge,
            code=body.code,
            device_token=body.device_id,
            client=client_info(request),
        )
    )


@router.post("/auth/refresh", response_model=TokenPair)
def refresh(body: RefreshRequest, request: Request) -> TokenPair:
    """Rotate tokens. A refresh token works only here, never as an access token."""
    return _pair(in_transaction(refresh_api_tokens, refresh_token=body.refresh_token, client=client_info(request)))


@router.post("/auth/logout", status_code=204)
def logout(token: AccessToken) -> Response:
    """End this API session (both its tokens)."""
    call_as_user(end_session_by_api_token, token=token, session_kind=SessionKind.API, access_token=token)
    return Response(status_code=204)


def _describe_me(*, session: Any, actor: User) -> Me:
    return Me(
        id=str(actor.id),
        email=actor.email,
        display_name=actor.display_name,
        role=str(actor.role),
        email_verified=actor.email_verified_at is not None,
        two_factor_enabled=has_two_factor(session=session, user=actor),
    )


@router.get("/me", response_model=Me)
def me(token: AccessToken) -> Me:
    """The account behind the access token."""
    return call_as_user(_describe_me, token=token, session_kind=SessionKind.API)
