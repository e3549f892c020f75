"""A realistic payments history for demos and benchmarks: `python -m paytime_app.cli seed-demo --payments N`.

Payments are spread over the past 90 days (growing volume, busy evenings, quieter weekends), mostly
naira through Monnify and Flutterwave, dollars mostly through Stripe, with declines, cancellations,
refunds and a few still in flight. Rows go in with bulk inserts; the money stays honest: what the
collected payments credited is posted through the ledger, one transaction per customer, currency and
purpose (each payment links to it), and the dashboard's daily totals are rebuilt at the end.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from paytime_app.models.base import utcnow
from paytime_app.models.payments import Payment, PaymentPurpose, PaymentStatus, PaymentStatusChange
from paytime_app.models.users import User
from paytime_app.money import Currency
from paytime_app.services.demo import DemoDataRefused
from paytime_app.services.identifiers import REFERENCE_ALPHABET
from paytime_app.services.ledger import Posting, post_transaction
from paytime_app.services.payments import PROVIDER_METHODS, rebuild_daily_totals
from paytime_app.services.wallets import WalletKind, wallet_address
from paytime_app.settings import get_settings

BATCH = 5_000
FIRST_NAMES = (
    "Ada", "Ben", "Chiamaka", "Tunde", "Ngozi", "Emeka", "Funke", "Ibrahim", "Zainab", "Kelechi", "Amaka",
    "Segun", "Halima", "Obinna", "Yetunde", "Musa", "Grace", "David", "Sarah", "Michael", "Aisha", "Uche",
)  # fmt: skip
LAST_NAMES = (
    "Obi", "Okafor", "Adeyemi", "Balogun", "Eze", "Bello", "Nwosu", "Okonkwo", "Abubakar", "Ogunleye",
    "Smith", "Johnson", "Mensah", "Ibe", "Adebayo", "Lawal", "Chukwu", "Danjuma",
)  # fmt: skip
FAILURES = (
    ("card_declined", 34), ("insufficient_funds", 22), ("do_not_honor", 12), ("expired_card", 8),
    ("provider_unavailable", 8), ("partially_paid", 6), ("authentication_failed", 10),
)  # fmt: skip
PROVIDERS = {
    Currency.NGN: (("monnify", 35), ("flutterwave", 30), ("stripe", 20), ("mock", 15)),
    Currency.USD: (("stripe", 70), ("flutterwave", 20), ("mock", 10)),
}
FINAL = (
    (PaymentStatus.SUCCEEDED, 810), (PaymentStatus.FAILED, 100), (PaymentStatus.CANCELLED, 40),
    (PaymentStatus.REFUNDED, 25), (PaymentStatus.PARTIALLY_REFUNDED, 25),
)  # fmt: skip
COLLECTED = frozenset({"succeeded", "partially_refunded", "refunded"})
WALLETS = {PaymentPurpose.WALLET_TOPUP: WalletKind.PRIMARY, PaymentPurpose.CALL_CREDITS: WalletKind.CALL_CREDITS}


def _pick(rng: random.Random, weighted: tuple[tuple[object, int], ...]) -> object:
    return rng.choices([value for value, _ in weighted], weights=[weight for _, weight in weighted])[0]


def _demo_customers(session: Session, rng: random.Random, count: int) -> list[User]:
    existing = list(session.exec(select(User).where(col(User.email).like("%@customers.paytime.local"))).all())
    missing = count - len(existing)
    if missing > 0:
        now = utcnow()
        rows = []
        for index in range(len(existing), count):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "created_at": now - timedelta(days=120),
                    "email": f"{first}.{last}.{index:04d}@customers.paytime.local".lower(),
                    "display_name": f"{first} {last}",
                    "password_hash": None,
                    "role": "customer",
                    "is_active": True,
                    "email_verified_at": now - timedelta(days=120),
                }
            )
        session.execute(insert(User), rows)
        existing = list(session.exec(select(User).where(col(User.email).like("%@customers.paytime.local"))).all())
    return existing[:count]


def _when(rng: random.Random, now: datetime, days: int) -> datetime:
    # Volume grows towards today (sqrt), evenings are busiest, weekends a little quieter.
    while True:
        age_days = days * (1 - math.sqrt(rng.random()))
        moment = now - timedelta(days=age_days)
        hour_weight = 0.35 + 0.65 * math.exp(-(((moment.hour - 19) % 24) ** 2) / 30)
        weekend = 0.8 if moment.weekday() >= 5 else 1.0
        if rng.random() < hour_weight * weekend:
            return moment


def _amount(rng: random.Random, currency: Currency) -> int:
    if currency is Currency.NGN:
        major = min(max(rng.lognormvariate(math.log(12_000), 1.0), 500), 2_000_000)
        return round(major / 50) * 50 * 100
    major = min(max(rng.lognormvariate(math.log(35), 0.9), 5), 5_000)
    return round(major) * 100


def _status(rng: random.Random, age: timedelta) -> PaymentStatus:
    if age < timedelta(minutes=20):
        return PaymentStatus.PROCESSING if rng.random() < 0.7 else PaymentStatus.PENDING
    if age < timedelta(hours=2) and rng.random() < 0.03:
        return PaymentStatus.PROCESSING  # stuck: worth sending to reconciliation
    return PaymentStatus(_pick(rng, FINAL))


def _payment(rng: random.Random, customer: User, now: datetime, days: int, run: str) -> dict[str, Any]:
    currency = Currency.NGN if rng.random() < 0.8 else Currency.USD
    provider = str(_pick(rng, PROVIDERS[currency]))
    purpose = PaymentPurpose.WALLET_TOPUP if rng.random() < 0.75 else PaymentPurpose.CALL_CREDITS
    created = _when(rng, now, days)
    amount = _amount(rng, currency)
    status = _status(rng, now - created)
    refunded = {
        PaymentStatus.REFUNDED: amount,
        PaymentStatus.PARTIALLY_REFUNDED: amount * rng.randint(1, 6) // 1000 * 100,
    }
    reference = "PAY-" + "".join(rng.choice(REFERENCE_ALPHABET) for _ in range(10))
    kind = "wallet" if purpose is PaymentPurpose.WALLET_TOPUP else "call credits"
    description = f"{'Wallet top-up' if kind == 'wallet' else 'Call credits'} ({reference})"
    receiver = f"{customer.display_name} ({kind})"
    payment_id = uuid.uuid4()
    return {
        "id": payment_id,
        "created_at": created,
        "updated_at": created + timedelta(seconds=rng.randint(5, 300)),
        "reference": reference,
        "user_id": customer.id,
        "purpose": str(purpose),
        "provider": provider,
        "method": PROVIDER_METHODS[provider],
        "amount_minor": amount,
        "currency": str(currency),
        "status": str(status),
        "provider_reference": f"demo_{run}_{payment_id.hex[:16]}",
        "failure_reason": str(_pick(rng, FAILURES)) if status is PaymentStatus.FAILED else None,
        "idempotency_key": f"demo:{run}:{payment_id}",
        "request_hash": "demo",
        "description": description,
        "receiver": receiver,
        "refunded_minor": max(refunded.get(status, 0), 100 if status is PaymentStatus.PARTIALLY_REFUNDED else 0),
        "search_text": " ".join((reference, customer.email, customer.display_name, receiver, description)).lower(),
    }


def _post_credits(session: Session, payments: list[dict[str, Any]], run: str) -> None:
    """Credit what the collected payments brought in, one ledger transaction per customer, currency and
    purpose, and link each collected payment to its transaction."""
    credited: defaultdict[tuple[Any, str, str], defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in payments:
        if row["status"] in COLLECTED:
            key = (row["user_id"], row["currency"], row["purpose"])
            credited[key][row["provider"]] += row["amount_minor"] - row["refunded_minor"]
    transactions: dict[tuple[Any, str, str], uuid.UUID] = {}
    for (user_id, currency, purpose), by_provider in credited.items():
        postings = [
            Posting(
                f"provider:{provider}:clearing",
                wallet_address(user_id, WALLETS[PaymentPurpose(purpose)]),
                amount,
                Currency(currency),
            )
            for provider, amount in sorted(by_provider.items())
            if amount > 0
        ]
        if postings:
            transactions[(user_id, currency, purpose)] = post_transaction(
                session=session,
                postings=postings,
                kind=purpose,
                idempotency_key=f"demo:payments:{run}:{user_id}:{currency}:{purpose}",
                description="Demo payment history",
            ).id
    for row in payments:
        collected = row["status"] in COLLECTED
        row["ledger_transaction_id"] = (
            transactions.get((row["user_id"], row["currency"], row["purpose"])) if collected else None
        )


def seed_demo_payments(*, session: Session, count: int, days: int = 90, seed: int | None = None) -> int:
    """Add `count` payments over the past `days` days (bulk inserts); returns how many were added.

    Raises DemoDataRefused in production.
    """
    if get_settings().is_production:
        raise DemoDataRefused("demo data is never seeded when PAYTIME_ENV=production")
    rng = random.Random(seed)  # noqa: S311  demo data, not a secret
    customers = _demo_customers(session, rng, max(20, min(400, count // 250)))
    now, run = utcnow(), uuid.uuid4().hex[:8]
    payments = [_payment(rng, rng.choice(customers), now, days, run) for _ in range(count)]
    _post_credits(session, payments, run)
    changes = [
        {
            "id": uuid.uuid4(),
            "created_at": row["updated_at"],
            "payment_id": row["id"],
            "from_status": None,
            "to_status": row["status"],
            "source": "demo",
            "reason": row["failure_reason"],
        }
        for row in payments
    ]
    payment_table, change_table = Payment.__table__, PaymentStatusChange.__table__  # type: ignore[attr-defined]
    for start in range(0, len(payments), BATCH):
        session.execute(insert(payment_table), payments[start : start + BATCH])
        session.execute(insert(change_table), changes[start : start + BATCH])
    rebuild_daily_totals(session=session)
    return len(payments)
