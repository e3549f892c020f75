"""Live seats-left to 1,000 and 2,000 viewers of one event, through Reflex's own socket protocol.

The app runs as in production: Reflex's backend on granian with three workers (as `reflex run --env
prod --backend-only` would serve it),
Reflex state and PayTime's bus in Redis, PostgreSQL. Viewers are socket clients (Engine.IO v4 /
Socket.IO v5 over a websocket, written on wsproto; no browser) spread over four client processes;
each connects with its own token and runs the event page's `load_event`, which puts it in the
event's room on whichever worker it landed on. Then one booking is made through the booking
service (its bus message goes through Redis to every worker), and each viewer records when the
delta with the new seats-left reached it. Latency = receipt - start of the booking call, so it
includes the booking's own transaction; `*_after_commit` figures start when the booking call returned
(it publishes right after its commit). Then 1,000 more viewers join and a second booking is timed.

Reported: `p95_ms_1000`, `p95_ms_2000` (and p50/max), the seconds each 1,000 took to join (linear
joining means the second 1,000 costs about what the first did), and `bytes_per_client`: the
server processes' RSS growth per idle viewer from a warm-up of WARMUP_VIEWERS viewers (which
every worker pays once, reported as `warmup_bytes_per_worker`) to the first 1,000.

    PYTHONPATH=. .venv/bin/python bench/seats_broadcast.py
"""

from __future__ import annotations

import os

os.environ["PAYTIME_ENV"] = "test"
os.environ["JOBS_IN_APP"] = "false"
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.pop("DATABASE_URL", None)

import asyncio
import contextlib
import json
import multiprocessing
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import redis
from sqlalchemy import create_engine
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, RejectConnection, Request, TextMessage

from bench.ledger_transfers import _drop, _migrate, _percentile, _recreate, _sqlalchemy_url
from paytime_app.db import in_transaction, use_engine
from paytime_app.models.events import Event, TicketType
from paytime_app.models.users import Role, User
from paytime_app.services.bookings import create_booking
from paytime_app.services.events import create_event, publish_event, save_ticket_type
from paytime_app.services.users import create_user
from paytime_app.settings import PROJECT_ROOT, get_settings
from tests.helpers import free_port

BENCH_DB = os.environ.get("BENCH_DB_NAME", "paytime_bench_seats")
CAPACITY = 10_000
# Audience sizes, cumulative; BENCH_VIEWERS="40,80" makes a quick smoke run.
ROUNDS = tuple(int(n) for n in os.environ.get("BENCH_VIEWERS", "1000,2000").split(","))
CLIENT_PROCESSES = 4
WORKERS = 3
NAMESPACE = "/_event"
JOIN_WAVE = 10  # viewers a client process connects at once
# Viewers that join first so that each worker has served a few (thread pool, database and Redis
# connections, lazily built caches) before memory per viewer is measured; they stay and count as
# viewers. Their cost is reported apart (`warmup_bytes_per_worker`): it is per worker, not per viewer.
WARMUP_VIEWERS = 40
# The app under test and this process (which books, so its bus message goes through Redis to every
# worker) share one Redis; set after the imports above (bench.ledger_transfers clears REDIS_URL).
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "10"))
os.environ["REDIS_URL"], os.environ["REDIS_DB"] = REDIS_URL, str(REDIS_DB)
get_settings.cache_clear()
TARGETS = {"p95_ms_1000": 150, "p95_ms_2000": 300, "bytes_per_client": 200 * 1024}


# --- one client process: many viewers on one event loop ------------------------------------------


@dataclass(frozen=True)
class Target:
    """What every viewer connects to and watches."""

    port: int
    state_name: str
    handler: str
    event_id: str
    type_id: str


class Viewer:
    """One socket client: Engine.IO over a websocket, the Socket.IO namespace, and seats-left deltas."""

    def __init__(self, target: Target) -> None:
        self.port, self.state_name, self.handler = target.port, target.state_name, target.handler
        self.event_id, self.type_id = target.event_id, target.type_id
        self.seats: int | None = None
        self.joined = asyncio.Event()
        self.changed = asyncio.Event()
        self.seen_at: dict[int, float] = {}
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._writer: asyncio.StreamWriter | None = None
        self._buffer = ""

    def _send(self, text: str) -> None:
        assert self._writer is not None
        self._writer.write(self._ws.send(Message(data=text)))

    async def run(self) -> None:
        reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        token = str(uuid.uuid4())
        self._writer.write(
            self._ws.send(
                Request(host=f"127.0.0.1:{self.port}", target=f"{NAMESPACE}/?EIO=4&transport=websocket&token={token}")
            )
        )
        while data := await reader.read(65536):
            self._ws.receive_data(data)
            for event in self._ws.events():
                if isinstance(event, (RejectConnection, CloseConnection)):
                    return
                if isinstance(event, TextMessage):
                    self._buffer += event.data
                    if event.message_finished:
                        text, self._buffer = self._buffer, ""
                        self._on_packet(text)
                elif isinstance(event, AcceptConnection):
                    pass
            await self._writer.drain()

    def _on_packet(self, text: str) -> None:
        now = time.time()
        if text.startswith("0"):  # Engine.IO open: join the namespace
            self._send(f"40{NAMESPACE},")
        elif text == "2":  # Engine.IO ping
            self._send("3")
        elif text.startswith(f"40{NAMESPACE},"):  # namespace joined: load the event page's state
            path = f"/events/{self.event_id}"
            event = {
                "name": f"{self.state_name}.{self.handler}",
                "payload": {},
                "router_data": {"pathname": path, "asPath": path, "query": {"event_id": self.event_id}},
            }
            self._send(f"42{NAMESPACE}," + json.dumps(["event", event]))
        elif text.startswith(f"42{NAMESPACE},"):
            _name, update = json.loads(text[len(f"42{NAMESPACE},") :])
            seats = (update.get("delta") or {}).get(self.state_name, {}).get("live_seats_rx_state_")
            if isinstance(seats, dict) and self.type_id in seats:
                self.seats = int(seats[self.type_id])
                self.seen_at.setdefault(self.seats, now)
                self.joined.set()
                self.changed.set()


async def _client_group(count: int, target: Target, conn: Connection) -> None:
    viewers = [Viewer(target) for _ in range(count)]
    tasks = []
    # Arrive in small waves, each waiting for the previous one to have loaded the page, as a crowd
    # arriving over a minute would (a burst of thousands of page loads is another benchmark).
    for start in range(0, count, JOIN_WAVE):
        wave = viewers[start : start + JOIN_WAVE]
        tasks.extend(asyncio.create_task(viewer.run()) for viewer in wave)
        await asyncio.wait_for(asyncio.gather(*(viewer.joined.wait() for viewer in wave)), timeout=120)
    loop = asyncio.get_running_loop()
    conn.send(("joined", count))
    while True:
        command, expected = await loop.run_in_executor(None, conn.recv)
        if command == "stop":
            break
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(expected not in viewer.seen_at for viewer in viewers):
            await asyncio.sleep(0.02)
        conn.send(("seen", [viewer.seen_at.get(expected) for viewer in viewers]))
    for task in tasks:
        task.cancel()


def _client_process(count: int, target: Target, conn: Connection) -> None:
    asyncio.run(_client_group(count, target, conn))


# --- the server --------------------------------------------------------------------------------------


def _start_app(port: int, database: str, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": _sqlalchemy_url(database),
        "PORT": str(port),
        "BASE_URL": f"http://127.0.0.1:{port}",
        "REFLEX_ENV_MODE": "prod",
        "__REFLEX_SKIP_COMPILE": "true",  # backend only: no frontend compile in each worker
        "REFLEX_REDIS_MAX_CONNECTIONS": "300",
        "REFLEX_REDIS_POOL_TIMEOUT": "5",
        "LOG_JSON": "true",
    }
    with log.open("wb") as output:
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
                str(WORKERS),
                "--log-level",
                "warning",
                # What `reflex run --env prod --backend-only` serves (this project's rxconfig always sets a
                # frontend port, which `--backend-only` refuses).
                "paytime_app.paytime_app:app",
            ],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the app exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                time.sleep(2)  # let every worker finish starting
                return server
        except httpx.HTTPError:
            pass
        time.sleep(1)
    os.killpg(server.pid, signal.SIGKILL)
    raise RuntimeError(f"the app did not start:\n{log.read_text()[-3000:]}")


def _group_stats(group: int) -> list[tuple[Path, list[str]]]:
    """Each process of the server's process group: its /proc folder and the fields of its stat line."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group:
                found.append((entry, fields))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _server_rss_bytes(group: int) -> int:
    """Resident memory of every process in the server's process group."""
    total = 0
    for entry, _fields in _group_stats(group):
        try:
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def _server_cpu_ms(group: int) -> int:
    """CPU time (user + system) used so far by every process in the server's process group, in ms."""
    ticks = sum(int(fields[11]) + int(fields[12]) for _entry, fields in _group_stats(group))
    return round(ticks * 1000 / os.sysconf("SC_CLK_TCK"))


def _stats(name: str, t0: float, seen: list[float | None]) -> dict[str, object]:
    delays = sorted((at - t0) * 1000 for at in seen if at is not None)
    return {
        f"p50_ms_{name}": round(statistics.median(delays), 1) if delays else None,
        f"p95_ms_{name}": round(_percentile(delays, 0.95), 1) if delays else None,
        f"max_ms_{name}": round(delays[-1], 1) if delays else None,
        f"missed_{name}": sum(1 for at in seen if at is None),
    }


def _published_event() -> tuple[User, Event, TicketType]:
    organizer = in_transaction(
        create_user, email="org@bench.local", display_name="Org", password=None, role=Role.SELLER
    )
    buyer = in_transaction(create_user, email="buyer@bench.local", display_name="Buyer", password=None)
    start = datetime.now(UTC) + timedelta(days=10)
    event = in_transaction(
        create_event, actor=organizer, title="Broadcast", starts_at=start, ends_at=start + timedelta(hours=2)
    )
    ticket_type = in_transaction(
        save_ticket_type,
        actor=organizer,
        event_id=event.id,
        name="GA",
        price_minor=0,
        capacity=CAPACITY,
        per_customer_max=100,
    )
    in_transaction(publish_event, actor=organizer, event_id=event.id)
    return buyer, event, ticket_type


def _join(joining: int, target: Target) -> list[tuple[multiprocessing.Process, Connection]]:
    """Start CLIENT_PROCESSES client processes sharing `joining` viewers; return once all have joined."""
    groups = []
    for _ in range(CLIENT_PROCESSES):
        parent, child = multiprocessing.Pipe()
        process = multiprocessing.Process(
            target=_client_process, args=(joining // CLIENT_PROCESSES, target, child), daemon=True
        )
        process.start()
        groups.append((process, parent))
    for _process, parent in groups:
        if not parent.poll(900):
            raise RuntimeError("viewers did not join in time")
        parent.recv()
    return groups


def _measure(groups: list[tuple[multiprocessing.Process, Connection]], expected: int) -> list[float | None]:
    for _process, parent in groups:
        parent.send(("measure", expected))
    seen: list[float | None] = []
    for _process, parent in groups:
        _kind, times = parent.recv()
        seen.extend(times)
    return seen


def _stop(server: subprocess.Popen | None, groups: list[tuple[multiprocessing.Process, Connection]]) -> None:
    for process, parent in groups:
        with contextlib.suppress(OSError):
            parent.send(("stop", None))
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
    if server is not None and server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def _timed_booking(
    *,
    server_group: int,
    groups: list[tuple[multiprocessing.Process, Connection]],
    buyer: User,
    ticket_type: TicketType,
    audience: int,
    round_number: int,
) -> dict[str, object]:
    """One booking through the service, then how long each viewer took to see the new seats left."""
    cpu_before = _server_cpu_ms(server_group)
    t0 = time.time()
    in_transaction(
        create_booking,
        actor=buyer,
        event_id=ticket_type.event_id,
        items=[(ticket_type.id, 1)],
        idempotency_key=f"bench:{round_number}",
    )
    t1 = time.time()  # the booking committed and published just before this
    seen = _measure(groups, CAPACITY - round_number)
    return {
        f"booking_ms_{audience}": round((t1 - t0) * 1000, 1),
        # The workers' CPU from the booking until every viewer had it (and the clients said so).
        f"server_cpu_ms_{audience}": _server_cpu_ms(server_group) - cpu_before,
        **_stats(str(audience), t0, seen),
        **_stats(f"{audience}_after_commit", t1, seen),
    }


def main() -> None:
    from paytime_app.state.events import EventState  # noqa: PLC0415  importing the app is slow; only here

    redis_client = redis.Redis.from_url(REDIS_URL, db=REDIS_DB)
    redis_client.flushdb()
    _recreate(BENCH_DB)
    engine = create_engine(_sqlalchemy_url(BENCH_DB))
    log = Path("/tmp") / f"seats_broadcast-{os.getpid()}.log"
    server = None
    groups: list[tuple[multiprocessing.Process, Connection]] = []
    result: dict[str, object] = {
        "benchmark": "seats_broadcast",
        "workers": WORKERS,
        "client_processes": CLIENT_PROCESSES,
    }
    try:
        _migrate(engine)
        use_engine(engine)
        buyer, event, ticket_type = _published_event()
        port = free_port()
        server = _start_app(port, BENCH_DB, log)
        target = Target(port, EventState.get_full_name(), "load_event", str(event.id), str(ticket_type.id))
        started_rss = _server_rss_bytes(server.pid)
        groups.extend(_join(WARMUP_VIEWERS, target))
        time.sleep(3)
        baseline_rss = _server_rss_bytes(server.pid)
        result["warmup_bytes_per_worker"] = round((baseline_rss - started_rss) / WORKERS)
        viewers = WARMUP_VIEWERS
        for round_number, audience in enumerate(ROUNDS, start=1):
            began = time.perf_counter()
            groups.extend(_join(audience - viewers, target))
            result[f"join_seconds_{audience}"] = round(time.perf_counter() - began, 1)
            if round_number == 1:
                time.sleep(3)  # idle, then measure memory per viewer
                result["bytes_per_client"] = round(
                    (_server_rss_bytes(server.pid) - baseline_rss) / (audience - WARMUP_VIEWERS)
                )
            viewers = audience
            time.sleep(1)
            result.update(
                _timed_booking(
                    server_group=server.pid,
                    groups=groups,
                    buyer=buyer,
                    ticket_type=ticket_type,
                    audience=audience,
                    round_number=round_number,
                )
            )
        result.update({f"target_{key}": value for key, value in TARGETS.items()})
        result["targets_met"] = all(
            result.get(key) is not None and float(result[key]) <= limit  # type: ignore[arg-type]
            for key, limit in TARGETS.items()
        )
        result["cpus"] = os.cpu_count()
        result["load_1m"] = round(os.getloadavg()[0], 1)
        result["server_log"] = str(log)
    finally:
        _stop(server, groups)
        use_engine(None)
        engine.dispose()
        _drop(BENCH_DB)
        redis_client.flushdb()
    print(json.dumps(result))


if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    main()
