"""Organizer CRUD for events, ticket types and coupons; the public list with its filters."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlmodel import col, delete, select

import paytime_app.services.job_handlers  # noqa: F401  registers every job kind run_due_jobs may meet
from paytime_app.db import in_transaction, unit_of_work
from paytime_app.errors import DomainError
from paytime_app.models.events import Event, EventStatus, EventViewTotal
from paytime_app.models.jobs import Job
from paytime_app.models.users import Role, User
from paytime_app.services import events
from paytime_app.services.bookings import create_booking
from paytime_app.services.events import (
    END_EVENT_JOB,
    VIEW_SHARDS,
    cancel_event,
    create_coupon,
    create_event,
    duplicate_event,
    event_views,
    get_public_event,
    list_own_events,
    list_public_events,
    price_in_force,
    publish_event,
    record_event_view,
    refund_percent,
    save_ticket_type,
    update_event,
)
from paytime_app.services.job_handlers import book_recurring_work
from paytime_app.services.jobs import run_due_jobs
from paytime_app.services.users import create_user

T0 = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def person(email: str, role: Role = Role.CUSTOMER) -> User:
    return in_transaction(
        create_user, email=email, display_name=email.split("@", maxsplit=1)[0], password=None, role=role
    )


@pytest.fixture
def organizer(engine) -> User:
    return person("org@example.com", Role.SELLER)


def code_of(service, **kwargs) -> str:
    with pytest.raises(DomainError) as refused:
        in_transaction(service, **kwargs)
    return refused.value.code


def draft(organizer: User, title: str = "Jazz Night", days: int = 10, **fields):
    start = T0 + timedelta(days=days)
    return in_transaction(
        create_event, actor=organizer, title=title, starts_at=start, ends_at=start + timedelta(hours=3), **fields
    )


def test_customers_cannot_create_events(engine):
    assert code_of(
        create_event, actor=person("c@example.com"), title="Mine", starts_at=T0, ends_at=T0 + timedelta(1)
    ) == ("forbidden")


def test_publish_needs_a_ticket_type_and_then_lists_publicly(organizer):
    event = draft(organizer)
    assert code_of(publish_event, actor=organizer, event_id=event.id) == "no_ticket_types"
    with unit_of_work() as session:
        assert list_public_events(session=session) == ([], 0)
        with pytest.raises(DomainError):
            get_public_event(session=session, event_id=event.id)
    in_transaction(save_ticket_type, actor=organizer, event_id=event.id, name="Regular", price_minor=1000, capacity=5)
    published = in_transaction(publish_event, actor=organizer, event_id=event.id)
    assert published.status == EventStatus.PUBLISHED
    with unit_of_work() as session:
        summaries, total = list_public_events(session=session)
        assert total == 1
        assert (summaries[0].min_price_minor, summaries[0].seats_left) == (1000, 5)


def test_other_organizers_events_look_missing(organizer):
    event = draft(organizer)
    rival = person("rival@example.com", Role.SELLER)
    assert code_of(publish_event, actor=rival, event_id=event.id) == "not_found"
    assert (
        code_of(save_ticket_type, actor=rival, event_id=event.id, name="Free", price_minor=0, capacity=10)
        == "not_found"
    )


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"title": "x"}, "invalid_title"),
        ({"venue_type": "castle"}, "invalid_venue_type"),
        ({"timezone": "Mars/Olympus"}, "invalid_timezone"),
        ({"currency": "XYZ"}, "unsupported_currency"),
        ({"starts_at": T0 + timedelta(days=2), "ends_at": T0 + timedelta(days=1)}, "invalid_dates"),
    ],
)
def test_bad_event_fields_refused(organizer, fields, code):
    base = {"title": "Jazz", "starts_at": T0 + timedelta(days=1), "ends_at": T0 + timedelta(days=2)}
    assert code_of(create_event, actor=organizer, **{**base, **fields}) == code


def test_public_filters_search_venue_date_price(organizer):
    for title, venue_type, days, price in [("Jazz Night", "event", 5, 1000), ("Derby", "sports", 20, 9000)]:
        event = draft(organizer, title=title, days=days, venue_type=venue_type)
        in_transaction(save_ticket_type, actor=organizer, event_id=event.id, name="Std", price_minor=price, capacity=9)
        in_transaction(publish_event, actor=organizer, event_id=event.id)
    with unit_of_work() as session:
        titles = lambda **f: [s.event.title for s in list_public_events(session=session, **f)[0]]  # noqa: E731
        assert titles() == ["Jazz Night", "Derby"]
        assert titles(query="derb") == ["Derby"]
        assert titles(venue_type="sports") == ["Derby"]
        assert titles(starts_after=T0 + timedelta(days=10)) == ["Derby"]
        assert titles(max_price_minor=5000) == ["Jazz Night"]
        assert titles(page=2, page_size=1) == ["Derby"]


def test_public_list_shows_and_filters_on_the_price_in_force(organizer, clock):
    early_until = T0 + timedelta(days=2)
    event = draft(organizer, title="Early Jazz")
    in_transaction(
        save_ticket_type,
        actor=organizer,
        event_id=event.id,
        name="Std",
        price_minor=8000,
        capacity=9,
        price_tiers=[{"label": "Early bird", "price_minor": 3000, "until": early_until.isoformat()}],
    )
    in_transaction(
        save_ticket_type,
        actor=organizer,
        event_id=event.id,
        name="VIP",
        price_minor=2000,
        capacity=9,
        unlock_code="VIP-1",
    )
    in_transaction(publish_event, actor=organizer, event_id=event.id)
    with unit_of_work() as session:
        (summary,), total = list_public_events(session=session)
        assert (summary.min_price_minor, total) == (3000, 1)  # the tier, not the base price; hidden VIP unseen
        assert list_public_events(session=session, max_price_minor=5000)[1] == 1
        (row,) = get_public_event(session=session, event_id=event.id)[1]
        assert (row.price_minor, row.tier_label, row.tier_until, row.tier_left) == (
            3000,
            "Early bird",
            early_until,
            None,
        )
    clock.move_to(early_until + timedelta(minutes=1))
    with unit_of_work() as session:
        assert list_public_events(session=session)[0][0].min_price_minor == 8000
        assert list_public_events(session=session, max_price_minor=5000) == ([], 0)


def test_the_price_filter_prices_only_events_that_could_match(organizer, monkeypatch):
    for title, price, tiers in [
        ("Cheap", 1000, []),
        ("Dear", 9000, []),
        ("Dear with a tier", 9000, [{"label": "Last minute", "price_minor": 9500, "first_n": 5}]),
    ]:
        event = draft(organizer, title=title)
        in_transaction(
            save_ticket_type,
            actor=organizer,
            event_id=event.id,
            name="Std",
            price_minor=price,
            capacity=9,
            price_tiers=tiers,
        )
        in_transaction(publish_event, actor=organizer, event_id=event.id)
    priced = []
    summaries = events._summaries

    def recording(session, found, now):
        priced.extend(event.title for event in found)
        return summaries(session, found, now)

    monkeypatch.setattr(events, "_summaries", recording)
    with unit_of_work() as session:
        found, total = list_public_events(session=session, max_price_minor=5000)
    assert ([s.event.title for s in found], total) == (["Cheap"], 1)
    assert sorted(priced) == ["Cheap", "Dear with a tier"]  # a tier's price can only be known in force


def test_first_n_tier_says_how_many_are_left_at_its_price(organizer):
    event = draft(organizer)
    in_transaction(
        save_ticket_type,
        actor=organizer,
        event_id=event.id,
        name="Std",
        price_minor=8000,
        capacity=90,
        price_tiers=[{"label": "First 50", "price_minor": 4000, "first_n": 50}],
    )
    in_transaction(publish_event, actor=organizer, event_id=event.id)
    with unit_of_work() as session:
        (row,) = get_public_event(session=session, event_id=event.id)[1]
    assert (row.price_minor, row.tier_label, row.tier_until, row.tier_left) == (4000, "First 50", None, 50)


def test_duplicate_copies_types_and_coupons_without_sales(organizer):
    event = draft(organizer)
    ticket_type = in_transaction(
        save_ticket_type,
        actor=organizer,
        event_id=event.id,
        name="VIP",
        price_minor=5000,
        capacity=3,
        attributes={"Seat": "Front"},
    )
    in_transaction(
        create_coupon,
        actor=organizer,
        event_id=event.id,
        code="vip10",
        kind="percent",
        value=1000,
        ticket_type_ids=[ticket_type.id],
    )
    copy = in_transaction(duplicate_event, actor=organizer, event_id=event.id)
    assert copy.status == EventStatus.DRAFT
    assert copy.title == "Jazz Night (copy)"
    in_transaction(publish_event, actor=organizer, event_id=copy.id)
    with unit_of_work() as session:
        _event, rows = get_public_event(session=session, event_id=copy.id)
    assert [(r.ticket_type.name, r.ticket_type.attributes, r.seats_left) for r in rows] == [
        ("VIP", {"Seat": "Front"}, 3)
    ]


def test_update_refuses_currency_change_after_publish(organizer):
    event = draft(organizer)
    in_transaction(save_ticket_type, actor=organizer, event_id=event.id, name="Std", price_minor=100, capacity=1)
    in_transaction(publish_event, actor=organizer, event_id=event.id)
    assert (
        code_of(
            update_event,
            actor=organizer,
            event_id=event.id,
            title="Jazz",
            starts_at=event.starts_at,
            ends_at=event.ends_at,
            currency="USD",
        )
        == "currency_locked"
    )


def test_price_tiers_and_refund_policy_rules(organizer):
    event = draft(organizer, refund_policy=[[2, 80]])
    ticket_type = in_transaction(
        save_ticket_type,
        actor=organizer,
        event_id=event.id,
        name="Std",
        price_minor=1000,
        capacity=10,
        price_tiers=[{"label": "Early", "price_minor": 500, "until": (T0 + timedelta(days=1)).isoformat()}],
    )
    assert price_in_force(ticket_type, T0) == (500, "Early")
    assert price_in_force(ticket_type, T0 + timedelta(days=2)) == (1000, "")
    assert refund_percent(event, event.starts_at - timedelta(days=3)) == 80
    assert refund_percent(event, event.starts_at - timedelta(days=1)) == 0
    assert (
        code_of(
            save_ticket_type,
            actor=organizer,
            event_id=event.id,
            name="Bad",
            price_minor=1,
            capacity=1,
            price_tiers=[{"price_minor": 1}],
        )
        == "invalid_tiers"
    )


# --- events end by themselves ---------------------------------------------------------------------


def published(organizer: User, days: int = 1):
    event = draft(organizer, days=days)
    ticket_type = in_transaction(
        save_ticket_type, actor=organizer, event_id=event.id, name="Regular", price_minor=1000, capacity=5
    )
    return in_transaction(publish_event, actor=organizer, event_id=event.id), ticket_type


def status_of(event) -> EventStatus:
    with unit_of_work() as session:
        return session.get(Event, event.id).status


def test_event_ends_by_itself_at_its_end_time(organizer, clock):
    event, ticket_type = published(organizer)
    other, _ = published(organizer, days=5)
    clock.move_to(event.ends_at - timedelta(seconds=1))
    run_due_jobs(worker_id="test")
    assert status_of(event) == EventStatus.PUBLISHED
    clock.move_to(event.ends_at)
    run_due_jobs(worker_id="test")
    assert status_of(event) == EventStatus.ENDED
    assert status_of(other) == EventStatus.PUBLISHED
    with unit_of_work() as session:
        summaries, total = list_public_events(session=session)
        assert [s.event.id for s in summaries] == [other.id]
        assert total == 1
        shown, (availability,) = get_public_event(session=session, event_id=event.id)
        assert shown.status == EventStatus.ENDED
        assert (availability.on_sale, availability.sales_note) == (False, "This event has ended")
        assert [e.status for e in list_own_events(session=session, actor=organizer) if e.id == event.id] == ["ended"]
    buyer = person("ada@example.com")
    assert (
        code_of(create_booking, actor=buyer, event_id=event.id, items=[(ticket_type.id, 1)], idempotency_key="late-1")
        == "sales_closed"
    )
    assert code_of(cancel_event, actor=organizer, event_id=event.id) == "event_not_editable"


def test_moving_the_end_later_keeps_the_event_on_until_the_new_end(organizer, clock):
    event, _ = published(organizer)
    later = event.ends_at + timedelta(days=2)
    in_transaction(
        update_event, actor=organizer, event_id=event.id, title=event.title, starts_at=event.starts_at, ends_at=later
    )
    clock.move_to(event.ends_at + timedelta(minutes=1))
    run_due_jobs(worker_id="test")  # the job booked for the old end finds nothing to end
    assert status_of(event) == EventStatus.PUBLISHED
    clock.move_to(later)
    run_due_jobs(worker_id="test")
    assert status_of(event) == EventStatus.ENDED


def test_one_end_job_also_ends_events_whose_own_job_is_missing(organizer, clock):
    first, _ = published(organizer)
    second, _ = published(organizer, days=2)
    with unit_of_work() as session:
        session.exec(delete(Job).where(col(Job.dedupe_key).contains(str(first.id))))
    clock.move_to(second.ends_at)
    run_due_jobs(worker_id="test")
    assert (status_of(first), status_of(second)) == (EventStatus.ENDED, EventStatus.ENDED)


def test_a_starting_worker_ends_events_that_never_had_an_end_job(organizer, clock):
    event, _ = published(organizer)
    with unit_of_work() as session:
        session.exec(delete(Job).where(Job.kind == END_EVENT_JOB))
    clock.move_to(event.ends_at + timedelta(days=30))
    run_due_jobs(worker_id="test")
    assert status_of(event) == EventStatus.PUBLISHED
    in_transaction(book_recurring_work)
    in_transaction(book_recurring_work)  # a second worker starting in the same hour books nothing more
    with unit_of_work() as session:
        assert len(session.exec(select(Job).where(Job.kind == END_EVENT_JOB)).all()) == 1
    run_due_jobs(worker_id="test")
    assert status_of(event) == EventStatus.ENDED


def test_page_views_are_counted_for_the_organizer_but_not_their_own(organizer):
    event, _ = published(organizer, days=5)
    visitor = person("visitor@example.com")
    for _ in range(20):
        in_transaction(record_event_view, event_id=event.id, viewer_id=visitor.id)
    in_transaction(record_event_view, event_id=event.id, viewer_id=None)
    in_transaction(record_event_view, event_id=event.id, viewer_id=organizer.id)
    hidden = draft(organizer, title="Still a draft")
    in_transaction(record_event_view, event_id=hidden.id, viewer_id=visitor.id)
    assert in_transaction(event_views, actor=organizer, event_id=event.id) == 21
    assert in_transaction(event_views, actor=organizer, event_id=hidden.id) == 0
    with unit_of_work() as session:
        shards = session.exec(select(EventViewTotal).where(EventViewTotal.event_id == event.id)).all()
    assert 1 < len(shards) <= VIEW_SHARDS
    assert code_of(event_views, actor=visitor, event_id=event.id) == "not_found"
    assert code_of(event_views, actor=person("rival@example.com", Role.SELLER), event_id=event.id) == "not_found"
