"""REST API v1: wallets and payments. A user sees only their own."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from paytime_app.api.params import IdempotencyKey, Page
from paytime_app.api.v1_auth import AccessToken
from paytime_app.models.payments import Payment, PaymentPurpose
from paytime_app.models.sessions import SessionKind
from paytime_app.models.users import User
from paytime_app.services.payments import (
    default_return_url,
    get_payment,
    list_own_payments,
    list_status_changes,
    start_checkout,
    verify_payment,
)
from paytime_app.services.sessions import call_as_user
from paytime_app.services.wallets import get_own_wallet, list_wallets, wallet_history, wallet_kind_of

router = APIRouter(prefix="/api/v1", tags=["money"])


class WalletOut(BaseModel):
    id: str | None
    kind: str
    currency: str
    balance: int = Field(description="Available balance in minor units")
    held: int = Field(description="Reserved by holds, in minor units")


class WalletLine(BaseModel):
    reference: str
    created_at: str
    description: str
    kind: str
    amount: int = Field(description="Signed minor units: positive in, negative out")
    currency: str


class PaymentRequest(BaseModel):
    purpose: PaymentPurpose
    amount: int = Field(description="Integer minor units, e.g. 150000 for NGN 1,500.00")
    currency: str = Field(min_length=3, max_length=3)
    provider: str = Field(max_length=20)


class PaymentOut(BaseModel):
    id: str
    reference: str
    purpose: str
    provider: str
    method: str
    amount: int
    currency: str
    status: str
    checkout_url: str | None
    failure_reason: str | None
    created_at: str


class StatusChangeOut(BaseModel):
    at: str
    status: str
    source: str = Field(description="api, webhook, verify or reconcile")
    reason: str | None


class PaymentDetail(PaymentOut):
    timeline: list[StatusChangeOut]


def _payment_out(payment: Payment) -> PaymentOut:
    return PaymentOut(
        id=str(payment.id),
        reference=payment.reference,
        purpose=str(payment.purpose),
        provider=payment.provider,
        method=payment.method,
        amount=payment.amount_minor,
        currency=payment.currency,
        status=str(payment.status),
        checkout_url=payment.checkout_url,
        failure_reason=payment.failure_reason,
        created_at=payment.created_at.isoformat(),
    )


def _as_user(token: str, service: Any, **kwargs: Any) -> Any:
    return call_as_user(service, token=token, session_kind=SessionKind.API, **kwargs)


@router.get("/wallets", response_model=list[WalletOut])
def wallets(token: AccessToken) -> list[WalletOut]:
    """Your wallets (primary and call credits) in every currency, with held amounts."""
    views = _as_user(token, list_wallets)
    return [
        WalletOut(
            id=str(view.account_id) if view.account_id else None,
            kind=str(view.kind),
            currency=str(view.currency),
            balance=view.balance_minor,
            held=view.held_minor,
        )
        for view in views
    ]


def _history(*, session: Any, actor: User, wallet_id: uuid.UUID, page: int) -> list[WalletLine]:
    account = get_own_wallet(session=session, actor=actor, account_id=wallet_id)
    lines, _total = wallet_history(
        session=session, actor=actor, kind=wallet_kind_of(account), currency=account.currency, page=page
    )
    return [
        WalletLine(
            reference=line.reference,
            created_at=line.created_at.isoformat(),
            description=line.description,
            kind=line.kind,
            amount=line.amount_minor,
            currency=str(line.currency),
        )
        for line in lines
    ]


@router.get("/wallets/{wallet_id}/transactions", response_model=list[WalletLine])
def wallet_transactions(wallet_id: uuid.UUID, token: AccessToken, page: Page = 1) -> list[WalletLine]:
    """One of your wallets' lines, newest first, 20 a page."""
    return _as_user(token, _history, wallet_id=wallet_id, page=page)


@router.post("/payments", response_model=PaymentOut, status_code=201)
async def start_payment(body: PaymentRequest, token: AccessToken, idempotency_key: IdempotencyKey) -> PaymentOut:
    """Start a payment; send the payer to `checkout_url`. The same Idempotency-Key returns the same payment."""
    opened = await run_in_threadpool(
        start_checkout,
        token=token,
        kind=SessionKind.API,
        purpose=body.purpose,
        amount_minor=body.amount,
        currency=body.currency,
        provider=body.provider,
        idempotency_key=idempotency_key,
        return_url=default_return_url(),
    )
    return _payment_out(opened)


@router.get("/payments", response_model=list[PaymentOut])
def payments(token: AccessToken, page: Page = 1) -> list[PaymentOut]:
    """Your payments, newest first."""
    return [_payment_out(payment) for payment in _as_user(token, list_own_payments, page=page)]


@router.get("/payments/{payment_id}", response_model=PaymentDetail)
def payment(payment_id: uuid.UUID, token: AccessToken) -> PaymentDetail:
    """One of your payments with its timeline: every status it went through, when, and what said so."""
    found, changes = _as_user(token, _payment_with_timeline, payment_id=payment_id)
    return PaymentDetail(
        **_payment_out(found).model_dump(),
        timeline=[
            StatusChangeOut(
                at=change.created_at.isoformat(), status=change.to_status, source=change.source, reason=change.reason
            )
            for change in changes
        ],
    )


def _payment_with_timeline(*, session: Any, actor: User, payment_id: uuid.UUID) -> tuple[Payment, list[Any]]:
    found = get_payment(session=session, actor=actor, payment_id=payment_id)
    return found, list_status_changes(session=session, payment=found)


@router.post("/payments/{payment_id}/verify", response_model=PaymentOut)
async def verify(payment_id: uuid.UUID, token: AccessToken) -> PaymentOut:
    """Ask the provider now what happened to this payment (never trusting the client)."""
    verified = await run_in_threadpool(verify_payment, token=token, kind=SessionKind.API, payment_id=payment_id)
    return _payment_out(verified)
