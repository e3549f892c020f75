"""IOUs between friends, on SQLite and PostgreSQL, with a frozen clock: opening rules, who may cancel,
paying by wallet once, cash confirmed by the lender, the durable due-date job, lists and totals."""

import itertools
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlmodel import select

import paytime_app.services.job_handlers  # noqa: F401  registers every job kind run_due_jobs may meet
from paytime_app import bus
from paytime_app.db import in_transaction, unit_of_work
from paytime_app.models.ious import Iou, IouMethod, IouStatus
from paytime_app.models.jobs import Job
from paytime_app.models.ledger import LedgerTransaction
from paytime_app.models.users import User
from paytime_app.money import Currency
from paytime_app.services import rate_limits
from paytime_app.services.friends import accept_friend_request, send_friend_request
from paytime_app.services.ious import (
    DUE_JOB,
    PAYMENT_KIND,
    acknowledge_iou,
    cancel_iou,
    claim_cash_payment,
    confirm_cash_payment,
    dispute_cash_payment,
    get_iou,
    iou_due_job,
    iou_totals,
    list_ious,
    open_iou,
    pay_iou_from_wallet,
)
from paytime_app.services.jobs import run_due_jobs
from paytime_app.services.ledger import find_ledger_problems, get_balance
from paytime_app.services.notifications import list_notifications
from paytime_app.services.rate_limits import RateLimitPolicy
from paytime_app.services.wallets import WalletKind, wallet_address
from tests.helpers import fund_wallet, make_user, refusal_code, run_at_once

T0 = datetime(2030, 6, 10, 15, 30, tzinfo=UTC)
TODAY = T0.date()


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(engine):
    yield
    with unit_of_work() as session:
        assert find_ledger_problems(session=session) == []


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def friends_with(first: User, second: User) -> None:
    request = in_transaction(send_friend_request, actor=first, user_id=second.id)
    in_transaction(accept_friend_request, actor=second, request_id=request.id)


@pytest.fixture
def ben(engine) -> User:
    """The borrower."""
    return make_user("ben@example.com", "Ben Okafor")


@pytest.fixture
def ada(engine, ben) -> User:
    """The lender, Ben's friend."""
    lender = make_user("ada@example.com", "Ada Obi")
    friends_with(ben, lender)
    return lender


@pytest.fixture
def eve(engine) -> User:
    return make_user("eve@example.com", "Eve")


def wallet(user: User, currency: str = "NGN") -> int:
    with unit_of_work() as session:
        return get_balance(
            session=session, address=wallet_address(user.id, WalletKind.PRIMARY), currency=Currency(currency)
        )


def borrow(borrower: User, lender: User, amount_minor: int = 5_000_00, **kwargs) -> Iou:
    kwargs.setdefault("method", "wallet")
    kwargs.setdefault("currency", "NGN")
    kwargs.setdefault("idempotency_key", str(uuid.uuid4()))
    return in_transaction(open_iou, actor=borrower, lender_id=lender.id, amount_minor=amount_minor, **kwargs)


def reload(iou: Iou) -> Iou:
    with unit_of_work() as session:
        found = session.get(Iou, iou.id)
        assert found is not None
        return found


def payments() -> list[LedgerTransaction]:
    with unit_of_work() as session:
        return list(session.exec(select(LedgerTransaction).where(LedgerTransaction.kind == PAYMENT_KIND)).all())


def kinds(user: User) -> list[str]:
    """The user's IOU notifications, sorted (the frozen clock gives them all one timestamp)."""
    return sorted(
        notice.kind for notice in in_transaction(list_notifications, actor=user) if notice.kind.startswith("iou.")
    )


# --- opening ------------------------------------------------------------------------------------------------


def test_open_iou_defaults_due_in_seven_days_and_tells_the_lender(clock, ben, ada, eve, monkeypatch):
    published: list[dict] = []
    monkeypatch.setattr(bus, "publish", published.append)
    iou = borrow(ben, ada, note="Suya at the market")
    assert (iou.status, iou.due_date, iou.borrower_id, iou.lender_id) == (
        IouStatus.PENDING,
        TODAY + timedelta(days=7),
        ben.id,
        ada.id,
    )
    assert iou.reference.startswith("IOU-")
    assert kinds(ada) == ["iou.opened"]
    assert kinds(ben) == []
    assert str(eve.id) not in {message["user_id"] for message in published}
    with unit_of_work() as session:
        job = session.exec(select(Job).where(Job.kind == DUE_JOB)).one()
    assert job.payload == {"iou_id": str(iou.id)}
    assert job.run_at == datetime(2030, 6, 18, tzinfo=UTC)  # the end of the due date


def test_open_auto_wallet_iou_is_charged_at_the_start_of_the_due_date(clock, ben, ada):
    iou = borrow(ben, ada, method="auto_wallet", due_date=date(2030, 6, 12))
    with unit_of_work() as session:
        job = session.exec(select(Job).where(Job.kind == DUE_JOB)).one()
    assert job.run_at == datetime(2030, 6, 12, tzinfo=UTC)
    assert iou.method == IouMethod.AUTO_WALLET


def test_open_iou_same_key_returns_the_same_iou(clock, ben, ada):
    first = borrow(ben, ada, idempotency_key="iou-key-1")
    assert borrow(ben, ada, idempotency_key="iou-key-1").id == first.id
    assert (
        refusal_code(
            open_iou,
            actor=ben,
            lender_id=ada.id,
            amount_minor=1,
            currency="NGN",
            method="cash",
            idempotency_key="iou-key-1",
        )
        == "idempotency_mismatch"
    )
    assert len(in_transaction(list_ious, actor=ben)) == 1


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"amount_minor": 0}, "invalid_amount"),
        ({"amount_minor": -1}, "invalid_amount"),
        ({"currency": "GBP"}, "unsupported_currency"),
        ({"method": "card"}, "invalid_method"),
        ({"due_date": TODAY - timedelta(days=1)}, "invalid_due_date"),
        ({"due_date": TODAY + timedelta(days=800)}, "invalid_due_date"),
        ({"note": "n" * 201}, "invalid_note"),
    ],
)
def test_open_iou_bad_input_is_refused(clock, ben, ada, changes, code):
    request = {"amount_minor": 100, "currency": "NGN", "method": "cash", "idempotency_key": "k", **changes}
    assert refusal_code(open_iou, actor=ben, lender_id=ada.id, **request) == code
    assert in_transaction(list_ious, actor=ben) == []


def test_opening_ious_is_rate_limited_but_retries_are_not(clock, ben, ada, monkeypatch):
    monkeypatch.setattr(rate_limits, "IOUS_OPENED_PER_USER", RateLimitPolicy("ious_opened_per_user", "2/hour"))
    first = borrow(ben, ada, idempotency_key="limit-1")
    borrow(ben, ada, idempotency_key="limit-2")
    assert borrow(ben, ada, idempotency_key="limit-1").id == first.id
    assert refusal_code(
        open_iou, actor=ben, lender_id=ada.id, amount_minor=100, currency="NGN", method="cash", idempotency_key="k3"
    ) == ("rate_limited")
    assert len(in_transaction(list_ious, actor=ben)) == 2


def test_open_iou_needs_a_friend(clock, ben, ada, eve):
    for lender in (eve, ben):
        code = refusal_code(
            open_iou,
            actor=ben,
            lender_id=lender.id,
            amount_minor=100,
            currency="NGN",
            method="cash",
            idempotency_key="k",
        )
        assert code == ("cannot_friend_self" if lender is ben else "not_friends")


def test_due_today_is_allowed(clock, ben, ada):
    assert borrow(ben, ada, due_date=TODAY).due_date == TODAY


# --- cancelling ---------------------------------------------------------------------------------------------


def test_borrower_cancels_before_acknowledgement_only(clock, ben, ada):
    early = borrow(ben, ada)
    assert in_transaction(cancel_iou, actor=ben, iou_id=early.id).status == IouStatus.CANCELLED
    assert kinds(ada) == ["iou.cancelled", "iou.opened"]
    late = borrow(ben, ada)
    in_transaction(acknowledge_iou, actor=ada, iou_id=late.id)
    assert refusal_code(cancel_iou, actor=ben, iou_id=late.id) == "already_acknowledged"
    assert in_transaction(cancel_iou, actor=ada, iou_id=late.id).status == IouStatus.CANCELLED


def test_only_the_lender_acknowledges(clock, ben, ada, eve):
    iou = borrow(ben, ada)
    assert refusal_code(acknowledge_iou, actor=ben, iou_id=iou.id) == "only_lender"
    assert refusal_code(acknowledge_iou, actor=eve, iou_id=iou.id) == "not_found"
    assert reload(iou).acknowledged_at is None


def test_strangers_see_and_change_nothing(clock, ben, ada, eve):
    iou = borrow(ben, ada)
    for service in (get_iou, cancel_iou, pay_iou_from_wallet, claim_cash_payment, confirm_cash_payment):
        assert refusal_code(service, actor=eve, iou_id=iou.id) == "not_found"
    assert in_transaction(list_ious, actor=eve) == []
    assert reload(iou).status == IouStatus.PENDING


def test_paid_iou_cannot_be_cancelled(clock, ben, ada):
    fund_wallet(ben, 10_000_00)
    iou = borrow(ben, ada)
    in_transaction(pay_iou_from_wallet, actor=ben, iou_id=iou.id)
    assert refusal_code(cancel_iou, actor=ada, iou_id=iou.id) == "iou_not_open"


# --- paying ----------------------------------------------------------------------------------------------


def test_pay_from_wallet_moves_the_amount_once(clock, ben, ada):
    fund_wallet(ben, 10_000_00)
    iou = borrow(ben, ada, amount_minor=4_000_00)
    paid = in_transaction(pay_iou_from_wallet, actor=ben, iou_id=iou.id)
    assert (paid.status, paid.paid_via, paid.paid_at) == (IouStatus.PAID, IouMethod.WALLET, T0)
    assert (wallet(ben), wallet(ada)) == (6_000_00, 4_000_00)
    again = in_transaction(pay_iou_from_wallet, actor=ben, iou_id=iou.id)
    assert again.settlement_transaction_id == paid.settlement_transaction_id
    assert (wallet(ben), wallet(ada)) == (6_000_00, 4_000_00)
    assert kinds(ada) == ["iou.opened", "iou.paid"]


def test_pay_without_enough_money_moves_nothing(clock, ben, ada):
    fund_wallet(ben, 3_999_99)
    iou = borrow(ben, ada, amount_minor=4_000_00)
    assert refusal_code(pay_iou_from_wallet, actor=ben, iou_id=iou.id) == "insufficient_funds"
    assert reload(iou).status == IouStatus.PENDING
    assert (wallet(ben), wallet(ada)) == (3_999_99, 0)


def test_only_the_borrower_pays(clock, ben, ada):
    fund_wallet(ada, 10_000_00)
    iou = borrow(ben, ada)
    assert refusal_code(pay_iou_from_wallet, actor=ada, iou_id=iou.id) == "only_borrower"
    assert refusal_code(claim_cash_payment, actor=ada, iou_id=iou.id) == "only_borrower"
    assert payments() == []


def test_cancelled_iou_cannot_be_paid(clock, ben, ada):
    fund_wallet(ben, 10_000_00)
    iou = borrow(ben, ada)
    in_transaction(cancel_iou, actor=ada, iou_id=iou.id)
    assert refusal_code(pay_iou_from_wallet, actor=ben, iou_id=iou.id) == "iou_not_open"
    assert wallet(ben) == 10_000_00


def test_two_payments_at_once_settle_once(clock, ben, ada):
    fund_wallet(ben, 100_000_00)
    iou = borrow(ben, ada, amount_minor=6_000_00)
    outcomes = run_at_once(4, lambda: in_transaction(pay_iou_from_wallet, actor=ben, iou_id=iou.id).status)
    assert outcomes == [IouStatus.PAID] * 4
    assert len(payments()) == 1
    assert (wallet(ben), wallet(ada)) == (94_000_00, 6_000_00)


# --- cash ----------------------------------------------------------------------------------------------------


def test_cash_counts_only_when_the_lender_confirms(clock, ben, ada):
    iou = borrow(ben, ada, method="cash")
    claimed = in_transaction(claim_cash_payment, actor=ben, iou_id=iou.id)
    assert (claimed.status, claimed.cash_claimed_at) == (IouStatus.PENDING, T0)
    assert refusal_code(confirm_cash_payment, actor=ben, iou_id=iou.id) == "only_lender"
    paid = in_transaction(confirm_cash_payment, actor=ada, iou_id=iou.id)
    assert (paid.status, paid.paid_via, paid.settlement_transaction_id) == (IouStatus.PAID, IouMethod.CASH, None)
    assert payments() == []
    assert kinds(ben) == ["iou.cash_confirmed"]


def test_disputed_cash_leaves_the_iou_open(clock, ben, ada):
    iou = borrow(ben, ada, method="cash")
    assert refusal_code(confirm_cash_payment, actor=ada, iou_id=iou.id) == "no_cash_claim"
    in_transaction(claim_cash_payment, actor=ben, iou_id=iou.id)
    disputed = in_transaction(dispute_cash_payment, actor=ada, iou_id=iou.id)
    assert (disputed.status, disputed.cash_claimed_at, disputed.cash_disputed_at) == (IouStatus.PENDING, None, T0)
    assert refusal_code(confirm_cash_payment, actor=ada, iou_id=iou.id) == "no_cash_claim"
    assert kinds(ben) == ["iou.cash_disputed"]


# --- the due date -------------------------------------------------------------------------------------------


def run_jobs() -> None:
    while run_due_jobs(worker_id="test-worker"):
        pass


def test_auto_wallet_iou_is_charged_on_the_due_date_not_before(clock, ben, ada):
    fund_wallet(ben, 10_000_00)
    iou = borrow(ben, ada, method="auto_wallet", due_date=date(2030, 6, 12), amount_minor=2_500_00)
    clock.move_to(datetime(2030, 6, 11, 23, 59, 59, tzinfo=UTC))
    run_jobs()
    assert reload(iou).status == IouStatus.PENDING
    clock.move_to(datetime(2030, 6, 12, 0, 0, 1, tzinfo=UTC))
    run_jobs()
    paid = reload(iou)
    assert (paid.status, paid.paid_via) == (IouStatus.PAID, IouMethod.AUTO_WALLET)
    assert (wallet(ben), wallet(ada)) == (7_500_00, 2_500_00)
    assert "iou.auto_paid" in kinds(ada)
    assert kinds(ben) == ["iou.auto_paid"]


def test_auto_wallet_iou_without_money_becomes_overdue_and_can_still_be_paid(clock, ben, ada):
    fund_wallet(ben, 1_00)
    iou = borrow(ben, ada, method="auto_wallet", due_date=date(2030, 6, 12), amount_minor=2_500_00)
    clock.move_to(datetime(2030, 6, 12, 8, 0, tzinfo=UTC))
    run_jobs()
    assert reload(iou).status == IouStatus.OVERDUE
    assert (wallet(ben), wallet(ada)) == (1_00, 0)
    assert kinds(ben) == ["iou.overdue"]
    fund_wallet(ben, 2_500_00)
    assert in_transaction(pay_iou_from_wallet, actor=ben, iou_id=iou.id).status == IouStatus.PAID


def test_cash_iou_becomes_overdue_after_its_due_date(clock, ben, ada):
    iou = borrow(ben, ada, method="cash", due_date=date(2030, 6, 12))
    clock.move_to(datetime(2030, 6, 12, 23, 59, tzinfo=UTC))
    run_jobs()
    assert reload(iou).status == IouStatus.PENDING
    clock.move_to(datetime(2030, 6, 13, 0, 1, tzinfo=UTC))
    run_jobs()
    assert reload(iou).status == IouStatus.OVERDUE


def test_due_job_after_payment_or_cancel_changes_nothing(clock, ben, ada):
    fund_wallet(ben, 10_000_00)
    paid = borrow(ben, ada, method="auto_wallet", due_date=date(2030, 6, 12))
    cancelled = borrow(ben, ada, method="auto_wallet", due_date=date(2030, 6, 12))
    in_transaction(pay_iou_from_wallet, actor=ben, iou_id=paid.id)
    in_transaction(cancel_iou, actor=ada, iou_id=cancelled.id)
    clock.move_to(datetime(2030, 6, 13, tzinfo=UTC))
    run_jobs()
    in_transaction(iou_due_job, payload={"iou_id": str(paid.id)})  # a retried job, too
    assert (reload(paid).status, reload(cancelled).status) == (IouStatus.PAID, IouStatus.CANCELLED)
    assert len(payments()) == 1


def test_wallet_payment_racing_the_due_job_charges_once(clock, ben, ada):
    fund_wallet(ben, 100_000_00)
    iou = borrow(ben, ada, method="auto_wallet", due_date=TODAY, amount_minor=7_000_00)
    clock.move_to(datetime.combine(TODAY, datetime.min.time(), tzinfo=UTC) + timedelta(hours=20))
    turns = itertools.cycle(
        [
            lambda: in_transaction(pay_iou_from_wallet, actor=ben, iou_id=iou.id),
            lambda: in_transaction(iou_due_job, payload={"iou_id": str(iou.id)}),
        ]
    )
    run_at_once(4, lambda: next(turns)())  # noqa: PLW0108  each thread takes the next turn
    assert reload(iou).status == IouStatus.PAID
    assert len(payments()) == 1
    assert (wallet(ben), wallet(ada)) == (93_000_00, 7_000_00)


# --- lists and totals ---------------------------------------------------------------------------------------


def test_lists_split_owe_and_owed_with_status_filter(clock, ben, ada):
    fund_wallet(ben, 10_000_00)
    owe = borrow(ben, ada, amount_minor=1_000_00)
    paid = borrow(ben, ada, amount_minor=2_000_00)
    in_transaction(pay_iou_from_wallet, actor=ben, iou_id=paid.id)
    owed = borrow(ada, ben, amount_minor=300_00, currency="USD")
    mine = in_transaction(list_ious, actor=ben, direction="owe")
    assert {line.iou.id for line in mine} == {owe.id, paid.id}
    assert {line.counterpart_name for line in mine} == {"Ada Obi"}
    assert [line.iou.id for line in in_transaction(list_ious, actor=ben, direction="owe", status="paid")] == [paid.id]
    [theirs] = in_transaction(list_ious, actor=ben, direction="owed")
    assert (theirs.iou.id, theirs.direction, theirs.counterpart_name) == (owed.id, "owed", "Ada Obi")
    assert refusal_code(list_ious, actor=ben, direction="everyone") == "invalid_direction"
    assert refusal_code(list_ious, actor=ben, status="lost") == "invalid_status"


def test_totals_per_currency_and_friend_count_open_ious_only(clock, ben, ada):
    carl = make_user("carl@example.com", "Carl")
    friends_with(ben, carl)
    fund_wallet(ben, 10_000_00)
    borrow(ben, ada, amount_minor=1_000_00)
    borrow(ben, ada, amount_minor=500_00, currency="USD")
    borrow(ben, carl, amount_minor=250_00)
    in_transaction(pay_iou_from_wallet, actor=ben, iou_id=borrow(ben, ada, amount_minor=9_00).id)
    borrow(carl, ben, amount_minor=70_00)
    totals = in_transaction(iou_totals, actor=ben)
    assert totals.owe_by_currency == {"NGN": 1_250_00, "USD": 500_00}
    assert totals.owed_by_currency == {"NGN": 70_00}
    assert totals.by_friend == [
        ("Ada Obi", "NGN", 1_000_00, 0),
        ("Ada Obi", "USD", 500_00, 0),
        ("Carl", "NGN", 250_00, 70_00),
    ]
    lender_view = in_transaction(iou_totals, actor=ada)
    assert lender_view.owed_by_currency == {"NGN": 1_000_00, "USD": 500_00}
    assert lender_view.owe_by_currency == {}
