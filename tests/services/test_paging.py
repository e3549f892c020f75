"""Every list service reads a page it can answer, whatever page number a caller passes on."""

import pytest

from paytime_app.db import in_transaction
from paytime_app.models.users import Role
from paytime_app.money import Currency
from paytime_app.services.audit import search_audit_log
from paytime_app.services.bookings import list_own_bookings
from paytime_app.services.calls import list_calls
from paytime_app.services.events import list_public_events
from paytime_app.services.ious import list_ious
from paytime_app.services.jobs import list_troubled_jobs
from paytime_app.services.ledger import list_entries
from paytime_app.services.paging import MAX_PAGE, page_bounds, page_count
from paytime_app.services.payments import list_own_payments
from paytime_app.services.payments_admin import PaymentFilters, list_payments
from paytime_app.services.sellers import list_applications
from paytime_app.services.users import create_user, search_users

BEYOND_ANY_OFFSET = 2**63


def test_page_bounds_hold_page_and_size_within_reach():
    assert page_bounds(-5, 0) == (1, 1)
    assert page_bounds(BEYOND_ANY_OFFSET, 10**9, largest_size=50) == (MAX_PAGE, 50)
    assert page_bounds(3, 20) == (3, 20)


def test_page_count_rounds_up_and_an_empty_list_has_one_page():
    assert [page_count(total, 25) for total in (0, 1, 25, 26, 50)] == [1, 1, 1, 2, 2]


# Each list service with what it needs besides the page; `actor` is a super admin.
LISTS = {
    "own_payments": (list_own_payments, {"actor"}),
    "own_bookings": (list_own_bookings, {"actor"}),
    "calls": (list_calls, {"actor"}),
    "ious": (list_ious, {"actor"}),
    "public_events": (list_public_events, set()),
    "ledger_entries": (list_entries, {"address", "currency"}),
    "audit_log": (search_audit_log, {"actor"}),
    "troubled_jobs": (list_troubled_jobs, {"actor"}),
    "seller_applications": (list_applications, {"actor"}),
}


@pytest.fixture
def admin(engine):
    return in_transaction(
        create_user, email="root@example.com", display_name="Root", password=None, role=Role.SUPER_ADMIN
    )


@pytest.mark.parametrize("name", sorted(LISTS))
def test_a_page_beyond_any_offset_reads_an_empty_page_instead_of_failing(admin, name):
    service, needs = LISTS[name]
    available = {"actor": admin, "address": "world", "currency": Currency.NGN, "filters": PaymentFilters()}
    found = in_transaction(service, page=BEYOND_ANY_OFFSET, **{key: available[key] for key in needs})
    assert list(found[0] if isinstance(found, tuple) else found) == []


def test_a_page_past_the_last_of_users_or_payments_reads_the_last(admin):
    """The staff lists take their page from the address, where old links and typed numbers go past the end."""
    users = in_transaction(search_users, actor=admin, page=BEYOND_ANY_OFFSET)
    assert (users.page, [user.id for user in users.users]) == (1, [admin.id])
    payments = in_transaction(list_payments, actor=admin, filters=PaymentFilters(), page=BEYOND_ANY_OFFSET)
    assert (payments.page, payments.rows) == (1, [])
