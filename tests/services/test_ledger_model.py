"""A state machine compares a plain in-memory model of wallets and holds with the ledger in the database."""

import uuid

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from paytime_app.db import in_transaction, unit_of_work
from paytime_app.errors import DomainError
from paytime_app.models.ledger import HoldStatus
from paytime_app.money import Currency
from paytime_app.services.ledger import (
    capture_hold,
    find_ledger_problems,
    get_balance,
    get_hold,
    place_hold,
    reverse_transaction,
    transfer,
    void_hold,
)

NGN = Currency.NGN
WALLETS = 3
amounts = st.integers(min_value=1, max_value=6_000)
wallet_indexes = st.integers(min_value=0, max_value=WALLETS - 1)


def refused(service, **kwargs) -> str:
    with pytest.raises(DomainError) as caught:
        in_transaction(service, **kwargs)
    return caught.value.code


class WalletModel(RuleBasedStateMachine):
    """Wallets are fresh per run (new addresses), so runs share one database without interfering."""

    def __init__(self) -> None:
        super().__init__()
        self.run = uuid.uuid4().hex[:8]
        self.wallets = [f"user:{self.run}-{index}:wallet" for index in range(WALLETS)]
        self.balances = [0] * WALLETS
        self.holds: list[dict] = []  # {"id", "wallet", "amount", "status"}
        self.transfers: list[dict] = []  # {"id", "source", "destination", "amount", "reversed"}
        self.requests: list[tuple[dict, object]] = []  # (transfer kwargs, transaction id) to replay

    def key(self) -> str:
        return f"model:{uuid.uuid4()}"

    @rule(wallet=wallet_indexes, amount=amounts)
    def deposit(self, wallet, amount):
        in_transaction(
            transfer,
            source="world",
            destination=self.wallets[wallet],
            amount_minor=amount,
            currency=NGN,
            idempotency_key=self.key(),
            kind="top_up",
        )
        self.balances[wallet] += amount

    @rule(source=wallet_indexes, destination=wallet_indexes, amount=amounts)
    def send(self, source, destination, amount):
        if source == destination:
            return
        request = {
            "source": self.wallets[source],
            "destination": self.wallets[destination],
            "amount_minor": amount,
            "currency": NGN,
            "idempotency_key": self.key(),
        }
        if self.balances[source] < amount:
            assert refused(transfer, **request) == "insufficient_funds"
            return
        tx = in_transaction(transfer, **request)
        self.balances[source] -= amount
        self.balances[destination] += amount
        self.transfers.append(
            {"id": tx.id, "source": source, "destination": destination, "amount": amount, "reversed": False}
        )
        self.requests.append((request, tx.id))

    @precondition(lambda self: self.requests)
    @rule(data=st.data())
    def retry_a_request(self, data):
        request, tx_id = data.draw(st.sampled_from(self.requests))
        assert in_transaction(transfer, **request).id == tx_id
        changed = {**request, "amount_minor": request["amount_minor"] + 1}
        assert refused(transfer, **changed) == "idempotency_mismatch"

    @precondition(lambda self: self.transfers)
    @rule(data=st.data())
    def reverse(self, data):
        sent = data.draw(st.sampled_from(self.transfers))
        if sent["reversed"]:
            assert refused(reverse_transaction, transaction_id=sent["id"], idempotency_key=self.key()) == (
                "already_reversed"
            )
        elif self.balances[sent["destination"]] < sent["amount"]:
            assert refused(reverse_transaction, transaction_id=sent["id"], idempotency_key=self.key()) == (
                "insufficient_funds"
            )
        else:
            in_transaction(reverse_transaction, transaction_id=sent["id"], idempotency_key=self.key())
            self.balances[sent["destination"]] -= sent["amount"]
            self.balances[sent["source"]] += sent["amount"]
            sent["reversed"] = True

    @rule(wallet=wallet_indexes, amount=amounts)
    def hold(self, wallet, amount):
        request = {
            "address": self.wallets[wallet],
            "currency": NGN,
            "amount_minor": amount,
            "expires_at": None,
            "idempotency_key": self.key(),
            "kind": "call",
        }
        if self.balances[wallet] < amount:
            assert refused(place_hold, **request) == "insufficient_funds"
            return
        placed = in_transaction(place_hold, **request)
        self.balances[wallet] -= amount
        self.holds.append({"id": placed.id, "wallet": wallet, "amount": amount, "status": HoldStatus.ACTIVE})

    @precondition(lambda self: self.holds)
    @rule(data=st.data(), destination=wallet_indexes)
    def capture(self, data, destination):
        held = data.draw(st.sampled_from(self.holds))
        amount = data.draw(st.integers(min_value=1, max_value=held["amount"]))
        kwargs = {
            "hold_id": held["id"],
            "amount_minor": amount,
            "destination": self.wallets[destination],
            "idempotency_key": self.key(),
        }
        if held["status"] != HoldStatus.ACTIVE:
            assert refused(capture_hold, **kwargs) == "hold_not_active"
            return
        in_transaction(capture_hold, **kwargs)
        self.balances[destination] += amount
        self.balances[held["wallet"]] += held["amount"] - amount
        held["status"] = HoldStatus.CAPTURED

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def void(self, data):
        held = data.draw(st.sampled_from(self.holds))
        if held["status"] != HoldStatus.ACTIVE:
            assert refused(void_hold, hold_id=held["id"], idempotency_key=self.key()) == "hold_not_active"
            return
        in_transaction(void_hold, hold_id=held["id"], idempotency_key=self.key())
        self.balances[held["wallet"]] += held["amount"]
        held["status"] = HoldStatus.VOIDED

    @invariant()
    def balances_match_the_model(self):
        with unit_of_work() as session:
            stored = [get_balance(session=session, address=address, currency=NGN) for address in self.wallets]
            statuses = [get_hold(session=session, hold_id=held["id"]).status for held in self.holds]
        assert stored == self.balances
        assert statuses == [held["status"] for held in self.holds]

    @invariant()
    def ledger_is_consistent(self):
        # Only this run's accounts: a problem left by an earlier run must not change how this one goes.
        ours = [self.run, *(str(held["id"]) for held in self.holds)]
        with unit_of_work() as session:
            problems = find_ledger_problems(session=session)
        assert [problem for problem in problems if any(tag in problem for tag in ours)] == []


def test_wallet_model_matches_the_database(engine):
    run_state_machine_as_test(
        WalletModel,
        settings=settings(
            max_examples=15,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
    with unit_of_work() as session:
        assert find_ledger_problems(session=session) == []
