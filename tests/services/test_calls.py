"""Prepaid calls billed by the second, on SQLite and PostgreSQL, with the ledger checked after every
scenario: the cost rule, holds on the call-credits wallet, who may do what, the durable ring and
credit timers, and settling exactly once."""

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from sqlmodel import col, select

import paytime_app.services.job_handlers  # noqa: F401  registers every job kind run_due_jobs may meet
from paytime_app import bus
from paytime_app.db import in_transaction, unit_of_work
from paytime_app.errors import DomainError
from paytime_app.models.calls import Call, CallStatus, EndReason
from paytime_app.models.ledger import HoldStatus, LedgerAccount, LedgerEntry, LedgerHold, LedgerTransaction
from paytime_app.models.users import User
from paytime_app.money import Currency
from paytime_app.services.calls import (
    DEFAULT_RATE_PER_MINUTE_MINOR,
    REVENUE_ADDRESS,
    answer_call,
    buy_call_credits_from_wallet,
    cancel_call,
    cost_for,
    decline_call,
    end_call,
    get_call,
    list_calls,
    monthly_totals,
    start_call,
)
from paytime_app.services.jobs import run_due_jobs
from paytime_app.services.ledger import find_ledger_problems, get_balance, transfer
from paytime_app.services.users import create_user
from paytime_app.services.wallets import WalletKind, wallet_address
from tests.helpers import run_at_once

NGN = Currency.NGN
RATE = DEFAULT_RATE_PER_MINUTE_MINOR
MINUTE = cost_for(60, RATE)
T0 = datetime(2030, 3, 14, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(engine):
    """After every scenario: balances equal their entries, transactions balance, nothing negative."""
    yield
    with unit_of_work() as session:
        assert find_ledger_problems(session=session) == []


@pytest.fixture
def clock():
    """Time stands still at T0 until the test moves it."""
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def new_user(email: str, name: str) -> User:
    return in_transaction(create_user, email=email, display_name=name, password=None, email_verified=True)


@pytest.fixture
def caller(engine) -> User:
    return new_user("ada@example.com", "Ada")


@pytest.fixture
def callee(engine) -> User:
    return new_user("ben@example.com", "Ben")


@pytest.fixture
def stranger(engine) -> User:
    return new_user("eve@example.com", "Eve")


@pytest.fixture
def published(monkeypatch) -> list[dict]:
    messages: list[dict] = []
    monkeypatch.setattr(bus, "publish", messages.append)
    return messages


# --- helpers ------------------------------------------------------------------------------------------


def key() -> str:
    return f"test:{uuid.uuid4()}"


def credits_of(user: User) -> int:
    with unit_of_work() as session:
        return get_balance(session=session, address=wallet_address(user.id, WalletKind.CALL_CREDITS), currency=NGN)


def balance(address: str) -> int:
    with unit_of_work() as session:
        return get_balance(session=session, address=address, currency=NGN)


def fund(user: User, amount_minor: int, kind: WalletKind = WalletKind.CALL_CREDITS) -> None:
    in_transaction(
        transfer,
        source="world",
        destination=wallet_address(user.id, kind),
        amount_minor=amount_minor,
        currency=NGN,
        idempotency_key=key(),
    )


def place(caller: User, callee: User, **kwargs) -> Call:
    return in_transaction(
        start_call, actor=caller, callee_id=callee.id, call_type="audio", idempotency_key=key(), **kwargs
    )


def reload(call: Call) -> Call:
    with unit_of_work() as session:
        found = session.get(Call, call.id)
        assert found is not None
        return found


def hold_of(call: Call) -> LedgerHold:
    with unit_of_work() as session:
        hold = session.get(LedgerHold, reload(call).hold_id)
        assert hold is not None
        return hold


def settlements(call: Call) -> list[tuple[LedgerTransaction, list[LedgerEntry]]]:
    """The ledger transactions that resolved the call's hold (there must be exactly one)."""
    hold_id = str(reload(call).hold_id)
    with unit_of_work() as session:
        found = []
        for transaction in session.exec(
            select(LedgerTransaction).where(col(LedgerTransaction.kind).in_(["capture", "release"]))
        ).all():
            if transaction.metadata_.get("hold_id") == hold_id:
                entries = session.exec(select(LedgerEntry).where(LedgerEntry.transaction_id == transaction.id)).all()
                found.append((transaction, list(entries)))
        return found


def code_of(service, **kwargs) -> str:
    with pytest.raises(DomainError) as raised:
        in_transaction(service, **kwargs)
    return raised.value.code


# --- the cost rule --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "cost"), [(0, 0), (1, 17), (30, 500), (59, 984), (60, 1000), (61, 1017), (3600, 60000)]
)
def test_cost_for_rounds_up_to_the_minor_unit(seconds, cost):
    assert cost_for(seconds, 1000) == cost


def test_cost_for_is_exact_for_large_values():
    assert cost_for(10**9 + 1, 7) == -(-(10**9 + 1) * 7 // 60)


# --- starting ----------------------------------------------------------------------------------------


def test_start_call_holds_five_minutes_and_rings(caller, callee, published):
    fund(caller, 10 * MINUTE)
    call = place(caller, callee)
    assert call.status == CallStatus.RINGING
    assert call.rate_per_minute_minor == RATE
    assert call.currency == "NGN"
    assert hold_of(call).amount_minor == 5 * MINUTE
    assert credits_of(caller) == 5 * MINUTE
    told = {message["user_id"] for message in published if message["topic"] == "call.updated"}
    assert told == {str(caller.id), str(callee.id)}


def test_start_call_holds_whole_balance_when_less_than_five_minutes(caller, callee):
    fund(caller, 2 * MINUTE + 7)
    call = place(caller, callee)
    assert hold_of(call).amount_minor == 2 * MINUTE + 7
    assert credits_of(caller) == 0


def test_start_call_less_than_one_minute_insufficient_credits(caller, callee):
    fund(caller, MINUTE - 1)
    assert (
        code_of(start_call, actor=caller, callee_id=callee.id, call_type="audio", idempotency_key=key())
        == "insufficient_credits"
    )
    assert credits_of(caller) == MINUTE - 1
    with unit_of_work() as session:
        assert session.exec(select(Call)).all() == []


def test_start_call_without_any_credits_insufficient_credits(caller, callee):
    assert (
        code_of(start_call, actor=caller, callee_id=callee.id, call_type="video", idempotency_key=key())
        == "insufficient_credits"
    )


def test_start_call_usd_uses_usd_rate_and_wallet(caller, callee):
    in_transaction(
        transfer,
        source="world",
        destination=wallet_address(caller.id, WalletKind.CALL_CREDITS),
        amount_minor=100,
        currency=Currency.USD,
        idempotency_key=key(),
    )
    call = place(caller, callee, currency="USD")
    assert (call.currency, call.rate_per_minute_minor) == ("USD", 5)
    assert hold_of(call).amount_minor == cost_for(300, 5)


def test_start_call_same_key_returns_same_call(caller, callee):
    fund(caller, 10 * MINUTE)
    same = key()
    first = in_transaction(start_call, actor=caller, callee_id=callee.id, call_type="audio", idempotency_key=same)
    again = in_transaction(start_call, actor=caller, callee_id=callee.id, call_type="audio", idempotency_key=same)
    assert again.id == first.id
    assert credits_of(caller) == 5 * MINUTE
    assert (
        code_of(start_call, actor=caller, callee_id=callee.id, call_type="video", idempotency_key=same)
        == "idempotency_mismatch"
    )


def test_start_call_concurrent_same_key_holds_once(caller, callee):
    fund(caller, 10 * MINUTE)
    same = key()
    results = run_at_once(
        4,
        lambda: (
            in_transaction(start_call, actor=caller, callee_id=callee.id, call_type="audio", idempotency_key=same).id
        ),
    )
    assert len(set(results)) == 1
    assert credits_of(caller) == 5 * MINUTE


@pytest.mark.parametrize("who", ["self", "unknown", "inactive", "nobody", "both"])
def test_start_call_invalid_callee(caller, callee, who):
    fund(caller, 10 * MINUTE)
    if who == "inactive":
        with unit_of_work() as session:
            row = session.get(User, callee.id)
            row.is_active = False
            session.add(row)
    target = {
        "self": {"callee_id": caller.id},
        "unknown": {"callee_id": uuid.uuid4()},
        "inactive": {"callee_id": callee.id},
        "nobody": {},
        "both": {"callee_id": callee.id, "callee_phone": "+2348012345678"},
    }[who]
    assert code_of(start_call, actor=caller, call_type="audio", idempotency_key=key(), **target) == "invalid_callee"
    assert credits_of(caller) == 10 * MINUTE


@pytest.mark.parametrize("phone", ["08012345678", "+0123456", "+234 801 234 5678", "+1234567890123456", "+"])
def test_start_call_phone_not_e164_invalid_phone(caller, phone):
    fund(caller, 10 * MINUTE)
    assert (
        code_of(start_call, actor=caller, callee_phone=phone, call_type="audio", idempotency_key=key())
        == "invalid_phone"
    )


def test_start_call_to_phone_number_holds_credits(caller):
    fund(caller, 10 * MINUTE)
    call = in_transaction(
        start_call, actor=caller, callee_phone="+2348012345678", call_type="audio", idempotency_key=key()
    )
    assert (call.callee_id, call.callee_phone) == (None, "+2348012345678")
    assert credits_of(caller) == 5 * MINUTE


# --- who may do what ----------------------------------------------------------------------------------


def test_answer_call_by_caller_not_your_call(caller, callee):
    fund(caller, 10 * MINUTE)
    call = place(caller, callee)
    assert code_of(answer_call, actor=caller, call_id=call.id) == "not_your_call"
    assert reload(call).status == CallStatus.RINGING


@pytest.mark.parametrize("service", [answer_call, decline_call, cancel_call, end_call, get_call])
def test_other_users_call_not_found(caller, callee, stranger, service):
    fund(caller, 10 * MINUTE)
    call = place(caller, callee)
    assert code_of(service, actor=stranger, call_id=call.id) == "not_found"
    assert reload(call).status == CallStatus.RINGING


def test_unknown_call_not_found(caller):
    assert code_of(get_call, actor=caller, call_id=uuid.uuid4()) == "not_found"


def test_decline_call_by_caller_not_your_call(caller, callee):
    fund(caller, 10 * MINUTE)
    call = place(caller, callee)
    assert code_of(decline_call, actor=caller, call_id=call.id) == "not_your_call"


def test_cancel_call_by_callee_forbidden(caller, callee):
    fund(caller, 10 * MINUTE)
    call = place(caller, callee)
    assert code_of(cancel_call, actor=callee, call_id=call.id) == "forbidden"


def test_get_and_list_calls_show_parties_only(caller, callee, stranger):
    fund(caller, 20 * MINUTE)
    first = place(caller, callee)
    second = place(caller, callee)
    in_transaction(decline_call, actor=callee, call_id=second.id)
    assert in_transaction(get_call, actor=callee, call_id=first.id).id == first.id
    assert {c.id for c in in_transaction(list_calls, actor=caller)} == {first.id, second.id}
    assert {c.id for c in in_transaction(list_calls, actor=callee)} == {first.id, second.id}
    assert [c.id for c in in_transaction(list_calls, actor=callee, status="declined")] == [second.id]
    assert in_transaction(list_calls, actor=stranger) == []


# --- never answered: nothing charged --------------------------------------------------------------------


def assert_released_for_nothing(call: Call, caller: User, funded: int) -> None:
    assert credits_of(caller) == funded
    assert hold_of(call).status == HoldStatus.VOIDED
    found = reload(call)
    assert (found.cost_minor, found.duration_seconds, found.started_at) == (0, 0, None)
    [(transaction, _)] = settlements(call)
    assert found.settlement_transaction_id == transaction.id


def test_decline_call_charges_nothing_and_releases_hold(caller, callee, published):
    fund(caller, 10 * MINUTE)
    call = place(caller, callee)
    declined = in_transaction(decline_call, actor=callee, call_id=call.id)
    assert (declined.status, declined.end_reason) == (CallStatus.DECLINED, EndReason.DECLINED)
    assert_released_for_nothing(call, caller, 10 * MINUTE)
    assert code_of(answer_call, actor=callee, call_id=call.id) == "call_not_ringing"
    assert [m["status"] for m in published if m["user_id"] == str(caller.id)] == ["ringing", "declined"]


def test_decline_call_twice_releases_once(caller, callee):
    fund(caller, 10 * MINUTE)
    call = place(caller, callee)
    in_transaction(decline_call, actor=callee, call_id=call.id)
    assert in_transaction(decline_call, actor=callee, call_id=call.id).status == CallStatus.DECLINED
    assert_released_for_nothing(call, caller, 10 * MINUTE)


def test_cancel_call_charges_nothing_and_releases_hold(caller, callee):
    fund(caller, 10 * MINUTE)
    call = place(caller, callee)
    cancelled = in_transaction(cancel_call, actor=caller, call_id=call.id)
    assert (cancelled.status, cancelled.end_reason) == (CallStatus.CANCELLED, EndReason.CANCELLED)
    assert_released_for_nothing(call, caller, 10 * MINUTE)


@pytest.mark.parametrize(("who", "status"), [("caller", CallStatus.CANCELLED), ("callee", CallStatus.DECLINED)])
def test_end_call_while_ringing_charges_nothing(caller, callee, who, status):
    fund(caller, 10 * MINUTE)
    call = place(caller, callee)
    ended = in_transaction(end_call, actor=caller if who == "caller" else callee, call_id=call.id)
    assert ended.status == status
    assert_released_for_nothing(call, caller, 10 * MINUTE)


def test_unanswered_call_missed_after_sixty_seconds(caller, callee, clock):
    fund(caller, 10 * MINUTE)
    call = place(caller, callee)
    clock.shift(59)
    run_due_jobs(worker_id="test")
    assert reload(call).status == CallStatus.RINGING
    clock.shift(1)
    run_due_jobs(worker_id="test")
    missed = reload(call)
    assert (missed.status, missed.end_reason) == (CallStatus.MISSED, EndReason.MISSED)
    assert_released_for_nothing(call, caller, 10 * MINUTE)
    assert code_of(answer_call, actor=callee, call_id=call.id) == "call_not_ringing"


def test_ring_timeout_after_answer_changes_nothing(caller, callee, clock):
    fund(caller, 10 * MINUTE)
    call = place(caller, callee)
    in_transaction(answer_call, actor=callee, call_id=call.id)
    clock.shift(61)
    run_due_jobs(worker_id="test")
    assert reload(call).status == CallStatus.ACTIVE
    assert hold_of(call).status == HoldStatus.ACTIVE


# --- answered: billed by the second ---------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0, 30, 61, 299])
def test_end_call_after_n_seconds_charges_cost_for_n_in_one_transaction(caller, callee, clock, seconds):
    fund(caller, 10 * MINUTE)
    call = place(caller, callee)
    clock.shift(5)  # ringing is free
    answered = in_transaction(answer_call, actor=callee, call_id=call.id)
    assert answered.started_at == T0 + timedelta(seconds=5)
    clock.shift(seconds + 0.9)  # part of a second is not billed
    ended = in_transaction(end_call, actor=caller, call_id=call.id)
    cost = cost_for(seconds, RATE)
    assert (ended.status, ended.end_reason) == (CallStatus.ENDED, EndReason.CALLER_ENDED)
    assert (ended.duration_seconds, ended.cost_minor) == (seconds, cost)
    assert credits_of(caller) == 10 * MINUTE - cost
    assert balance(REVENUE_ADDRESS) == cost
    [(transaction, entries)] = settlements(call)
    assert ended.settlement_transaction_id == transaction.id
    wallet = wallet_address(caller.id, WalletKind.CALL_CREDITS)
    with unit_of_work() as session:
        credited = {
            session.get(LedgerAccount, e.account_id).address: e.amount_minor for e in entries if e.amount_minor > 0
        }
    expected = {REVENUE_ADDRESS: cost, wallet: 5 * MINUTE - cost} if cost else {wallet: 5 * MINUTE}
    assert credited == expected


def test_end_call_by_callee_records_callee_ended(caller, callee, clock):
    fund(caller, 10 * MINUTE)
    call = place(caller, callee)
    in_transaction(answer_call, actor=callee, call_id=call.id)
    clock.shift(60)
    ended = in_transaction(end_call, actor=callee, call_id=call.id)
    assert (ended.end_reason, ended.cost_minor) == (EndReason.CALLEE_ENDED, MINUTE)


def test_end_call_twice_posts_once(caller, callee, clock):
    fund(caller, 10 * MINUTE)
    call = place(caller, callee)
    in_transaction(answer_call, actor=callee, call_id=call.id)
    clock.shift(61)
    first = in_transaction(end_call, actor=caller, call_id=call.id)
    clock.shift(30)
    second = in_transaction(end_call, actor=callee, call_id=call.id)
    assert (second.duration_seconds, second.cost_minor, second.end_reason) == (61, 1017, EndReason.CALLER_ENDED)
    assert second.settlement_transaction_id == first.settlement_transaction_id
    assert len(settlements(call)) == 1
    assert credits_of(caller) == 10 * MINUTE - 1017


def test_end_call_concurrently_by_both_parties_posts_once(caller, callee, clock):
    fund(caller, 10 * MINUTE)
    call = place(caller, callee)
    in_transaction(answer_call, actor=callee, call_id=call.id)
    clock.shift(90)
    parties = itertools.cycle([caller, callee])
    results = run_at_once(4, lambda: in_transaction(end_call, actor=next(parties), call_id=call.id).cost_minor)
    assert results == [cost_for(90, RATE)] * 4
    assert len(settlements(call)) == 1
    assert credits_of(caller) == 10 * MINUTE - cost_for(90, RATE)


def test_end_call_past_covered_time_is_capped_at_covered_time(caller, callee, clock):
    fund(caller, 2 * MINUTE)
    call = place(caller, callee)
    in_transaction(answer_call, actor=callee, call_id=call.id)
    clock.shift(500)  # the timer job did not run (workers down): the hold still bounds the bill
    ended = in_transaction(end_call, actor=caller, call_id=call.id)
    assert (ended.duration_seconds, ended.cost_minor) == (120, 2 * MINUTE)
    assert ended.ended_at == T0 + timedelta(seconds=120)
    assert credits_of(caller) == 0


def test_end_call_while_extend_or_end_job_fires_posts_once(caller, callee, clock):
    fund(caller, 5 * MINUTE)  # the hold takes it all: the job will end the call, not extend it
    call = place(caller, callee)
    in_transaction(answer_call, actor=callee, call_id=call.id)
    clock.shift(301)
    turns = itertools.count()

    def race() -> object:
        if next(turns) % 2:
            return run_due_jobs(worker_id=f"worker-{uuid.uuid4()}")
        return in_transaction(end_call, actor=caller, call_id=call.id).status

    run_at_once(2, race)
    ended = reload(call)
    assert ended.status == CallStatus.ENDED
    assert ended.end_reason in {EndReason.CALLER_ENDED, EndReason.CREDITS_EXHAUSTED}
    assert (ended.duration_seconds, ended.cost_minor) == (300, 5 * MINUTE)
    assert len(settlements(call)) == 1
    assert (credits_of(caller), balance(REVENUE_ADDRESS)) == (0, 5 * MINUTE)


# --- running out of credits ----------------------------------------------------------------------------


def test_call_extends_hold_then_ends_itself_when_credits_run_out(caller, callee, clock, published):
    fund(caller, 6 * MINUTE)
    call = place(caller, callee)
    in_transaction(answer_call, actor=callee, call_id=call.id)
    assert (hold_of(call).amount_minor, credits_of(caller)) == (5 * MINUTE, MINUTE)

    clock.shift(279)
    run_due_jobs(worker_id="test")
    assert hold_of(call).amount_minor == 5 * MINUTE  # not due yet (20 s before the covered end)
    clock.shift(1)
    run_due_jobs(worker_id="test")
    assert (hold_of(call).amount_minor, credits_of(caller)) == (6 * MINUTE, 0)
    assert reload(call).status == CallStatus.ACTIVE

    clock.shift(60)  # 340 s: due again, nothing left to extend with; waits for the covered end
    run_due_jobs(worker_id="test")
    assert reload(call).status == CallStatus.ACTIVE
    clock.shift(19)
    run_due_jobs(worker_id="test")
    assert reload(call).status == CallStatus.ACTIVE
    clock.shift(1)  # 360 s: exactly the covered time
    run_due_jobs(worker_id="test")

    ended = reload(call)
    assert (ended.status, ended.end_reason) == (CallStatus.ENDED, EndReason.CREDITS_EXHAUSTED)
    assert (ended.duration_seconds, ended.cost_minor) == (360, 6 * MINUTE)
    assert ended.ended_at == T0 + timedelta(seconds=360)
    assert credits_of(caller) == 0
    assert balance(REVENUE_ADDRESS) == 6 * MINUTE
    assert len(settlements(call)) == 1
    assert {m["user_id"] for m in published if m["status"] == "ended"} == {str(caller.id), str(callee.id)}


def test_credits_bought_during_call_extend_it(caller, callee, clock):
    fund(caller, 5 * MINUTE)
    call = place(caller, callee)
    in_transaction(answer_call, actor=callee, call_id=call.id)
    clock.shift(280)
    run_due_jobs(worker_id="test")  # nothing to extend with: waits for the covered end
    fund(caller, 2 * MINUTE)
    clock.shift(20)
    run_due_jobs(worker_id="test")
    assert reload(call).status == CallStatus.ACTIVE
    assert hold_of(call).amount_minor == 7 * MINUTE
    clock.shift(30)
    ended = in_transaction(end_call, actor=caller, call_id=call.id)
    assert (ended.duration_seconds, ended.cost_minor) == (330, cost_for(330, RATE))
    assert credits_of(caller) == 7 * MINUTE - cost_for(330, RATE)


def test_extend_or_end_after_call_ended_changes_nothing(caller, callee, clock):
    fund(caller, 10 * MINUTE)
    call = place(caller, callee)
    in_transaction(answer_call, actor=callee, call_id=call.id)
    clock.shift(100)
    in_transaction(end_call, actor=caller, call_id=call.id)
    clock.shift(400)
    run_due_jobs(worker_id="test")
    assert reload(call).cost_minor == cost_for(100, RATE)
    assert credits_of(caller) == 10 * MINUTE - cost_for(100, RATE)


# --- buying credits and history -------------------------------------------------------------------------


def test_buy_call_credits_from_wallet_moves_money_once(caller):
    fund(caller, 10_000, WalletKind.PRIMARY)
    same = key()
    first = in_transaction(
        buy_call_credits_from_wallet, actor=caller, amount_minor=3_000, currency="NGN", idempotency_key=same
    )
    again = in_transaction(
        buy_call_credits_from_wallet, actor=caller, amount_minor=3_000, currency="NGN", idempotency_key=same
    )
    assert again.id == first.id
    assert balance(wallet_address(caller.id, WalletKind.PRIMARY)) == 7_000
    assert credits_of(caller) == 3_000


def test_buy_call_credits_from_wallet_insufficient_funds(caller):
    fund(caller, 1_000, WalletKind.PRIMARY)
    assert (
        code_of(buy_call_credits_from_wallet, actor=caller, amount_minor=1_001, currency="NGN", idempotency_key=key())
        == "insufficient_funds"
    )
    assert (balance(wallet_address(caller.id, WalletKind.PRIMARY)), credits_of(caller)) == (1_000, 0)


@pytest.mark.parametrize("amount", [0, -5])
def test_buy_call_credits_from_wallet_invalid_amount(caller, amount):
    assert (
        code_of(buy_call_credits_from_wallet, actor=caller, amount_minor=amount, currency="NGN", idempotency_key=key())
        == "invalid_amount"
    )


def test_monthly_totals_sum_placed_calls_per_month(caller, callee, clock):
    fund(caller, 30 * MINUTE)
    for seconds in (61, 30):
        call = place(caller, callee)
        in_transaction(answer_call, actor=callee, call_id=call.id)
        clock.shift(seconds)
        in_transaction(end_call, actor=caller, call_id=call.id)
    in_transaction(decline_call, actor=callee, call_id=place(caller, callee).id)
    clock.move_to(datetime(2030, 4, 2, 12, 0, tzinfo=UTC))
    call = place(caller, callee)
    in_transaction(answer_call, actor=callee, call_id=call.id)
    clock.shift(60)
    in_transaction(end_call, actor=callee, call_id=call.id)
    assert in_transaction(monthly_totals, actor=caller) == [
        ("2030-04", 1, 60, 1000, "NGN"),
        ("2030-03", 3, 91, 1017 + 500, "NGN"),
    ]
    assert in_transaction(monthly_totals, actor=callee) == []
