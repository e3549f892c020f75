"""REST API v1: prepaid calls. Only the parties of a call see or change it; only the callee answers."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field, model_validator

from paytime_app.api.params import IdempotencyKey, Page
from paytime_app.api.v1_auth import AccessToken
from paytime_app.models.calls import Call, CallStatus, CallType
from paytime_app.models.sessions import SessionKind
from paytime_app.services.calls import answer_call, decline_call, end_call, get_call, list_calls, start_call
from paytime_app.services.sessions import call_as_user

router = APIRouter(prefix="/api/v1/calls", tags=["calls"])


class CallRequest(BaseModel):
    callee_id: uuid.UUID | None = None
    phone: str | None = Field(default=None, max_length=20, description="E.164, e.g. +2348012345678")
    type: CallType = CallType.AUDIO
    currency: str = Field(default="NGN", min_length=3, max_length=3)

    @model_validator(mode="after")
    def _one_callee(self) -> CallRequest:
        if (self.callee_id is None) == (self.phone is None):
            raise ValueError("give either callee_id or phone")
        return self


class CallOut(BaseModel):
    id: str
    caller_id: str
    callee_id: str | None
    phone: str | None
    type: str
    status: str
    currency: str
    rate_per_minute: int = Field(description="Minor units per minute")
    started_at: str | None
    ended_at: str | None
    duration_seconds: int
    cost: int = Field(description="Minor units charged")
    end_reason: str | None


def _out(call: Call) -> CallOut:
    return CallOut(
        id=str(call.id),
        caller_id=str(call.caller_id),
        callee_id=str(call.callee_id) if call.callee_id else None,
        phone=call.callee_phone,
        type=str(call.call_type),
        status=str(call.status),
        currency=call.currency,
        rate_per_minute=call.rate_per_minute_minor,
        started_at=call.started_at.isoformat() if call.started_at else None,
        ended_at=call.ended_at.isoformat() if call.ended_at else None,
        duration_seconds=call.duration_seconds,
        cost=call.cost_minor,
        end_reason=str(call.end_reason) if call.end_reason else None,
    )


def _as_user(token: str, service: Any, **kwargs: Any) -> Any:
    return call_as_user(service, token=token, session_kind=SessionKind.API, **kwargs)


@router.post("", response_model=CallOut, status_code=201)
def place(body: CallRequest, token: AccessToken, idempotency_key: IdempotencyKey) -> CallOut:
    """Place a call; needs call credits for at least one minute, which are held while it lasts."""
    return _out(
        _as_user(
            token,
            start_call,
            callee_id=body.callee_id,
            callee_phone=body.phone,
            call_type=body.type,
            currency=body.currency,
            idempotency_key=idempotency_key,
        )
    )


@router.get("", response_model=list[CallOut])
def calls(
    token: AccessToken, page: Page = 1, status: CallStatus | None = None, type: CallType | None = None
) -> list[CallOut]:
    """Your calls, made and received, newest first; filter by status and type."""
    found = _as_user(token, list_calls, status=status, call_type=type, page=page)
    return [_out(call) for call in found]


@router.get("/{call_id}", response_model=CallOut)
def call(call_id: uuid.UUID, token: AccessToken) -> CallOut:
    return _out(_as_user(token, get_call, call_id=call_id))


@router.post("/{call_id}/answer", response_model=CallOut)
def answer(call_id: uuid.UUID, token: AccessToken) -> CallOut:
    return _out(_as_user(token, answer_call, call_id=call_id))


@router.post("/{call_id}/decline", response_model=CallOut)
def decline(call_id: uuid.UUID, token: AccessToken) -> CallOut:
    return _out(_as_user(token, decline_call, call_id=call_id))


@router.post("/{call_id}/end", response_model=CallOut)
def end(call_id: uuid.UUID, token: AccessToken) -> CallOut:
    """End the call (either party): whole seconds from answer to now, cost = ceil(seconds * rate / 60)."""
    return _out(_as_user(token, end_call, call_id=call_id))
