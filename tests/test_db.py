from datetime import UTC, datetime

import pytest
from sqlmodel import select

from paytime_app.db import DatabaseUnavailable, build_engine, check_database, unit_of_work
from paytime_app.models.users import User


def test_check_database_unreachable_is_one_clear_line():
    with pytest.raises(DatabaseUnavailable) as raised:
        check_database(build_engine("postgresql+psycopg://paytime@127.0.0.1:1/paytime"))
    message = str(raised.value)
    assert message.startswith("PayTime cannot reach the database at postgresql+psycopg://paytime@127.0.0.1:1/paytime")
    assert "\n" not in message


def test_timestamps_come_back_timezone_aware(engine):
    with unit_of_work() as session:
        session.add(User(email="tz@example.com", display_name="Tz"))
    with unit_of_work() as session:
        user = session.exec(select(User)).one()
    assert user.created_at.tzinfo is not None
    assert abs((datetime.now(UTC) - user.created_at).total_seconds()) < 60


def test_naive_datetimes_are_refused(engine):
    with pytest.raises(Exception, match="naive datetimes"), unit_of_work() as session:
        session.add(User(email="naive@example.com", display_name="N", created_at=datetime(2026, 1, 1)))
        session.flush()


def test_database_enforces_lowercase_email_and_role(engine):
    with pytest.raises(Exception, match=r"(?i)constraint"), unit_of_work() as session:
        session.add(User(email="Upper@Example.com", display_name="U"))
        session.flush()
    with pytest.raises(Exception, match=r"(?i)constraint"), unit_of_work() as session:
        session.add(User(email="r@example.com", display_name="R", role="pirate"))
        session.flush()
