"""Small helpers shared by tests."""

import socket
import sqlite3
import threading
import uuid
from collections.abc import Callable

import psycopg
from sqlalchemy import Engine

from paytime_app.db import in_transaction, unit_of_work
from paytime_app.errors import DomainError
from paytime_app.models.base import utcnow
from paytime_app.models.jobs import Job, JobStatus
from paytime_app.models.users import User
from paytime_app.money import Currency
from paytime_app.services.ledger import transfer
from paytime_app.services.sessions import ClientInfo, issue_api_tokens
from paytime_app.services.users import create_user
from paytime_app.services.wallets import WalletKind, wallet_address


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_at_once(count: int, work: Callable[[], object]) -> list:
    """Start `count` threads together on `work`; each result is its return value or the refusal's code."""
    barrier = threading.Barrier(count)
    results: list = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        try:
            outcome = work()
        except DomainError as error:
            outcome = error.code
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == count, "a worker did not finish"
    return results


def make_user(email: str, name: str, **kwargs: object) -> User:
    """A verified customer without a password (service tests act as them directly)."""
    return in_transaction(create_user, email=email, display_name=name, password=None, email_verified=True, **kwargs)


def fund_wallet(user: User, amount_minor: int, currency: str = "NGN") -> None:
    """Put money in the user's primary wallet from `world` (as a top-up would)."""
    in_transaction(
        transfer,
        source="world",
        destination=wallet_address(user.id, WalletKind.PRIMARY),
        amount_minor=amount_minor,
        currency=Currency(currency),
        idempotency_key=f"test:fund:{uuid.uuid4()}",
        kind="demo_funding",
        description="Test funds",
    )


def refusal_code(service: Callable[..., object], **kwargs: object) -> str:
    """Run a service in its own transaction and return the code it refused with (fails if it did not)."""
    try:
        in_transaction(service, **kwargs)
    except DomainError as error:
        return error.code
    raise AssertionError(f"{service.__name__} was not refused")


def api_person(email: str, name: str) -> tuple[User, dict[str, str]]:
    """A verified user and the Authorization header of a fresh API access token."""
    user = make_user(email, name)
    issued = in_transaction(issue_api_tokens, user=user, client=ClientInfo())
    return user, {"Authorization": f"Bearer {issued.token}"}


def writers_can_proceed(engine: Engine) -> bool:
    """Whether another connection could write now without waiting: SQLite's write lock is free, and
    on PostgreSQL no job row is locked (a job's own transaction locks its row until it ends)."""
    if engine.dialect.name == "sqlite":
        probe = sqlite3.connect(engine.url.database, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            probe.close()
    with psycopg.connect(engine.url.set(drivername="postgresql").render_as_string(hide_password=False)) as probe:
        try:
            probe.execute("SELECT 1 FROM job FOR UPDATE NOWAIT")
            return True
        except psycopg.errors.LockNotAvailable:
            return False


def dead_job(kind: str, payload: dict, last_error: str) -> Job:
    """A job that failed its last attempt: what the background jobs page shows and an admin retries."""
    job = Job(
        kind=kind,
        payload=payload,
        status=JobStatus.DEAD,
        attempts=8,
        max_attempts=8,
        last_error=last_error,
        finished_at=utcnow(),
    )
    with unit_of_work() as session:
        session.add(job)
    return job
