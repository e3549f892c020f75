"""REST API v1 admin payments: the role matrix (customer and anonymous refused, viewer refused on
changes), filters in the query string, refunds once, and the streamed CSV export."""

import csv
import io

import pytest
from fastapi.testclient import TestClient

from paytime_app.api import create_api
from paytime_app.cookies import SESSION_COOKIE
from paytime_app.db import in_transaction
from paytime_app.models.users import Role
from paytime_app.services.providers.resilience import reset_breakers
from paytime_app.services.sessions import ClientInfo, issue_api_tokens, start_browser_session
from paytime_app.services.users import create_user
from tests.services.test_payments import FAILED, deliver, new_payment, opened, reload, settle

BASE = "/api/v1/admin/payments"


@pytest.fixture
def client(engine):
    reset_breakers()
    with TestClient(create_api(), follow_redirects=False) as client:
        yield client
    reset_breakers()


def person(email: str, role: Role = Role.CUSTOMER):
    user = in_transaction(
        create_user,
        email=email,
        display_name=email.split("@", maxsplit=1)[0].title(),
        password=None,
        role=role,
        email_verified=True,
    )
    issued = in_transaction(issue_api_tokens, user=user, client=ClientInfo())
    return user, {"Authorization": f"Bearer {issued.token}"}


@pytest.fixture
def people(engine):
    return {
        "admin": person("admin@example.com", Role.ADMIN),
        "viewer": person("viewer@example.com", Role.VIEWER),
        "customer": person("ada@example.com"),
    }


@pytest.fixture
def paid(people):
    payment = opened(people["customer"][0], amount_minor=10_000)
    deliver(settle(payment))
    return reload(payment)


def test_viewer_lists_filters_and_reads_detail_and_stats(client, people, paid):
    customer = people["customer"][0]
    failed = opened(customer, amount_minor=2_000)
    deliver(settle(failed, FAILED))
    new_payment(customer, amount_minor=3_000, currency="USD")
    viewer = people["viewer"][1]
    listed = client.get(BASE, headers=viewer, params={"page_size": 10}).json()
    assert (listed["total"], listed["page"], listed["total_pages"], len(listed["data"])) == (3, 1, 1, 3)
    only = client.get(BASE, headers=viewer, params={"status": "succeeded,failed", "currency": "NGN", "min": "50"})
    assert [row["reference"] for row in only.json()["data"]] == [paid.reference]
    assert only.json()["data"][0]["customer_email"] == "ada@example.com"
    repeated = client.get(f"{BASE}?status=succeeded&status=failed&sort=amount", headers=viewer).json()
    assert [row["amount"] for row in repeated["data"]] == [2_000, 10_000]
    detail = client.get(f"{BASE}/{paid.id}", headers=viewer).json()
    assert detail["refundable"] == 10_000
    assert {item["kind"] for item in detail["timeline"]} >= {"status", "webhook", "ledger"}
    stats = client.get(f"{BASE}/stats", headers=viewer, params={"currency": "NGN"}).json()
    assert (stats["succeeded_count"], stats["failed_count"], stats["revenue_by_currency"]) == (1, 1, {"NGN": 10_000})
    assert stats["success_rate"] == 0.5


@pytest.mark.parametrize(
    ("params", "field"),
    [({"status": "paid"}, "status"), ({"from": "yesterday"}, "from"), ({"page_size": 7}, "page_size")],
)
def test_bad_filters_are_422_with_the_field(client, people, params, field):
    answer = client.get(BASE, headers=people["viewer"][1], params=params)
    assert answer.status_code == 422
    assert (answer.json()["code"], answer.json()["details"]["field"]) == ("invalid_filter", field)


def test_role_matrix_customer_refused_everywhere_viewer_refused_on_changes(client, people, paid):
    reads = [("GET", BASE), ("GET", f"{BASE}/stats"), ("GET", f"{BASE}/{paid.id}"), ("GET", f"{BASE}/export.csv")]
    changes = [
        ("POST", f"{BASE}/{paid.id}/refund", {"amount": 100, "reason": "x"}),
        ("POST", f"{BASE}/{paid.id}/notes", {"body": "note"}),
        ("POST", f"{BASE}/{paid.id}/reconcile", {}),
    ]
    key = {"Idempotency-Key": "refund-key-0001"}
    for method, path in reads:
        assert client.request(method, path, headers=people["customer"][1]).status_code == 403, path
        assert client.request(method, path, headers=people["viewer"][1]).status_code == 200, path
        assert client.request(method, path).status_code == 401, path
    for method, path, body in changes:
        for who in ("customer", "viewer"):
            answer = client.request(method, path, json=body, headers={**people[who][1], **key})
            assert (answer.status_code, answer.json()["code"]) == (403, "forbidden"), (who, path)
        assert client.request(method, path, json=body, headers=key).status_code == 401
    assert reload(paid).status == "succeeded"


def test_admin_refunds_once_per_key_and_partially(client, people, paid):
    admin = people["admin"][1]
    first = client.post(
        f"{BASE}/{paid.id}/refund",
        json={"amount": 4_000, "reason": "late"},
        headers={**admin, "Idempotency-Key": "k-000001"},
    )
    assert first.status_code == 201
    assert first.json()["status"] == "succeeded"
    again = client.post(
        f"{BASE}/{paid.id}/refund",
        json={"amount": 4_000, "reason": "late"},
        headers={**admin, "Idempotency-Key": "k-000001"},
    )
    assert again.json()["id"] == first.json()["id"]
    assert reload(paid).refunded_minor == 4_000
    too_much = client.post(
        f"{BASE}/{paid.id}/refund", json={"amount": 6_001}, headers={**admin, "Idempotency-Key": "k-000002"}
    )
    assert (too_much.status_code, too_much.json()["code"]) == (422, "refund_exceeds_payment")
    mismatch = client.post(
        f"{BASE}/{paid.id}/refund", json={"amount": 10}, headers={**admin, "Idempotency-Key": "k-000001"}
    )
    assert (mismatch.status_code, mismatch.json()["code"]) == (409, "idempotency_mismatch")
    assert reload(paid).status == "partially_refunded"


def test_admin_notes_and_reconciles(client, people, paid):
    admin = people["admin"][1]
    assert client.post(f"{BASE}/{paid.id}/notes", json={"body": "Looked fine."}, headers=admin).status_code == 204
    detail = client.get(f"{BASE}/{paid.id}", headers=admin).json()
    assert any(item["kind"] == "note" and item["detail"] == "Looked fine." for item in detail["timeline"])
    stuck = opened(people["customer"][0])
    assert client.post(f"{BASE}/{stuck.id}/reconcile", headers=admin).status_code == 202
    refused = client.post(f"{BASE}/{paid.id}/reconcile", headers=admin)
    assert (refused.status_code, refused.json()["code"]) == (409, "not_stuck")
    missing = client.get(f"{BASE}/00000000-0000-0000-0000-000000000000", headers=admin)
    assert missing.status_code == 404


def test_export_streams_filtered_csv_for_api_token_and_browser_cookie(client, people, paid):
    customer = people["customer"][0]
    new_payment(customer, amount_minor=123_456, currency="USD")
    answer = client.get(f"{BASE}/export.csv", headers=people["viewer"][1], params={"currency": "USD"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.text, newline="")))
    assert len(rows) == 2
    assert (rows[1][3], rows[1][5]) == ("1234.56", "USD")
    browser = in_transaction(start_browser_session, user=people["viewer"][0], client=ClientInfo()).token
    client.cookies.set(SESSION_COOKIE, browser)
    by_cookie = client.get(f"{BASE}/export.csv")
    assert by_cookie.status_code == 200
    assert len(list(csv.reader(io.StringIO(by_cookie.text, newline="")))) == 3
    client.cookies.clear()
    customer_browser = in_transaction(start_browser_session, user=customer, client=ClientInfo()).token
    client.cookies.set(SESSION_COOKIE, customer_browser)
    assert client.get(f"{BASE}/export.csv").status_code == 403
