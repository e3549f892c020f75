import pytest
from sqlmodel import select

from paytime_app.db import in_transaction, unit_of_work
from paytime_app.models.events import Event, EventStatus
from paytime_app.models.users import Role, User
from paytime_app.services.demo import DEMO_ACCOUNTS, DEMO_FUNDING, DEMO_PASSWORD, DemoDataRefused, seed_demo_data
from paytime_app.services.friends import are_friends, list_friends
from paytime_app.services.ledger import find_ledger_problems, get_balance
from paytime_app.services.passwords import verify_password
from paytime_app.services.wallets import WalletKind, wallet_address


def test_seed_demo_data_is_idempotent(engine):
    assert len(in_transaction(seed_demo_data)) == len(DEMO_ACCOUNTS)
    assert in_transaction(seed_demo_data) == []
    with unit_of_work() as session:
        users = {user.email: user for user in session.exec(select(User)).all()}
    assert set(users) == {account.email for account in DEMO_ACCOUNTS}
    assert users["admin@paytime.local"].role == Role.ADMIN
    assert users["manager@paytime.local"].role == Role.MANAGER
    assert verify_password(users["ada@paytime.local"].password_hash, DEMO_PASSWORD)


def test_seed_demo_data_refused_in_production(engine, settings_env):
    settings_env.setenv("PAYTIME_ENV", "production")
    settings_env.setenv("SECRET_KEY", "s" * 40)
    settings_env.setenv("MOCK_WEBHOOK_SECRET", "m" * 40)
    with pytest.raises(DemoDataRefused):
        in_transaction(seed_demo_data)
    with unit_of_work() as session:
        assert session.exec(select(User)).all() == []


def test_seed_demo_data_funds_customer_wallets_once(engine):
    in_transaction(seed_demo_data)
    in_transaction(seed_demo_data)
    with unit_of_work() as session:
        ada = session.exec(select(User).where(User.email == "ada@paytime.local")).one()
        admin = session.exec(select(User).where(User.email == "admin@paytime.local")).one()
        for currency, amount in DEMO_FUNDING.items():
            assert (
                get_balance(session=session, address=wallet_address(ada.id, WalletKind.PRIMARY), currency=currency)
                == amount
            )
            assert (
                get_balance(session=session, address=wallet_address(admin.id, WalletKind.PRIMARY), currency=currency)
                == 0
            )
        assert find_ledger_problems(session=session) == []


def test_seed_demo_data_makes_the_two_customers_friends_once(engine):
    in_transaction(seed_demo_data)
    in_transaction(seed_demo_data)
    with unit_of_work() as session:
        ada = session.exec(select(User).where(User.email == "ada@paytime.local")).one()
        ben = session.exec(select(User).where(User.email == "ben@paytime.local")).one()
        assert are_friends(session=session, user_id=ada.id, other_id=ben.id)
        assert [view.display_name for view in list_friends(session=session, actor=ada)] == ["Ben Okafor"]


def test_seed_demo_data_publishes_one_event_for_the_seller(engine):
    in_transaction(seed_demo_data)
    in_transaction(seed_demo_data)
    with unit_of_work() as session:
        events = session.exec(select(Event)).all()
    assert [(event.title, event.status) for event in events] == [("Lagos Jazz Night", EventStatus.PUBLISHED)]
