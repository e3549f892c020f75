"""Engines, sessions and locking helpers.

Services receive an explicit `session`; `in_transaction` is how states, routes and jobs run one
service call in one database transaction. SQLite (the embedded default) starts every transaction
with BEGIN IMMEDIATE so a read-then-write inside a transaction is serialised like a row lock would
on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import select
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from sqlalchemy import Engine, Table, create_engine, event, inspect, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.sql import Select
from sqlmodel import Session, SQLModel

from paytime_app.errors import DomainError, ValidationFailed
from paytime_app.settings import get_settings

T = TypeVar("T")

logger = logging.getLogger("paytime.db")

_engine: Engine | None = None

# Connections per process: POOL_SIZE kept open, up to POOL_OVERFLOW more under load.
POOL_SIZE = 10
POOL_OVERFLOW = 20


def build_engine(url: str, *, pool_size: int = POOL_SIZE, max_overflow: int = POOL_OVERFLOW) -> Engine:
    """An engine for `url` with the pragmas or pool settings PayTime relies on."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow)
    _discard_connections_closed_by_server(engine)
    return engine


def _discard_connections_closed_by_server(engine: Engine) -> None:
    """Hand out no pooled connection the server has closed, without a round trip per checkout.

    An idle PostgreSQL connection has nothing to read unless the server ended it (a terminated
    backend sends its FATAL message, a restart closes the socket), so a readable socket at checkout
    means a dead connection: the pool drops it and checks out another. This is what a `SELECT 1`
    pre-ping would find, at the cost of one non-blocking poll instead of a round trip per transaction.
    """

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
        if readable:
            raise DisconnectionError("the server closed this pooled connection")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN itself (below) instead of pysqlite's deferred BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def get_engine() -> Engine:
    global _engine
    if _engine is None:
        _engine = build_engine(get_settings().sqlalchemy_url)
    return _engine


def use_engine(engine: Engine | None) -> None:
    """Point the app at another engine (tests, benchmarks); None returns to settings."""
    global _engine
    _engine = engine


@contextlib.contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises.

    A DomainError with `keeps_changes` (a counted wrong attempt) commits what was written before it.
    """
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
        except BaseException as error:
            if isinstance(error, DomainError) and error.keeps_changes:
                session.commit()
                raise
            session.rollback()
            lost = _lost_connection(error)
            if lost is not None and lost is not error:
                # A savepoint's cleanup on a dead connection hides the real cause; callers retry on it.
                raise lost from None
            if isinstance(error, DataError | psycopg.DataError):
                raise _refused_value(error) from error
            raise
        session.commit()


class ValueNotStorable(ValidationFailed):
    default_message = "One of the values given is malformed or out of range."


def _refused_value(error: Exception) -> ValueNotStorable:
    """PostgreSQL refused a value a caller gave (text with a NUL character, a number out of range)
    that validation let through: the caller is told in words, and the log keeps the cause."""
    logger.warning("the database refused a value", exc_info=error)
    # psycopg's words for a NUL in text, PostgreSQL's for one inside JSON (the escape json.dumps writes).
    if any(sign in str(error) for sign in ("NUL (0x00)", "\\u0000")):
        return ValueNotStorable("Text cannot contain NUL (\\0) characters.")
    return ValueNotStorable()


def _lost_connection(error: BaseException) -> DBAPIError | None:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return seen
        seen = seen.__context__
    return None


def in_transaction(service: Callable[..., T], /, **kwargs: Any) -> T:
    """Run one service call in its own transaction."""
    with unit_of_work() as session:
        return service(session=session, **kwargs)


@contextlib.contextmanager
def ahead_of_transaction(session: Session) -> Iterator[Any]:
    """The session's DBAPI connection; while the session's transaction has sent nothing yet
    (PostgreSQL), each statement run in this block commits on its own, before that transaction.

    For one read that decides whether there is any work at all (a refused buyer, a bad token): one
    round trip instead of BEGIN, the read and ROLLBACK. It also keeps the connection's prepared
    statements: psycopg forgets them all at every ROLLBACK (and deallocates them in one more round
    trip), so a refusal rolled back made the next request parse and plan everything again.
    Statements after the block run in the session's transaction as usual.
    """
    driver = session.connection().connection.driver_connection
    alone = (
        session.get_bind().dialect.name == "postgresql"
        and driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE  # type: ignore[union-attr]
    )
    if alone:
        driver.autocommit = True  # type: ignore[union-attr]
    try:
        yield driver
    finally:
        if alone:
            driver.autocommit = False  # type: ignore[union-attr]


def is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def conflict_aware_insert(dialect: str, table: Table) -> Any:
    """An INSERT for `table` that can say what to do on a unique-key conflict (both dialects have one).

    Callers build their statement once per dialect and pass the values at execution: constructing
    a statement costs more Python than sending it.
    """
    return (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table)


@functools.cache
def _insert_or_nothing(dialect: str, table: Table, unique_on: tuple[str, ...] | None) -> Any:
    return (
        conflict_aware_insert(dialect, table)
        .on_conflict_do_nothing(index_elements=list(unique_on) if unique_on else None)
        .returning(*table.primary_key)
    )


def insert_unless_duplicate(session: Session, row: SQLModel, *, unique_on: list[str] | None = None) -> bool:
    """INSERT `row` unless it collides with a unique key (any, or the one on the columns `unique_on`);
    True if it was written.

    One statement and no savepoint: a collision with a row another transaction is writing waits
    for that transaction, then counts as a duplicate if it committed. A collision on another unique
    key than `unique_on` still raises IntegrityError.
    """
    mapper = inspect(row).mapper
    values = {attribute.columns[0].name: getattr(row, attribute.key) for attribute in mapper.column_attrs}
    return insert_values_unless_duplicate(session, mapper.local_table, values, unique_on=unique_on)


def insert_values_unless_duplicate(
    session: Session, table: Table, values: dict[str, Any], *, unique_on: list[str] | None = None
) -> bool:
    """`insert_unless_duplicate` for a row given as its column values: on a hot path, building a model
    instance (defaults filled through the ORM's instrumentation) costs more Python than the INSERT."""
    unique_columns = tuple(unique_on) if unique_on else None
    statement = _insert_or_nothing(session.get_bind().dialect.name, table, unique_columns)
    return session.connection().execute(statement, values).first() is not None


def for_update(statement: Select, *, skip_locked: bool = False) -> Select:
    """Lock the selected rows for this transaction (a no-op on SQLite, whose writes are serialised)."""
    return statement.with_for_update(skip_locked=skip_locked)


class DatabaseUnavailable(SystemExit):
    """The database cannot be reached at start; the message says which and why."""


def check_database(engine: Engine | None = None) -> None:
    """Fail with one readable line when the configured database cannot be reached."""
    engine = engine or get_engine()
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        where = engine.url.render_as_string(hide_password=True)
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise DatabaseUnavailable(f"PayTime cannot reach the database at {where}: {reason}") from None


def undone_by(previous_transaction: Any, savepoint: Any) -> bool:
    """In an `after_soft_rollback` listener: whether work done under `savepoint` (None: the outermost
    transaction) went with the transaction that just rolled back."""
    if not previous_transaction.nested:
        return True  # the whole transaction rolled back
    while savepoint is not None:
        if savepoint is previous_transaction:
            return True
        savepoint = savepoint.parent
    return False
