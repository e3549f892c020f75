"""Live notification fan-out: N browser tabs (Reflex's own socket.io protocol, no browser), each
signed in as a different user; one notification per recipient; how long until each tab shows it.

Setup: a fresh PostgreSQL database, migrated; N users, each with a browser session (the HttpOnly
session cookie rides on the websocket handshake, as in a browser). Redis (DB `BENCH_REDIS_DB`, 12
by default) carries the bus between processes. W backend processes (Reflex's production backend
(granian), each its own port, all on the same database and Redis) serve the tabs, spread
round-robin. Each tab connects like the frontend (engine.io v4 over a websocket, namespace
`/_event`) and sends the notification centre's `load_notifications` event, which signs the tab in
(from the session cookie) and puts its socket in its user's socket.io room `user:{user_id}`.

Measured: ONE database transaction (in this process) stores one `transfer.received` notification
for every recipient through `notifications.notify`; at commit, the N bus messages go to Redis as one
publish; each worker with a tab of that user builds the user's delta once (the new unread count and
badge, `state/notifications.notification_centre_pushes`: two queries for all the users due at once;
the notification list itself goes only to tabs whose centre is open, none here) and emits it, with
the toast, to the user's socket.io room `user:{user_id}` in one call (`live.push_to_user_on`).
Nothing goes back to the server and no per-tab session check runs. Latency = arrival of that room
delta (the new unread count) at the tab minus the commit (taken when the commit completes, before
the N messages are published). `toasts` counts the tabs whose delta carried the toast in the same
update. p50/p95/p99 per run, for N = 100 and 1,000 on one worker and on `MULTI_WORKERS` workers.
Memory: the workers' RSS (all processes of each worker's group) after the tabs connected and loaded,
minus before, per tab. `worker_cpu_ms`: CPU of all worker processes from the commit until the last
tab had it. BENCH_ROUNDS > 1 sends that many notifications per recipient one after another (figures
are the first one's; the others' under `later_rounds`); BENCH_WORKER_COUNTS picks the worker counts
(default "1,MULTI_WORKERS"); BENCH_DB_NAME and BENCH_REDIS_DB keep parallel runs apart.

    PYTHONPATH=. .venv/bin/python bench/realtime_fanout.py            # N = 100 and 1,000
    BENCH_CLIENTS=100 PYTHONPATH=. .venv/bin/python bench/realtime_fanout.py
"""

from __future__ import annotations

import os

os.environ["PAYTIME_ENV"] = "test"
os.environ["JOBS_IN_APP"] = "false"
os.environ["LOG_LEVEL"] = "WARNING"
os.environ.pop("DATABASE_URL", None)

os.environ["REDIS_URL"] = f"redis://127.0.0.1:6379/{os.environ.get('BENCH_REDIS_DB', '12')}"

import asyncio
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
from alembic import command
from sqlalchemy import Engine
from sqlalchemy import event as orm_events
from sqlalchemy.engine import make_url
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Ping, Request, TextMessage

from paytime_app.cli import alembic_config
from paytime_app.cookies import SESSION_COOKIE
from paytime_app.db import build_engine, in_transaction, unit_of_work, use_engine
from paytime_app.services.notifications import notify
from paytime_app.services.sessions import ClientInfo, start_browser_session
from paytime_app.services.users import create_user
from paytime_app.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_DB = os.environ.get("BENCH_DB_NAME", "paytime_bench_fanout")
SIZES = [int(size) for size in os.environ.get("BENCH_CLIENTS", "100,1000").split(",")]
MULTI_WORKERS = int(os.environ.get("BENCH_WORKERS", "3"))
# Worker counts to run, one after another (BENCH_WORKER_COUNTS=1 for a quick single-worker look).
WORKER_COUNTS = [int(n) for n in os.environ.get("BENCH_WORKER_COUNTS", f"1,{MULTI_WORKERS}").split(",")]
TARGET_P95_MS = 250
TARGET_BYTES_PER_CLIENT = 200 * 1024
NAMESPACE = "/_event"
DELIVERY_TIMEOUT_S = 60
# Notifications per recipient, one after another; the figures are the first one's, the later ones'
# p50/p95 and worker CPU are listed under `later_rounds`.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1"))
DEBUG = bool(os.environ.get("BENCH_DEBUG"))
UNREAD = "unread_rx_state_"  # how Reflex 0.10 names the notification centre's `unread` var in a delta


def _admin(statement: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(statement)


def _database_url(driver: str) -> str:
    return make_url(ADMIN_URL).set(drivername=driver, database=BENCH_DB).render_as_string(hide_password=False)


def _migrate(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- the app's backend processes ------------------------------------------------------------------


def _start_worker(port: int, log: Path) -> subprocess.Popen:
    env = {
        **{name: value for name, value in os.environ.items() if name != "REFLEX_FRONTEND_PORT"},
        "DATABASE_URL": _database_url("postgresql"),
        "REDIS_URL": os.environ["REDIS_URL"],
        "PAYTIME_ENV": "test",
        "JOBS_IN_APP": "false",
        "LOG_LEVEL": "WARNING",
        "REFLEX_REDIS_MAX_CONNECTIONS": "1000",  # one per concurrent event at N = 1,000
        # Reflex reads its internal variables with two leading underscores; without this each worker
        # compiled the whole frontend at start-up (and needed bun).
        "__REFLEX_SKIP_COMPILE": "true",
        "REFLEX_ENV_MODE": "prod",
    }
    # Reflex's production backend, as `reflex run --env prod` starts it (granian, the app factory,
    # no compile); one process per worker so each has its own port and event loop.
    command_line = [
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
        "1",
        "--log-level",
        "warning",
        "paytime_app.paytime_app:app",
    ]
    with log.open("wb") as output:
        worker = subprocess.Popen(
            command_line, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"a worker exited early:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code == 200:
                return worker
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    _stop(worker)
    raise RuntimeError(f"a worker did not start within 240 s:\n{log.read_text()[-3000:]}")


def _stop(worker: subprocess.Popen) -> None:
    if worker.poll() is not None:
        return
    os.killpg(worker.pid, signal.SIGTERM)  # the group we started: reflex and its server
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)


def _group_proc_files(worker: subprocess.Popen, name: str) -> Iterator[str]:
    """`/proc/<pid>/<name>` of every process still in the worker's process group."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) == worker.pid:
                yield (entry / name).read_text()
        except (OSError, ProcessLookupError):
            continue


def _group_cpu_seconds(worker: subprocess.Popen) -> float:
    """CPU time (user + system) used so far by every process in the worker's process group."""
    ticks = 0
    for stat in _group_proc_files(worker, "stat"):
        fields = stat.rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _group_rss(worker: subprocess.Popen) -> int:
    """Resident memory of every process in the worker's process group, in bytes."""
    return sum(
        int(line.split()[1]) * 1024
        for status in _group_proc_files(worker, "status")
        for line in status.splitlines()
        if line.startswith("VmRSS:")
    )


# --- a tab: engine.io v4 + socket.io over a websocket, as Reflex's frontend speaks it -------------


@dataclass
class Tab:
    user_id: str
    cookie: str
    port: int
    token: str = field(default_factory=lambda: str(uuid.uuid4()))
    received_at: float | None = None
    loaded: asyncio.Event = field(default_factory=asyncio.Event)
    unread: int = 0
    toasted: bool = False
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    connection: WSConnection = field(default_factory=lambda: WSConnection(ConnectionType.CLIENT))
    task: asyncio.Task | None = None

    async def open(self, load_event: str) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        target = f"{NAMESPACE}/?EIO=4&transport=websocket&token={self.token}"
        self.writer.write(
            self.connection.send(
                Request(
                    host=f"localhost:{self.port}",
                    target=target,
                    extra_headers=[(b"cookie", self.cookie.encode()), (b"user-agent", b"paytime-bench")],
                )
            )
        )
        self._load_event = load_event
        self.task = asyncio.create_task(self._read())

    def _send(self, text: str) -> None:
        assert self.writer is not None
        self.writer.write(self.connection.send(Message(data=text)))

    def _emit_event(self, name: str) -> None:
        body = {"name": name, "payload": {}, "router_data": {"pathname": "/wallet", "query": {}, "asPath": "/wallet"}}
        self._send(f"42{NAMESPACE}," + json.dumps(["event", body]))

    async def _read(self) -> None:
        assert self.reader is not None
        while True:
            data = await self.reader.read(65536)
            if not data:
                return
            self.connection.receive_data(data)
            for event in self.connection.events():
                if isinstance(event, AcceptConnection):
                    continue
                if isinstance(event, Ping):
                    self.writer.write(self.connection.send(event.response()))
                elif isinstance(event, CloseConnection):
                    return
                elif isinstance(event, TextMessage):
                    self._on_packet(event.data)

    def _on_packet(self, packet: str) -> None:
        if DEBUG:
            print(self.token[:6], packet[:300], file=sys.stderr)
        kind = packet[:1]
        if kind == "0":  # engine.io open: join the namespace
            self._send(f"40{NAMESPACE},")
        elif kind == "2":  # engine.io ping
            self._send("3")
        elif packet.startswith(f"40{NAMESPACE}"):  # namespace joined: load like the top bar does
            self._emit_event(self._load_event)
        elif packet.startswith(f"42{NAMESPACE},"):
            name, update = json.loads(packet[len(f"42{NAMESPACE},") :])
            if name != "event":
                return
            for event in update.get("events", []):
                # A server-pushed state event would come back, as the frontend sends it; the room delta
                # needs none. Client-side events (`_call_function`: the toast) run in the browser only.
                if not event["name"].startswith("_"):
                    self._emit_event(event["name"])
            for values in update.get("delta", {}).values():
                if UNREAD in values:
                    unread = int(values[UNREAD])
                    if unread > self.unread and self.loaded.is_set() and self.received_at is None:
                        self.received_at = time.perf_counter()
                        self.toasted = any(event["name"] == "_call_function" for event in update.get("events", []))
                    self.unread = unread
                    self.loaded.set()

    async def close(self) -> None:
        if self.task:
            self.task.cancel()
        if self.writer:
            self.writer.close()


# --- one run ---------------------------------------------------------------------------------------------


def _people(count: int) -> list[tuple[str, str]]:
    """(user id, session cookie) for `count` new users."""
    people = []
    stamp = uuid.uuid4().hex[:8]
    for index in range(count):
        user = in_transaction(
            create_user, email=f"fan{stamp}{index}@example.com", display_name=f"Fan {index}", password=None
        )
        issued = in_transaction(start_browser_session, user=user, client=ClientInfo(user_agent="paytime-bench"))
        people.append((str(user.id), f"{SESSION_COOKIE}={issued.token}"))
    return people


def _notify_all(user_ids: list[str]) -> tuple[float, float]:
    """Store one notification per recipient in one transaction; returns the commit time (and this
    process's CPU time then).

    The time is taken when the commit completes, before the bus publishes the messages (that listener
    is registered first, so it runs first): publishing N messages is part of the measured latency.
    """
    committed: list[tuple[float, float]] = []
    with unit_of_work() as session:
        orm_events.listen(
            session, "after_commit", lambda _session: committed.append((time.perf_counter(), time.process_time()))
        )
        for user_id in user_ids:
            notify(
                session=session,
                recipient_id=uuid.UUID(user_id),
                kind="transfer.received",
                amount_minor=100_00,
                currency="NGN",
                actor_name="Bench Sender",
            )
        session.flush()
    return committed[0]


def _percentile(values: list[float], share: float, count: int) -> float | None:
    """The `share` percentile over all `count` recipients; a tab never reached counts as slowest (None)."""
    ordered = sorted(values)
    rank = min(count - 1, max(0, round(share * count) - 1))
    return round(ordered[rank], 1) if rank < len(ordered) else None


async def _run(count: int, ports: list[int], workers: list[subprocess.Popen], load_event: str) -> dict:
    people = await asyncio.to_thread(_people, count)
    rss_before = sum(_group_rss(worker) for worker in workers)
    tabs = [Tab(user_id, cookie, ports[index % len(ports)]) for index, (user_id, cookie) in enumerate(people)]
    started = time.perf_counter()
    for batch in range(0, len(tabs), 50):
        await asyncio.gather(*(tab.open(load_event) for tab in tabs[batch : batch + 50]))
        await asyncio.gather(
            *(asyncio.wait_for(tab.loaded.wait(), 15 if DEBUG else 120) for tab in tabs[batch : batch + 50])
        )
    connect_seconds = time.perf_counter() - started
    await asyncio.sleep(2)
    rss_after = sum(_group_rss(worker) for worker in workers)
    rounds = []
    for _round in range(ROUNDS):
        for tab in tabs:
            tab.received_at, tab.toasted = None, False
        cpu_before = sum(_group_cpu_seconds(worker) for worker in workers)
        committed, own_cpu_before = await asyncio.to_thread(_notify_all, [tab.user_id for tab in tabs])
        deadline = time.perf_counter() + DELIVERY_TIMEOUT_S
        while time.perf_counter() < deadline and any(tab.received_at is None for tab in tabs):
            await asyncio.sleep(0.01)
        worker_cpu = sum(_group_cpu_seconds(worker) for worker in workers) - cpu_before
        own_cpu = time.process_time() - own_cpu_before
        latencies = [(tab.received_at - committed) * 1000 for tab in tabs if tab.received_at is not None]
        rounds.append(
            {
                "delivered": len(latencies),
                "toasts": sum(tab.toasted for tab in tabs),
                "p50_ms": _percentile(latencies, 0.50, count),
                "p95_ms": _percentile(latencies, 0.95, count),
                "p99_ms": _percentile(latencies, 0.99, count),
                "max_ms": round(max(latencies), 1) if len(latencies) == count else None,
                # CPU the workers spent from the commit until the last tab had it (all workers together): on a
                # shared machine the latencies stretch with the load, this much less.
                "worker_cpu_ms": round(worker_cpu * 1000),
                # This process from the commit on: publishing, and every tab reading its update.
                "bench_process_cpu_ms": round(own_cpu * 1000),
            }
        )
        await asyncio.sleep(1)
    await asyncio.gather(*(tab.close() for tab in tabs))
    first, *later = rounds
    return {
        "clients": count,
        "workers": len(workers),
        **first,
        "connect_and_load_s": round(connect_seconds, 1),
        "load_1m": round(os.getloadavg()[0], 1),
        "later_rounds": [
            {key: value for key, value in r.items() if key in {"p50_ms", "p95_ms", "worker_cpu_ms"}} for r in later
        ],
        "bytes_per_client": round((rss_after - rss_before) / count),
    }


def main() -> None:
    _admin(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{BENCH_DB}"')
    get_settings.cache_clear()
    engine = build_engine(_database_url("postgresql+psycopg"))
    _migrate(engine)
    use_engine(engine)
    from paytime_app.state.notifications import NotificationsState  # noqa: PLC0415  imports the Reflex app

    load_event = f"{NotificationsState.get_full_name()}.load_notifications"
    runs = []
    logs = Path(tempfile.mkdtemp(prefix="fanout-"))
    try:
        for worker_count in WORKER_COUNTS:
            ports = [_free_port() for _ in range(worker_count)]
            workers = [_start_worker(port, logs / f"worker-{port}.log") for port in ports]
            try:
                for count in SIZES:
                    result = asyncio.run(_run(count, ports, workers, load_event))
                    print(json.dumps(result), flush=True)
                    runs.append(result)
            finally:
                for worker in workers:
                    _stop(worker)
    finally:
        use_engine(None)
        engine.dispose()
        _admin(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    largest = max(SIZES)
    at_largest = [run for run in runs if run["clients"] == largest]
    headline = next((run for run in at_largest if run["workers"] == 1), at_largest[0])
    summary = {
        "benchmark": "realtime_fanout",
        "date": datetime.now(UTC).date().isoformat(),
        "p95_ms": headline["p95_ms"],
        "bytes_per_client": headline["bytes_per_client"],
        "clients": largest,
        "target_p95_ms": TARGET_P95_MS,
        "target_bytes_per_client": TARGET_BYTES_PER_CLIENT,
        "runs": runs,
        "logs": str(logs),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
