"""Every API route, given random input by a signed-in user, answers without a server error.

The world is the demo data (customers with money and a friendship, a seller's published event with
tiers and a coupon) plus a paid booking with its tickets, an IOU, a pending top-up and a seller
application. Bodies are shaped after each route's OpenAPI schema (its field names, with values of
the declared type or of any other JSON type). Ids, in paths and bodies, are mostly the world's ids
of the kind they are named after, else its ids of any kind (so one user's booking is asked for by
another, a wallet's id stands for an event's) or random ones; query parameters get random values
of their declared names. Requests come from each demo account and a super admin. Whatever
arrives, the answer is below 500, and a 4xx says what is wrong with a stable `code`. A new route is
covered automatically.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import SQLModel

from paytime_app.api import create_api
from paytime_app.db import in_transaction, unit_of_work
from paytime_app.models.events import TicketType
from paytime_app.models.payments import PaymentPurpose
from paytime_app.models.users import Role, User
from paytime_app.services import passwords
from paytime_app.services.bookings import create_booking, pay_booking
from paytime_app.services.demo import DEMO_ACCOUNTS, seed_demo_data
from paytime_app.services.ious import open_iou
from paytime_app.services.paging import MAX_PAGE
from paytime_app.services.payments import create_payment
from paytime_app.services.sellers import apply_to_sell
from paytime_app.services.sessions import ClientInfo, issue_api_tokens
from paytime_app.services.users import create_user, get_user_by_email
from tests.api.test_route_matrix import api_routes

# Whole-body strings that tend to break parsers and converters.
_AWKWARD_TEXT = st.sampled_from(
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
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.uuids().map(str)
    | _AWKWARD_TEXT
)
_ANY_JSON = st.recursive(
    _SCALARS,
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
_NOT_IDS = st.sampled_from(["0", "-1", "x", "00000000-0000-0000-0000-00000000000g", "a" * 300])


@dataclass(frozen=True)
class World:
    tokens: dict[str, str]  # by account label
    ids: dict[str, list[str]]  # a few ids of every table, by table
    words: list[str]  # the world's own emails, codes and names

    def id_like(self, name: str = "") -> st.SearchStrategy[str]:
        """Mostly an id of the table a parameter or field is named after, else any id or a random one."""
        anything = st.sampled_from([row_id for ids in self.ids.values() for row_id in ids]) | st.uuids().map(str)
        own = self.ids.get(_ID_TABLES.get(name.removesuffix("s"), ""))
        return st.one_of(st.sampled_from(own), st.sampled_from(own), anything) if own else anything

    def text(self) -> st.SearchStrategy[str]:
        return st.sampled_from(self.words) | st.text(max_size=60) | _AWKWARD_TEXT


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _shaped(schema: dict[str, Any], world: World, depth: int = 0, name: str = "") -> st.SearchStrategy[Any]:
    """Values of the schema's own type mixed with any JSON at all, down to a few levels; `name` is
    the field's, which says what an id should be the id of."""
    components = _SPEC_COMPONENTS
    schema = _resolve(schema, components)
    if depth > 3:
        return _ANY_JSON
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if alternatives:
        return st.one_of([_shaped(option, world, depth + 1, name) for option in alternatives])
    kind = schema.get("type")
    if "enum" in schema:
        typed: st.SearchStrategy[Any] = st.sampled_from(schema["enum"])
    elif kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        typed = st.fixed_dictionaries(
            {}, optional={field: _shaped(schema, world, depth + 1, field) for field, schema in properties.items()}
        )
    elif kind == "array":
        typed = st.lists(_shaped(schema.get("items", {}), world, depth + 1, name), max_size=4)
    elif kind == "integer":
        typed = st.integers(min_value=-(2**64), max_value=2**64) | st.integers(min_value=-3, max_value=30)
    elif kind == "number":
        typed = st.floats(allow_nan=False, allow_infinity=False)
    elif kind == "boolean":
        typed = st.booleans()
    elif kind == "string" and schema.get("format") == "uuid":
        typed = world.id_like(name)
    elif kind == "string":
        typed = world.text()
    else:
        return _ANY_JSON
    return st.one_of(typed, typed, _ANY_JSON)  # mostly the declared type


_SPEC = create_api().openapi()
_SPEC_COMPONENTS = _SPEC.get("components", {}).get("schemas", {})


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    """Every API route with its OpenAPI operation; a route left out of the schema still gets random
    path parameters and bodies."""
    operations = []
    for method, path in api_routes():
        operation = _SPEC["paths"].get(path, {}).get(method.lower())
        if operation is None:
            names = [part.split("}")[0].split(":")[0] for part in path.split("{")[1:]]
            operation = {"parameters": [{"name": name, "in": "path"} for name in names]}
        operations.append((method, path, operation))
    return operations


_OPERATIONS = _operations()


def _request(operation: dict[str, Any], world: World) -> st.SearchStrategy[dict[str, Any]]:
    parameters = operation.get("parameters", [])
    path_names = [p["name"] for p in parameters if p["in"] == "path"]
    query = {
        p["name"]: _shaped(p.get("schema", {}), world, name=p["name"]).map(str)
        for p in parameters
        if p["in"] == "query"
    }
    body_schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    return st.fixed_dictionaries(
        {
            "path": st.fixed_dictionaries({name: world.id_like(name) | _NOT_IDS for name in path_names}),
            "query": st.fixed_dictionaries({}, optional=query),
            "body": _shaped(body_schema, world) if body_schema else _ANY_JSON,
            # Header values travel as ASCII.
            "key": st.none()
            | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=130)
            | st.uuids().map(str),
        }
    )


@pytest.fixture
def client(engine):
    with TestClient(create_api(), follow_redirects=False, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def world(engine, monkeypatch) -> World:
    # The demo accounts' password hashes cost most of building the world, once per route: made cheap
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
    tokens = {
        label: in_transaction(issue_api_tokens, user=users[email], client=ClientInfo()).token
        for label, email in {**accounts, "super_admin": root.email}.items()
    }
    words = [*users, "JAZZ10", "jazz10", "Regular", "VIP table", held.reference]
    return World(tokens=tokens, ids=ids, words=words)


@pytest.mark.parametrize(("method", "path", "operation"), _OPERATIONS, ids=[f"{m} {p}" for m, p, _ in _OPERATIONS])
def test_random_input_gets_a_client_error_with_a_code_never_a_server_error(client, world, method, path, operation):
    # CI replays the same examples (a red build names a regression, not a lucky draw); elsewhere each
    # run explores new ones, FUZZ_EXAMPLES=N as deep as wanted.
    @settings(
        max_examples=int(os.environ.get("FUZZ_EXAMPLES", "12")),
        derandomize=os.environ.get("CI") == "true",
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(request=_request(operation, world), account=st.sampled_from(sorted(world.tokens)))
    def check(request: dict[str, Any], account: str) -> None:
        url = path.format(**request["path"])
        headers = {"Authorization": f"Bearer {world.tokens[account]}"}
        if request["key"] is not None:
            headers["Idempotency-Key"] = request["key"]
        response = client.request(method, url, params=request["query"], json=request["body"], headers=headers)
        assert response.status_code < 500, f"{method} {url} -> {response.status_code}: {response.text[:300]}"
        if 400 <= response.status_code < 500:
            code = response.json().get("code")
            assert isinstance(code, str), f"{method} {url} -> {response.status_code} without a code"
            assert code

    check()


_PAGED = [
    (m, p) for m, p, operation in _OPERATIONS if any(q["name"] == "page" for q in operation.get("parameters", []))
]


def test_every_paged_list_is_found():
    assert len(_PAGED) >= 8


@pytest.mark.parametrize(("method", "path"), _PAGED, ids=[f"{m} {p}" for m, p in _PAGED])
def test_a_page_beyond_any_offset_is_refused_in_words_and_the_deepest_page_is_empty(client, world, method, path):
    """Found by the test above: page 461168601842738792 overflowed the database's OFFSET (a 500)."""
    url = path.format(**{name: str(uuid.uuid4()) for name in ("event_id", "wallet_id")})
    headers = {"Authorization": f"Bearer {world.tokens['super_admin']}"}
    refused = client.request(method, url, params={"page": str(2**63)}, headers=headers)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "invalid_input"
    deepest = client.request(method, url, params={"page": str(MAX_PAGE)}, headers=headers)
    assert deepest.status_code in (200, 404), deepest.text
