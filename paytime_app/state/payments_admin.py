"""The staff payments dashboard: filters kept in the URL, a server-paged table, stats and charts, a
detail drawer with the payment's timeline, admin actions, and live refresh of all of it.

Every handler reads or changes through `payments_admin` / `payments` services as the signed-in user,
so a viewer is refused changes there, and a customer or stranger sees nothing.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

import reflex as rx

from paytime_app import live, routes
from paytime_app.errors import AuthenticationRequired, DomainError
from paytime_app.models.base import utcnow
from paytime_app.models.users import Role
from paytime_app.money import format_money
from paytime_app.services.payments import complete_refund, refund_payment
from paytime_app.services.payments_admin import (
    DEFAULT_PAGE_SIZE,
    PAGE_SIZES,
    SORTS,
    InvalidFilter,
    PaymentFilters,
    add_payment_note,
    get_payment_detail,
    list_payments,
    list_staff_activity,
    mark_for_reconciliation,
    parse_filters,
    payment_stats,
)
from paytime_app.services.providers.base import ProviderUnavailable
from paytime_app.state.auth import AuthState

EXPORT_PATH = "/api/v1/admin/payments/export.csv"
FILTER_FIELDS = ("status", "provider", "method", "purpose", "currency", "from", "to", "min", "max", "q")
CHART_COLORS = {"NGN": "#16a34a", "USD": "#2563eb"}
STATUS_COLORS = {
    "succeeded": "green",
    "failed": "red",
    "cancelled": "gray",
    "pending": "amber",
    "processing": "blue",
    "refunded": "purple",
    "partially_refunded": "violet",
}


def _when(value: Any) -> str:
    return value.astimezone(UTC).strftime("%d %b %Y, %H:%M")


class PaymentsDashboardState(AuthState):
    # The view: filters as typed (all strings, "" = any), sort, page.
    filters: dict[str, str] = {}
    sort: str = "-created_at"
    page: int = 1
    page_size: str = str(DEFAULT_PAGE_SIZE)
    chart_days: str = "30"
    # What the view shows.
    rows: list[dict[str, str]] = []
    total: int = 0
    total_exact: bool = True
    total_pages: int = 1
    cards: list[dict[str, str]] = []
    revenue_chart: list[dict[str, Any]] = []
    chart_currencies: list[str] = []
    method_chart: list[dict[str, Any]] = []
    failure_rows: list[dict[str, str]] = []
    activity: list[dict[str, str]] = []
    updated_at: str = ""
    is_loading: bool = True
    error: str = ""
    notice: str = ""
    # The detail drawer.
    drawer_open: bool = False
    detail: dict[str, str] = {}
    timeline: list[dict[str, str]] = []
    refund_amount: str = ""
    refund_reason: str = ""
    note_text: str = ""
    action_error: str = ""
    action_notice: str = ""
    _refund_key: str = ""

    @rx.var
    def can_change(self) -> bool:
        return self.role in (Role.ADMIN, Role.SUPER_ADMIN)

    @rx.var
    def query_string(self) -> str:
        params = {name: value for name, value in self.filters.items() if value and value != "all"}
        if self.sort != "-created_at":
            params["sort"] = self.sort
        if self.page_size != str(DEFAULT_PAGE_SIZE):
            params["page_size"] = self.page_size
        if self.page > 1:
            params["page"] = str(self.page)
        return urlencode(params)

    @rx.var
    def export_url(self) -> str:
        params = {name: value for name, value in self.filters.items() if value and value != "all"}
        if self.sort != "-created_at":
            params["sort"] = self.sort
        return f"{EXPORT_PATH}?{urlencode(params)}" if params else EXPORT_PATH

    @rx.var
    def total_label(self) -> str:
        shown = f"{self.total:,}" + ("" if self.total_exact else "+")
        return f"{shown} payment" + ("" if self.total == 1 else "s")

    @rx.var
    def has_filters(self) -> bool:
        return any(value and value != "all" for value in self.filters.values())

    def _filters(self) -> PaymentFilters:
        return parse_filters({name: value for name, value in self.filters.items() if value and value != "all"})

    async def _read(self) -> None:
        filters = self._filters()
        found = await self._call_as_viewer(
            list_payments, filters=filters, sort=self.sort, page=self.page, page_size=int(self.page_size)
        )
        self.total, self.total_exact = found.total, found.total_exact
        self.total_pages, self.page = found.total_pages, found.page
        self.rows = [
            {
                "id": str(row.payment.id),
                "reference": row.payment.reference,
                "when": _when(row.payment.created_at),
                "customer": row.customer_name,
                "email": row.customer_email,
                "amount": format_money(row.payment.amount_minor, row.payment.currency),
                "status": str(row.payment.status),
                "status_label": str(row.payment.status).replace("_", " "),
                "color": STATUS_COLORS.get(str(row.payment.status), "gray"),
                "method": f"{row.payment.provider} · {row.payment.method.replace('_', ' ')}",
                "purpose": str(row.payment.purpose).replace("_", " "),
            }
            for row in found.rows
        ]
        stats = await self._call_as_viewer(payment_stats, filters=filters, days=int(self.chart_days))
        self._show_stats(stats)
        activity = await self._call_as_viewer(list_staff_activity, limit=8)
        self.activity = [
            {
                "when": _when(item.at),
                "who": item.name,
                "email": item.email,
                "role": item.role.replace("_", " "),
                "action": "signed in" if item.action == "signed_in" else "signed out",
                "icon": "log-in" if item.action == "signed_in" else "log-out",
            }
            for item in activity
        ]
        self.updated_at = utcnow().strftime("%H:%M:%S UTC")

    def _show_stats(self, stats: Any) -> None:
        revenue = "\n".join(format_money(amount, currency) for currency, amount in stats.revenue_by_currency.items())
        ticket = "\n".join(
            format_money(amount, currency) for currency, amount in stats.average_ticket_by_currency.items()
        )
        rate = "—" if stats.success_rate is None else f"{stats.success_rate * 100:.1f}%"
        self.cards = [
            {"label": "Today", "value": f"{stats.today_count:,}", "hint": "payments started today (UTC)"},
            {"label": "This week", "value": f"{stats.week_count:,}", "hint": "since Monday"},
            {"label": "This month", "value": f"{stats.month_count:,}", "hint": "since the 1st"},
            {"label": "Revenue", "value": revenue or "—", "hint": "collected, net of refunds"},
            {"label": "Success rate", "value": rate, "hint": f"{stats.failed_count:,} failed"},
            {"label": "Average ticket", "value": ticket or "—", "hint": "per collected payment"},
        ]
        currencies = sorted({currency for day in stats.revenue_per_day for currency in day.by_currency})
        self.chart_currencies = currencies
        self.revenue_chart = [
            {
                "day": day.day.strftime("%d %b"),
                **{currency: float(day.by_currency.get(currency, 0)) / 100 for currency in currencies},
            }
            for day in stats.revenue_per_day
        ]
        self.method_chart = [
            {"name": method.replace("_", " "), "value": count} for method, count in stats.method_counts.items()
        ]
        self.failure_rows = [
            {"reason": reason.replace("_", " "), "count": f"{count:,}"} for reason, count in stats.failure_reasons
        ]

    async def _reload(self) -> rx.event.EventSpec | None:
        try:
            return await self._refresh_staff_view(self._read)
        except DomainError as error:
            self.error = error.message
            return None
        finally:
            self.is_loading = False

    def _sync_url(self) -> rx.event.EventSpec:
        # The view lives in the URL (bookmarkable, shareable) without reloading the page.
        target = routes.ADMIN_PAYMENTS + (f"?{self.query_string}" if self.query_string else "")
        return rx.call_script(f"window.history.replaceState(null, '', {json.dumps(target)})")

    @rx.event
    async def load_dashboard(self) -> AsyncIterator[rx.event.EventSpec | None]:
        self.is_loading, self.error, self.notice, self.drawer_open = True, "", "", False
        params = self.router.url.query_parameters
        self.filters = {name: str(params.get(name, ""))[:100] for name in FILTER_FIELDS}
        self.sort = params.get("sort", "-created_at") if params.get("sort") in SORTS else "-created_at"
        size = params.get("page_size", "")
        self.page_size = size if size.isdigit() and int(size) in PAGE_SIZES else str(DEFAULT_PAGE_SIZE)
        self.page = int(params["page"]) if params.get("page", "").isdigit() else 1
        try:
            self._filters()
        except InvalidFilter as error:
            self.error = f"{error.message} The filters were cleared."
            self.filters = dict.fromkeys(FILTER_FIELDS, "")
        await self._load_viewer()  # who is asking (and their role, for which buttons to show)
        if not self.is_signed_in:
            yield self._sign_in_redirect()
            return
        redirect = await self._reload()
        if redirect is None:
            live.watch_staff_tab(client_token=self.router.session.client_token)
        yield redirect

    @rx.event
    async def refresh(self) -> None:
        """Live: new payments and status changes; the user's page, filters and drawer stay as they are."""
        if not self.is_signed_in:
            return
        await self._reload()
        if self.drawer_open and self.detail.get("id"):
            await self._load_detail(self.detail["id"])

    @rx.event
    async def apply_filters(self, form: dict[str, Any]) -> AsyncIterator[rx.event.EventSpec | None]:
        chosen = {name: str(form.get(name, "") or "").strip()[:100] for name in FILTER_FIELDS}
        previous = self.filters
        self.filters = chosen
        try:
            self._filters()
        except InvalidFilter as error:
            self.error, self.filters = error.message, previous
            return
        self.error, self.page = "", 1
        yield await self._reload()
        yield self._sync_url()

    @rx.event
    async def clear_filters(self) -> AsyncIterator[rx.event.EventSpec | None]:
        self.filters, self.page, self.error = dict.fromkeys(FILTER_FIELDS, ""), 1, ""
        yield await self._reload()
        yield self._sync_url()

    @rx.event
    async def sort_by(self, column: str) -> AsyncIterator[rx.event.EventSpec | None]:
        column = "amount" if column == "amount" else "created_at"
        self.sort = column if self.sort == f"-{column}" else f"-{column}"
        self.page = 1
        yield await self._reload()
        yield self._sync_url()

    @rx.event
    async def set_page_size(self, size: str) -> AsyncIterator[rx.event.EventSpec | None]:
        if not str(size).isdigit() or int(size) not in PAGE_SIZES:
            return
        self.page_size, self.page = str(size), 1
        yield await self._reload()
        yield self._sync_url()

    @rx.event
    async def go_to_page(self, page: int) -> AsyncIterator[rx.event.EventSpec | None]:
        self.page = max(1, min(int(page), self.total_pages))
        yield await self._reload()
        yield self._sync_url()

    @rx.event
    async def set_chart_days(self, days: str | list[str]) -> AsyncIterator[rx.event.EventSpec | None]:
        self.chart_days = "90" if str(days) == "90" else "30"
        yield await self._reload()

    # -- the drawer -----------------------------------------------------------------------------------

    async def _load_detail(self, payment_id: str) -> None:
        found = await self._call_as_viewer(get_payment_detail, payment_id=uuid.UUID(str(payment_id)))
        payment = found.payment
        self.detail = {
            "id": str(payment.id),
            "reference": payment.reference,
            "amount": format_money(payment.amount_minor, payment.currency),
            "refunded": format_money(payment.refunded_minor, payment.currency) if payment.refunded_minor else "",
            "refundable": format_money(found.refundable_minor, payment.currency) if found.refundable_minor else "",
            "refundable_major": f"{found.refundable_minor / 100:.2f}" if found.refundable_minor else "",
            "currency": payment.currency,
            "status": str(payment.status),
            "status_label": str(payment.status).replace("_", " "),
            "color": STATUS_COLORS.get(str(payment.status), "gray"),
            "customer": found.customer_name,
            "email": found.customer_email,
            "provider": payment.provider,
            "method": payment.method.replace("_", " "),
            "purpose": str(payment.purpose).replace("_", " "),
            "provider_reference": payment.provider_reference or "—",
            "description": payment.description or "—",
            "receiver": payment.receiver or "—",
            "failure_reason": payment.failure_reason or "",
            "created": _when(payment.created_at),
            "stuck": "yes" if payment.status in ("pending", "processing") else "",
            "reconcile_requested": _when(payment.reconcile_requested_at) if payment.reconcile_requested_at else "",
        }
        icons = {
            "status": "circle-dot",
            "webhook": "webhook",
            "ledger": "book-open",
            "refund": "undo-2",
            "note": "sticky-note",
            "reconciliation": "refresh-cw",
        }
        self.timeline = [
            {"when": _when(item.at), "title": item.title, "detail": item.detail, "icon": icons.get(item.kind, "dot")}
            for item in reversed(found.timeline)
        ]

    @rx.event
    async def open_payment(self, payment_id: str) -> rx.event.EventSpec | None:
        self.action_error = self.action_notice = self.refund_reason = self.note_text = ""
        self._refund_key = secrets.token_urlsafe(16)
        try:
            await self._load_detail(payment_id)
        except ValueError:
            self.error = "That payment does not exist."
            return None
        except AuthenticationRequired:
            return self._sign_in_redirect()
        except DomainError as error:
            self.error = error.message
            return None
        self.refund_amount = self.detail.get("refundable_major", "")
        self.drawer_open = True
        return None

    @rx.event
    def close_drawer(self) -> None:
        self.drawer_open = False
        self.detail, self.timeline = {}, []

    @rx.event
    def set_drawer_open(self, is_open: bool) -> None:
        if not is_open:
            self.close_drawer()

    async def _act(self, success: str, service: Any, **kwargs: Any) -> Any:
        self.action_error = self.action_notice = ""
        payment_id = self.detail.get("id", "")
        try:
            result = await self._call_as_viewer(service, payment_id=uuid.UUID(payment_id), **kwargs)
        except ValueError:
            self.action_error = "Open a payment first."
            return None
        except DomainError as error:
            self.action_error = error.message
            return None
        self.action_notice = success
        return result

    @rx.event
    async def submit_refund(self, form: dict[str, Any]) -> None:
        amount_text = str(form.get("amount", "")).replace(",", "").strip()
        try:
            amount_minor = int((Decimal(amount_text) * 100).to_integral_exact())
        except (InvalidOperation, ValueError, ArithmeticError):
            self.action_error = "Enter the amount to refund, for example 1250.50."
            return
        reason = str(form.get("reason", ""))[:200]
        refund = await self._act(
            "Refund sent to the provider.",
            refund_payment,
            amount_minor=amount_minor,
            reason=reason,
            # A double click (same amount, same drawer) is the same refund; another amount is another one.
            idempotency_key=f"dashboard:{self._refund_key}:{amount_minor}",
        )
        if refund is None:
            return
        try:
            refund = await self._run(complete_refund, refund_id=refund.id)
        except ProviderUnavailable:
            self.action_notice = "The provider is not answering; the refund will be retried automatically."
        else:
            if refund.status == "failed":
                self.action_error, self.action_notice = (
                    f"The provider refused the refund ({refund.failure_reason}).",
                    "",
                )
            else:
                self.action_notice = "Refunded."
        await self._load_detail(self.detail["id"])
        await self._reload()

    @rx.event
    async def submit_note(self, form: dict[str, Any]) -> None:
        address = self.router.session.client_ip or None
        note = await self._act(
            "Note added.", add_payment_note, body=str(form.get("note", ""))[:2000], ip_address=address
        )
        if note is not None:
            self.note_text = ""
            await self._load_detail(self.detail["id"])

    @rx.event
    async def send_to_reconciliation(self) -> None:
        address = self.router.session.client_ip or None
        marked = await self._act(
            "Sent to reconciliation: the provider is being asked now.", mark_for_reconciliation, ip_address=address
        )
        if marked is not None:
            await self._load_detail(self.detail["id"])

    @rx.event
    def start_export(self) -> rx.event.EventSpec:
        """Download the filtered CSV in the page, showing rows received against the expected total."""
        return rx.call_script(f"window.paytimeExport({json.dumps(self.export_url)}, {int(self.total)})")
