"""REST API v1: IOUs between friends. Only the two parties see an IOU; only the borrower pays."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from paytime_app.api.params import IdempotencyKey, Page
from paytime_app.api.v1_auth import AccessToken
from paytime_app.models.ious import IouMethod, IouStatus
from paytime_app.models.sessions import SessionKind
from paytime_app.services.ious import (
    IouLine,
    acknowledge_iou,
    cancel_iou,
    claim_cash_payment,
    confirm_cash_payment,
    dispute_cash_payment,
    get_iou,
    iou_totals,
    list_ious,
    open_iou,
    pay_iou_from_wallet,
)
from paytime_app.services.sessions import call_as_user

router = APIRouter(prefix="/api/v1/ious", tags=["ious"])


class IouRequest(BaseModel):
    lender_id: uuid.UUID = Field(description="The friend you owe")
    amount: int = Field(description="Integer minor units")
    currency: str = Field(min_length=3, max_length=3)
    method: IouMethod = Field(description="cash, wallet, or auto_wallet (charged from your wallet on the due date)")
    due_date: date | None = Field(default=None, description="Defaults to 7 days from today (UTC)")
    note: str = Field(default="", max_length=500, description="What for, or where to meet")


class IouOut(BaseModel):
    id: str
    reference: str
    direction: str = Field(description="owe (you borrowed) or owed (you lent)")
    borrower_id: str
    lender_id: str
    counterpart_name: str
    amount: int
    currency: str
    method: str
    due_date: str
    note: str
    status: str
    acknowledged: bool
    cash_claimed: bool = Field(description="The borrower says they paid cash; waiting for the lender")
    paid_at: str | None
    paid_via: str | None
    created_at: str


class TotalsOut(BaseModel):
    owe: dict[str, int] = Field(description="Open amounts you owe, per currency (minor units)")
    owed: dict[str, int] = Field(description="Open amounts owed to you, per currency (minor units)")
    by_friend: list[dict[str, Any]]


def _out(line: IouLine) -> IouOut:
    iou = line.iou
    return IouOut(
        id=str(iou.id),
        reference=iou.reference,
        direction=line.direction,
        borrower_id=str(iou.borrower_id),
        lender_id=str(iou.lender_id),
        counterpart_name=line.counterpart_name,
        amount=iou.amount_minor,
        currency=iou.currency,
        method=str(iou.method),
        due_date=iou.due_date.isoformat(),
        note=iou.note,
        status=str(iou.status),
        acknowledged=iou.acknowledged_at is not None,
        cash_claimed=iou.cash_claimed_at is not None,
        paid_at=iou.paid_at.isoformat() if iou.paid_at else None,
        paid_via=str(iou.paid_via) if iou.paid_via else None,
        created_at=iou.created_at.isoformat(),
    )


def _as_user(token: str, service: Any, **kwargs: Any) -> Any:
    return call_as_user(service, token=token, session_kind=SessionKind.API, **kwargs)


def _act(token: str, service: Any, iou_id: uuid.UUID) -> IouOut:
    """Run one transition, then read the IOU back as the caller sees it."""

    def act_and_read(*, session: Any, actor: Any) -> IouLine:
        service(session=session, actor=actor, iou_id=iou_id)
        return get_iou(session=session, actor=actor, iou_id=iou_id)

    return _out(_as_user(token, act_and_read))


@router.post("", response_model=IouOut, status_code=201)
def open_one(body: IouRequest, token: AccessToken, idempotency_key: IdempotencyKey) -> IouOut:
    """Record that you owe a friend money. The same Idempotency-Key returns the same IOU."""

    def open_and_read(*, session: Any, actor: Any) -> IouLine:
        iou = open_iou(
            session=session,
            actor=actor,
            lender_id=body.lender_id,
            amount_minor=body.amount,
            currency=body.currency,
            method=body.method,
            due_date=body.due_date,
            note=body.note,
            idempotency_key=idempotency_key,
        )
        return get_iou(session=session, actor=actor, iou_id=iou.id)

    return _out(_as_user(token, open_and_read))


@router.get("", response_model=list[IouOut])
def ious(token: AccessToken, direction: str = "all", status: IouStatus | None = None, page: Page = 1) -> list[IouOut]:
    """Your IOUs, newest first: `direction` owe, owed or all; optional `status`."""
    return [_out(line) for line in _as_user(token, list_ious, direction=direction, status=status, page=page)]


@router.get("/totals", response_model=TotalsOut)
def totals(token: AccessToken) -> TotalsOut:
    """Open (pending or overdue) amounts you owe and are owed, per currency and per friend."""
    found = _as_user(token, iou_totals)
    return TotalsOut(
        owe=found.owe_by_currency,
        owed=found.owed_by_currency,
        by_friend=[
            {"friend": name, "currency": currency, "owe": owe, "owed": owed}
            for name, currency, owe, owed in found.by_friend
        ],
    )


@router.get("/{iou_id}", response_model=IouOut)
def one(iou_id: uuid.UUID, token: AccessToken) -> IouOut:
    return _out(_as_user(token, get_iou, iou_id=iou_id))


@router.post("/{iou_id}/pay", response_model=IouOut)
def pay(iou_id: uuid.UUID, token: AccessToken) -> IouOut:
    """The borrower pays it all from their wallet (one ledger transfer); paying twice pays once."""
    return _act(token, pay_iou_from_wallet, iou_id)


@router.post("/{iou_id}/paid-in-cash", response_model=IouOut)
def paid_in_cash(iou_id: uuid.UUID, token: AccessToken) -> IouOut:
    """The borrower says they paid in cash; it counts once the lender confirms."""
    return _act(token, claim_cash_payment, iou_id)


@router.post("/{iou_id}/confirm-cash", response_model=IouOut)
def confirm_cash(iou_id: uuid.UUID, token: AccessToken) -> IouOut:
    """The lender confirms the cash arrived: the IOU is paid."""
    return _act(token, confirm_cash_payment, iou_id)


@router.post("/{iou_id}/dispute-cash", response_model=IouOut)
def dispute_cash(iou_id: uuid.UUID, token: AccessToken) -> IouOut:
    """The lender says the cash did not arrive: the IOU stays open."""
    return _act(token, dispute_cash_payment, iou_id)


@router.post("/{iou_id}/acknowledge", response_model=IouOut)
def acknowledge(iou_id: uuid.UUID, token: AccessToken) -> IouOut:
    """The lender confirms the IOU; after that only the lender can cancel it."""
    return _act(token, acknowledge_iou, iou_id)


@router.post("/{iou_id}/cancel", response_model=IouOut)
def cancel(iou_id: uuid.UUID, token: AccessToken) -> IouOut:
    """The lender cancels (forgives) an open IOU; the borrower only before the lender acknowledged it."""
    return _act(token, cancel_iou, iou_id)
