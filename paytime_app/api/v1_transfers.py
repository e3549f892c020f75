"""REST API v1: send money to a friend."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from paytime_app.api.params import IdempotencyKey
from paytime_app.api.v1_auth import AccessToken
from paytime_app.models.sessions import SessionKind
from paytime_app.services.sessions import call_as_user
from paytime_app.services.transfers import transfer_to_friend

router = APIRouter(prefix="/api/v1/transfers", tags=["transfers"])


class TransferRequest(BaseModel):
    to_user_id: uuid.UUID
    amount: int = Field(description="Integer minor units, e.g. 250000 for NGN 2,500.00")
    currency: str = Field(min_length=3, max_length=3)
    note: str = Field(default="", max_length=500)
    otp: str | None = Field(
        default=None, max_length=20, description="Step-up code, when a 403 `step_up_required` asked for one"
    )
    challenge: str | None = Field(
        default=None, max_length=100, description="The `challenge` of an emailed step-up code (details of the 403)"
    )


class TransferOut(BaseModel):
    id: str
    reference: str
    to_user_id: str
    amount: int
    currency: str
    note: str
    created_at: str


@router.post("", response_model=TransferOut, status_code=201)
def send(body: TransferRequest, token: AccessToken, idempotency_key: IdempotencyKey) -> TransferOut:
    """Move money from your wallet to a friend's, in one ledger transaction. The same Idempotency-Key
    returns the same transfer. At or above the step-up amount (about 100 USD) the first call answers
    403 `step_up_required` with `details.method` `totp` (send `otp`) or `email` (send `otp` and
    `challenge`). Refusals: `not_friends`, `insufficient_funds`, `invalid_amount`,
    `unsupported_currency`, `idempotency_mismatch`, ..."""
    transaction: Any = call_as_user(
        transfer_to_friend,
        token=token,
        session_kind=SessionKind.API,
        to_user_id=body.to_user_id,
        amount_minor=body.amount,
        currency=body.currency,
        note=body.note,
        idempotency_key=idempotency_key,
        step_up_code=body.otp,
        step_up_token=body.challenge,
    )
    return TransferOut(
        id=str(transaction.id),
        reference=transaction.reference,
        to_user_id=str(body.to_user_id),
        amount=body.amount,
        currency=body.currency.upper(),
        note=str(transaction.metadata_.get("note", "")),
        created_at=transaction.created_at.isoformat(),
    )
