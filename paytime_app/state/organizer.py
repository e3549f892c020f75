"""Sellers' side: apply to sell, the organizer dashboard (events, ticket types, sales, bookings), and
the super admin's approval page."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import reflex as rx

from paytime_app import routes
from paytime_app.errors import AuthenticationRequired, DomainError, ValidationFailed
from paytime_app.models.events import CouponKind, EventStatus
from paytime_app.models.sellers import ApplicationStatus
from paytime_app.models.users import Role
from paytime_app.money import format_money, to_minor
from paytime_app.services import events as event_service
from paytime_app.services.bookings import event_sales, list_event_bookings, sales_by_day
from paytime_app.services.sellers import (
    SELLING_ROLES,
    apply_to_sell,
    decide_application,
    get_own_application,
    list_applications,
)
from paytime_app.state.auth import AuthState
from paytime_app.state.events import VENUE_LABELS, load_signed_in, when


def _local_time(text: str, zone: str) -> datetime:
    """A `datetime-local` input value read in the event's time zone."""
    try:
        moment = datetime.fromisoformat(str(text)[:32])
        return moment.replace(tzinfo=ZoneInfo(zone)) if moment.tzinfo is None else moment
    except (ValueError, ZoneInfoNotFoundError):
        raise ValidationFailed("Enter the start and end date and time.", code="invalid_dates") from None


def _event_fields(form: dict[str, Any]) -> dict[str, Any]:
    zone = str(form.get("timezone", "Africa/Lagos"))[:64] or "Africa/Lagos"
    capacity = str(form.get("capacity", "")).strip()
    return {
        "title": str(form.get("title", ""))[:140],
        "description": str(form.get("description", ""))[:5000],
        "venue": str(form.get("venue", ""))[:200],
        "venue_type": str(form.get("venue_type", "event"))[:10],
        "starts_at": _local_time(form.get("starts_at", ""), zone),
        "ends_at": _local_time(form.get("ends_at", ""), zone),
        "timezone": zone,
        "currency": str(form.get("currency", "NGN"))[:3],
        "capacity": int(capacity) if capacity.isdigit() else None,
    }


class SellState(AuthState):
    """Apply to sell tickets; shows the latest application's status."""

    status: str = ""
    reason: str = ""
    organisation: str = ""
    can_sell: bool = False
    error: str = ""
    notice: str = ""
    is_loading: bool = True

    async def _refresh(self) -> None:
        application = await self._call_as_viewer(get_own_application)
        self.can_sell = Role(self.role) in SELLING_ROLES if self.role else False
        self.status = str(application.status) if application else ""
        self.reason = application.reason if application else ""
        self.organisation = application.organisation_name if application else ""

    @rx.event
    async def load_sell(self) -> AsyncIterator[rx.event.EventSpec | None]:
        self.is_loading, self.error, self.notice = True, "", ""
        if (redirect := await load_signed_in(self)) is not None:
            yield redirect
            return
        self.is_loading = False

    @rx.event
    async def refresh(self) -> None:
        """Pushed when a super admin decides the application."""
        await self._load_viewer()
        try:
            await self._refresh()
        except AuthenticationRequired:
            return

    @rx.event
    async def submit_application(self, form: dict[str, Any]) -> None:
        self.error, self.notice = "", ""
        try:
            await self._call_as_viewer(
                apply_to_sell,
                organisation_name=str(form.get("organisation", ""))[:120],
                contact_email=str(form.get("contact_email", ""))[:254],
                contact_phone=str(form.get("contact_phone", ""))[:20],
                payout_country=str(form.get("payout_country", ""))[:2],
            )
            await self._refresh()
        except DomainError as error:
            self.error = error.message
        else:
            self.notice = "Thanks! We will email you when your application is decided."


class OrganizerState(AuthState):
    """The organizer's events and the form for a new one."""

    events: list[dict[str, str]] = []
    error: str = ""
    is_loading: bool = True
    is_seller: bool = False

    async def _refresh(self) -> None:
        found = await self._call_as_viewer(event_service.list_own_events)
        self.events = [
            {
                "id": str(event.id),
                "href": routes.organizer_event(str(event.id)),
                "title": event.title,
                "when": when(event),
                "status": str(event.status),
            }
            for event in found
        ]

    @rx.event
    async def load_organizer(self) -> AsyncIterator[rx.event.EventSpec | None]:
        self.is_loading, self.error = True, ""
        try:
            if (redirect := await load_signed_in(self)) is not None:
                yield redirect
                return
            self.is_seller = True
        except DomainError:
            self.is_seller, self.events = False, []
        self.is_loading = False

    @rx.event
    async def submit_event(self, form: dict[str, Any]) -> AsyncIterator[rx.event.EventSpec | None]:
        self.error = ""
        try:
            event = await self._call_as_viewer(event_service.create_event, **_event_fields(form))
        except DomainError as error:
            self.error = error.message
            return
        yield rx.redirect(routes.organizer_event(str(event.id)))


class OrganizerEventState(AuthState):
    """One event for its organizer: details, ticket types, publish/cancel/duplicate, sales, bookings."""

    event: dict[str, str] = {}
    sales: list[dict[str, str]] = []
    coupons: list[dict[str, str]] = []
    by_day: list[dict[str, Any]] = []
    bookings: list[dict[str, str]] = []
    booking_query: str = ""
    bookings_total: int = 0
    revenue: str = ""
    error: str = ""
    notice: str = ""
    is_loading: bool = True

    def _event_id(self) -> uuid.UUID | None:
        try:
            return uuid.UUID(str(self.router.page.params.get("event_id", ""))[:40])
        except ValueError:
            return None

    async def _refresh(self) -> None:
        event_id = self._event_id()
        if event_id is None:
            self.event = {}
            return
        event = await self._call_as_viewer(event_service.get_own_event, event_id=event_id)
        zone = ZoneInfo(event.timezone)
        self.event = {
            "id": str(event.id),
            "title": event.title,
            "description": event.description,
            "venue": event.venue,
            "venue_type": str(event.venue_type),
            "venue_label": VENUE_LABELS[event.venue_type],
            "starts_at": event.starts_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
            "ends_at": event.ends_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
            "timezone": event.timezone,
            "currency": event.currency,
            "capacity": "" if event.capacity is None else str(event.capacity),
            "when": when(event),
            "status": str(event.status),
            "editable": "yes" if event.status in (EventStatus.DRAFT, EventStatus.PUBLISHED) else "",
            "public_href": routes.event_detail(str(event.id)),
            "csv": routes.event_bookings_csv(str(event.id)),
        }
        rows = await self._call_as_viewer(event_sales, event_id=event_id)
        self.sales = [
            {
                "id": str(row.ticket_type.id),
                "name": row.ticket_type.name,
                "price": format_money(row.ticket_type.price_minor, event.currency),
                "capacity": str(row.ticket_type.capacity),
                "sold": str(row.sold),
                "held": str(row.held),
                "left": str(row.left),
                "revenue": format_money(row.revenue_minor, event.currency),
                "hidden": "Hidden" if row.ticket_type.unlock_code else "",
            }
            for row in rows
        ]
        self.revenue = format_money(sum(row.revenue_minor for row in rows), event.currency)
        self.by_day = [
            {"day": day.day[5:], "bookings": day.bookings, "revenue": format_money(day.revenue_minor, event.currency)}
            for day in await self._call_as_viewer(sales_by_day, event_id=event_id)
        ]
        self.coupons = [
            {
                "code": coupon.code,
                "discount": f"{coupon.value / 100:g}%"
                if coupon.kind == CouponKind.PERCENT
                else format_money(coupon.value, event.currency),
                "used": f"{coupon.redeemed} of {coupon.max_redemptions}"
                if coupon.max_redemptions
                else f"{coupon.redeemed} (no limit)",
            }
            for coupon in await self._call_as_viewer(event_service.list_coupons, event_id=event_id)
        ]
        found, self.bookings_total = await self._call_as_viewer(
            list_event_bookings, event_id=event_id, query=self.booking_query, page=1, page_size=50
        )
        self.bookings = [
            {
                "reference": booking.reference,
                "buyer": buyer.display_name,
                "email": buyer.email,
                "status": str(booking.status),
                "total": format_money(booking.total_minor, booking.currency),
                "when": booking.created_at.strftime("%d %b %Y, %H:%M"),
            }
            for booking, buyer in found
        ]

    @rx.event
    async def load_event(self) -> AsyncIterator[rx.event.EventSpec | None]:
        self.is_loading, self.error, self.notice, self.booking_query = True, "", "", ""
        try:
            if (redirect := await load_signed_in(self)) is not None:
                yield redirect
                return
        except DomainError:
            self.event, self.sales, self.bookings = {}, [], []
        self.is_loading = False

    @rx.event
    async def refresh(self) -> None:
        try:
            await self._refresh()
        except DomainError:
            return

    async def _act(self, service: Any, success: str, **kwargs: Any) -> Any:
        self.error, self.notice = "", ""
        event_id = self._event_id()
        if event_id is None:
            return None
        try:
            result = await self._call_as_viewer(service, event_id=event_id, **kwargs)
            await self._refresh()
        except DomainError as error:
            self.error = error.message
            return None
        self.notice = success
        return result

    @rx.event
    async def save_details(self, form: dict[str, Any]) -> None:
        try:
            fields = _event_fields(form)
        except DomainError as error:
            self.error = error.message
            return
        await self._act(event_service.update_event, "Saved.", **fields)

    @rx.event
    async def add_ticket_type(self, form: dict[str, Any]) -> None:
        self.error = ""
        try:
            price = to_minor(str(form.get("price", "0"))[:20] or "0", self.event.get("currency", "NGN"))
            capacity = int(str(form.get("capacity", "")).strip() or "-1")
            per_customer = int(str(form.get("per_customer_max", "10")).strip() or "10")
        except ValueError:
            self.error = "Enter the capacity and limits as whole numbers."
            return
        except DomainError as error:
            self.error = error.message
            return
        await self._act(
            event_service.save_ticket_type,
            "Ticket type added.",
            name=str(form.get("name", ""))[:80],
            description=str(form.get("description", ""))[:500],
            price_minor=price,
            capacity=capacity,
            per_customer_max=per_customer,
            unlock_code=str(form.get("unlock_code", ""))[:40] or None,
        )

    @rx.event
    async def add_coupon(self, form: dict[str, Any]) -> None:
        self.error = ""
        kind = str(form.get("kind", "percent"))[:10]
        limit = str(form.get("max_redemptions", "")).strip()
        try:
            if kind == CouponKind.PERCENT:
                value = round(float(str(form.get("value", "0"))[:10]) * 100)
            else:
                value = to_minor(str(form.get("value", "0"))[:20], self.event.get("currency", "NGN"))
            max_redemptions = int(limit) if limit else None
        except ValueError:
            self.error = "Enter the discount and the number of uses as numbers."
            return
        except DomainError as error:
            self.error = error.message
            return
        await self._act(
            event_service.create_coupon,
            "Coupon created.",
            code=str(form.get("code", ""))[:40],
            kind=kind,
            value=value,
            max_redemptions=max_redemptions,
        )

    @rx.event
    async def publish(self) -> None:
        await self._act(event_service.publish_event, "Published: the event is on sale.")

    @rx.event
    async def cancel_event(self) -> None:
        await self._act(event_service.cancel_event, "Cancelled. Every booking is being refunded in full.")

    @rx.event
    async def duplicate(self) -> AsyncIterator[rx.event.EventSpec | None]:
        copy = await self._act(event_service.duplicate_event, "Copied.")
        if copy is not None:
            yield rx.redirect(routes.organizer_event(str(copy.id)))

    @rx.event
    async def search_bookings(self, form: dict[str, Any]) -> None:
        self.booking_query = str(form.get("q", ""))[:100]
        await self.refresh()


class AdminSellersState(AuthState):
    """Pending seller applications; a super admin approves or rejects with a reason."""

    rows: list[dict[str, str]] = []
    can_decide: bool = False
    error: str = ""
    notice: str = ""
    is_loading: bool = True

    async def _refresh(self) -> None:
        found = await self._call_as_viewer(list_applications, status=ApplicationStatus.PENDING)
        self.rows = [
            {
                "id": str(application.id),
                "organisation": application.organisation_name,
                "applicant": f"{user.display_name} <{user.email}>",
                "contact": application.contact_email,
                "country": application.payout_country,
                "when": application.created_at.strftime("%d %b %Y, %H:%M"),
            }
            for application, user in found
        ]
        self.can_decide = self.role == Role.SUPER_ADMIN

    @rx.event
    async def load_applications(self) -> AsyncIterator[rx.event.EventSpec | None]:
        self.is_loading, self.error, self.notice = True, "", ""
        try:
            if (redirect := await load_signed_in(self)) is not None:
                yield redirect
                return
        except DomainError as error:
            self.rows, self.error = [], error.message
        self.is_loading = False

    async def _decide(self, application_id: str, approve: bool, reason: str) -> None:
        self.error, self.notice = "", ""
        try:
            await self._call_as_viewer(
                decide_application, application_id=uuid.UUID(str(application_id)), approve=approve, reason=reason
            )
            await self._refresh()
        except ValueError:
            self.error = "That application does not exist."
        except DomainError as error:
            self.error = error.message
        else:
            self.notice = "Approved: they can now sell tickets." if approve else "Rejected; the applicant was told why."

    @rx.event
    async def approve(self, application_id: str) -> None:
        await self._decide(application_id, True, "")

    @rx.event
    async def reject(self, form: dict[str, Any]) -> None:
        await self._decide(str(form.get("application_id", ""))[:40], False, str(form.get("reason", ""))[:500])
