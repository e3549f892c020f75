"""The staff payments dashboard: filtered lists, one payment's timeline, stats, CSV export, and the
admin actions on a payment (internal notes, reconciliation; refunds live in `payments`).

Design overview: one `PaymentFilters` value describes a view (status, provider, method, purpose,
currency, UTC day range with either end open, amount range, free text) and is applied the same way
by the list, the stats, the totals and the export, so they always agree. Reads are for viewers,
admins and super_admins; changes are for admins only, refused in here, not in the UI.

Speed on a million rows (PostgreSQL): pages are ordered by `(created_at, id)` or `(amount_minor,
id)`, both indexed, so the first pages read only the rows shown. Text search looks in one
lower-cased `search_text` column under a trigram GIN index. Totals and stats read
`payment_daily_total` (a few thousand rows kept in step by the payment service) whenever the filters
are ones it can answer (everything but text and amount); otherwise they aggregate the matching rows
in one grouped pass, and the total is counted up to `COUNT_CAP` rows. The export streams rows with a
server-side cursor, so its memory does not grow with the number of rows.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Date, String, case, cast, literal, literal_column
from sqlalchemy.sql import Select
from sqlmodel import Session, col, func, select

from paytime_app.bus import publish_after_commit
from paytime_app.db import for_update, is_postgresql, unit_of_work
from paytime_app.errors import Conflict, NotFound, ValidationFailed
from paytime_app.models.base import utcnow
from paytime_app.models.ledger import LedgerTransaction
from paytime_app.models.payments import (
    Payment,
    PaymentDailyTotal,
    PaymentNote,
    PaymentPurpose,
    PaymentRefund,
    PaymentStatus,
    ProviderEvent,
)
from paytime_app.models.sessions import SessionKind, UserSession
from paytime_app.models.users import User
from paytime_app.money import MINOR_DIGITS, Currency
from paytime_app.services.access import STAFF_READERS, require_payment_manager, require_staff_reader
from paytime_app.services.audit import record_audit
from paytime_app.services.jobs import enqueue_job
from paytime_app.services.paging import page_bounds, page_count
from paytime_app.services.payments import STAFF_TOPIC, list_refunds, list_status_changes
from paytime_app.services.providers.registry import PROVIDER_SLUGS
from paytime_app.services.sessions import authenticate_token

PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_PAGE_SIZE = 25
COUNT_CAP = 10_000
SORTS = ("-created_at", "created_at", "-amount", "amount")
METHODS = ("mock", "card", "bank_transfer", "ussd", "wallet")
COLLECTED = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED})
NOTE_MAX = 2000
EXPORT_BATCH = 5000  # rows per server-side cursor fetch: fewer round trips, still a few MB
CSV_HEADER = (
    "Reference",
    "Created at (UTC)",
    "Status",
    "Amount",
    "Refunded",
    "Currency",
    "Provider",
    "Method",
    "Purpose",
    "Customer name",
    "Customer email",
    "Receiver",
    "Description",
    "Provider reference",
    "Failure reason",
)


class InvalidFilter(ValidationFailed):
    code = "invalid_filter"
    default_message = "One of the filters is not valid."


class NotStuck(Conflict):
    code = "not_stuck"
    default_message = "Only a pending or processing payment can be sent to reconciliation."


# --- filters ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentFilters:
    """One dashboard view; empty tuples and None mean "any"."""

    statuses: tuple[str, ...] = ()
    providers: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    purposes: tuple[str, ...] = ()
    currencies: tuple[str, ...] = ()
    date_from: date | None = None  # UTC day, inclusive
    date_to: date | None = None  # UTC day, inclusive
    amount_min_minor: int | None = None
    amount_max_minor: int | None = None
    query: str = ""

    @property
    def needs_rows(self) -> bool:
        """True when the daily totals cannot answer: text search or an amount range."""
        return bool(self.query) or self.amount_min_minor is not None or self.amount_max_minor is not None


_CHOICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "status": ("statuses", tuple(str(status) for status in PaymentStatus)),
    "provider": ("providers", PROVIDER_SLUGS),
    "method": ("methods", METHODS),
    "purpose": ("purposes", tuple(str(purpose) for purpose in PaymentPurpose)),
    "currency": ("currencies", tuple(str(currency) for currency in Currency)),
}


def parse_filters(params: Mapping[str, Any]) -> PaymentFilters:
    """Filters from a URL query or API parameters: `status=succeeded,failed&from=2026-11-01&min=10.50&q=ada`.

    Amounts are in major units. Raises InvalidFilter naming the parameter.
    """
    values: dict[str, Any] = {}
    for name, (attribute, allowed) in _CHOICES.items():
        chosen = [value.upper() if name == "currency" else value.lower() for value in _listed(params.get(name))]
        unknown = [value for value in chosen if value not in allowed]
        if unknown:
            raise InvalidFilter(f"Unknown {name}: {unknown[0]}.", field=name)
        values[attribute] = tuple(dict.fromkeys(chosen))
    values["date_from"] = _day(params.get("from"), "from")
    values["date_to"] = _day(params.get("to"), "to")
    if values["date_from"] and values["date_to"] and values["date_from"] > values["date_to"]:
        raise InvalidFilter("The start date is after the end date.", field="from")
    values["amount_min_minor"] = _amount(params.get("min"), "min")
    values["amount_max_minor"] = _amount(params.get("max"), "max")
    low, high = values["amount_min_minor"], values["amount_max_minor"]
    if low is not None and high is not None and low > high:
        raise InvalidFilter("The minimum amount is above the maximum.", field="min")
    values["query"] = " ".join(str(params.get("q") or "").split())[:100].lower()
    return PaymentFilters(**values)


def filters_to_params(filters: PaymentFilters) -> dict[str, str]:
    """The inverse of `parse_filters`: the query parameters of a bookmarkable view."""
    params: dict[str, str] = {}
    for name, (attribute, _) in _CHOICES.items():
        if getattr(filters, attribute):
            params[name] = ",".join(getattr(filters, attribute))
    if filters.date_from:
        params["from"] = filters.date_from.isoformat()
    if filters.date_to:
        params["to"] = filters.date_to.isoformat()
    if filters.amount_min_minor is not None:
        params["min"] = _major(filters.amount_min_minor)
    if filters.amount_max_minor is not None:
        params["max"] = _major(filters.amount_max_minor)
    if filters.query:
        params["q"] = filters.query
    return params


def _listed(raw: Any) -> list[str]:
    if raw is None:
        return []
    items = raw if isinstance(raw, list | tuple) else [raw]
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def _day(raw: Any, name: str) -> date | None:
    if raw in (None, ""):
        return None
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        raise InvalidFilter("Dates are written YYYY-MM-DD.", field=name) from None


# Every currency we support has two decimals, so one major-unit bound means the same in each.
_DIGITS = next(iter(set(MINOR_DIGITS.values())))
assert set(MINOR_DIGITS.values()) == {_DIGITS}


def _amount(raw: Any, name: str) -> int | None:
    if raw in (None, ""):
        return None
    try:
        value = Decimal(str(raw).replace(",", "").strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0 or value > Decimal(10) ** 13:
        raise InvalidFilter("Amounts are numbers like 1250.50.", field=name)
    scaled = value.scaleb(_DIGITS)
    if scaled != scaled.to_integral_value():
        raise InvalidFilter(f"Amounts have at most {_DIGITS} decimals.", field=name)
    return int(scaled)


def _major(amount_minor: int) -> str:
    return format(Decimal(amount_minor).scaleb(-_DIGITS), "f")


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _where_payments(statement: Select, filters: PaymentFilters) -> Select:
    """The filters on `payment` rows (the customer is joined only when the caller shows it)."""
    for attribute, column in (
        ("statuses", Payment.status),
        ("providers", Payment.provider),
        ("methods", Payment.method),
        ("purposes", Payment.purpose),
        ("currencies", Payment.currency),
    ):
        chosen = getattr(filters, attribute)
        if chosen:
            statement = statement.where(col(column).in_(chosen))
    if filters.date_from:
        statement = statement.where(col(Payment.created_at) >= _start_of(filters.date_from))
    if filters.date_to:
        statement = statement.where(col(Payment.created_at) < _start_of(filters.date_to + timedelta(days=1)))
    if filters.amount_min_minor is not None:
        statement = statement.where(col(Payment.amount_minor) >= filters.amount_min_minor)
    if filters.amount_max_minor is not None:
        statement = statement.where(col(Payment.amount_minor) <= filters.amount_max_minor)
    if filters.query:
        statement = statement.where(col(Payment.search_text).like(f"%{_escape_like(filters.query)}%", escape="\\"))
    return statement


def _where_totals(statement: Select, filters: PaymentFilters) -> Select:
    """The same filters on `payment_daily_total` (only for filters without text or amount)."""
    for attribute, column in (
        ("statuses", PaymentDailyTotal.status),
        ("providers", PaymentDailyTotal.provider),
        ("methods", PaymentDailyTotal.method),
        ("purposes", PaymentDailyTotal.purpose),
        ("currencies", PaymentDailyTotal.currency),
    ):
        chosen = getattr(filters, attribute)
        if chosen:
            statement = statement.where(col(column).in_(chosen))
    if filters.date_from:
        statement = statement.where(col(PaymentDailyTotal.day) >= filters.date_from)
    if filters.date_to:
        statement = statement.where(col(PaymentDailyTotal.day) <= filters.date_to)
    return statement


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- the list ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentRow:
    payment: Payment
    customer_email: str
    customer_name: str


@dataclass(frozen=True)
class PaymentPage:
    rows: list[PaymentRow]
    total: int
    total_exact: bool  # False when more than COUNT_CAP rows match a text or amount filter
    page: int
    page_size: int

    @property
    def total_pages(self) -> int:
        return page_count(self.total, self.page_size)


def _ordering(sort: str) -> tuple[Any, ...]:
    if sort not in SORTS:
        raise InvalidFilter("Sort by created_at or amount, optionally with a leading '-'.", field="sort")
    column = col(Payment.amount_minor) if sort.endswith("amount") else col(Payment.created_at)
    if sort.startswith("-"):
        return column.desc(), col(Payment.id).desc()
    return column.asc(), col(Payment.id).asc()


def list_payments(
    *,
    session: Session,
    actor: User,
    filters: PaymentFilters,
    sort: str = "-created_at",
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> PaymentPage:
    """One page of the payments matching `filters`, with the number of matches.

    Raises PermissionDenied unless the actor is staff, InvalidFilter for an unknown sort or page size.
    """
    require_staff_reader(actor)
    if page_size not in PAGE_SIZES:
        raise InvalidFilter("Show 10, 25, 50 or 100 payments a page.", field="page_size")
    page, page_size = page_bounds(page, page_size)
    ordering = _ordering(sort)
    statement = _where_payments(
        select(Payment, User.email, User.display_name).join(User, col(Payment.user_id) == User.id), filters
    )
    if filters.needs_rows:
        found_page = _page_of_matches(session, filters, sort, page, page_size)
        if found_page is not None:
            return found_page
    total, exact = count_payments(session=session, filters=filters)
    last_page = page_count(total, page_size)
    page = min(page, last_page)
    found = session.exec(statement.order_by(*ordering).offset((page - 1) * page_size).limit(page_size)).all()
    return PaymentPage(
        rows=[PaymentRow(payment, email, name) for payment, email, name in found],
        total=total,
        total_exact=exact,
        page=page,
        page_size=page_size,
    )


def _page_of_matches(
    session: Session, filters: PaymentFilters, sort: str, page: int, page_size: int
) -> PaymentPage | None:
    """Text or amount filters: one scan collects up to COUNT_CAP matches (their sort keys only), then
    the page and the count come from those, instead of scanning once to count and again to page.

    None when more than COUNT_CAP payments match: the caller pages the usual way with a bounded count.
    """
    matches = _where_payments(select(Payment.id, Payment.created_at, Payment.amount_minor), filters)
    keys = matches.limit(COUNT_CAP + 1).subquery()
    column = keys.c.amount_minor if sort.endswith("amount") else keys.c.created_at
    ordering = (column.desc(), keys.c.id.desc()) if sort.startswith("-") else (column.asc(), keys.c.id.asc())
    for _ in range(2):  # a page past the last one is asked again as the last page
        picked = session.execute(
            select(keys.c.id, func.count().over()).order_by(*ordering).offset((page - 1) * page_size).limit(page_size)
        ).all()
        total = (
            int(picked[0][1]) if picked else int(session.execute(select(func.count()).select_from(keys)).scalar_one())
        )
        if total > COUNT_CAP:
            return None
        last_page = page_count(total, page_size)
        if picked or page <= last_page:
            break
        page = last_page
    ids = [row[0] for row in picked]
    found = session.exec(
        select(Payment, User.email, User.display_name)
        .join(User, col(Payment.user_id) == User.id)
        .where(col(Payment.id).in_(ids))
    ).all()
    by_id = {payment.id: PaymentRow(payment, email, name) for payment, email, name in found}
    return PaymentPage(
        rows=[by_id[payment_id] for payment_id in ids if payment_id in by_id],
        total=total,
        total_exact=True,
        page=min(page, last_page),
        page_size=page_size,
    )


def count_payments(*, session: Session, filters: PaymentFilters) -> tuple[int, bool]:
    """How many payments match, and whether that is exact (bounded at COUNT_CAP for row filters)."""
    if not filters.needs_rows:
        summed = session.exec(_where_totals(select(func.coalesce(func.sum(PaymentDailyTotal.count), 0)), filters))
        return int(summed.one()), True
    bounded = _where_payments(select(Payment.id), filters).limit(COUNT_CAP + 1).subquery()
    counted = int(session.exec(select(func.count()).select_from(bounded)).one())
    return min(counted, COUNT_CAP), counted <= COUNT_CAP


# --- one payment ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str  # status | webhook | ledger | refund | note | reconciliation
    title: str
    detail: str = ""


@dataclass(frozen=True)
class PaymentDetail:
    payment: Payment
    customer_email: str
    customer_name: str
    timeline: list[TimelineItem]
    refundable_minor: int
    refunds: list[PaymentRefund] = field(default_factory=list)


def get_payment_detail(*, session: Session, actor: User, payment_id: uuid.UUID) -> PaymentDetail:
    """A payment with everything that happened to it, oldest first. Raises PermissionDenied, NotFound."""
    require_staff_reader(actor)
    payment = session.get(Payment, payment_id)
    if payment is None:
        raise NotFound("That payment does not exist.")
    customer = session.get(User, payment.user_id)
    assert customer is not None
    items = [
        TimelineItem(
            change.created_at,
            "status",
            f"{(change.from_status or 'new').replace('_', ' ')} → {change.to_status.replace('_', ' ')}",
            f"by {change.source}" + (f": {change.reason}" if change.reason else ""),
        )
        for change in list_status_changes(session=session, payment=payment)
    ]
    events = session.exec(select(ProviderEvent).where(ProviderEvent.payment_id == payment.id)).all()
    items += [
        TimelineItem(event.created_at, "webhook", f"Webhook {event.event_type}", f"{event.provider} {event.event_id}")
        for event in events
    ]
    if payment.ledger_transaction_id is not None:
        transaction = session.get(LedgerTransaction, payment.ledger_transaction_id)
        if transaction is not None:
            items.append(
                TimelineItem(
                    transaction.created_at, "ledger", f"Ledger {transaction.reference}", transaction.description
                )
            )
    refunds = list_refunds(session=session, payment=payment)
    for refund in refunds:
        amount = f"{_major(refund.amount_minor)} {refund.currency}"
        items.append(TimelineItem(refund.created_at, "refund", f"Refund of {amount} requested", refund.reason or ""))
        if refund.status != "pending":
            outcome = "succeeded" if refund.status == "succeeded" else f"failed: {refund.failure_reason}"
            items.append(TimelineItem(refund.updated_at, "refund", f"Refund of {amount} {outcome}", ""))
    notes = session.exec(
        select(PaymentNote, User.email)
        .join(User, col(PaymentNote.author_id) == User.id)
        .where(PaymentNote.payment_id == payment.id)
    ).all()
    items += [TimelineItem(note.created_at, "note", f"Note by {email}", note.body) for note, email in notes]
    if payment.reconcile_requested_at is not None:
        items.append(TimelineItem(payment.reconcile_requested_at, "reconciliation", "Sent to reconciliation", ""))
    items.sort(key=lambda item: item.at)
    committed = sum(refund.amount_minor for refund in refunds if refund.status != "failed")
    refundable = payment.amount_minor - committed if PaymentStatus(payment.status) in COLLECTED else 0
    return PaymentDetail(
        payment=payment,
        customer_email=customer.email,
        customer_name=customer.display_name,
        timeline=items,
        refundable_minor=max(refundable, 0),
        refunds=refunds,
    )


# --- admin actions --------------------------------------------------------------------------------


def add_payment_note(
    *, session: Session, actor: User, payment_id: uuid.UUID, body: str, ip_address: str | None = None
) -> PaymentNote:
    """An internal note on a payment, in its timeline and the audit log.

    Raises PermissionDenied (not an admin), NotFound, ValidationFailed (empty or too long).
    """
    require_payment_manager(actor)
    body = (body or "").strip()
    if not 1 <= len(body) <= NOTE_MAX:
        raise ValidationFailed(f"Write a note of 1 to {NOTE_MAX} characters.", code="invalid_note")
    payment = session.get(Payment, payment_id)
    if payment is None:
        raise NotFound("That payment does not exist.")
    note = PaymentNote(payment_id=payment.id, author_id=actor.id, body=body)
    session.add(note)
    record_audit(
        session=session,
        action="payment.note_added",
        actor=actor,
        target_type="payment",
        target_id=payment.id,
        ip_address=ip_address,
        data={"reference": payment.reference},
    )
    publish_after_commit(session, STAFF_TOPIC, payment_id=str(payment.id), status=str(payment.status))
    return note


def mark_for_reconciliation(
    *, session: Session, actor: User, payment_id: uuid.UUID, ip_address: str | None = None
) -> Payment:
    """Ask the provider about a stuck payment now (a job), and mark it so staff see it was sent.

    Raises PermissionDenied (not an admin), NotFound, NotStuck (already final).
    """
    require_payment_manager(actor)
    payment = session.exec(for_update(select(Payment).where(Payment.id == payment_id))).first()
    if payment is None:
        raise NotFound("That payment does not exist.")
    if PaymentStatus(payment.status) not in (PaymentStatus.PENDING, PaymentStatus.PROCESSING):
        raise NotStuck(status=str(payment.status))
    now = utcnow()
    payment.reconcile_requested_at = now
    enqueue_job(
        session=session,
        kind="payments.reconcile_one",
        payload={"payment_id": str(payment.id)},
        dedupe_key=f"payments.reconcile_one:{payment.id}:{int(now.timestamp()) // 60}",
        max_attempts=5,
    )
    record_audit(
        session=session,
        action="payment.reconciliation_requested",
        actor=actor,
        target_type="payment",
        target_id=payment.id,
        ip_address=ip_address,
        data={"reference": payment.reference, "status": str(payment.status)},
    )
    publish_after_commit(session, STAFF_TOPIC, payment_id=str(payment.id), status=str(payment.status))
    return payment


# --- stats ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayRevenue:
    day: date
    by_currency: dict[str, int]  # net collected (minus refunds), minor units


@dataclass(frozen=True)
class PaymentStats:
    today_count: int
    week_count: int
    month_count: int
    total_count: int
    succeeded_count: int
    failed_count: int
    success_rate: float | None  # collected / (collected + failed); None before any finished payment
    revenue_by_currency: dict[str, int]  # net collected, minor units
    refunded_by_currency: dict[str, int]
    average_ticket_by_currency: dict[str, int]  # gross collected / collected count, minor units
    revenue_per_day: list[DayRevenue]
    method_counts: dict[str, int]
    failure_reasons: list[tuple[str, int]]


def _grouped(
    session: Session, filters: PaymentFilters, dimensions: tuple[str, ...], *, failed_only: bool = False
) -> list[tuple[Any, ...]]:
    """Matching payments grouped by `dimensions` (day, currency, status, method, failure_reason), each
    row ending with count, amount and refunded sums: from the daily totals when they can answer.

    Few dimensions per query keep the groups few, so the Python that reads them stays cheap.
    """
    if not filters.needs_rows:
        columns = {
            "day": col(PaymentDailyTotal.day),
            "currency": col(PaymentDailyTotal.currency),
            "status": col(PaymentDailyTotal.status),
            "method": col(PaymentDailyTotal.method),
            "failure_reason": col(PaymentDailyTotal.failure_reason),
        }
        sums = (
            func.sum(PaymentDailyTotal.count),
            func.sum(PaymentDailyTotal.amount_minor),
            func.sum(PaymentDailyTotal.refunded_minor),
        )
        where = _where_totals
        status = col(PaymentDailyTotal.status)
    else:
        if is_postgresql(session):
            day = cast(func.timezone("UTC", col(Payment.created_at)), Date)
        else:
            day = func.date(col(Payment.created_at))
        columns = {
            "day": day,
            "currency": col(Payment.currency),
            "status": col(Payment.status),
            "method": col(Payment.method),
            "failure_reason": func.coalesce(col(Payment.failure_reason), literal_column("''")),
        }
        sums = (func.count(), func.sum(Payment.amount_minor), func.sum(Payment.refunded_minor))
        where = _where_payments
        status = col(Payment.status)
    chosen = [columns[name] for name in dimensions]
    statement = where(select(*chosen, *sums).group_by(*chosen), filters)
    if failed_only:
        statement = statement.where(status == PaymentStatus.FAILED)
    rows = []
    for row in session.execute(statement).all():
        *keys, count, amount, refunded = row
        if not count:
            continue
        if "day" in dimensions:
            index = dimensions.index("day")
            keys[index] = keys[index] if isinstance(keys[index], date) else date.fromisoformat(str(keys[index]))
        rows.append((*keys, int(count), int(amount or 0), int(refunded or 0)))
    return rows


def _stat_groups(
    session: Session, filters: PaymentFilters
) -> tuple[dict[tuple[date, str, str], tuple[int, int, int]], Counter[str], Counter[str]]:
    """Sums per (day, currency, status), counts per method, counts per failure reason.

    From the daily totals: three small queries. From the rows (text or amount filters): one query,
    since each would scan the matching rows again.
    """
    main: defaultdict[tuple[date, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    methods: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    if filters.needs_rows:
        everything = ("day", "currency", "status", "method", "failure_reason")
        for day, currency, status, method, reason, count, amount, refunds in _grouped(session, filters, everything):
            sums = main[(day, currency, status)]
            sums[0], sums[1], sums[2] = sums[0] + count, sums[1] + amount, sums[2] + refunds
            methods[method] += count
            if status == PaymentStatus.FAILED:
                reasons[reason or "unknown"] += count
    else:
        for day, currency, status, count, amount, refunds in _grouped(session, filters, ("day", "currency", "status")):
            main[(day, currency, status)] = [count, amount, refunds]
        methods.update({method: count for method, count, _, _ in _grouped(session, filters, ("method",))})
        failed = _grouped(session, filters, ("failure_reason",), failed_only=True)
        reasons.update({reason or "unknown": count for reason, count, _, _ in failed})
    return {key: (sums[0], sums[1], sums[2]) for key, sums in main.items()}, methods, reasons


def payment_stats(
    *, session: Session, actor: User, filters: PaymentFilters, days: int = 30, now: datetime | None = None
) -> PaymentStats:
    """Counts, revenue, success rate, average ticket, revenue per day, methods and failure reasons
    of the payments matching `filters`. Raises PermissionDenied unless staff, InvalidFilter for `days`.
    """
    require_staff_reader(actor)
    if days not in (30, 90):
        raise InvalidFilter("Chart the last 30 or 90 days.", field="days")
    today = (now or utcnow()).astimezone(UTC).date()
    week_start, month_start = today - timedelta(days=today.weekday()), today.replace(day=1)
    revenue: defaultdict[str, int] = defaultdict(int)
    refunded: defaultdict[str, int] = defaultdict(int)
    gross: defaultdict[str, int] = defaultdict(int)
    collected_count: Counter[str] = Counter()
    per_day: defaultdict[date, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
    today_count = week_count = month_count = total = failed = 0
    main, methods, reasons = _stat_groups(session, filters)
    for (day, currency, status), (count, amount, refunds) in main.items():
        total += count
        today_count += count if day == today else 0
        week_count += count if week_start <= day <= today else 0
        month_count += count if month_start <= day <= today else 0
        if status in COLLECTED:
            revenue[currency] += amount - refunds
            refunded[currency] += refunds
            gross[currency] += amount
            collected_count[currency] += count
            per_day[day][currency] += amount - refunds
        elif status == PaymentStatus.FAILED:
            failed += count
    collected = sum(collected_count.values())
    first_day = today - timedelta(days=days - 1)
    return PaymentStats(
        today_count=today_count,
        week_count=week_count,
        month_count=month_count,
        total_count=total,
        succeeded_count=collected,
        failed_count=failed,
        success_rate=collected / (collected + failed) if collected + failed else None,
        revenue_by_currency=dict(sorted(revenue.items())),
        refunded_by_currency=dict(sorted(refunded.items())),
        average_ticket_by_currency={
            currency: gross[currency] // count for currency, count in sorted(collected_count.items()) if count
        },
        revenue_per_day=[
            DayRevenue(day, dict(per_day.get(day, {})))
            for day in (first_day + timedelta(days=offset) for offset in range(days))
        ],
        method_counts=dict(methods.most_common()),
        failure_reasons=reasons.most_common(8),
    )


# --- CSV export -------------------------------------------------------------------------------------

# A cell starting with one of these is a formula in Excel, LibreOffice and Google Sheets.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def _safe_cell(value: Any, postgres: bool) -> Any:
    """SQL for a text cell a spreadsheet would run as a formula, neutralised (OWASP: prefix a quote).

    Done by the database, like the formatting below, so the export streams rows straight from the
    cursor to the csv module (which does the RFC 4180 quoting) at several times the speed of
    formatting each value in Python.
    """
    character = func.chr if postgres else func.char
    starts = [literal(start) for start in _FORMULA_STARTS if start.isprintable()]
    starts += [character(ord(start)) for start in _FORMULA_STARTS if not start.isprintable()]
    text_value = func.coalesce(value, literal(""))
    return case((func.substr(text_value, 1, 1).in_(starts), literal("'") + text_value), else_=text_value)


def _major_sql(amount: Any, postgres: bool) -> Any:
    """Minor units as exact major-unit text ("1234.56") in SQL; every currency here has two decimals."""
    whole = cast(amount.op("/")(100), String)  # integer division on both backends (amounts are >= 0)
    if postgres:
        return whole + literal(".") + func.lpad(cast(amount % 100, String), 2, literal("0"))
    return whole + literal(".") + func.substr(literal("00") + cast(amount % 100, String), -2, 2)


def _export_columns(session: Session) -> tuple[Any, ...]:
    """The exported cells in CSV_HEADER's order, formatted by the database: no ORM objects, no Python
    per value, for a million rows."""
    postgres = is_postgresql(session)
    if postgres:
        created = func.to_char(func.timezone("UTC", col(Payment.created_at)), 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
    else:
        created = func.strftime("%Y-%m-%dT%H:%M:%SZ", col(Payment.created_at))
    return (
        _safe_cell(col(Payment.reference), postgres),
        created,
        col(Payment.status),
        _major_sql(col(Payment.amount_minor), postgres),
        _major_sql(col(Payment.refunded_minor), postgres),
        col(Payment.currency),
        _safe_cell(col(Payment.provider), postgres),
        _safe_cell(col(Payment.method), postgres),
        col(Payment.purpose),
        _safe_cell(col(User.display_name), postgres),
        _safe_cell(col(User.email), postgres),
        _safe_cell(col(Payment.receiver), postgres),
        _safe_cell(col(Payment.description), postgres),
        _safe_cell(col(Payment.provider_reference), postgres),
        _safe_cell(col(Payment.failure_reason), postgres),
    )


def open_payments_export(
    *, token: str | None, kind: SessionKind, filters: PaymentFilters, sort: str = "-created_at"
) -> Iterator[str]:
    """Check the caller now (raises SessionExpired, PermissionDenied, InvalidFilter before anything is
    sent), then return the CSV of exactly the filtered payments as chunks of text, RFC 4180 quoted.

    The rows come through a server-side cursor in batches of EXPORT_BATCH, in their own read-only
    transaction, so memory stays flat whatever the number of rows.
    """
    ordering = _ordering(sort)
    with unit_of_work() as session:
        actor, _ = authenticate_token(session=session, token=token, kind=kind)
        require_staff_reader(actor)
    return _stream_csv(filters, ordering)


def _stream_csv(filters: PaymentFilters, ordering: tuple[Any, ...]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180: CRLF, quotes doubled, minimal quoting
    writer.writerow(CSV_HEADER)
    yield buffer.getvalue()
    with unit_of_work() as session:
        statement = _where_payments(
            select(*_export_columns(session)).join(User, col(Payment.user_id) == User.id), filters
        ).order_by(*ordering)
        rows = session.execute(statement.execution_options(yield_per=EXPORT_BATCH))
        for batch in rows.partitions():
            buffer.seek(0)
            buffer.truncate()
            writer.writerows(batch)
            yield buffer.getvalue()


# --- staff activity -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StaffActivity:
    at: datetime
    email: str
    name: str
    role: str
    action: str  # signed_in | signed_out


def list_staff_activity(*, session: Session, actor: User, limit: int = 12) -> list[StaffActivity]:
    """Recent sign-ins and sign-outs of staff (browser sessions), newest first. Raises PermissionDenied."""
    require_staff_reader(actor)
    staff = select(UserSession, User).join(User, col(UserSession.user_id) == User.id)
    staff = staff.where(col(User.role).in_([str(role) for role in STAFF_READERS]))
    staff = staff.where(UserSession.kind == SessionKind.BROWSER)
    started = session.exec(staff.order_by(col(UserSession.created_at).desc()).limit(limit)).all()
    ended = session.exec(
        staff.where(col(UserSession.revoked_at).is_not(None)).order_by(col(UserSession.revoked_at).desc()).limit(limit)
    ).all()
    items = [
        StaffActivity(record.created_at, user.email, user.display_name, user.role, "signed_in")
        for record, user in started
    ]
    items += [
        StaffActivity(record.revoked_at, user.email, user.display_name, user.role, "signed_out")
        for record, user in ended
        if record.revoked_at is not None
    ]
    return sorted(items, key=lambda item: item.at, reverse=True)[:limit]
