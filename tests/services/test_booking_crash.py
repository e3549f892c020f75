"""A real crash: another process takes 30 holds on PostgreSQL (and is in the middle of a 31st) when it
is killed with SIGKILL; any worker later gives every seat back once the holds expire."""

# ruff: noqa: F811  the fixtures imported from test_bookings are requested by name, as arguments

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import time_machine
from sqlmodel import func, select

import paytime_app.services.job_handlers  # noqa: F401  registers every job kind run_due_jobs may meet
from paytime_app.db import unit_of_work
from paytime_app.models.bookings import Booking, BookingStatus
from paytime_app.models.events import Event, TicketType
from paytime_app.services.events import seats_left
from paytime_app.services.jobs import run_due_jobs
from paytime_app.settings import get_settings
from tests.services.test_bookings import (  # noqa: F401  fixtures are used by name
    _closed_breakers,
    _ledger_stays_consistent,
    counters,
    new_event,
    organizer,
    person,
    require_postgresql,
)

REPO = Path(__file__).resolve().parents[2]
HOLDS = 30

# Runs in the doomed process: commit one hold per buyer, then leave one more hold open mid-transaction.
HOLDER = textwrap.dedent(
    """
    import sys, time, uuid
    from paytime_app.db import build_engine, in_transaction, unit_of_work, use_engine
    from paytime_app.models.users import User
    from paytime_app.services.bookings import create_booking

    url, event_id, type_id, *buyer_ids = sys.argv[1:]
    use_engine(build_engine(url))

    def hold(session, buyer_id):
        return create_booking(
            session=session,
            actor=session.get(User, uuid.UUID(buyer_id)),
            event_id=uuid.UUID(event_id),
            items=[(uuid.UUID(type_id), 1)],
            idempotency_key=f"crash:{buyer_id}",
        )

    for buyer_id in buyer_ids[:-1]:
        in_transaction(hold, buyer_id=buyer_id)
    with unit_of_work() as session:
        hold(session, buyer_ids[-1])
        session.flush()
        print("ready", flush=True)
        time.sleep(600)
    """
)


def test_process_killed_with_30_open_holds_gives_every_seat_back_after_expiry(engine, organizer):
    require_postgresql(engine)
    event, ticket_type = new_event(organizer, capacity=HOLDS + 1)
    buyers = [person(f"crash{i}@example.com") for i in range(HOLDS + 1)]
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOLDER,
            engine.url.render_as_string(hide_password=False),
            str(event.id),
            str(ticket_type.id),
            *(str(buyer.id) for buyer in buyers),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        ready = holder.stdout.readline().strip()
        assert ready == "ready", holder.stderr.read() if holder.stderr else ready
        assert counters(ticket_type) == (0, HOLDS)  # the open 31st hold is not visible to anyone else
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
    assert holder.returncode == -signal.SIGKILL
    assert counters(ticket_type) == (0, HOLDS)  # the killed transaction rolled back; the committed holds stay

    # Nothing of the dead process is needed: the expiry jobs are rows, and any worker runs them when due.
    expiry = get_settings().booking_hold_minutes
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=expiry, seconds=5), tick=False):
        while run_due_jobs(worker_id=f"after-crash-{uuid.uuid4().hex[:6]}", limit=50):
            pass
    assert counters(ticket_type) == (0, 0)
    with unit_of_work() as session:
        reloaded_event = session.get(Event, event.id)
        reloaded_type = session.get(TicketType, ticket_type.id)
        assert seats_left(reloaded_type, reloaded_event) == reloaded_type.capacity
        expired = session.exec(
            select(func.count()).where(Booking.event_id == event.id, Booking.status == BookingStatus.EXPIRED)
        ).one()
        assert expired == HOLDS
        assert session.exec(select(func.count()).where(Booking.event_id == event.id)).one() == HOLDS
