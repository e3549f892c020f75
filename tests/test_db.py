import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
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


def _terminate(engine, pid: int) -> None:
    with engine.connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        admin.commit()
    # The server sends its goodbye as the backend exits; wait until it has gone.
    for _ in range(200):
        with engine.connect() as admin:
            if not admin.execute(text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}).first():
                return
        time.sleep(0.01)
    raise AssertionError(f"backend {pid} is still there")


def _backend_pid(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()


@pytest.mark.parametrize("discard_dead", [True, False], ids=["build_engine", "negative_control"])
def test_a_pooled_connection_the_server_ended_is_replaced_at_checkout(postgres_engine, discard_dead):
    url = postgres_engine.url.render_as_string(hide_password=False)
    pooled = build_engine(url) if discard_dead else create_engine(url, pool_size=1)
    admin = create_engine(url, poolclass=NullPool)
    try:
        pid = _backend_pid(pooled)
        _terminate(admin, pid)
        if discard_dead:
            assert _backend_pid(pooled) != pid
        else:
            # Without the check the pool hands out the dead connection: the test would catch its loss.
            with pytest.raises(OperationalError):
                _backend_pid(pooled)
    finally:
        pooled.dispose()
        admin.dispose()
