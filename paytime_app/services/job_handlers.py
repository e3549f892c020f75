"""Importing this module registers every background job handler; workers import it before claiming."""

from paytime_app.services import accounts, calls, ious, ledger, mail, payments

REGISTERED_MODULES = (accounts, calls, ious, ledger, mail, payments)
