"""A hot ticket drop on PostgreSQL: one ticket type with 500 seats, 5,000 booking attempts at
concurrency 100, first through the booking service (`in_transaction(create_booking, ...)`, as a
route or a state handler runs it), then through the REST API (`POST /api/v1/bookings` on granian
with two workers, over HTTP), and, as the physical limit, a raw psycopg loop of the conditional
`UPDATE ... SET sold = sold + 1 WHERE sold < capacity` on the same server in the same run.

Each path gets a fresh event; 500 buyers attempt 10 times each (the per-customer limit is 10, so
every refusal is `sold_out`). Reported per path: attempts/s over the whole run, p50/p95/p99
latency, seats taken and `oversold` (taken beyond capacity; must be 0), plus 5xx answers for HTTP.
`ratio_to_raw` = service attempts/s / raw attempts/s. Targets: ratio >= 0.5; HTTP >= 300/s.

    PYTHONPATH=. .venv/bin/python bench/hot_drop.py
"""

from __future__ import annotations

import os

os.environ["PAYTIME_ENV"] = "test"
os.environ["JOBS_IN_APP"] = "false"
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)

import json
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import count

import httpx
import psycopg
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from bench.ledger_transfers import ADMIN_URL, _drop, _migrate, _percentile, _recreate, _sqlalchemy_url
from paytime_app.db import get_engine, in_transaction, unit_of_work, use_engine
from paytime_app.errors import DomainError
from paytime_app.models.events import TicketType
from paytime_app.models.users import Role, User
from paytime_app.services.bookings import create_booking
from paytime_app.services.events import create_event, publish_event, save_ticket_type
from paytime_app.services.sessions import ClientInfo, issue_api_tokens
from paytime_app.services.users import create_user
from paytime_app.settings import PROJECT_ROOT
from tests.helpers import free_port

BENCH_DB = "paytime_bench_hot_drop"
SEATS = 500
ATTEMPTS = 5_000
CONCURRENCY = 100
BUYERS = 500
DB_CONNECTIONS = 30  # both paths share at most this many server connections per process
TARGET_RATIO = 0.5
TARGET_HTTP_PER_SECOND = 300


def _run(name: str, attempt: Callable[[int], str]) -> tuple[dict[str, object], Counter[str]]:
    """Run ATTEMPTS calls of `attempt(number)` on CONCURRENCY threads; each returns an outcome label."""
    numbers = count()
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(CONCURRENCY + 1)

    def worker() -> None:
        start.wait()
        mine, seen = [], Counter()
        while (number := next(numbers)) < ATTEMPTS:
            began = time.perf_counter()
            seen[attempt(number)] += 1
            mine.append((time.perf_counter() - began) * 1000)
        with lock:
            latencies.extend(mine)
            outcomes.update(seen)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        f"{name}_attempts_per_s": round(len(ordered) / elapsed, 1),
        f"{name}_seconds": round(elapsed, 2),
        f"{name}_p50_ms": round(_percentile(ordered, 0.5), 1),
        f"{name}_p95_ms": round(_percentile(ordered, 0.95), 1),
        f"{name}_p99_ms": round(_percentile(ordered, 0.99), 1),
    }, outcomes


def _new_drop(organizer: User, title: str) -> tuple[uuid.UUID, uuid.UUID]:
    start = datetime.now(UTC) + timedelta(days=30)
    event = in_transaction(
        create_event, actor=organizer, title=title, starts_at=start, ends_at=start + timedelta(hours=3)
    )
    ticket_type = in_transaction(
        save_ticket_type, actor=organizer, event_id=event.id, name="Drop", price_minor=0, capacity=SEATS
    )
    in_transaction(publish_event, actor=organizer, event_id=event.id)
    return event.id, ticket_type.id


def _taken(ticket_type_id: uuid.UUID) -> int:
    with unit_of_work() as session:
        row = session.get(TicketType, ticket_type_id)
        assert row is not None
        return row.sold + row.held


def _service_path(organizer: User, buyers: list[User]) -> dict[str, object]:
    event_id, type_id = _new_drop(organizer, "Service drop")

    def attempt(number: int) -> str:
        try:
            in_transaction(
                create_booking,
                actor=buyers[number % BUYERS],
                event_id=event_id,
                items=[(type_id, 1)],
                idempotency_key=f"bench:service:{number}",
            )
        except DomainError as refusal:
            return refusal.code
        return "held"

    figures, outcomes = _run("service", attempt)
    taken = _taken(type_id)
    figures.update(
        service_held=outcomes["held"],
        service_sold_out=outcomes["sold_out"],
        service_other=sum(outcomes.values()) - outcomes["held"] - outcomes["sold_out"],
        service_oversold=max(taken - SEATS, 0) + max(outcomes["held"] - SEATS, 0),
    )
    return figures


def _start_api(database: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": _sqlalchemy_url(database),
        "PAYTIME_ENV": "test",
        "JOBS_IN_APP": "false",
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
            "--no-ws",
            "--log-level",
            "warning",
            "paytime_app.api:create_api",
        ],
        env=env,
        cwd=PROJECT_ROOT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return server, base
        except httpx.HTTPError:
            time.sleep(0.3)
    os.killpg(server.pid, signal.SIGKILL)
    raise RuntimeError("the API did not start")


def _http_path(organizer: User, buyers: list[User], database: str) -> dict[str, object]:
    event_id, type_id = _new_drop(organizer, "HTTP drop")
    tokens = [in_transaction(issue_api_tokens, user=buyer, client=ClientInfo()).token for buyer in buyers]
    get_engine().dispose()  # leave the server's own pools (2 workers x 10 + 20 overflow) room under max_connections
    server, base = _start_api(database)
    client = httpx.Client(base_url=base, timeout=60, limits=httpx.Limits(max_connections=CONCURRENCY))
    body = {"event_id": str(event_id), "items": [{"ticket_type_id": str(type_id), "quantity": 1}]}

    def attempt(number: int) -> str:
        response = client.post(
            "/api/v1/bookings",
            json=body,
            headers={"Authorization": f"Bearer {tokens[number % BUYERS]}", "Idempotency-Key": f"bench-http-{number}"},
        )
        if response.status_code >= 500:
            return str(response.status_code)
        return "held" if response.status_code == 201 else str(response.json().get("code"))

    try:
        figures, outcomes = _run("http", attempt)
    finally:
        client.close()
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    taken = _taken(type_id)
    figures.update(
        http_held=outcomes["held"],
        http_sold_out=outcomes["sold_out"],
        http_500=outcomes["500"],
        # 503 database_unavailable: PostgreSQL refused a connection (max_connections is shared on this machine).
        http_503=outcomes["503"],
        http_other=sum(outcomes.values()) - outcomes["held"] - outcomes["sold_out"] - outcomes["500"] - outcomes["503"],
        http_oversold=max(taken - SEATS, 0) + max(outcomes["held"] - SEATS, 0),
    )
    return figures


def _raw_path(database: str) -> dict[str, object]:
    url = make_url(ADMIN_URL).set(database=database).render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as setup:
        setup.execute("CREATE TABLE raw_seats (id int PRIMARY KEY, sold int NOT NULL, capacity int NOT NULL)")
        setup.execute("INSERT INTO raw_seats VALUES (1, 0, %s)", (SEATS,))
    pool: queue.Queue[psycopg.Connection] = queue.Queue()
    for _ in range(DB_CONNECTIONS):
        pool.put(psycopg.connect(url))

    def attempt(_number: int) -> str:
        connection = pool.get()
        try:
            with connection.transaction():
                taken = connection.execute(
                    "UPDATE raw_seats SET sold = sold + 1 WHERE id = 1 AND sold < capacity"
                ).rowcount
        finally:
            pool.put(connection)
        return "held" if taken == 1 else "sold_out"

    figures, outcomes = _run("raw", attempt)
    while not pool.empty():
        pool.get().close()
    figures.update(raw_held=outcomes["held"], raw_oversold=max(outcomes["held"] - SEATS, 0))
    return figures


def main() -> None:
    _recreate(BENCH_DB)
    engine = create_engine(
        _sqlalchemy_url(BENCH_DB), pool_pre_ping=True, pool_size=DB_CONNECTIONS, max_overflow=0, pool_timeout=120
    )
    try:
        _migrate(engine)
        use_engine(engine)
        organizer = in_transaction(
            create_user, email="drop@bench.local", display_name="Drop", password=None, role=Role.SELLER
        )
        buyers = [
            in_transaction(create_user, email=f"b{i}@bench.local", display_name=f"B{i}", password=None)
            for i in range(BUYERS)
        ]
        result: dict[str, object] = {
            "benchmark": "hot_drop",
            "seats": SEATS,
            "attempts": ATTEMPTS,
            "concurrency": CONCURRENCY,
            "db_connections": DB_CONNECTIONS,
        }
        result.update(_raw_path(BENCH_DB))
        result.update(_service_path(organizer, buyers))
        result.update(_http_path(organizer, buyers, BENCH_DB))
        ratio = float(result["service_attempts_per_s"]) / float(result["raw_attempts_per_s"])  # type: ignore[arg-type]
        http_rate = float(result["http_attempts_per_s"])  # type: ignore[arg-type]
        result.update(
            oversold=int(result["service_oversold"]) + int(result["http_oversold"]),  # type: ignore[call-overload]
            ratio_to_raw=round(ratio, 3),
            target_ratio=TARGET_RATIO,
            target_http_per_s=TARGET_HTTP_PER_SECOND,
            targets_met=ratio >= TARGET_RATIO and http_rate >= TARGET_HTTP_PER_SECOND,
            cpus=os.cpu_count(),
        )
    finally:
        use_engine(None)
        engine.dispose()
        _drop(BENCH_DB)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
