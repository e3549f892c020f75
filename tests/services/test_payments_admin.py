"""The staff payments dashboard: filters, totals, stats, detail, export, and the admin actions
(refund, notes, reconciliation) with their audit entries, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlmodel import col, func, select

from paytime_app.db import in_transaction, unit_of_work
from paytime_app.errors import DomainError
from paytime_app.models.audit import AuditLogEntry
from paytime_app.models.jobs import Job
from paytime_app.models.payments import Payment, PaymentDailyTotal, PaymentNote, PaymentPurpose, PaymentRefund
from paytime_app.models.sessions import SessionKind
from paytime_app.models.users import Role, User
from paytime_app.money import Currency
from paytime_app.services import payments
from paytime_app.services.jobs import run_due_jobs
from paytime_app.services.ledger import find_ledger_problems, get_balance, transfer
from paytime_app.services.payments import complete_refund, refund_payment
from paytime_app.services.payments_admin import (
    COUNT_CAP,
    CSV_HEADER,
    PaymentFilters,
    add_payment_note,
    count_payments,
    filters_to_params,
    get_payment_detail,
    list_payments,
    list_staff_activity,
    mark_for_reconciliation,
    open_payments_export,
    parse_filters,
    payment_stats,
)
from paytime_app.services.providers.base import ProviderRefused, ProviderUnavailable
from paytime_app.services.providers.resilience import reset_breakers
from paytime_app.services.sessions import ClientInfo, issue_api_tokens, start_browser_session
from paytime_app.services.users import create_user
from paytime_app.services.wallets import WalletKind, wallet_address
from tests.helpers import writers_can_proceed
from tests.services.test_payments import FAILED, code_of, deliver, mock, new_payment, opened, reload, settle

NGN = Currency.NGN


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(engine):
    reset_breakers()
    yield
    reset_breakers()
    with unit_of_work() as session:
        assert find_ledger_problems(session=session) == []


def run(service, **kwargs):
    return in_transaction(service, **kwargs)


def person(email: str, role: Role = Role.CUSTOMER, name: str | None = None) -> User:
    return in_transaction(
        create_user, email=email, display_name=name or email.split("@", maxsplit=1)[0].title(), password=None, role=role
    )


@pytest.fixture
def staff(engine) -> dict[str, User]:
    return {
        "admin": person("admin@example.com", Role.ADMIN),
        "viewer": person("viewer@example.com", Role.VIEWER),
        "customer": person("nosy@example.com"),
    }


@pytest.fixture
def ada(engine) -> User:
    return person("ada@example.com", name="Ada Obi")


def succeeded(user: User, **kwargs) -> Payment:
    payment = opened(user, **kwargs)
    deliver(settle(payment))
    return reload(payment)


def failed(user: User, **kwargs) -> Payment:
    payment = opened(user, **kwargs)
    deliver(settle(payment, FAILED))
    return reload(payment)


def wallet(user: User, currency: Currency = NGN) -> int:
    return in_transaction(get_balance, address=wallet_address(user.id, WalletKind.PRIMARY), currency=currency)


def audit_actions() -> list[str]:
    with unit_of_work() as session:
        return list(session.exec(select(AuditLogEntry.action).order_by(col(AuditLogEntry.created_at))).all())


def refund(actor: User, payment: Payment, amount_minor: int, key: str | None = None, reason: str = "asked"):
    return in_transaction(
        refund_payment,
        actor=actor,
        payment_id=payment.id,
        amount_minor=amount_minor,
        reason=reason,
        idempotency_key=key or f"refund-{uuid.uuid4()}",
    )


# --- refunds ---------------------------------------------------------------------------------------


def test_refund_full_through_provider_reverses_wallet_credit(staff, ada):
    payment = succeeded(ada, amount_minor=500_000)
    assert wallet(ada) == 500_000
    requested = refund(staff["admin"], payment, 500_000)
    assert requested.status == "pending"
    assert wallet(ada) == 0  # reserved at once, so it cannot be spent while the provider answers
    done = complete_refund(refund_id=requested.id)
    assert done.status == "succeeded"
    after = reload(payment)
    assert (after.status, after.refunded_minor) == ("refunded", 500_000)
    assert wallet(ada) == 0
    assert in_transaction(get_balance, address="provider:mock:clearing", currency=NGN) == 0
    assert audit_actions()[-2:] == ["payment.refund_requested", "payment.refunded"]


def test_refund_partial_twice_then_nothing_left(staff, ada):
    payment = succeeded(ada, amount_minor=10_000)
    complete_refund(refund_id=refund(staff["admin"], payment, 3_000).id)
    assert (reload(payment).status, reload(payment).refunded_minor) == ("partially_refunded", 3_000)
    complete_refund(refund_id=refund(staff["admin"], payment, 7_000).id)
    assert (reload(payment).status, wallet(ada)) == ("refunded", 0)
    assert code_of(refund, actor=staff["admin"], payment=payment, amount_minor=1) == "not_refundable"


def test_refund_same_key_refunds_once_other_request_refused(staff, ada):
    payment = succeeded(ada, amount_minor=10_000)
    first = refund(staff["admin"], payment, 4_000, key="k-1")
    assert refund(staff["admin"], payment, 4_000, key="k-1").id == first.id
    assert code_of(refund, actor=staff["admin"], payment=payment, amount_minor=5_000, key="k-1") == (
        "idempotency_mismatch"
    )
    complete_refund(refund_id=first.id)
    complete_refund(refund_id=first.id)
    assert reload(payment).refunded_minor == 4_000
    assert wallet(ada) == 6_000


def test_refund_more_than_left_refused_counting_pending_refunds(staff, ada):
    payment = succeeded(ada, amount_minor=10_000)
    refund(staff["admin"], payment, 6_000)  # still pending
    assert code_of(refund, actor=staff["admin"], payment=payment, amount_minor=4_001) == "refund_exceeds_payment"
    assert code_of(refund, actor=staff["admin"], payment=payment, amount_minor=0) == "invalid_amount"


@pytest.mark.parametrize("role", ["viewer", "customer"])
def test_refund_refused_for_non_admin_and_nothing_written(staff, ada, role):
    payment = succeeded(ada, amount_minor=10_000)
    before = audit_actions()
    assert code_of(refund, actor=staff[role], payment=payment, amount_minor=1_000) == "forbidden"
    assert audit_actions() == before
    assert wallet(ada) == 10_000


def test_refund_of_unfinished_payment_refused(staff, ada):
    payment = opened(ada)
    assert code_of(refund, actor=staff["admin"], payment=payment, amount_minor=100) == "not_refundable"


def test_refund_when_customer_spent_the_money_refused(staff, ada):
    payment = succeeded(ada, amount_minor=10_000)
    in_transaction(
        transfer,
        source=wallet_address(ada.id, WalletKind.PRIMARY),
        destination="world",
        amount_minor=9_000,
        currency=NGN,
        idempotency_key="spent",
    )
    assert code_of(refund, actor=staff["admin"], payment=payment, amount_minor=5_000) == "insufficient_funds"
    assert in_transaction(lambda session: session.exec(select(func.count()).select_from(PaymentRefund)).one()) == 0


def test_refund_refused_by_provider_releases_the_money(staff, ada, monkeypatch):
    payment = succeeded(ada, amount_minor=10_000)

    def refuse(request):
        raise ProviderRefused(provider="mock", reason="charge_disputed")

    monkeypatch.setattr(mock(), "refund", refuse)
    done = complete_refund(refund_id=refund(staff["admin"], payment, 10_000).id)
    assert (done.status, done.failure_reason) == ("failed", "charge_disputed")
    assert (reload(payment).status, wallet(ada)) == ("succeeded", 10_000)
    assert audit_actions()[-1] == "payment.refund_failed"


def test_refund_provider_down_stays_pending_then_job_finishes(staff, ada, monkeypatch):
    payment = succeeded(ada, amount_minor=10_000)
    requested = refund(staff["admin"], payment, 2_500)
    real = mock().refund

    def down(request):
        raise ProviderUnavailable(provider="mock")

    monkeypatch.setattr(mock(), "refund", down)
    with pytest.raises(ProviderUnavailable):
        complete_refund(refund_id=requested.id)
    assert reload(payment).status == "succeeded"
    monkeypatch.setattr(mock(), "refund", real)
    with unit_of_work() as session:
        (job,) = session.exec(select(Job).where(Job.kind == "payments.refund")).all()
    assert job.payload == {"refund_id": str(requested.id)}
    assert run_due_jobs(worker_id="test") >= 1
    assert (reload(payment).status, reload(payment).refunded_minor) == ("partially_refunded", 2_500)


# --- daily totals stay equal to the rows ------------------------------------------------------------


def totals_by_status() -> dict[str, tuple[int, int]]:
    with unit_of_work() as session:
        rows = session.exec(
            select(
                PaymentDailyTotal.status, func.sum(PaymentDailyTotal.count), func.sum(PaymentDailyTotal.amount_minor)
            ).group_by(PaymentDailyTotal.status)
        ).all()
    return {status: (int(n), int(a)) for status, n, a in rows if n}


def rows_by_status() -> dict[str, tuple[int, int]]:
    with unit_of_work() as session:
        rows = session.exec(
            select(Payment.status, func.count(), func.sum(Payment.amount_minor)).group_by(Payment.status)
        ).all()
    return {status: (int(n), int(a)) for status, n, a in rows}


def test_daily_totals_follow_every_status_change(staff, ada):
    new_payment(ada, amount_minor=1_000)
    opened(ada, amount_minor=2_000)
    paid = succeeded(ada, amount_minor=3_000)
    failed(ada, amount_minor=4_000)
    complete_refund(refund_id=refund(staff["admin"], paid, 1_000).id)
    assert totals_by_status() == rows_by_status()
    assert totals_by_status()["partially_refunded"] == (1, 3_000)
    # Partially refunded again: the same totals row is both taken from and added to.
    complete_refund(refund_id=refund(staff["admin"], paid, 500).id)
    assert totals_by_status() == rows_by_status()
    with unit_of_work() as session:
        refunded = session.exec(select(func.sum(PaymentDailyTotal.refunded_minor))).one()
    assert refunded == 1_500


# --- the list --------------------------------------------------------------------------------------


@pytest.fixture
def history(staff, ada) -> dict[str, Payment]:
    """Payments over several days, statuses, currencies, amounts and customers."""
    ben = person("ben@example.com", name="Ben Okafor")
    made: dict[str, Payment] = {}
    with time_machine.travel(datetime(2026, 11, 2, 9, tzinfo=UTC), tick=False):
        made["old_ngn"] = succeeded(ada, amount_minor=150_000)
    with time_machine.travel(datetime(2026, 11, 10, 23, 59, tzinfo=UTC), tick=False):
        made["failed_usd"] = failed(ben, amount_minor=2_500, currency="USD")
    with time_machine.travel(datetime(2026, 11, 11, 0, 1, tzinfo=UTC), tick=False):
        made["credits"] = succeeded(ben, amount_minor=70_000, purpose=PaymentPurpose.CALL_CREDITS)
    with time_machine.travel(datetime(2026, 11, 20, 12, tzinfo=UTC), tick=False):
        made["processing"] = opened(ada, amount_minor=9_900)
    with time_machine.travel(datetime(2026, 11, 20, 12, 0, 30, tzinfo=UTC), tick=False):
        made["pending"] = new_payment(ben, amount_minor=1_000_000)
    return made


def listed(actor: User, sort: str = "-created_at", page_size: int = 25, **params) -> list[str]:
    found = in_transaction(list_payments, actor=actor, filters=parse_filters(params), sort=sort, page_size=page_size)
    return [row.payment.reference for row in found.rows]


def refs(history: dict[str, Payment], *names: str) -> list[str]:
    return [history[name].reference for name in names]


def test_list_newest_first_for_viewer(staff, history):
    assert listed(staff["viewer"]) == refs(history, "pending", "processing", "credits", "failed_usd", "old_ngn")


def test_list_refused_for_customer(staff, history):
    assert code_of(listed, actor=staff["customer"]) == "forbidden"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "succeeded"}, ("credits", "old_ngn")),
        ({"status": "failed,pending"}, ("pending", "failed_usd")),
        ({"currency": "USD"}, ("failed_usd",)),
        ({"purpose": "call_credits"}, ("credits",)),
        ({"provider": "mock", "method": "mock"}, ("pending", "processing", "credits", "failed_usd", "old_ngn")),
        ({"from": "2026-11-11"}, ("pending", "processing", "credits")),
        ({"to": "2026-11-10"}, ("failed_usd", "old_ngn")),
        ({"from": "2026-11-10", "to": "2026-11-10"}, ("failed_usd",)),
        ({"min": "700", "max": "1500"}, ("credits", "old_ngn")),
        ({"min": "10000"}, ("pending",)),
        ({"q": "ben@example"}, ("pending", "credits", "failed_usd")),
        ({"q": "ADA OBI"}, ("processing", "old_ngn")),
        ({"q": "call credits"}, ("credits",)),
        ({"q": "100%_"}, ()),
        ({"status": "succeeded", "currency": "NGN", "q": "ada", "from": "2026-11-01"}, ("old_ngn",)),
    ],
)
def test_list_filters(staff, history, params, expected):
    assert listed(staff["admin"], **params) == refs(history, *expected)


def test_list_search_by_reference_fragment(staff, history):
    fragment = history["credits"].reference[4:10].lower()
    assert listed(staff["admin"], q=fragment) == refs(history, "credits")


def test_list_sort_by_amount_both_ways(staff, history):
    ascending = refs(history, "failed_usd", "processing", "credits", "old_ngn", "pending")
    assert listed(staff["admin"], sort="amount") == ascending
    assert listed(staff["admin"], sort="-amount") == ascending[::-1]


def test_list_pages_and_totals(staff, history):
    first = in_transaction(list_payments, actor=staff["admin"], filters=PaymentFilters(), page_size=10)
    assert (first.total, first.total_pages, first.total_exact) == (5, 1, True)
    searched = in_transaction(list_payments, actor=staff["admin"], filters=parse_filters({"q": "ben"}), page_size=10)
    assert (searched.total, searched.total_exact) == (3, True)
    assert code_of(run, service=list_payments, actor=staff["admin"], filters=PaymentFilters(), page_size=7)


def test_list_page_beyond_the_last_shows_the_last(staff, ada):
    for amount in range(1, 13):
        new_payment(ada, amount_minor=amount * 100)
    page = in_transaction(list_payments, actor=staff["admin"], filters=PaymentFilters(), page=9, page_size=10)
    assert (page.page, page.total_pages, len(page.rows)) == (2, 2, 2)


def test_counts_from_totals_equal_counts_from_rows(staff, history):
    for params in ({}, {"status": "succeeded"}, {"from": "2026-11-11"}, {"currency": "NGN", "to": "2026-11-10"}):
        filters = parse_filters(params)
        by_totals = in_transaction(count_payments, filters=filters)
        # An amount bound that excludes nothing forces the row path.
        by_rows = in_transaction(count_payments, filters=parse_filters({**params, "min": "0"}))
        assert by_totals == by_rows, params


def test_count_is_bounded_for_row_filters(staff, ada, monkeypatch):
    monkeypatch.setattr("paytime_app.services.payments_admin.COUNT_CAP", 3)
    for amount in range(1, 6):
        new_payment(ada, amount_minor=amount * 100)
    assert in_transaction(count_payments, filters=parse_filters({"q": "ada"})) == (3, False)
    assert in_transaction(count_payments, filters=PaymentFilters()) == (5, True)
    assert COUNT_CAP >= 1000


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "paid"}, "status"),
        ({"currency": "EUR"}, "currency"),
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-11-05", "to": "2026-11-01"}, "from"),
        ({"min": "abc"}, "min"),
        ({"min": "-1"}, "min"),
        ({"min": "1.234"}, "min"),
        ({"min": "50", "max": "10"}, "min"),
    ],
)
def test_parse_filters_refuses_bad_input_naming_the_field(params, field):
    with pytest.raises(DomainError) as caught:
        parse_filters(params)
    assert caught.value.code == "invalid_filter"
    assert caught.value.details["field"] == field


def test_filters_round_trip_through_the_url():
    params = {"status": "failed,succeeded", "currency": "NGN", "from": "2026-11-01", "min": "10.5", "q": "ada obi"}
    filters = parse_filters(params)
    assert parse_filters(filters_to_params(filters)) == filters
    assert filters.amount_min_minor == 1_050


# --- detail -----------------------------------------------------------------------------------------


def test_detail_timeline_has_status_changes_webhook_ledger_refund_and_note(staff, ada):
    payment = succeeded(ada, amount_minor=10_000)
    complete_refund(refund_id=refund(staff["admin"], payment, 4_000, reason="duplicate order").id)
    in_transaction(add_payment_note, actor=staff["admin"], payment_id=payment.id, body="Called the customer.")
    detail = in_transaction(get_payment_detail, actor=staff["viewer"], payment_id=payment.id)
    kinds = [item.kind for item in detail.timeline]
    assert kinds.count("status") == 4  # new → pending → processing → succeeded → partially refunded
    assert {"webhook", "ledger", "refund", "note"} <= set(kinds)
    assert detail.refundable_minor == 6_000
    assert detail.customer_email == "ada@example.com"
    assert [item.at for item in detail.timeline] == sorted(item.at for item in detail.timeline)


def test_detail_unknown_payment_not_found_and_customer_refused(staff, ada):
    assert code_of(run, service=get_payment_detail, actor=staff["admin"], payment_id=uuid.uuid4()) == ("not_found")
    payment = new_payment(ada)
    assert code_of(run, service=get_payment_detail, actor=ada, payment_id=payment.id) == "forbidden"


# --- notes and reconciliation -----------------------------------------------------------------------


def test_note_admin_only_audited_and_not_empty(staff, ada):
    payment = new_payment(ada)
    in_transaction(add_payment_note, actor=staff["admin"], payment_id=payment.id, body="  Checked with bank.  ")
    assert audit_actions()[-1] == "payment.note_added"
    assert code_of(run, service=add_payment_note, actor=staff["viewer"], payment_id=payment.id, body="x") == (
        "forbidden"
    )
    assert code_of(run, service=add_payment_note, actor=staff["admin"], payment_id=payment.id, body=" ") == (
        "invalid_note"
    )
    with unit_of_work() as session:
        assert session.exec(select(PaymentNote.body)).all() == ["Checked with bank."]


def test_mark_for_reconciliation_asks_provider_through_a_job(staff, ada):
    payment = opened(ada, amount_minor=5_000)
    settle(payment)  # the payer paid, but the webhook never arrived
    marked = in_transaction(mark_for_reconciliation, actor=staff["admin"], payment_id=payment.id)
    assert marked.reconcile_requested_at is not None
    assert audit_actions()[-1] == "payment.reconciliation_requested"
    run_due_jobs(worker_id="test")
    assert reload(payment).status == "succeeded"
    assert wallet(ada) == 5_000


def test_reconciliation_asked_by_an_admin_holds_no_lock_while_the_provider_answers(engine, staff, ada, monkeypatch):
    payment = opened(ada, amount_minor=5_000)
    settle(payment)
    real = mock().fetch_payment
    writers_free = []

    def observed(**request):
        writers_free.append(writers_can_proceed(engine))
        return real(**request)

    monkeypatch.setattr(mock(), "fetch_payment", observed)
    in_transaction(mark_for_reconciliation, actor=staff["admin"], payment_id=payment.id)
    run_due_jobs(worker_id="test")
    assert writers_free == [True]
    assert reload(payment).status == "succeeded"


def test_mark_for_reconciliation_refused_for_viewer_and_final_payments(staff, ada):
    payment = succeeded(ada)
    assert code_of(run, service=mark_for_reconciliation, actor=staff["admin"], payment_id=payment.id) == ("not_stuck")
    stuck = opened(ada)
    assert code_of(run, service=mark_for_reconciliation, actor=staff["viewer"], payment_id=stuck.id) == ("forbidden")
    assert reload(stuck).reconcile_requested_at is None


# --- stats ------------------------------------------------------------------------------------------


def test_stats_figures(staff, history):
    now = datetime(2026, 11, 20, 18, tzinfo=UTC)  # a Friday
    stats = in_transaction(payment_stats, actor=staff["viewer"], filters=PaymentFilters(), now=now)
    assert (stats.total_count, stats.succeeded_count, stats.failed_count) == (5, 2, 1)
    assert stats.success_rate == pytest.approx(2 / 3)
    assert (stats.today_count, stats.week_count, stats.month_count) == (2, 2, 5)
    assert stats.revenue_by_currency == {"NGN": 220_000}
    assert stats.average_ticket_by_currency == {"NGN": 110_000}
    assert stats.failure_reasons == [("failed", 1)]
    assert stats.method_counts == {"mock": 5}
    assert len(stats.revenue_per_day) == 30
    by_day = {item.day: item.by_currency for item in stats.revenue_per_day}
    assert by_day[date(2026, 11, 2)] == {"NGN": 150_000}
    assert by_day[date(2026, 11, 11)] == {"NGN": 70_000}


def test_stats_respect_filters_and_agree_between_totals_and_rows(staff, history):
    now = datetime(2026, 11, 20, 18, tzinfo=UTC)
    for params in ({}, {"currency": "USD"}, {"from": "2026-11-11"}, {"status": "succeeded,failed"}):
        by_totals = in_transaction(payment_stats, actor=staff["admin"], filters=parse_filters(params), now=now)
        by_rows = in_transaction(
            payment_stats, actor=staff["admin"], filters=parse_filters({**params, "min": "0"}), now=now
        )
        assert by_totals == by_rows, params
    usd = in_transaction(payment_stats, actor=staff["admin"], filters=parse_filters({"currency": "USD"}), now=now)
    assert (usd.total_count, usd.failed_count, usd.success_rate, usd.revenue_by_currency) == (1, 1, 0.0, {})
    searched = in_transaction(payment_stats, actor=staff["admin"], filters=parse_filters({"q": "ben"}), now=now)
    assert searched.revenue_by_currency == {"NGN": 70_000}


def test_stats_refunds_lower_revenue(staff, ada):
    payment = succeeded(ada, amount_minor=10_000)
    complete_refund(refund_id=refund(staff["admin"], payment, 2_500).id)
    stats = in_transaction(payment_stats, actor=staff["admin"], filters=PaymentFilters(), days=90)
    assert stats.revenue_by_currency == {"NGN": 7_500}
    assert stats.refunded_by_currency == {"NGN": 2_500}
    assert len(stats.revenue_per_day) == 90
    assert code_of(run, service=payment_stats, actor=staff["customer"], filters=PaymentFilters()) == ("forbidden")


# --- CSV export -------------------------------------------------------------------------------------


def api_token(user: User) -> str:
    return in_transaction(issue_api_tokens, user=user, client=ClientInfo()).token


def exported(user: User, **params) -> list[list[str]]:
    chunks = open_payments_export(token=api_token(user), kind=SessionKind.API, filters=parse_filters(params))
    text = "".join(chunks)
    assert "\r\n" in text
    return list(csv.reader(io.StringIO(text, newline="")))


def test_export_is_exactly_the_filtered_set_in_major_units(staff, history):
    for params in ({}, {"status": "succeeded"}, {"q": "ben"}, {"from": "2026-11-11", "min": "50"}):
        rows = exported(staff["viewer"], **params)
        assert rows[0] == list(CSV_HEADER)
        assert [row[0] for row in rows[1:]] == listed(staff["admin"], **params), params
    (usd,) = exported(staff["viewer"], currency="USD")[1:]
    assert (usd[3], usd[5], usd[2]) == ("25.00", "USD", "failed")


def test_export_quotes_and_neutralises_formulas(staff, engine):
    evil = person("evil@example.com", name='=HYPERLINK("http://x","click"), "quoted"\nnext')
    new_payment(evil, amount_minor=1_234_56)
    (row,) = exported(staff["admin"])[1:]
    assert row[9] == '\'=HYPERLINK("http://x","click"), "quoted"\nnext'
    assert row[3] == "1234.56"


@pytest.mark.parametrize("text", ["=1+1", "+1 555", "-2+3", "@SUM(A1)", "\tTab", "\rReturn", "\nLine"])
def test_export_neutralises_every_formula_start(staff, ada, text):
    payment = new_payment(ada, amount_minor=5)
    with unit_of_work() as session:  # a description as a provider or another feature might write it
        session.get(Payment, payment.id).description = text
    (row,) = exported(staff["admin"])[1:]
    assert row[12] == "'" + text
    assert row[3] == "0.05"


def test_export_leaves_plain_cells_alone(staff, ada):
    new_payment(ada, amount_minor=100_000_07)
    (row,) = exported(staff["admin"])[1:]
    assert (row[9], row[10], row[3], row[4]) == ("Ada Obi", "ada@example.com", "100000.07", "0.00")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row[1])


def test_export_refused_before_anything_is_sent(staff):
    with pytest.raises(DomainError) as caught:
        open_payments_export(token=api_token(staff["customer"]), kind=SessionKind.API, filters=PaymentFilters())
    assert caught.value.code == "forbidden"
    with pytest.raises(DomainError) as caught:
        open_payments_export(token="nope", kind=SessionKind.API, filters=PaymentFilters())
    assert caught.value.code in ("session_expired", "authentication_required")


# --- staff activity ---------------------------------------------------------------------------------


def test_staff_activity_lists_staff_sign_ins_and_outs_only(staff, ada):
    in_transaction(start_browser_session, user=staff["viewer"], client=ClientInfo())
    issued = in_transaction(start_browser_session, user=staff["admin"], client=ClientInfo())
    in_transaction(start_browser_session, user=ada, client=ClientInfo())
    in_transaction(payments_end_session, token=issued.token)
    feed = in_transaction(list_staff_activity, actor=staff["viewer"])
    assert [(item.email, item.action) for item in feed][:1] == [("admin@example.com", "signed_out")]
    assert {item.email for item in feed} == {"admin@example.com", "viewer@example.com"}
    assert code_of(run, service=list_staff_activity, actor=ada) == "forbidden"


def payments_end_session(*, session, token):
    from paytime_app.services.sessions import end_session  # noqa: PLC0415

    end_session(session=session, token=token)


def test_new_payment_tells_staff_dashboards(ada, monkeypatch):
    from paytime_app import bus  # noqa: PLC0415

    messages: list[dict] = []
    monkeypatch.setattr(bus, "publish", messages.append)
    payment = new_payment(ada)
    assert {"topic": payments.STAFF_TOPIC, "payment_id": str(payment.id), "status": "pending"} in messages
    assert timedelta(0) <= datetime.now(UTC) - payment.created_at < timedelta(minutes=1)


def test_text_filter_pages_from_one_scan_and_asks_past_the_end_as_the_last_page(staff, ada):
    for amount in range(1, 13):
        new_payment(ada, amount_minor=amount * 100)
    filters = parse_filters({"q": "ada"})
    first = in_transaction(list_payments, actor=staff["admin"], filters=filters, sort="amount", page_size=10)
    assert (first.total, first.total_exact, first.total_pages) == (12, True, 2)
    assert [row.payment.amount_minor for row in first.rows] == [amount * 100 for amount in range(1, 11)]
    beyond = in_transaction(list_payments, actor=staff["admin"], filters=filters, sort="amount", page=5, page_size=10)
    assert (beyond.page, [row.payment.amount_minor for row in beyond.rows]) == (2, [1_100, 1_200])
    nothing = in_transaction(list_payments, actor=staff["admin"], filters=parse_filters({"q": "nobody"}))
    assert (nothing.total, nothing.rows, nothing.page) == (0, [], 1)


def test_more_matches_than_the_cap_still_pages_in_order(staff, ada, monkeypatch):
    monkeypatch.setattr("paytime_app.services.payments_admin.COUNT_CAP", 3)
    for amount in range(1, 6):
        new_payment(ada, amount_minor=amount * 100)
    found = in_transaction(list_payments, actor=staff["admin"], filters=parse_filters({"q": "ada"}), sort="-amount")
    assert (found.total, found.total_exact) == (3, False)
    assert [row.payment.amount_minor for row in found.rows] == [500, 400, 300, 200, 100]
