"""Importing this module registers every background job handler; workers import it before claiming.

`book_recurring_work` is what a worker books when it starts: recurring work books its next run
itself, and every worker booking the first one is deduplicated.
"""

from sqlmodel import Session

from paytime_app.services import accounts, bookings, calls, events, ious, ledger, mail, payments

REGISTERED_MODULES = (accounts, bookings, calls, events, ious, ledger, mail, payments)


def book_recurring_work(*, session: Session) -> None:
    payments.schedule_reconciliation(session=session)
    events.schedule_end_sweep(session=session)
