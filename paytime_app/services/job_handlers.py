"""Importing this module registers every background job handler; workers import it before claiming."""

from paytime_app.services import accounts, bookings, calls, events, ious, ledger, mail, payments

REGISTERED_MODULES = (accounts, bookings, calls, events, ious, ledger, mail, payments)
