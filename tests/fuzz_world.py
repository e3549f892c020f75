"""A world for fuzz tests, and the strategies that draw from it.

The world is the demo data (customers with money and a friendship, a seller's published event with
tiers and a coupon) plus a paid booking with its tickets, an IOU, a pending top-up and a seller
application, with a way in for every demo account and a super admin. Ids drawn from it are mostly
of the kind a parameter or field is named after, else of any kind (so one user's booking is asked
for by another, a wallet's id stands for an event's) or random.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from argon2 import PasswordHasher
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import SQLModel

from paytime_app.db import in_transaction, unit_of_work
from paytime_app.models.events import TicketType
from paytime_app.models.payments import PaymentPurpose
from paytime_app.models.users import Role, User
from paytime_app.services import passwords
from paytime_app.services.bookings import create_booking, pay_booking
from paytime_app.services.demo import DEMO_ACCOUNTS, seed_demo_data
from paytime_app.services.ious import open_iou
from paytime_app.services.payments import create_payment
from paytime_app.services.sellers import apply_to_sell
from paytime_app.services.sessions import ClientInfo, issue_api_tokens, start_browser_session
from paytime_app.services.users import create_user, get_user_by_email

# Whole-body strings that tend to break parsers and converters.
AWKWARD_TEXT = st.sampled_from(
    [
        "",
        " ",
        "0",
        "-1",
        "NGN",
        "usd",
        "mock",
        "1e309",
        "NaN",
        "2026-13-45",
        "\x00",
        "a" * 5000,
        "💸",
        "=cmd|' /C calc'!A0",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.uuids().map(str)
    | AWKWARD_TEXT
)
ANY_JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=6,
)
# Id parameters and fields by the table they name.
_ID_TABLES = {
    "application_id": "seller_application",
    "booking_id": "booking",
    "borrower_id": "user_account",
    "call_id": "call",
    "callee_id": "user_account",
    "caller_id": "user_account",
    "device_id": "known_device",
    "event_id": "event",
    "iou_id": "iou",
    "lender_id": "user_account",
    "mail_id": "mail_message",
    "payment_id": "payment",
    "request_id": "friendship",
    "ticket_id": "ticket",
    "ticket_type_id": "ticket_type",
    "to_user_id": "user_account",
    "user_id": "user_account",
    "wallet_id": "ledger_account",
}
NOT_IDS = st.sampled_from(["0", "-1", "x", "00000000-0000-0000-0000-00000000000g", "a" * 300])


@dataclass(frozen=True)
class World:
    """The demo world with a bit of everything, its ids and words, and a way in for each account."""

    api_tokens: dict[str, str]  # access tokens by account label (the email's local part, or super_admin)
    browser_tokens: dict[str, str]  # browser session cookies by account label
    ids: dict[str, list[str]]  # a few ids of every table, by table
    words: list[str]  # the world's own emails, codes and names

    def id_like(self, name: str = "") -> st.SearchStrategy[str]:
        """Mostly an id of the table a parameter or field is named after, else any id or a random one."""
        anything = st.sampled_from([row_id for ids in self.ids.values() for row_id in ids]) | st.uuids().map(str)
        own = self.ids.get(_ID_TABLES.get(name.removesuffix("s"), ""))
        return st.one_of(st.sampled_from(own), st.sampled_from(own), anything) if own else anything

    def text(self) -> st.SearchStrategy[str]:
        return st.sampled_from(self.words) | st.text(max_size=60) | AWKWARD_TEXT


def build_world(monkeypatch: pytest.MonkeyPatch) -> World:
    # The demo accounts' password hashes cost most of building the world, once per test: made cheap
    # here, where no password strength is under test (a hash verifies with its own parameters).
    monkeypatch.setattr(passwords, "HASHER", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    in_transaction(seed_demo_data)
    root = in_transaction(
        create_user,
        email="root@example.com",
        display_name="Root",
        password=None,
        role=Role.SUPER_ADMIN,
        email_verified=True,
    )
    with unit_of_work() as session:
        ada = get_user_by_email(session=session, email="ada@paytime.local")
        ben = get_user_by_email(session=session, email="ben@paytime.local")
        ticket_type = session.exec(select(TicketType)).scalars().first()
    assert ada is not None
    assert ben is not None
    assert ticket_type is not None
    held = in_transaction(
        create_booking,
        actor=ada,
        event_id=ticket_type.event_id,
        items=[(ticket_type.id, 2)],
        idempotency_key="fuzz-world",
    )
    in_transaction(pay_booking, actor=ada, booking_id=held.id)
    in_transaction(
        open_iou,
        actor=ada,
        lender_id=ben.id,
        amount_minor=5_000,
        currency="NGN",
        method="cash",
        idempotency_key="fuzz-iou",
    )
    in_transaction(
        create_payment,
        actor=ada,
        purpose=PaymentPurpose.WALLET_TOPUP,
        amount_minor=10_000,
        currency="NGN",
        provider="mock",
        idempotency_key="fuzz-topup",
    )
    in_transaction(
        apply_to_sell, actor=ben, organisation_name="Ben Events", contact_email="ben@paytime.local", payout_country="NG"
    )
    with unit_of_work() as session:
        accounts = {account.email.split("@")[0]: account.email for account in DEMO_ACCOUNTS}
        users = {user.email: user for user in session.exec(select(User)).scalars()}
        ids = {
            table.name: [str(row_id) for row_id in session.exec(select(table.c.id).limit(5)).scalars()]
            for table in SQLModel.metadata.sorted_tables
            if "id" in table.columns
        }
    people = {**accounts, "super_admin": root.email}
    return World(
        api_tokens={
            label: in_transaction(issue_api_tokens, user=users[email], client=ClientInfo()).token
            for label, email in people.items()
        },
        browser_tokens={
            label: in_transaction(start_browser_session, user=users[email], client=ClientInfo()).token
            for label, email in people.items()
        },
        ids=ids,
        words=[*users, "JAZZ10", "jazz10", "Regular", "VIP table", held.reference],
    )
