"""`seed-demo --payments N`: a realistic history whose ledger, wallets and daily totals all agree."""

from collections import Counter
from datetime import timedelta

import pytest
from sqlmodel import func, select

from paytime_app.db import in_transaction, unit_of_work
from paytime_app.errors import DomainError
from paytime_app.models.base import utcnow
from paytime_app.models.payments import Payment, PaymentDailyTotal
from paytime_app.models.users import Role
from paytime_app.money import Currency
from paytime_app.services.demo import DemoDataRefused
from paytime_app.services.demo_payments import seed_demo_payments
from paytime_app.services.ledger import find_ledger_problems, get_balance
from paytime_app.services.payments import complete_refund, refund_payment
from paytime_app.services.users import create_user
from paytime_app.services.wallets import WalletKind, wallet_address


def test_seed_demo_payments_realistic_and_consistent(engine):
    assert in_transaction(seed_demo_payments, count=600, seed=3) == 600
    with unit_of_work() as session:
        payments = session.exec(select(Payment)).all()
        assert find_ledger_problems(session=session) == []
        totals = session.exec(select(func.sum(PaymentDailyTotal.count))).one()
        statuses = Counter(payment.status for payment in payments)
        ada = payments[0].user_id
        net = sum(
            p.amount_minor - p.refunded_minor
            for p in payments
            if p.user_id == ada
            and p.currency == "NGN"
            and p.purpose == "wallet_topup"
            and p.status in ("succeeded", "partially_refunded", "refunded")
        )
        balance = get_balance(session=session, address=wallet_address(ada, WalletKind.PRIMARY), currency=Currency.NGN)
    assert totals == 600
    assert statuses["succeeded"] > statuses["failed"] > 0
    assert {"refunded", "partially_refunded", "cancelled"} <= set(statuses)
    assert {payment.currency for payment in payments} == {"NGN", "USD"}
    assert len({payment.provider for payment in payments}) == 4
    assert all(utcnow() - timedelta(days=90, minutes=1) <= p.created_at <= utcnow() for p in payments)
    assert all(p.status != "failed" or p.failure_reason for p in payments)
    assert balance == net


def test_demo_payment_can_be_refunded(engine):
    in_transaction(seed_demo_payments, count=200, seed=5)
    admin = in_transaction(create_user, email="a@example.com", display_name="A", password=None, role=Role.ADMIN)
    with unit_of_work() as session:
        paid = session.exec(select(Payment).where(Payment.status == "succeeded", Payment.provider == "mock")).first()
        elsewhere = session.exec(
            select(Payment).where(Payment.status == "succeeded", Payment.provider == "monnify")
        ).first()
    refund = in_transaction(
        refund_payment, actor=admin, payment_id=paid.id, amount_minor=100, reason="demo", idempotency_key="demo-k"
    )
    assert complete_refund(refund_id=refund.id).status == "failed"  # the mock never saw this demo checkout
    with pytest.raises(DomainError) as caught:  # Monnify is not configured in tests
        in_transaction(
            refund_payment, actor=admin, payment_id=elsewhere.id, amount_minor=100, reason="", idempotency_key="k-2"
        )
    assert caught.value.code == "not_refundable"
    with unit_of_work() as session:
        assert find_ledger_problems(session=session) == []


def test_seed_demo_payments_refused_in_production(engine, settings_env):
    settings_env.setenv("PAYTIME_ENV", "production")
    settings_env.setenv("SECRET_KEY", "s" * 40)
    settings_env.setenv("MOCK_WEBHOOK_SECRET", "m" * 40)
    with pytest.raises(DemoDataRefused):
        in_transaction(seed_demo_payments, count=10)
