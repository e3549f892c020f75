"""Sellers' side: apply to sell, the organizer dashboard (events, ticket types, sales, bookings), and
the super admin's approval page."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import reflex as rx

from paytime_app import routes
from paytime_app.errors import AuthenticationRequired, DomainError, ValidationFailed
from paytime_app.models.events import Coupon, CouponKind, EventStatus, TicketType
from paytime_app.models.sellers import ApplicationStatus
from paytime_app.models.users import Role
from paytime_app.money import Currency, format_money, from_minor, to_minor
from paytime_app.services import events as event_service
from paytime_app.services.bookings import event_sales, list_event_bookings, sales_by_day
from paytime_app.services.covers import MAX_BYTES, CoverTooLarge
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


def _whole(form: dict[str, Any], name: str, label: str, default: int | None = None) -> int:
    """A whole number typed into `name`; a blank field is `default` (required when None)."""
    text = str(form.get(name, "")).strip()[:12]
    if not text and default is not None:
        return default
    if not text.isdigit():
        raise ValidationFailed(f"Enter {label} as a whole number.", code="invalid_number")
    return int(text)


def _amount(text: Any, currency: str, label: str) -> int:
    try:
        return to_minor(str(text)[:20] or "0", Currency(currency))
    except DomainError:
        raise ValidationFailed(
            f"Enter {label} as an amount, for example 5000 or 5000.50.", code="invalid_amount"
        ) from None


def _moment(text: Any, zone: str) -> datetime | None:
    """An optional `datetime-local` value in the event's time zone."""
    return _local_time(text, zone) if str(text or "").strip() else None


def _major(amount_minor: int, currency: str) -> str:
    """Minor units as a person types them back in ("5000.00")."""
    return format(from_minor(amount_minor, Currency(currency)), "f")


def _local_input(moment: datetime | None, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M") if moment else ""


def _count(number: int, noun: str) -> str:
    """'1 price tier', '2 price tiers', or nothing for none."""
    return f"{number} {noun}{'' if number == 1 else 's'}" if number else ""


def _new_row(**values: str) -> dict[str, str]:
    # Rows are keyed by a random id, not their position, so removing one keeps what was typed in the others.
    return {"id": secrets.token_hex(4), **values}


def _ticket_type_fields(
    form: dict[str, Any], attribute_rows: list[dict[str, str]], tier_rows: list[dict[str, str]], event: dict[str, str]
) -> dict[str, Any]:
    """The ticket type editor's fields for `save_ticket_type`; ValidationFailed names the field in words."""
    currency, zone = event.get("currency", "NGN"), event.get("timezone", "Africa/Lagos")
    attributes: dict[str, str] = {}
    for row in attribute_rows:
        key = str(form.get(f"attr_key_{row['id']}", "")).strip()[:40]
        value = str(form.get(f"attr_value_{row['id']}", "")).strip()[:200]
        if not key and not value:
            continue
        if not key:
            raise ValidationFailed(f"Give the attribute “{value}” a name.", code="invalid_attributes")
        if key in attributes:
            raise ValidationFailed(f"The attribute “{key}” is listed twice.", code="invalid_attributes")
        attributes[key] = value
    tiers = []
    for number, row in enumerate(tier_rows, start=1):
        label = str(form.get(f"tier_label_{row['id']}", "")).strip()[:40]
        price = str(form.get(f"tier_price_{row['id']}", "")).strip()
        until = str(form.get(f"tier_until_{row['id']}", "")).strip()
        first_n = str(form.get(f"tier_first_n_{row['id']}", "")).strip()
        if not (label or price or until or first_n):
            continue
        name = f"price tier {number}" + (f" ({label})" if label else "")
        if not price:
            raise ValidationFailed(f"Give {name} a price.", code="invalid_tiers")
        if bool(until) == bool(first_n):
            raise ValidationFailed(
                f"End {name} either on a date or after the first N tickets, not both.", code="invalid_tiers"
            )
        tiers.append(
            {
                "label": label,
                "price_minor": _amount(price, currency, f"the price of {name}"),
                "until": _moment(until, zone),
                "first_n": _whole(form, f"tier_first_n_{row['id']}", f"the ticket count of {name}")
                if first_n
                else None,
            }
        )
    return {
        "name": str(form.get("name", ""))[:80],
        "description": str(form.get("description", ""))[:500],
        "price_minor": _amount(form.get("price", ""), currency, "the price"),
        "capacity": _whole(form, "capacity", "the capacity"),
        "sales_start": _moment(form.get("sales_start"), zone),
        "sales_end": _moment(form.get("sales_end"), zone),
        "per_booking_max": _whole(form, "per_booking_max", "the most tickets per booking", 20),
        "per_customer_max": _whole(form, "per_customer_max", "the most tickets per customer", 10),
        "entries_allowed": _whole(form, "entries_allowed", "the entries per ticket", 1),
        "attributes": attributes,
        "price_tiers": tiers,
        "unlock_code": str(form.get("unlock_code", "")).strip()[:40] or None,
    }


def _editor_defaults(ticket_type: TicketType, currency: str, zone: str) -> dict[str, Any]:
    """What the editor shows for an existing ticket type (prices in major units, times in the event's zone)."""
    return {
        "fields": {
            "id": str(ticket_type.id),
            "name": ticket_type.name,
            "description": ticket_type.description,
            "price": _major(ticket_type.price_minor, currency),
            "capacity": str(ticket_type.capacity),
            "sales_start": _local_input(ticket_type.sales_start, zone),
            "sales_end": _local_input(ticket_type.sales_end, zone),
            "per_booking_max": str(ticket_type.per_booking_max),
            "per_customer_max": str(ticket_type.per_customer_max),
            "entries_allowed": str(ticket_type.entries_allowed),
            "unlock_code": ticket_type.unlock_code or "",
        },
        "attributes": [_new_row(key=key, value=str(value)) for key, value in ticket_type.attributes.items()],
        "tiers": [
            _new_row(
                label=str(tier.get("label") or ""),
                price=_major(int(tier["price_minor"]), currency),
                until=_local_input(datetime.fromisoformat(tier["until"]) if tier.get("until") else None, zone),
                first_n=str(tier.get("first_n") or ""),
            )
            for tier in ticket_type.price_tiers
        ],
    }


# A progress report handled this soon after an upload finished was sent during that upload.
LATE_PROGRESS_SECONDS = 2.0

NEW_TYPE_FIELDS = {
    "id": "",
    "name": "",
    "description": "",
    "price": "",
    "capacity": "",
    "sales_start": "",
    "sales_end": "",
    "per_booking_max": "20",
    "per_customer_max": "10",
    "entries_allowed": "1",
    "unlock_code": "",
}
DROP_REJECTIONS = {
    "file-too-large": f"The image is larger than {MAX_BYTES // (1024 * 1024)} MB. Export it smaller and try again.",
    "file-invalid-type": "Upload a JPEG, PNG, WebP or GIF image.",
    "too-many-files": "Choose one image.",
}


def _coupon_scope(coupon: Coupon, type_names: dict[str, str]) -> str:
    if not coupon.ticket_type_ids:
        return "Whole event"
    return ", ".join(type_names.get(type_id, "Removed type") for type_id in coupon.ticket_type_ids)


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
    # The ticket type editor (a dialog): its fields, and its key/value and price tier rows.
    editor_open: bool = False
    editor: dict[str, str] = {}
    attribute_rows: list[dict[str, str]] = []
    tier_rows: list[dict[str, str]] = []
    editor_error: str = ""
    _editor_values: dict[str, dict[str, Any]] = {}
    by_day: list[dict[str, Any]] = []
    bookings: list[dict[str, str]] = []
    booking_query: str = ""
    bookings_total: int = 0
    revenue: str = ""
    views: str = ""
    # The cover being sent: percent uploaded (100 while the server resizes it), -1 when none is.
    cover_progress: int = -1
    _cover_finished_at: float = 0.0
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
            "cover": routes.event_cover(str(event.id), event.cover_image),
        }
        rows = await self._call_as_viewer(event_sales, event_id=event_id)
        self.sales = [
            {
                "id": str(row.ticket_type.id),
                "name": row.ticket_type.name,
                "price": format_money(row.ticket_type.price_minor, event.currency),
                "tiers": _count(len(row.ticket_type.price_tiers), "price tier"),
                "capacity": str(row.ticket_type.capacity),
                "sold": str(row.sold),
                "held": str(row.held),
                "left": str(row.left),
                "revenue": format_money(row.revenue_minor, event.currency),
                "hidden": "Hidden" if row.ticket_type.unlock_code else "",
            }
            for row in rows
        ]
        self._editor_values = {
            str(row.ticket_type.id): _editor_defaults(row.ticket_type, event.currency, event.timezone) for row in rows
        }
        self.revenue = format_money(sum(row.revenue_minor for row in rows), event.currency)
        self.views = f"{await self._call_as_viewer(event_service.event_views, event_id=event_id):,}"
        self.by_day = [
            {"day": day.day[5:], "bookings": day.bookings, "revenue": format_money(day.revenue_minor, event.currency)}
            for day in await self._call_as_viewer(sales_by_day, event_id=event_id)
        ]
        type_names = {str(row.ticket_type.id): row.ticket_type.name for row in rows}
        self.coupons = [
            {
                "code": coupon.code,
                "discount": f"{coupon.value / 100:g}%"
                if coupon.kind == CouponKind.PERCENT
                else format_money(coupon.value, event.currency),
                "used": f"{coupon.redeemed} of {coupon.max_redemptions}"
                if coupon.max_redemptions
                else f"{coupon.redeemed} (no limit)",
                "scope": _coupon_scope(coupon, type_names),
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
    def open_type_editor(self, type_id: str) -> None:
        """Open the editor on one of this event's ticket types (already loaded for this organizer), or a new one."""
        values = self._editor_values.get(str(type_id)[:40])
        if values is None:
            self.editor = {**NEW_TYPE_FIELDS, "key": secrets.token_hex(4)}
            self.attribute_rows, self.tier_rows = [_new_row(key="", value="")], []
        else:
            self.editor = {**values["fields"], "key": secrets.token_hex(4)}
            self.attribute_rows = [dict(row) for row in values["attributes"]] or [_new_row(key="", value="")]
            self.tier_rows = [dict(row) for row in values["tiers"]]
        self.editor_error, self.editor_open = "", bool(self.event)

    @rx.event
    def set_editor_open(self, is_open: bool) -> None:
        self.editor_open = bool(is_open) and bool(self.editor)

    @rx.event
    def add_attribute_row(self) -> None:
        if len(self.attribute_rows) < 20:
            self.attribute_rows = [*self.attribute_rows, _new_row(key="", value="")]

    @rx.event
    def remove_attribute_row(self, row_id: str) -> None:
        self.attribute_rows = [row for row in self.attribute_rows if row["id"] != row_id]

    @rx.event
    def add_tier_row(self) -> None:
        if len(self.tier_rows) < 10:
            self.tier_rows = [*self.tier_rows, _new_row(label="", price="", until="", first_n="")]

    @rx.event
    def remove_tier_row(self, row_id: str) -> None:
        self.tier_rows = [row for row in self.tier_rows if row["id"] != row_id]

    @rx.event
    async def save_ticket_type(self, form: dict[str, Any]) -> None:
        self.editor_error = ""
        type_id = self.editor.get("id", "")
        try:
            fields = _ticket_type_fields(form, self.attribute_rows, self.tier_rows, self.event)
        except DomainError as error:
            self.editor_error = error.message
            return
        saved = await self._act(
            event_service.save_ticket_type,
            "Ticket type saved." if type_id else "Ticket type added.",
            ticket_type_id=uuid.UUID(type_id) if type_id else None,
            **fields,
        )
        if saved is None:
            self.editor_error, self.error = self.error, ""
            return
        self.editor_open = False

    @rx.event
    def cover_upload_progress(self, progress: dict[str, Any]) -> None:
        """The browser reports how much of the cover it has sent (a fraction from 0 to 1).

        Reports come over the websocket while the file goes over HTTP, so one can be handled after
        `upload_cover` finished: the last report (all sent) is left to `upload_cover`, and a report
        just after an upload finished is a late one, never a new upload's.
        """
        try:
            fraction = float(progress.get("progress") or 0)
        except (TypeError, ValueError):
            fraction = 0.0
        if fraction >= 1 or time.monotonic() - self._cover_finished_at < LATE_PROGRESS_SECONDS:
            return
        self.error = self.notice = ""  # a new upload replaces the last one's outcome
        self.cover_progress = max(0, round(fraction * 100))

    @rx.event
    async def upload_cover(self, files: list[rx.UploadFile]) -> AsyncIterator[None]:
        self.error, self.notice = "", ""
        self.cover_progress = 100  # all sent: the server checks and resizes it now
        yield
        try:
            if len(files) != 1:
                self.error = DROP_REJECTIONS["too-many-files"]
                return
            # One byte past the limit is enough to refuse a larger file without reading all of it.
            data = files[0].file.read(MAX_BYTES + 1)
            if len(data) > MAX_BYTES:
                self.error = CoverTooLarge.default_message
                return
            await self._act(event_service.set_event_cover, "Cover image saved.", data=data)
        finally:
            self.cover_progress = -1
            self._cover_finished_at = time.monotonic()

    @rx.event
    def cover_rejected(self, rejected: list[dict[str, Any]]) -> None:
        """The browser refused the file before uploading it (type, size or count)."""
        codes = [str(error.get("code")) for item in rejected[:5] for error in item.get("errors", [])[:5]]
        self.notice = ""
        self.error = next((DROP_REJECTIONS[code] for code in codes if code in DROP_REJECTIONS), "Choose an image file.")

    @rx.event
    async def remove_cover(self) -> None:
        await self._act(event_service.remove_event_cover, "Cover image removed.")

    @rx.event
    async def add_coupon(self, form: dict[str, Any]) -> None:
        self.error = ""
        kind = str(form.get("kind", "percent"))[:10]
        currency = self.event.get("currency", "NGN")
        try:
            if kind == CouponKind.PERCENT:
                value = round(float(str(form.get("value", "0"))[:10]) * 100)
            else:
                value = _amount(form.get("value", ""), currency, "the discount")
            limits = {
                "max_redemptions": _whole(form, "max_redemptions", "the number of uses")
                if str(form.get("max_redemptions", "")).strip()
                else None,
                "per_user_limit": _whole(form, "per_user_limit", "the uses per customer", 1),
                "min_order_minor": _amount(form.get("min_order", ""), currency, "the minimum order"),
                "expires_at": _moment(form.get("expires_at"), self.event.get("timezone", "Africa/Lagos")),
            }
        except ValueError:
            self.error = "Enter the discount as a number, for example 10 for 10%."
            return
        except DomainError as error:
            self.error = error.message
            return
        known = {row["id"] for row in self.sales}
        scope = [
            uuid.UUID(name.removeprefix("scope_"))
            for name, value in form.items()
            if str(name).startswith("scope_") and name.removeprefix("scope_") in known and value in ("on", True)
        ]
        await self._act(
            event_service.create_coupon,
            "Coupon created.",
            code=str(form.get("code", ""))[:40],
            kind=kind,
            value=value,
            ticket_type_ids=scope,
            **limits,
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
