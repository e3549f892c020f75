"""Fake Stripe, Monnify and Flutterwave APIs on loopback, one server, for the provider adapter tests.

Each fake checks what the real API checks, so the adapters' real HTTP/SDK code runs end to end:

- Stripe: `Authorization: Bearer <secret key>`; `POST /v1/checkout/sessions` (form-encoded, as the SDK
  sends it) requires an `Idempotency-Key`: the same key with the same body replays the first
  session, with another body answers 400 `idempotency_error`; `GET /v1/checkout/sessions/{id}`.
- Monnify: `POST /api/v1/auth/login` with Basic api_key:secret_key issues expiring bearer tokens;
  `POST /api/v1/merchant/transactions/init-transaction` (amount a JSON number in naira, duplicate
  paymentReference refused), `GET /api/v2/transactions/{transactionReference}` (percent-encoded),
  `GET /api/v2/merchant/transactions/query?paymentReference=`.
- Flutterwave: `Authorization: Bearer <secret key>`; `POST /v3/payments` returns a hosted link;
  `GET /v3/transactions/{id}/verify`, `GET /v3/transactions/verify_by_reference?tx_ref=`.

Knobs: `fail(route, times, status)` answers the next requests to a route with an error status;
`hang(route, times)` makes them wait `hang_seconds` before answering (the request is still
processed, as when a response is lost); `flutterwave_pay(...)` and friends play the payer, and can
record a wrong amount, currency or tx_ref. `requests` records every request.

Refunds: Stripe `POST /v1/refunds` (payment_intent, amount; Idempotency-Key required and replayed),
Monnify `POST /api/v1/refunds/initiate-refund` (refundReference refused twice) and
`GET /api/v1/refunds/{refundReference}`, Flutterwave `POST /v3/transactions/{id}/refund` (no key).
Each refuses a refund beyond what was paid and not yet refunded.

Routes: stripe.create, stripe.retrieve, stripe.refund, monnify.login, monnify.init, monnify.verify,
monnify.query, monnify.refund, monnify.refund_status, flutterwave.payments, flutterwave.verify,
flutterwave.verify_by_reference, flutterwave.refund.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.loopback import LoopbackServer

STRIPE_SECRET_KEY = "sk_test_fake_paytime_0123456789"
STRIPE_WEBHOOK_SECRET = "whsec_fake_paytime_0123456789"
MONNIFY_API_KEY = "MK_TEST_FAKEPAYTIME"
MONNIFY_SECRET_KEY = "FAKEPAYTIMESECRETKEY0123456789AB"
MONNIFY_CONTRACT_CODE = "7059707855"
FLUTTERWAVE_SECRET_KEY = "FLWSECK_TEST-fakepaytime0123456789-X"
FLUTTERWAVE_SECRET_HASH = "fake-paytime-flutterwave-hash"


@dataclass
class Recorded:
    route: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakePaymentProviders(LoopbackServer):
    host: str = "127.0.0.1"
    hang_seconds: float = 1.5
    monnify_token_lifetime: int = 3600
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self._failures: dict[str, list[int]] = {}
        self._hangs: dict[str, int] = {}
        self._ids = itertools.count(1)
        self.stripe_sessions: dict[str, dict[str, Any]] = {}
        self.stripe_idempotency: dict[str, tuple[bytes, str]] = {}
        self.monnify_tokens: dict[str, float] = {}
        self.monnify_transactions: dict[str, dict[str, Any]] = {}
        self.flutterwave_links: dict[str, dict[str, Any]] = {}
        self.flutterwave_transactions: dict[int, dict[str, Any]] = {}
        self.stripe_payment_intents: dict[str, int] = {}  # id -> amount
        self.stripe_refunds: dict[str, dict[str, Any]] = {}
        self.monnify_refunds: dict[str, dict[str, Any]] = {}
        self.flutterwave_refunds: list[dict[str, Any]] = []

    # -- lifecycle -------------------------------------------------------------------------------

    def _make_server(self) -> ThreadingHTTPServer:
        handler = type("FakePaymentHandler", (_Handler,), {"fake": self})
        return _Server((self.host, 0), handler)

    def settings_env(self) -> dict[str, str]:
        """Environment variables that point PayTime's adapters at this server."""
        return {
            "STRIPE_SECRET_KEY": STRIPE_SECRET_KEY,
            "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
            "STRIPE_API_BASE": self.base_url,
            "MONNIFY_API_KEY": MONNIFY_API_KEY,
            "MONNIFY_SECRET_KEY": MONNIFY_SECRET_KEY,
            "MONNIFY_CONTRACT_CODE": MONNIFY_CONTRACT_CODE,
            "MONNIFY_BASE_URL": self.base_url,
            "FLUTTERWAVE_SECRET_KEY": FLUTTERWAVE_SECRET_KEY,
            "FLUTTERWAVE_SECRET_HASH": FLUTTERWAVE_SECRET_HASH,
            "FLUTTERWAVE_BASE_URL": self.base_url,
        }

    # -- knobs -----------------------------------------------------------------------------------

    def fail(self, route: str, times: int = 1, status: int = 500) -> None:
        with self.lock:
            self._failures.setdefault(route, []).extend([status] * times)

    def hang(self, route: str, times: int = 1) -> None:
        with self.lock:
            self._hangs[route] = self._hangs.get(route, 0) + times

    def count(self, route: str) -> int:
        return sum(1 for request in self.requests if request.route == route)

    def take_failure(self, route: str) -> int | None:
        with self.lock:
            pending = self._failures.get(route)
            return pending.pop(0) if pending else None

    def take_hang(self, route: str) -> bool:
        with self.lock:
            if self._hangs.get(route, 0) > 0:
                self._hangs[route] -= 1
                return True
            return False

    # -- the payer's side ------------------------------------------------------------------------

    def stripe_complete(self, session_id: str, *, payment_status: str = "paid", status: str = "complete") -> None:
        with self.lock:
            session = self.stripe_sessions[session_id]
            session["status"] = status
            session["payment_status"] = payment_status
            if payment_status == "paid" and not session.get("payment_intent"):
                session["payment_intent"] = f"pi_test_{secrets.token_hex(12)}"
                self.stripe_payment_intents[session["payment_intent"]] = session["amount_total"]

    def monnify_settle(
        self, transaction_reference: str, *, status: str = "PAID", amount_paid: str | None = None
    ) -> None:
        with self.lock:
            transaction = self.monnify_transactions[transaction_reference]
            transaction["paymentStatus"] = status
            transaction["amountPaid"] = amount_paid if amount_paid is not None else transaction["totalPayable"]

    def flutterwave_pay(
        self,
        tx_ref: str,
        *,
        status: str = "successful",
        amount: Decimal | None = None,
        currency: str | None = None,
        reported_tx_ref: str | None = None,
    ) -> int:
        """The payer pays the link for tx_ref; the transaction may record another amount/currency/tx_ref."""
        with self.lock:
            link = self.flutterwave_links[tx_ref]
            transaction_id = 4_000_000 + next(self._ids)
            self.flutterwave_transactions[transaction_id] = {
                "id": transaction_id,
                "tx_ref": reported_tx_ref if reported_tx_ref is not None else tx_ref,
                "flw_ref": f"FLW-MOCK-{secrets.token_hex(6)}",
                "amount": amount if amount is not None else link["amount"],
                "charged_amount": amount if amount is not None else link["amount"],
                "currency": currency or link["currency"],
                "status": status,
                "customer": link["customer"],
            }
            return transaction_id


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out on a hung request has gone away; that is the point of hanging.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def _dumps(payload: Any) -> bytes:
    # Providers send amounts as JSON numbers; Decimal("1250.50") goes out as 1250.5, as they would.
    return json.dumps(
        payload, default=lambda value: float(value) if isinstance(value, Decimal) else str(value)
    ).encode()


_ROUTES: list[tuple[str, Callable[[str], bool], str]] = [
    ("POST", lambda path: path == "/v1/checkout/sessions", "stripe.create"),
    ("GET", lambda path: path.startswith("/v1/checkout/sessions/"), "stripe.retrieve"),
    ("POST", lambda path: path == "/api/v1/auth/login", "monnify.login"),
    ("POST", lambda path: path == "/api/v1/merchant/transactions/init-transaction", "monnify.init"),
    ("GET", lambda path: path == "/api/v2/merchant/transactions/query", "monnify.query"),
    ("GET", lambda path: path.startswith("/api/v2/transactions/"), "monnify.verify"),
    ("POST", lambda path: path == "/v1/refunds", "stripe.refund"),
    ("POST", lambda path: path == "/api/v1/refunds/initiate-refund", "monnify.refund"),
    ("GET", lambda path: path.startswith("/api/v1/refunds/"), "monnify.refund_status"),
    ("POST", lambda path: path.startswith("/v3/transactions/") and path.endswith("/refund"), "flutterwave.refund"),
    ("POST", lambda path: path == "/v3/payments", "flutterwave.payments"),
    ("GET", lambda path: path == "/v3/transactions/verify_by_reference", "flutterwave.verify_by_reference"),
    ("GET", lambda path: path.startswith("/v3/transactions/") and path.endswith("/verify"), "flutterwave.verify"),
]


def _injected_error(route: str, status: int) -> dict[str, Any]:
    """An error body in the provider's own shape, as its gateway would answer under trouble."""
    message = f"fake: injected HTTP {status}"
    if route.startswith("stripe."):
        return {"error": {"type": "api_error", "message": message}}
    if route.startswith("monnify."):
        return {"requestSuccessful": False, "responseMessage": message, "responseCode": "99"}
    return {"status": "error", "message": message, "data": None}


class _Handler(BaseHTTPRequestHandler):
    fake: FakePaymentProviders
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, payload: Any) -> None:
        body = _dumps(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _bearer(self) -> str | None:
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        return token if scheme == "Bearer" and token else None

    def _route(self, method: str, path: str) -> str | None:
        for route_method, matches, route in _ROUTES:
            if method == route_method and matches(path):
                return route
        return None

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        body = self._body()
        route = self._route(method, parts.path)
        fake = self.fake
        fake.requests.append(
            Recorded(route or "unknown", method, parts.path, {k.lower(): v for k, v in self.headers.items()}, body)
        )
        if route is None:
            self._send(404, {"error": "not found"})
            return
        status = fake.take_failure(route)
        if status is not None:
            self._send(status, _injected_error(route, status))
            return
        if fake.take_hang(route):
            time.sleep(fake.hang_seconds)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        handler = getattr(self, "_" + route.replace(".", "_"))
        handler(parts.path, query, body)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # -- Stripe ----------------------------------------------------------------------------------

    def _stripe_authorized(self) -> bool:
        if self._bearer() != STRIPE_SECRET_KEY:
            self._send(401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}})
            return False
        return True

    def _stripe_idempotency_key(self) -> str | None:
        key = self.headers.get("Idempotency-Key")
        if not key:
            self._send(400, {"error": {"type": "invalid_request_error", "message": "fake: Idempotency-Key required"}})
        return key or None

    def _stripe_replayed(self, key: str, body: bytes, objects: dict[str, dict[str, Any]]) -> bool:
        """Answer a request whose idempotency key was seen (under the lock), as Stripe does."""
        seen = self.fake.stripe_idempotency.get(key)
        if seen is None:
            return False
        if seen[0] != body:
            error = {"type": "idempotency_error", "message": "Keys for idempotent requests can only be used"}
            self._send(400, {"error": error})
        else:
            self._send(200, objects[seen[1]])
        return True

    def _stripe_create(self, path: str, query: dict[str, str], body: bytes) -> None:
        if not self._stripe_authorized():
            return
        fake = self.fake
        key = self._stripe_idempotency_key()
        if key is None:
            return
        form = {name: values[0] for name, values in parse_qs(body.decode()).items()}
        with fake.lock:
            if self._stripe_replayed(key, body, fake.stripe_sessions):
                return
            required = ("mode", "success_url", "cancel_url", "line_items[0][price_data][unit_amount]")
            missing = [name for name in required if name not in form]
            if missing:
                self._send(400, {"error": {"type": "invalid_request_error", "message": f"Missing {missing[0]}"}})
                return
            session_id = f"cs_test_{secrets.token_hex(12)}"
            session = {
                "id": session_id,
                "object": "checkout.session",
                "url": f"{fake.base_url}/stripe-checkout/{session_id}",
                "status": "open",
                "payment_status": "unpaid",
                "mode": form["mode"],
                "amount_total": int(form["line_items[0][price_data][unit_amount]"]),
                "currency": form.get("line_items[0][price_data][currency]"),
                "client_reference_id": form.get("client_reference_id"),
                "customer_email": form.get("customer_email"),
                "success_url": form["success_url"],
                "cancel_url": form["cancel_url"],
                "metadata": {
                    name[len("metadata[") : -1]: value for name, value in form.items() if name.startswith("metadata[")
                },
                "payment_intent": None,
            }
            fake.stripe_sessions[session_id] = session
            fake.stripe_idempotency[key] = (body, session_id)
        self._send(200, session)

    def _stripe_retrieve(self, path: str, query: dict[str, str], body: bytes) -> None:
        if not self._stripe_authorized():
            return
        session = self.fake.stripe_sessions.get(path.rsplit("/", 1)[1])
        if session is None:
            error = {"type": "invalid_request_error", "code": "resource_missing", "message": "No such session"}
            self._send(404, {"error": error})
            return
        self._send(200, session)

    def _stripe_refund(self, path: str, query: dict[str, str], body: bytes) -> None:
        if not self._stripe_authorized():
            return
        fake = self.fake
        key = self._stripe_idempotency_key()
        if key is None:
            return
        form = {name: values[0] for name, values in parse_qs(body.decode()).items()}
        with fake.lock:
            if self._stripe_replayed(key, body, fake.stripe_refunds):
                return
            intent = form.get("payment_intent", "")
            paid = fake.stripe_payment_intents.get(intent)
            if paid is None:
                error = {
                    "type": "invalid_request_error",
                    "code": "resource_missing",
                    "message": "No such payment_intent",
                }
                self._send(400, {"error": error})
                return
            amount = int(form.get("amount") or paid)
            refunded = sum(r["amount"] for r in fake.stripe_refunds.values() if r["payment_intent"] == intent)
            if amount <= 0 or refunded + amount > paid:
                error = {
                    "type": "invalid_request_error",
                    "code": "charge_already_refunded" if refunded >= paid else "amount_too_large",
                    "message": "Refund amount is greater than unrefunded amount on charge",
                }
                self._send(400, {"error": error})
                return
            refund_id = f"re_test_{secrets.token_hex(12)}"
            refund = {
                "id": refund_id,
                "object": "refund",
                "amount": amount,
                "payment_intent": intent,
                "status": "succeeded",
                "metadata": {
                    name[len("metadata[") : -1]: value for name, value in form.items() if name.startswith("metadata[")
                },
            }
            fake.stripe_refunds[refund_id] = refund
            fake.stripe_idempotency[key] = (body, refund_id)
        self._send(200, refund)

    # -- Monnify ---------------------------------------------------------------------------------

    def _monnify_refuse(self, status: int, message: str) -> None:
        self._send(status, {"requestSuccessful": False, "responseMessage": message, "responseCode": "99"})

    def _monnify_ok(self, body: dict[str, Any]) -> None:
        self._send(
            200, {"requestSuccessful": True, "responseMessage": "success", "responseCode": "0", "responseBody": body}
        )

    def _monnify_authorized(self) -> bool:
        token = self._bearer()
        with self.fake.lock:
            expires = self.fake.monnify_tokens.get(token or "")
        if expires is None or expires < time.time():
            self._monnify_refuse(401, "Unauthorized")
            return False
        return True

    def _monnify_login(self, path: str, query: dict[str, str], body: bytes) -> None:
        expected = base64.b64encode(f"{MONNIFY_API_KEY}:{MONNIFY_SECRET_KEY}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {expected}":
            self._monnify_refuse(401, "Invalid client credentials")
            return
        token = secrets.token_urlsafe(24)
        with self.fake.lock:
            self.fake.monnify_tokens[token] = time.time() + self.fake.monnify_token_lifetime
        self._monnify_ok({"accessToken": token, "expiresIn": self.fake.monnify_token_lifetime})

    def _monnify_init(self, path: str, query: dict[str, str], body: bytes) -> None:
        if not self._monnify_authorized():
            return
        fake = self.fake
        try:
            request = json.loads(body, parse_float=Decimal)
        except ValueError:
            self._monnify_refuse(400, "Malformed JSON")
            return
        amount = request.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int | Decimal) or amount <= 0:
            self._monnify_refuse(400, "amount must be a number")
            return
        if request.get("contractCode") != MONNIFY_CONTRACT_CODE or request.get("currencyCode") != "NGN":
            self._monnify_refuse(400, "Invalid contract code or currency")
            return
        with fake.lock:
            reference = request.get("paymentReference")
            if not reference or any(t["paymentReference"] == reference for t in fake.monnify_transactions.values()):
                self._monnify_refuse(422, "Duplicate payment reference")
                return
            transaction_reference = f"MNFY|20|20250101|{next(fake._ids):06d}"
            fake.monnify_transactions[transaction_reference] = {
                "transactionReference": transaction_reference,
                "paymentReference": reference,
                "amountPaid": "0.00",
                "totalPayable": f"{Decimal(amount):.2f}",
                "settlementAmount": "0.00",
                "paymentStatus": "PENDING",
                "paymentDescription": request.get("paymentDescription"),
                "currency": "NGN",
                "paymentMethod": None,
                "customer": {"email": request.get("customerEmail"), "name": request.get("customerName")},
            }
        self._monnify_ok(
            {
                "transactionReference": transaction_reference,
                "paymentReference": reference,
                "merchantName": "PayTime Test",
                "apiKey": MONNIFY_API_KEY,
                "enabledPaymentMethod": ["CARD", "ACCOUNT_TRANSFER"],
                "checkoutUrl": f"{fake.base_url}/monnify-checkout/{transaction_reference}",
            }
        )

    def _monnify_verify(self, path: str, query: dict[str, str], body: bytes) -> None:
        if not self._monnify_authorized():
            return
        transaction = self.fake.monnify_transactions.get(unquote(path.removeprefix("/api/v2/transactions/")))
        if transaction is None:
            self._monnify_refuse(404, "Could not find transaction")
            return
        self._monnify_ok(dict(transaction))

    def _monnify_query(self, path: str, query: dict[str, str], body: bytes) -> None:
        if not self._monnify_authorized():
            return
        for transaction in self.fake.monnify_transactions.values():
            if transaction["paymentReference"] == query.get("paymentReference"):
                self._monnify_ok(dict(transaction))
                return
        self._monnify_refuse(404, "Could not find transaction")

    def _monnify_refund(self, path: str, query: dict[str, str], body: bytes) -> None:
        if not self._monnify_authorized():
            return
        fake = self.fake
        try:
            request = json.loads(body, parse_float=Decimal)
        except ValueError:
            self._monnify_refuse(400, "Malformed JSON")
            return
        amount = request.get("refundAmount")
        reference = request.get("refundReference")
        if isinstance(amount, bool) or not isinstance(amount, int | Decimal) or amount <= 0 or not reference:
            self._monnify_refuse(400, "refundAmount and refundReference are required")
            return
        with fake.lock:
            if reference in fake.monnify_refunds:
                self._monnify_refuse(422, "Duplicate refund reference")
                return
            transaction = fake.monnify_transactions.get(request.get("transactionReference", ""))
            if transaction is None or transaction["paymentStatus"] != "PAID":
                self._monnify_refuse(400, "Transaction not found or not paid")
                return
            refunded = sum(
                Decimal(r["refundAmount"])
                for r in fake.monnify_refunds.values()
                if r["transactionReference"] == transaction["transactionReference"]
            )
            if refunded + Decimal(amount) > Decimal(transaction["amountPaid"]):
                self._monnify_refuse(400, "Refund amount exceeds the amount paid")
                return
            refund = {
                "refundReference": reference,
                "transactionReference": transaction["transactionReference"],
                "refundAmount": f"{Decimal(amount):.2f}",
                "refundStatus": "COMPLETED",
                "refundReason": request.get("refundReason"),
            }
            fake.monnify_refunds[reference] = refund
        self._monnify_ok(dict(refund))

    def _monnify_refund_status(self, path: str, query: dict[str, str], body: bytes) -> None:
        if not self._monnify_authorized():
            return
        refund = self.fake.monnify_refunds.get(unquote(path.removeprefix("/api/v1/refunds/")))
        if refund is None:
            self._monnify_refuse(404, "Could not find refund")
            return
        self._monnify_ok(dict(refund))

    # -- Flutterwave -----------------------------------------------------------------------------

    def _flutterwave_refund(self, path: str, query: dict[str, str], body: bytes) -> None:
        if not self._flutterwave_authorized():
            return
        fake = self.fake
        raw_id = path.split("/")[3]
        try:
            request = json.loads(body or b"{}", parse_float=Decimal)
        except ValueError:
            self._send(400, {"status": "error", "message": "Malformed JSON", "data": None})
            return
        with fake.lock:
            transaction = fake.flutterwave_transactions.get(int(raw_id)) if raw_id.isdigit() else None
            if transaction is None or transaction["status"] != "successful":
                self._send(400, {"status": "error", "message": "No transaction was found for this id", "data": None})
                return
            amount = Decimal(request.get("amount", transaction["amount"]))
            refunded = sum(r["amount"] for r in fake.flutterwave_refunds if r["transaction_id"] == transaction["id"])
            if amount <= 0 or refunded + amount > Decimal(transaction["amount"]):
                self._send(400, {"status": "error", "message": "Refund amount exceeds the amount paid", "data": None})
                return
            refund = {
                "id": 7_000_000 + next(fake._ids),
                "transaction_id": transaction["id"],
                "amount": amount,
                "status": "completed",
                "comments": request.get("comments"),
            }
            fake.flutterwave_refunds.append(refund)
        self._send(200, {"status": "success", "message": "Transaction refund initiated", "data": refund})

    def _flutterwave_authorized(self) -> bool:
        if self._bearer() != FLUTTERWAVE_SECRET_KEY:
            self._send(401, {"status": "error", "message": "Invalid authorization key", "data": None})
            return False
        return True

    def _flutterwave_payments(self, path: str, query: dict[str, str], body: bytes) -> None:
        if not self._flutterwave_authorized():
            return
        try:
            request = json.loads(body, parse_float=Decimal)
        except ValueError:
            self._send(400, {"status": "error", "message": "Malformed JSON", "data": None})
            return
        amount = request.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int | Decimal) or not request.get("tx_ref"):
            self._send(400, {"status": "error", "message": "amount and tx_ref are required", "data": None})
            return
        if not (request.get("customer") or {}).get("email"):
            self._send(400, {"status": "error", "message": "customer.email is required", "data": None})
            return
        with self.fake.lock:
            self.fake.flutterwave_links[request["tx_ref"]] = {
                "amount": Decimal(amount),
                "currency": request.get("currency", "NGN"),
                "customer": request["customer"],
            }
        link = f"{self.fake.base_url}/flutterwave-checkout/{secrets.token_hex(8)}"
        self._send(200, {"status": "success", "message": "Hosted Link", "data": {"link": link}})

    def _flutterwave_found(self, transaction: dict[str, Any] | None, what: str) -> None:
        if transaction is None:
            self._send(400, {"status": "error", "message": f"No transaction was found for this {what}", "data": None})
            return
        self._send(200, {"status": "success", "message": "Transaction fetched successfully", "data": transaction})

    def _flutterwave_verify(self, path: str, query: dict[str, str], body: bytes) -> None:
        if not self._flutterwave_authorized():
            return
        raw_id = path.split("/")[3]
        transaction = self.fake.flutterwave_transactions.get(int(raw_id)) if raw_id.isdigit() else None
        self._flutterwave_found(transaction, "id")

    def _flutterwave_verify_by_reference(self, path: str, query: dict[str, str], body: bytes) -> None:
        if not self._flutterwave_authorized():
            return
        matches = [t for t in self.fake.flutterwave_transactions.values() if t["tx_ref"] == query.get("tx_ref")]
        self._flutterwave_found(matches[-1] if matches else None, "tx_ref")
