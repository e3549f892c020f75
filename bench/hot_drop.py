"""A hot ticket drop on PostgreSQL: one ticket type with 500 seats, 5,000 booking attempts at
concurrency 100, first through the booking service (`in_transaction(create_booking, ...)`, as a
route or a state handler runs it), then through the REST API (`POST /api/v1/bookings` on granian
with one worker per core, as the app is deployed, over HTTP/1.1 with kept-alive connections; the
load generator is the standard library's client, which leaves the server more of the shared cores
than httpx did), and, as the physical limit, a raw psycopg loop of the conditional
`UPDATE ... SET sold = sold + 1 WHERE sold < capacity` on the same server in the same run.

The raw loop and the service path run alike: one process per core (as the app's workers), each
with an equal share of the 100 concurrent callers and of the 30 database connections, callers
served first come, first served while they wait for a connection (as anyio's thread limiter does
in front of a route; Python's own locks and pools let the thread that just gave a connection back
take it again, which starved a few callers for the whole run and made the p99 the run's length).

Each path gets a fresh event; 500 buyers attempt 10 times each (the per-customer limit is 10, so
every refusal is `sold_out`). Reported per path: attempts/s over the whole run, p50/p95/p99
latency, seats taken and `oversold` (taken beyond capacity; must be 0), plus 5xx answers for HTTP,
and the CPU time per attempt: the calling processes' own (`python`) and the PostgreSQL backends'
serving them (`db`, read from /proc, so only with the server on this machine), for HTTP the server
workers' and their backends' (`server`) apart from the load generator's (`client`).
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

import http.client
import json
import multiprocessing
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import psycopg
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from bench.ledger_transfers import ADMIN_URL, _drop, _migrate, _percentile, _recreate, _sqlalchemy_url
from paytime_app.db import build_engine, get_engine, in_transaction, unit_of_work, use_engine
from paytime_app.errors import DomainError
from paytime_app.models.events import TicketType
from paytime_app.models.users import Role, User
from paytime_app.services.bookings import create_booking
from paytime_app.services.events import create_event, publish_event, save_ticket_type
from paytime_app.services.sessions import ClientInfo, issue_api_tokens
from paytime_app.services.users import create_user
from paytime_app.settings import PROJECT_ROOT
from tests.helpers import free_port

BENCH_DB = os.environ.get("HOT_DROP_DB", "paytime_bench_hot_drop")  # a name of one's own on a shared server
SEATS = 500
ATTEMPTS = 5_000
CONCURRENCY = 100
BUYERS = 500
DB_CONNECTIONS = 30  # the raw loop and the service path each use this many server connections in all
PROCESSES = max(2, min(os.cpu_count() or 2, 8))  # one per core, like the server's workers
TARGET_RATIO = 0.5
TARGET_HTTP_PER_SECOND = 300
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

Attempt = Callable[[int], str]


class _FairGate:
    """At most `size` holders at once; waiters are let in first come, first served."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._lock = threading.Lock()
        self._waiters: deque[threading.Lock] = deque()

    def __enter__(self) -> None:
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        turn.acquire()  # released by the holder who hands us its place

    def __exit__(self, *_exc: object) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._free += 1


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU of each live process (PostgreSQL backends, server workers), from /proc."""
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return found


def _backend_pids(database: str) -> list[int]:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (database,)
        ).fetchall()
    return [pid for (pid,) in rows]


def _used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two readings; a process born in between counts whole."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def _figures(name: str, latencies: list[float], elapsed: float) -> dict[str, object]:
    ordered = sorted(latencies)
    return {
        f"{name}_attempts_per_s": round(len(ordered) / elapsed, 1),
        f"{name}_seconds": round(elapsed, 2),
        f"{name}_p50_ms": round(_percentile(ordered, 0.5), 1),
        f"{name}_p95_ms": round(_percentile(ordered, 0.95), 1),
        f"{name}_p99_ms": round(_percentile(ordered, 0.99), 1),
    }


class _Signals(NamedTuple):
    ready: Any  # Barrier: every process has connected
    go: Any  # Event: start calling
    done: Any  # Queue: each process's latencies, outcomes and CPU
    may_close: Any  # Event: the backends' CPU has been read, connections may close


def _share(connect: Callable[[int], Attempt], in_flight: int, process: int, signals: _Signals) -> None:
    """One calling process: its share of the callers, at most `in_flight` at once, first come first served."""
    ready, go, done, may_close = signals
    attempt = connect(in_flight)
    numbers = iter(range(process, ATTEMPTS, PROCESSES))
    take = threading.Lock()
    gate = _FairGate(in_flight)
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()

    def caller() -> None:
        mine, seen = [], Counter()
        go.wait()
        while True:
            with take:
                number = next(numbers, None)
            if number is None:
                break
            began = time.perf_counter()
            with gate:
                seen[attempt(number)] += 1
            mine.append((time.perf_counter() - began) * 1000)
        with take:
            latencies.extend(mine)
            outcomes.update(seen)

    callers = [threading.Thread(target=caller, daemon=True) for _ in range(CONCURRENCY // PROCESSES)]
    for thread in callers:
        thread.start()
    cpu_began = time.process_time()
    ready.wait()
    for thread in callers:
        thread.join()
    done.put({"latencies": latencies, "outcomes": outcomes, "cpu": time.process_time() - cpu_began})
    may_close.wait()  # the backends' CPU is read before their connections close


def _run(
    name: str,
    connect: Callable[[int], Attempt],
    database: str,
    *,
    in_flight: int = DB_CONNECTIONS // PROCESSES,
    server_pids: Callable[[], list[int]] = list,
) -> tuple[dict[str, object], Counter[str]]:
    """ATTEMPTS calls from PROCESSES processes of CONCURRENCY / PROCESSES threads each. `connect(n)` runs
    in each process, opens its connections (n: how many of its calls may run at once) and returns its
    `attempt(number)`, which returns an outcome label. CPU is read for the callers, the database's
    backends and any `server_pids`."""
    context = multiprocessing.get_context("fork")  # the children share the buyers and ids made here
    signals = _Signals(context.Barrier(PROCESSES + 1), context.Event(), context.Queue(), context.Event())
    ready, go, done, may_close = signals
    processes = [
        context.Process(target=_share, args=(connect, in_flight, process, signals), daemon=True)
        for process in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    ready.wait(timeout=120)
    db_before, server_before = _cpu_seconds(_backend_pids(database)), _cpu_seconds(server_pids())
    began = time.perf_counter()
    go.set()
    runs = [done.get(timeout=600) for _ in processes]
    elapsed = time.perf_counter() - began
    db_used = _used(db_before, _cpu_seconds(_backend_pids(database)))
    server_used = _used(server_before, _cpu_seconds(server_pids()))
    may_close.set()
    for process in processes:
        process.join(timeout=60)
    latencies = [ms for run in runs for ms in run["latencies"]]
    outcomes: Counter[str] = sum((run["outcomes"] for run in runs), Counter())
    per_attempt = 1000 / len(latencies)
    figures = _figures(name, latencies, elapsed)
    figures[f"{name}_caller_cpu_ms"] = round(sum(run["cpu"] for run in runs) * per_attempt, 3)
    if server_used:
        figures[f"{name}_server_cpu_ms"] = round(server_used * per_attempt, 3)
    figures[f"{name}_db_cpu_ms"] = round(db_used * per_attempt, 3)
    return figures, outcomes


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


def _service_path(organizer: User, buyers: list[User], database: str) -> dict[str, object]:
    event_id, type_id = _new_drop(organizer, "Service drop")

    def connect(connections: int) -> Attempt:
        # The app's engine, sized to this process's share.
        engine = build_engine(_sqlalchemy_url(database), pool_size=connections, max_overflow=0)
        use_engine(engine)
        opened = [engine.connect() for _ in range(connections)]
        for connection in opened:
            connection.close()

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

        return attempt

    figures, outcomes = _run("service", connect, database)
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
            str(PROCESSES),
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


def _workers(server: subprocess.Popen) -> list[int]:
    """The granian worker processes (children of the server process)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == server.pid:
            pids.append(int(stat.parent.name))
    return pids


def _http_path(organizer: User, buyers: list[User], database: str) -> dict[str, object]:
    event_id, type_id = _new_drop(organizer, "HTTP drop")
    tokens = [in_transaction(issue_api_tokens, user=buyer, client=ClientInfo()).token for buyer in buyers]
    get_engine().dispose()  # leave the server's own pools (10 + 20 overflow per worker) room under max_connections
    server, base = _start_api(database)
    body = {"event_id": str(event_id), "items": [{"ticket_type_id": str(type_id), "quantity": 1}]}

    host, port = base.removeprefix("http://").split(":")
    payload = json.dumps(body)

    def connect(_in_flight: int) -> Attempt:
        # One kept-alive connection per calling thread, with the standard library's client: httpx
        # cost about 2.7 ms of CPU per request, taken from the 2 cores the server runs on.
        local = threading.local()

        def post(number: int) -> tuple[int, bytes]:
            if getattr(local, "connection", None) is None:
                local.connection = http.client.HTTPConnection(host, int(port), timeout=60)
            local.connection.request(
                "POST",
                "/api/v1/bookings",
                body=payload,
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {tokens[number % BUYERS]}",
                    "Idempotency-Key": f"bench-http-{number}",
                },
            )
            response = local.connection.getresponse()
            return response.status, response.read()

        def attempt(number: int) -> str:
            try:
                status, answer = post(number)
            except (http.client.HTTPException, ConnectionError):
                local.connection.close()  # the server closed a kept-alive connection: once more on a new one
                local.connection = None
                status, answer = post(number)
            if status >= 500:
                return str(status)
            return "held" if status == 201 else str(json.loads(answer).get("code"))

        return attempt

    try:
        figures, outcomes = _run(
            "http", connect, database, in_flight=CONCURRENCY // PROCESSES, server_pids=lambda: _workers(server)
        )
    finally:
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

    def connect(connections: int) -> Attempt:
        pool: queue.SimpleQueue[psycopg.Connection] = queue.SimpleQueue()
        for _ in range(connections):
            pool.put(psycopg.connect(url))

        def attempt(_number: int) -> str:
            connection = pool.get()  # never waits: the gate lets in as many callers as there are connections
            try:
                with connection.transaction():
                    taken = connection.execute(
                        "UPDATE raw_seats SET sold = sold + 1 WHERE id = 1 AND sold < capacity"
                    ).rowcount
            finally:
                pool.put(connection)
            return "held" if taken == 1 else "sold_out"

        return attempt

    figures, outcomes = _run("raw", connect, database)
    figures.update(raw_held=outcomes["held"], raw_oversold=max(outcomes["held"] - SEATS, 0))
    return figures


def main() -> None:
    _recreate(BENCH_DB)
    engine = create_engine(_sqlalchemy_url(BENCH_DB), pool_size=DB_CONNECTIONS, max_overflow=0, pool_timeout=120)
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
            "processes": PROCESSES,
        }
        paths = {
            "raw": lambda: _raw_path(BENCH_DB),
            "service": lambda: _service_path(organizer, buyers, BENCH_DB),
            "http": lambda: _http_path(organizer, buyers, BENCH_DB),
        }
        for name in os.environ.get("HOT_DROP_PATHS", "raw,service,http").split(","):  # all three for a result
            figures = paths[name]()
            print(json.dumps(figures), file=sys.stderr, flush=True)  # each path's figures as soon as they exist
            result.update(figures)
        if "http_attempts_per_s" not in result or "service_attempts_per_s" not in result:
            return  # a partial run (HOT_DROP_PATHS) prints each path's figures only
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
