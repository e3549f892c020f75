"""The IOUs page: what I owe and what I'm owed, totals, opening an IOU, and settling; refreshed live."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from typing import Any

import reflex as rx

from paytime_app.errors import AuthenticationRequired, DomainError
from paytime_app.models.base import utcnow
from paytime_app.models.ious import OPEN_STATUSES, IouStatus
from paytime_app.money import Currency, format_money, to_minor
from paytime_app.services.friends import list_friends
from paytime_app.services.ious import (
    DEFAULT_DUE_DAYS,
    IouLine,
    acknowledge_iou,
    cancel_iou,
    claim_cash_payment,
    confirm_cash_payment,
    dispute_cash_payment,
    iou_totals,
    list_ious,
    open_iou,
    pay_iou_from_wallet,
)
from paytime_app.state.auth import AuthState, parse_id

METHOD_LABELS = {"cash": "Cash", "wallet": "Wallet", "auto_wallet": "Auto debit on due date"}
DIRECTIONS = ("owe", "owed")


def _row(line: IouLine) -> dict[str, str]:
    iou = line.iou
    is_open = iou.status in OPEN_STATUSES
    if iou.status == IouStatus.PAID:
        state = f"Paid ({METHOD_LABELS[str(iou.paid_via)].lower()})" if iou.paid_via else "Paid"
    elif is_open and iou.cash_claimed_at:
        state = "Cash payment to confirm"
    else:
        state = str(iou.status).capitalize()
    return {
        "id": str(iou.id),
        "reference": iou.reference,
        "who": line.counterpart_name,
        "amount": format_money(iou.amount_minor, iou.currency),
        "due": iou.due_date.strftime("%d %b %Y"),
        "method": METHOD_LABELS[str(iou.method)],
        "note": iou.note,
        "status": str(iou.status),
        "state": state,
        # What the viewer may do now, as flags the page turns into buttons.
        "can_pay": "yes" if is_open and line.direction == "owe" else "",
        "can_claim_cash": "yes" if is_open and line.direction == "owe" and not iou.cash_claimed_at else "",
        "can_confirm_cash": "yes" if is_open and line.direction == "owed" and iou.cash_claimed_at else "",
        "can_acknowledge": "yes" if is_open and line.direction == "owed" and not iou.acknowledged_at else "",
        "can_cancel": "yes"
        if is_open and (line.direction == "owed" or (iou.status == IouStatus.PENDING and not iou.acknowledged_at))
        else "",
    }


class IousState(AuthState):
    ious: list[dict[str, str]] = []
    owe_totals: list[str] = []
    owed_totals: list[str] = []
    by_friend: list[dict[str, str]] = []
    friends: list[dict[str, str]] = []
    direction: str = "owe"
    status_filter: str = "all"
    default_due: str = ""
    min_due: str = ""
    error: str = ""
    notice: str = ""
    is_loading: bool = True
    _key: str = ""
    _loaded: bool = False

    async def _refresh(self) -> None:
        status = None if self.status_filter == "all" else self.status_filter
        lines = await self._call_as_viewer(list_ious, direction=self.direction, status=status, page=1, page_size=50)
        self.ious = [_row(line) for line in lines]
        totals = await self._call_as_viewer(iou_totals)
        self.owe_totals = [format_money(amount, currency) for currency, amount in totals.owe_by_currency.items()]
        self.owed_totals = [format_money(amount, currency) for currency, amount in totals.owed_by_currency.items()]
        self.by_friend = [
            {
                "name": name,
                "owe": format_money(owe, currency) if owe else "—",
                "owed": format_money(owed, currency) if owed else "—",
            }
            for name, currency, owe, owed in totals.by_friend
        ]
        self.friends = [
            {"id": str(view.user_id), "name": view.display_name} for view in await self._call_as_viewer(list_friends)
        ]

    @rx.event
    async def load_ious(self) -> AsyncIterator[rx.event.EventSpec | None]:
        self.is_loading, self.error, self.notice = True, "", ""
        today = utcnow().date()
        self.min_due, self.default_due = today.isoformat(), (today + timedelta(days=DEFAULT_DUE_DAYS)).isoformat()
        self._key = secrets.token_urlsafe(12)
        if (redirect := await self._open_page(self._refresh)) is not None:
            yield redirect
            return
        self._loaded, self.is_loading = True, False

    @rx.event
    async def refresh(self) -> None:
        """Pushed by the server when one of the viewer's IOUs changes."""
        if not self._loaded:
            return
        try:
            await self._refresh()
        except (AuthenticationRequired, DomainError):
            return

    @rx.event
    async def show_direction(self, direction: str) -> None:
        if direction in DIRECTIONS:
            self.direction = direction
            await self.refresh()

    @rx.event
    async def filter_status(self, status: str) -> None:
        if status == "all" or status in IouStatus.__members__.values():
            self.status_filter = status
            await self.refresh()

    async def _act(self, service: Callable[..., Any], success: str, **kwargs: Any) -> bool:
        self.error, self.notice = "", ""
        try:
            await self._call_as_viewer(service, **kwargs)
        except AuthenticationRequired:
            return False
        except DomainError as error:
            self.error = error.message
            return False
        self.notice = success
        await self.refresh()
        return True

    @rx.event
    async def submit_iou(self, form: dict[str, str]) -> None:
        self.error, self.notice = "", ""
        lender_id = parse_id(str(form.get("lender_id", "")))
        if lender_id is None:
            self.error = "Choose the friend you owe."
            return
        try:
            currency = Currency(str(form.get("currency", "NGN")))
            amount_minor = to_minor(str(form.get("amount", ""))[:20], currency)
            due = date.fromisoformat(str(form.get("due_date", "")) or self.default_due)
        except ValueError:
            self.error = "Choose a currency and a due date."
            return
        except DomainError as error:
            self.error = error.message
            return
        opened = await self._act(
            open_iou,
            "IOU recorded. Your friend has been told.",
            lender_id=lender_id,
            amount_minor=amount_minor,
            currency=str(currency),
            method=str(form.get("method", "cash"))[:12],
            due_date=due,
            note=str(form.get("note", ""))[:400],
            idempotency_key=f"web:{self._key}",
        )
        if opened:
            self._key = secrets.token_urlsafe(12)
            self.direction = "owe"
            await self.refresh()

    async def _on(self, service: Callable[..., Any], iou_id: str, success: str) -> None:
        if (target := parse_id(iou_id)) is not None:
            await self._act(service, success, iou_id=target)

    @rx.event
    async def pay(self, iou_id: str) -> None:
        await self._on(pay_iou_from_wallet, iou_id, "Paid from your wallet.")

    @rx.event
    async def claim_cash(self, iou_id: str) -> None:
        await self._on(claim_cash_payment, iou_id, "Your friend will be asked to confirm the cash.")

    @rx.event
    async def confirm_cash(self, iou_id: str) -> None:
        await self._on(confirm_cash_payment, iou_id, "Cash payment confirmed; the IOU is paid.")

    @rx.event
    async def dispute_cash(self, iou_id: str) -> None:
        await self._on(dispute_cash_payment, iou_id, "Cash payment disputed; the IOU stays open.")

    @rx.event
    async def acknowledge(self, iou_id: str) -> None:
        await self._on(acknowledge_iou, iou_id, "Acknowledged.")

    @rx.event
    async def cancel(self, iou_id: str) -> None:
        await self._on(cancel_iou, iou_id, "IOU cancelled.")
