"""Sending money to a friend, on SQLite and PostgreSQL: one balanced ledger transaction, idempotent,
friends only, refusals with codes and nothing moved, and a TOTP or emailed code above the threshold."""

import re
import uuid
from datetime import UTC, datetime

import pyotp
import pytest
import time_machine
from sqlmodel import col, select

from paytime_app import bus
from paytime_app.db import in_transaction, unit_of_work
from paytime_app.errors import DomainError
from paytime_app.models.ledger import LedgerTransaction
from paytime_app.models.mail import MailMessage
from paytime_app.models.users import User
from paytime_app.money import Currency
from paytime_app.services.friends import accept_friend_request, block_user, send_friend_request
from paytime_app.services.ledger import find_ledger_problems, get_balance
from paytime_app.services.notifications import describe_notification, list_notifications
from paytime_app.services.transfers import TRANSFER_KIND, step_up_threshold, transfer_to_friend
from paytime_app.services.two_factor import begin_totp_enrollment, confirm_totp_enrollment
from paytime_app.services.wallets import WalletKind, wallet_address, wallet_history
from tests.helpers import fund_wallet, make_user, refusal_code, run_at_once

NGN, USD = Currency.NGN, Currency.USD
T0 = datetime(2030, 5, 2, 10, 0, 10, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(engine):
    yield
    with unit_of_work() as session:
        assert find_ledger_problems(session=session) == []


@pytest.fixture
def ada(engine) -> User:
    return make_user("ada@example.com", "Ada Obi")


@pytest.fixture
def ben(engine) -> User:
    return make_user("ben@example.com", "Ben Okafor")


@pytest.fixture
def friends(ada, ben) -> tuple[User, User]:
    request = in_transaction(send_friend_request, actor=ada, user_id=ben.id)
    in_transaction(accept_friend_request, actor=ben, request_id=request.id)
    fund_wallet(ada, 1_000_000_00, "NGN")
    fund_wallet(ada, 1_000_00, "USD")
    return ada, ben


def wallet(user: User, currency: Currency = NGN) -> int:
    with unit_of_work() as session:
        return get_balance(session=session, address=wallet_address(user.id, WalletKind.PRIMARY), currency=currency)


def send(actor: User, to: User, amount_minor: int, currency: str = "NGN", **kwargs) -> LedgerTransaction:
    kwargs.setdefault("idempotency_key", str(uuid.uuid4()))
    return in_transaction(
        transfer_to_friend, actor=actor, to_user_id=to.id, amount_minor=amount_minor, currency=currency, **kwargs
    )


def transfers() -> list[LedgerTransaction]:
    with unit_of_work() as session:
        return list(session.exec(select(LedgerTransaction).where(LedgerTransaction.kind == TRANSFER_KIND)).all())


def step_up(actor: User, to: User, amount_minor: int, currency: str = "NGN", **kwargs) -> dict:
    with pytest.raises(DomainError) as raised:
        send(actor, to, amount_minor, currency, **kwargs)
    assert raised.value.code == "step_up_required"
    return raised.value.details


def emailed_code(user: User) -> str:
    with unit_of_work() as session:
        mail = session.exec(
            select(MailMessage).where(MailMessage.to_address == user.email).order_by(col(MailMessage.created_at).desc())
        ).first()
    assert mail is not None
    return re.search(r"Your code: (\d{6})", mail.body_text).group(1)


def test_transfer_moves_money_once_and_reads_well_on_both_sides(friends):
    ada, ben = friends
    transaction = send(ada, ben, 2_500_00, note="Lunch at Mama Put")
    assert wallet(ada) == 1_000_000_00 - 2_500_00
    assert wallet(ben) == 2_500_00
    assert len(transactions_for(transaction)) == 1
    with unit_of_work() as session:
        [out_line], _ = wallet_history(session=session, actor=ada, kind=WalletKind.PRIMARY, currency=NGN, page_size=1)
        [in_line], _ = wallet_history(session=session, actor=ben, kind=WalletKind.PRIMARY, currency=NGN)
    assert out_line.description == "Transfer to Ben Okafor · Lunch at Mama Put"
    assert (in_line.description, in_line.amount_minor) == ("Transfer from Ada Obi · Lunch at Mama Put", 2_500_00)
    [notice] = received(ben)
    assert describe_notification(notice) == "Ada Obi sent you ₦2,500.00. “Lunch at Mama Put”"
    assert received(ada) == []


def received(user: User) -> list:
    return [found for found in in_transaction(list_notifications, actor=user) if found.kind == "transfer.received"]


def transactions_for(transaction: LedgerTransaction) -> list[LedgerTransaction]:
    return [found for found in transfers() if found.id == transaction.id]


def test_transfer_tells_both_wallets_and_nobody_else(friends, monkeypatch):
    ada, ben = friends
    eve = make_user("eve@example.com", "Eve")
    published: list[dict] = []
    monkeypatch.setattr(bus, "publish", published.append)
    send(ada, ben, 100_00)
    assert {message["user_id"] for message in published} == {str(ada.id), str(ben.id)}
    assert str(eve.id) not in {message["user_id"] for message in published}
    assert {(m["topic"], m["user_id"]) for m in published} >= {
        ("wallet.updated", str(ada.id)),
        ("wallet.updated", str(ben.id)),
        ("notification.created", str(ben.id)),
    }


def test_transfer_same_key_returns_the_first_transfer(friends):
    ada, ben = friends
    first = send(ada, ben, 300_00, idempotency_key="key-1")
    again = send(ada, ben, 300_00, idempotency_key="key-1")
    assert again.id == first.id
    assert wallet(ben) == 300_00
    assert len(received(ben)) == 1


def test_transfer_same_key_other_amount_is_refused(friends):
    ada, ben = friends
    send(ada, ben, 300_00, idempotency_key="key-1")
    assert (
        refusal_code(
            transfer_to_friend,
            actor=ada,
            to_user_id=ben.id,
            amount_minor=301_00,
            currency="NGN",
            idempotency_key="key-1",
        )
        == "idempotency_mismatch"
    )
    assert wallet(ben) == 300_00


def test_transfer_concurrent_same_key_moves_money_once(friends):
    ada, ben = friends
    outcomes = run_at_once(3, lambda: send(ada, ben, 700_00, idempotency_key="double-click").id)
    assert len(set(outcomes)) == 1
    assert wallet(ben) == 700_00


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [
        (0, "NGN", "invalid_amount"),
        (-500, "NGN", "invalid_amount"),
        (10**16, "NGN", "invalid_amount"),
        (100, "EUR", "unsupported_currency"),
        (1_000_000_01, "NGN", "insufficient_funds"),
        (1_000_01, "USD", "insufficient_funds"),
    ],
)
def test_transfer_refusals_move_nothing(friends, amount, currency, code):
    ada, ben = friends
    assert (
        refusal_code(
            transfer_to_friend,
            actor=ada,
            to_user_id=ben.id,
            amount_minor=amount,
            currency=currency,
            idempotency_key="k",
        )
        == code
    )
    assert (wallet(ada), wallet(ada, USD), wallet(ben)) == (1_000_000_00, 1_000_00, 0)
    assert transfers() == []


def test_transfer_to_a_non_friend_is_refused(ada, ben):
    fund_wallet(ada, 1_000_00)
    stranger = make_user("eve@example.com", "Eve")
    for other in (ben, stranger):
        assert (
            refusal_code(
                transfer_to_friend,
                actor=ada,
                to_user_id=other.id,
                amount_minor=100,
                currency="NGN",
                idempotency_key="k",
            )
            == "not_friends"
        )
    assert wallet(ada) == 1_000_00


def test_transfer_after_block_is_refused(friends):
    ada, ben = friends
    in_transaction(block_user, actor=ben, user_id=ada.id)
    assert (
        refusal_code(
            transfer_to_friend, actor=ada, to_user_id=ben.id, amount_minor=100, currency="NGN", idempotency_key="k"
        )
        == "not_friends"
    )


def test_transfer_to_self_and_long_note_are_refused(friends):
    ada, _ben = friends
    assert (
        refusal_code(
            transfer_to_friend, actor=ada, to_user_id=ada.id, amount_minor=100, currency="NGN", idempotency_key="k"
        )
        == "cannot_friend_self"
    )
    assert (
        refusal_code(
            transfer_to_friend,
            actor=ada,
            to_user_id=_ben.id,
            amount_minor=100,
            currency="NGN",
            idempotency_key="k",
            note="x" * 141,
        )
        == "invalid_note"
    )


# --- step-up ----------------------------------------------------------------------------------------------


def test_threshold_defaults_to_about_100_usd():
    assert step_up_threshold(USD) == 100_00
    assert step_up_threshold(NGN) == 150_000_00


def test_transfer_just_below_threshold_needs_no_code(friends):
    ada, ben = friends
    send(ada, ben, step_up_threshold(USD) - 1, "USD")
    assert wallet(ben, USD) == step_up_threshold(USD) - 1


def test_transfer_at_threshold_needs_emailed_code_bound_to_it(friends):
    ada, ben = friends
    details = step_up(ada, ben, 100_00, "USD", idempotency_key="big-1")
    assert details["method"] == "email"
    assert wallet(ben, USD) == 0
    code = emailed_code(ada)
    # The code confirms only this transfer: another amount is refused and uses it up.
    assert (
        refusal_code(
            transfer_to_friend,
            actor=ada,
            to_user_id=ben.id,
            amount_minor=200_00,
            currency="USD",
            idempotency_key="big-2",
            step_up_code=code,
            step_up_token=details["challenge"],
        )
        == "step_up_mismatch"
    )
    details = step_up(ada, ben, 100_00, "USD", idempotency_key="big-1")
    wrong = "000000" if emailed_code(ada) != "000000" else "111111"
    assert (
        refusal_code(
            transfer_to_friend,
            actor=ada,
            to_user_id=ben.id,
            amount_minor=100_00,
            currency="USD",
            idempotency_key="big-1",
            step_up_code=wrong,
            step_up_token=details["challenge"],
        )
        == "invalid_code"
    )
    send(
        ada,
        ben,
        100_00,
        "USD",
        idempotency_key="big-1",
        step_up_code=emailed_code(ada),
        step_up_token=details["challenge"],
    )
    assert wallet(ben, USD) == 100_00
    # A retry of the finished transfer asks for nothing and moves nothing.
    send(ada, ben, 100_00, "USD", idempotency_key="big-1")
    assert wallet(ben, USD) == 100_00


def test_transfer_at_threshold_with_totp_asks_the_authenticator(friends):
    ada, ben = friends
    with time_machine.travel(T0, tick=False) as clock:
        enrollment = in_transaction(begin_totp_enrollment, user=ada)
        in_transaction(confirm_totp_enrollment, user=ada, code=pyotp.TOTP(enrollment.secret).now())
        clock.shift(30)
        details = step_up(ada, ben, 150_000_00)
        assert details == {"method": "totp"}
        assert (
            refusal_code(
                transfer_to_friend,
                actor=ada,
                to_user_id=ben.id,
                amount_minor=150_000_00,
                currency="NGN",
                idempotency_key="k",
                step_up_code="12345",
            )
            == "invalid_code"
        )
        send(ada, ben, 150_000_00, step_up_code=pyotp.TOTP(enrollment.secret).now())
    assert wallet(ben) == 150_000_00


def test_threshold_is_configurable(friends, settings_env):
    ada, ben = friends
    settings_env.setenv("TRANSFER_STEP_UP_NGN_MINOR", "1000")
    assert step_up(ada, ben, 1000)["method"] == "email"
    send(ada, ben, 999)
    assert wallet(ben) == 999
