import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool
from sqlmodel import select

from paytime_app.db import (
    DatabaseUnavailable,
    ahead_of_transaction,
    build_engine,
    check_database,
    unit_of_work,
    use_engine,
)
from paytime_app.errors import ValidationFailed
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


def test_a_read_ahead_of_the_transaction_commits_alone_and_the_rest_still_rolls_back(engine):
    with pytest.raises(RuntimeError), unit_of_work() as session:
        with ahead_of_transaction(session) as driver:
            cursor = driver.cursor()
            cursor.execute("SELECT count(*) FROM user_account")
            assert cursor.fetchone()[0] == 0
        if engine.dialect.name == "postgresql":
            assert driver.autocommit is False  # the session's transaction is a transaction again
        session.add(User(email="ada@example.com", display_name="Ada"))
        session.flush()
        raise RuntimeError("refused after the write")
    with unit_of_work() as session:
        assert session.exec(select(User)).all() == []


@pytest.mark.parametrize("ahead", [True, False], ids=["read_ahead", "negative_control"])
def test_refusals_read_ahead_of_their_transaction_keep_the_prepared_statements(postgres_engine, ahead):
    """psycopg forgets every prepared statement of a connection at ROLLBACK: a refusal read in its
    transaction cost the next requests on that connection their plans; read ahead, it costs nothing."""
    single = build_engine(postgres_engine.url.render_as_string(hide_password=False), pool_size=1, max_overflow=0)
    use_engine(single)
    try:
        for _ in range(8):  # psycopg prepares a statement on its fifth run
            with pytest.raises(RuntimeError), unit_of_work() as session:
                if ahead:
                    with ahead_of_transaction(session) as driver:
                        driver.execute("SELECT 1 WHERE %s::int > 0", (1,)).fetchone()
                else:
                    session.connection().connection.driver_connection.execute(
                        "SELECT 1 WHERE %s::int > 0", (1,)
                    ).fetchone()
                raise RuntimeError("refused")
        with unit_of_work() as session:
            prepared = session.connection().execute(
                text("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'SELECT 1 WHERE%'")
            )
            assert prepared.scalar_one() == (1 if ahead else 0)
    finally:
        use_engine(None)
        single.dispose()


@pytest.mark.parametrize(
    ("statement", "value", "says"),
    [
        ("SELECT CAST(:value AS text)", "a\x00b", "NUL"),
        ("SELECT CAST(:value AS jsonb)", '["a\\u0000b"]', "NUL"),
        ("SELECT CAST(:value AS integer)", 2**40, "out of range"),
    ],
    ids=["nul_in_text", "nul_in_json", "integer_out_of_range"],
)
def test_a_value_postgresql_refuses_is_a_validation_failure_in_words(postgres_engine, statement, value, says):
    """Found by tests/api/test_bad_input.py: a NUL character in a search reached PostgreSQL, which
    refuses it, and the API answered 500."""
    use_engine(postgres_engine)
    try:
        with pytest.raises(ValidationFailed) as refused, unit_of_work() as session:
            session.connection().execute(text(statement), {"value": value}).all()
        assert refused.value.code == "invalid_input"
        assert says in refused.value.message
    finally:
        use_engine(None)
