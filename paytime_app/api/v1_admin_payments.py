"""REST API v1 for staff: the payments dashboard. Viewers read; only admins refund, note or reconcile.

Every route takes the dashboard's filters as query parameters (`status=succeeded,failed`,
`provider`, `method`, `purpose`, `currency`, `from`/`to` as UTC days, `min`/`max` in major units,
`q`), so a dashboard URL and an API call describe the same set.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from paytime_app.api.params import IdempotencyKey, Page
from paytime_app.api.v1_auth import AccessToken, BearerToken
from paytime_app.cookies import SESSION_COOKIE
from paytime_app.db import in_transaction
from paytime_app.models.payments import Payment, PaymentRefund
from paytime_app.models.sessions import SessionKind
from paytime_app.models.users import User
from paytime_app.services.payments import complete_refund, refund_payment
from paytime_app.services.payments_admin import (
    DEFAULT_PAGE_SIZE,
    PaymentFilters,
    PaymentRow,
    add_payment_note,
    get_payment_detail,
    list_payments,
    mark_for_reconciliation,
    open_payments_export,
    parse_filters,
    payment_stats,
)
from paytime_app.services.providers.base import ProviderUnavailable
from paytime_app.services.sessions import authenticate_token, call_as_user

router = APIRouter(prefix="/api/v1/admin/payments", tags=["admin payments"])
LIST_FILTERS = ("status", "provider", "method", "purpose", "currency")
FILTER_NAMES = (*LIST_FILTERS, "from", "to", "min", "max", "q")


def filters_from(request: Request) -> PaymentFilters:
    """The dashboard filters in the query string (a repeated parameter counts as a list)."""
    query = request.query_params
    return parse_filters(
        {name: query.getlist(name) if name in LIST_FILTERS else query.get(name) for name in FILTER_NAMES}
    )


Filters = Annotated[PaymentFilters, Depends(filters_from)]


class PaymentItem(BaseModel):
    id: str
    reference: str
    created_at: str
    status: str
    amount: int = Field(description="Minor units")
    refunded: int = Field(description="Minor units refunded so far")
    currency: str
    provider: str
    method: str
    purpose: str
    customer_email: str
    customer_name: str
    receiver: str | None
    description: str | None
    failure_reason: str | None


class PaymentList(BaseModel):
    data: list[PaymentItem]
    total: int
    total_exact: bool = Field(description="False when more than 10,000 payments match a text or amount filter")
    page: int
    page_size: int
    total_pages: int


class TimelineOut(BaseModel):
    at: str
    kind: str = Field(description="status, webhook, ledger, refund, note or reconciliation")
    title: str
    detail: str


class RefundOut(BaseModel):
    id: str
    payment_id: str
    amount: int = Field(description="Minor units")
    currency: str
    status: str = Field(description="pending, succeeded or failed")
    reason: str
    failure_reason: str | None
    created_at: str


class PaymentDetailOut(PaymentItem):
    provider_reference: str | None
    refundable: int = Field(description="Minor units that can still be refunded")
    timeline: list[TimelineOut]
    refunds: list[RefundOut]


class DayOut(BaseModel):
    day: str
    revenue: dict[str, int] = Field(description="Net collected per currency, minor units")


class StatsOut(BaseModel):
    today_count: int
    week_count: int
    month_count: int
    total_count: int
    succeeded_count: int
    failed_count: int
    success_rate: float | None
    revenue_by_currency: dict[str, int]
    refunded_by_currency: dict[str, int]
    average_ticket_by_currency: dict[str, int]
    revenue_per_day: list[DayOut]
    method_counts: dict[str, int]
    failure_reasons: dict[str, int]


class RefundBody(BaseModel):
    amount: int = Field(description="Minor units to refund, at most what is left")
    reason: str = Field(default="", max_length=200)


class NoteBody(BaseModel):
    body: str = Field(max_length=2000)


def _item(row: PaymentRow) -> PaymentItem:
    payment = row.payment
    return PaymentItem(
        id=str(payment.id),
        reference=payment.reference,
        created_at=payment.created_at.isoformat(),
        status=str(payment.status),
        amount=payment.amount_minor,
        refunded=payment.refunded_minor,
        currency=payment.currency,
        provider=payment.provider,
        method=payment.method,
        purpose=str(payment.purpose),
        customer_email=row.customer_email,
        customer_name=row.customer_name,
        receiver=payment.receiver,
        description=payment.description,
        failure_reason=payment.failure_reason,
    )


def _refund_out(refund: PaymentRefund) -> RefundOut:
    return RefundOut(
        id=str(refund.id),
        payment_id=str(refund.payment_id),
        amount=refund.amount_minor,
        currency=refund.currency,
        status=str(refund.status),
        reason=refund.reason,
        failure_reason=refund.failure_reason,
        created_at=refund.created_at.isoformat(),
    )


def _as_staff(token: str, service: Any, **kwargs: Any) -> Any:
    return call_as_user(service, token=token, session_kind=SessionKind.API, **kwargs)


@router.get("", response_model=PaymentList)
def payments(
    token: AccessToken,
    filters: Filters,
    sort: str = "-created_at",
    page: Page = 1,
    page_size: Annotated[int, Query(description="10, 25, 50 or 100")] = DEFAULT_PAGE_SIZE,
) -> PaymentList:
    """Payments matching the filters, newest first (or `sort=amount`, `-amount`, `created_at`)."""
    found = _as_staff(token, list_payments, filters=filters, sort=sort, page=page, page_size=page_size)
    return PaymentList(
        data=[_item(row) for row in found.rows],
        total=found.total,
        total_exact=found.total_exact,
        page=found.page,
        page_size=found.page_size,
        total_pages=found.total_pages,
    )


@router.get("/stats", response_model=StatsOut)
def stats(token: AccessToken, filters: Filters, days: int = 30) -> StatsOut:
    """Counts, revenue, success rate, average ticket, revenue per day (30 or 90 days), methods, failures."""
    found = _as_staff(token, payment_stats, filters=filters, days=days)
    return StatsOut(
        today_count=found.today_count,
        week_count=found.week_count,
        month_count=found.month_count,
        total_count=found.total_count,
        succeeded_count=found.succeeded_count,
        failed_count=found.failed_count,
        success_rate=found.success_rate,
        revenue_by_currency=found.revenue_by_currency,
        refunded_by_currency=found.refunded_by_currency,
        average_ticket_by_currency=found.average_ticket_by_currency,
        revenue_per_day=[DayOut(day=item.day.isoformat(), revenue=item.by_currency) for item in found.revenue_per_day],
        method_counts=found.method_counts,
        failure_reasons=dict(found.failure_reasons),
    )


def _export_caller(request: Request, credentials: BearerToken) -> tuple[str, SessionKind]:
    """An API access token, or (for the dashboard's download button) the browser's session cookie."""
    if credentials is not None:
        token, kind = credentials.credentials, SessionKind.API
    else:
        token, kind = request.cookies.get(SESSION_COOKIE) or "", SessionKind.BROWSER
    in_transaction(authenticate_token, token=token or None, kind=kind)
    return token, kind


@router.get("/export.csv", response_class=StreamingResponse)
def export_csv(
    caller: Annotated[tuple[str, SessionKind], Depends(_export_caller)], filters: Filters, sort: str = "-created_at"
) -> StreamingResponse:
    """Every payment matching the filters as CSV (RFC 4180, amounts in major units), streamed."""
    token, kind = caller
    chunks = open_payments_export(token=token, kind=kind, filters=filters, sort=sort)
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="payments.csv"', "Cache-Control": "no-store"},
    )


def _detail(*, session: Any, actor: User, payment_id: uuid.UUID) -> PaymentDetailOut:
    found = get_payment_detail(session=session, actor=actor, payment_id=payment_id)
    payment: Payment = found.payment
    return PaymentDetailOut(
        **_item(PaymentRow(payment, found.customer_email, found.customer_name)).model_dump(),
        provider_reference=payment.provider_reference,
        refundable=found.refundable_minor,
        timeline=[
            TimelineOut(at=item.at.isoformat(), kind=item.kind, title=item.title, detail=item.detail)
            for item in found.timeline
        ],
        refunds=[_refund_out(refund) for refund in found.refunds],
    )


@router.get("/{payment_id}", response_model=PaymentDetailOut)
def payment(payment_id: uuid.UUID, token: AccessToken) -> PaymentDetailOut:
    """One payment with its timeline: status changes, webhooks, ledger transaction, refunds, notes."""
    return _as_staff(token, _detail, payment_id=payment_id)


@router.post("/{payment_id}/refund", response_model=RefundOut, status_code=201)
async def refund(
    payment_id: uuid.UUID, body: RefundBody, token: AccessToken, idempotency_key: IdempotencyKey
) -> RefundOut:
    """Refund part or all of a succeeded payment through its provider (admins). The same key refunds once.

    The answer's status is `pending` when the provider could not be reached yet; it is retried.
    """
    requested = await run_in_threadpool(
        _as_staff,
        token,
        refund_payment,
        payment_id=payment_id,
        amount_minor=body.amount,
        reason=body.reason,
        idempotency_key=idempotency_key,
    )
    # Unreachable provider: the refund stays pending and its job asks again with the same key.
    with contextlib.suppress(ProviderUnavailable):
        requested = await run_in_threadpool(complete_refund, refund_id=requested.id)
    return _refund_out(requested)


@router.post("/{payment_id}/notes", status_code=204)
def note(payment_id: uuid.UUID, body: NoteBody, token: AccessToken, request: Request) -> None:
    """Add an internal note to a payment (admins); it joins the timeline and the audit log."""
    client = request.client.host if request.client else None
    _as_staff(token, add_payment_note, payment_id=payment_id, body=body.body, ip_address=client)


@router.post("/{payment_id}/reconcile", status_code=202)
def reconcile(payment_id: uuid.UUID, token: AccessToken, request: Request) -> dict[str, str]:
    """Ask the provider about a stuck (pending or processing) payment now (admins)."""
    client = request.client.host if request.client else None
    found = _as_staff(token, mark_for_reconciliation, payment_id=payment_id, ip_address=client)
    return {"status": str(found.status)}
