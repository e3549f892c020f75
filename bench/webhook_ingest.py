"""Signed mock webhooks per second through the real HTTP route, against a bare route on the same server.

Setup: a fresh PostgreSQL database, migrated; 100 users with 27 wallet top-ups each (2,700 payments)
created and opened through the payment service (`create_payment`, `open_checkout` with the mock
provider). The server is granian (ASGI, one worker per core, as the app is deployed) serving
`bench/_webhook_app.py`: `create_api()`, the app's FastAPI routes, plus `POST /bare` answering
`{"ok": true}`. The client is httpx (32 threads, one keep-alive connection each). It sends 3,000
signed `payment.succeeded` webhooks to `/api/webhooks/mock`, one per payment plus 300 (10%) exact
duplicates, shuffled, and 3,000 POSTs to `/bare`. This shared host's speed drifts by a third from
one minute to the next, so the two take turns in SLICES slices of a third each (bare first), and each
side's rate is its total count over its total time.
`ratio_to_bare` = webhooks/s ÷ bare requests/s; the target is 0.3. Since the client, the server and
PostgreSQL share the machine's cores (and other work may too), it also prints the CPU each request
took: the server's (granian and its workers, from /proc), the database's (the backends connected to
the benchmark database) and the client's. At the end every payment must have succeeded and been
credited exactly once (one ledger credit each, each wallet holding exactly its payments), each event
answered "processed" once and its copy "duplicate", and `find_ledger_problems` must be empty.

    PYTHONPATH=. .venv/bin/python bench/webhook_ingest.py
"""

from __future__ import annotations

import os

os.environ["PAYTIME_ENV"] = "test"
os.environ["JOBS_IN_APP"] = "false"
os.environ["LOG_LEVEL"] = "WARNING"
os.environ["MOCK_WEBHOOK_SECRET"] = "bench-mock-webhook-secret-not-for-production"
os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)

import json
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
from alembic import command
from sqlalchemy import Engine, create_engine, func
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from paytime_app.cli import alembic_config
from paytime_app.db import in_transaction, unit_of_work, use_engine
from paytime_app.models.ledger import LedgerAccount, LedgerTransaction
from paytime_app.models.payments import Payment, PaymentPurpose, PaymentStatus
from paytime_app.money import Currency
from paytime_app.services.ledger import find_ledger_problems
from paytime_app.services.payments import create_payment, open_checkout
from paytime_app.services.providers.base import ProviderPaymentStatus
from paytime_app.services.providers.mock import MockProvider
from paytime_app.services.users import create_user
from paytime_app.services.wallets import WalletKind, wallet_address
from paytime_app.settings import get_settings

ROOT = Path(__file__).resolve().parent.parent
MOCK_SECRET = os.environ["MOCK_WEBHOOK_SECRET"]
ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_DB = os.environ.get("BENCH_DB_NAME", "paytime_bench_webhook")  # one per engineer on a shared server
USERS = 100
PAYMENTS_PER_USER = 27  # under the 30/minute money-action limit per user
PAYMENTS = USERS * PAYMENTS_PER_USER
DUPLICATES = 300
SERVER_WORKERS = max(2, min(os.cpu_count() or 2, 8))
REQUESTS = PAYMENTS + DUPLICATES
CONCURRENCY = 32
SETUP_THREADS = 8
WARMUP_REQUESTS = 200
CURRENCY = Currency("USD")
TARGET_RATIO = 0.3
SLICES = 3
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _admin(statement: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(statement)


def _database_url(database: str, driver: str) -> str:
    return make_url(ADMIN_URL).set(drivername=driver, database=database).render_as_string(hide_password=False)


def _migrate(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _create_payments() -> list[Payment]:
    """PAYMENTS wallet top-ups, created and opened (checkout, provider reference) through the service."""
    users = [
        in_transaction(create_user, email=f"bench{index}@example.com", display_name=f"Bench {index}", password=None)
        for index in range(USERS)
    ]
    rng = random.Random(7)
    jobs = [(user, number, rng.randint(100, 100_000)) for user in users for number in range(PAYMENTS_PER_USER)]

    def make(job: tuple) -> Payment:
        user, number, amount = job
        payment = in_transaction(
            create_payment,
            actor=user,
            purpose=PaymentPurpose.WALLET_TOPUP,
            amount_minor=amount,
            currency=str(CURRENCY),
            provider="mock",
            idempotency_key=f"bench:{number}",
        )
        return open_checkout(payment_id=payment.id, return_url="http://127.0.0.1/return")

    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        return list(pool.map(make, jobs))


def _signed_requests(payments: list[Payment]) -> list[tuple[dict[str, str], bytes]]:
    """(headers, body): one SUCCEEDED webhook per payment, then exact copies of some, shuffled."""
    provider = MockProvider(webhook_secret=MOCK_SECRET, base_url="http://127.0.0.1")
    originals = []
    for payment in payments:
        assert payment.provider_reference is not None
        headers, body = provider.signed_webhook(
            provider_reference=payment.provider_reference,
            reference=payment.reference,
            outcome=ProviderPaymentStatus.SUCCEEDED,
            amount_minor=payment.amount_minor,
            currency=payment.currency,
        )
        originals.append((headers, body))
    rng = random.Random(11)
    requests = originals + rng.sample(originals, DUPLICATES)
    rng.shuffle(requests)
    return requests


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(port: int, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(BENCH_DB, "postgresql"),
        "MOCK_WEBHOOK_SECRET": MOCK_SECRET,
        "PAYTIME_ENV": "test",
        "JOBS_IN_APP": "false",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "bench")]),
    }
    command_line = [
        sys.executable,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(SERVER_WORKERS),
        "--no-ws",
        "--log-level",
        "warning",
        "_webhook_app:app",
    ]
    with log.open("wb") as output:
        server = subprocess.Popen(
            command_line, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{log.read_text()[-2000:]}")
        try:
            httpx.post(f"http://127.0.0.1:{port}/bare", timeout=1)
            return server
        except httpx.TransportError:
            time.sleep(0.2)
    _stop_server(server)
    raise RuntimeError(f"the server did not start within 30 s:\n{log.read_text()[-2000:]}")


def _stop_server(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)  # the group we started: granian and its worker
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)


def _group_cpu_seconds(group: int) -> float:
    """User + system CPU used so far by the live processes of a process group (the server and its workers)."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[2]) == group:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def _backends_cpu_seconds(admin: psycopg.Connection) -> float:
    """User + system CPU used so far by the PostgreSQL backends connected to the benchmark database."""
    pids = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (BENCH_DB,)
    ).fetchall()
    ticks = 0
    for (pid,) in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def _measured(server: subprocess.Popen, url: str, requests: list[tuple[dict[str, str], bytes]]) -> tuple:
    """`_fire`, plus the server's and the database's CPU seconds over the run.

    A backend that connects meanwhile counts whole; one that disconnects before the end is missed.
    The connection that reads them is opened first: the server may take every free one meanwhile.
    """
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        server_began, db_began = _group_cpu_seconds(server.pid), _backends_cpu_seconds(admin)
        fired = _fire(url, requests)
        return (*fired, _group_cpu_seconds(server.pid) - server_began, _backends_cpu_seconds(admin) - db_began)


def _measured_in_slices(server: subprocess.Popen, url: str, requests: list, slice_index: int) -> tuple:
    """`_measured` over the `slice_index`-th of SLICES consecutive parts of `requests`."""
    size = -(-len(requests) // SLICES)
    return _measured(server, url, requests[slice_index * size : (slice_index + 1) * size])


def _summed(parts: list[tuple]) -> tuple:
    """One `_measured` result out of its slices': times and CPU added, latencies and answers in order."""
    seconds, cpu, latencies, answers, server_cpu, db_cpu = zip(*parts, strict=True)
    flat = [item for part in latencies for item in part], [item for part in answers for item in part]
    return sum(seconds), sum(cpu), *flat, sum(server_cpu), sum(db_cpu)


def _fire(url: str, requests: list[tuple[dict[str, str], bytes]]) -> tuple[float, float, list[float], list]:
    """POST every (headers, body) from CONCURRENCY threads, one keep-alive httpx client each.

    Returns (seconds, this process's CPU seconds, latencies in ms, (status, json) answers).
    """
    latencies: list[float] = [0.0] * len(requests)
    answers: list = [None] * len(requests)
    next_index = iter(range(len(requests)))  # next() on a range iterator is atomic under the GIL
    start = threading.Barrier(CONCURRENCY + 1)

    def worker() -> None:
        with httpx.Client(timeout=60) as client:
            start.wait()
            for index in next_index:
                headers, body = requests[index]
                began = time.perf_counter()
                response = client.post(url, headers=headers, content=body)
                latencies[index] = (time.perf_counter() - began) * 1000
                answers[index] = (response.status_code, response.json())

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    start.wait()
    began, cpu_began = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began, time.process_time() - cpu_began, latencies, answers


def _figures(name: str, elapsed: float, latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        f"{name}_rps": round(len(ordered) / elapsed, 1),
        f"{name}_p50_ms": round(statistics.median(ordered), 2),
        f"{name}_p95_ms": round(ordered[round(0.95 * (len(ordered) - 1))], 2),
    }


def _check_credited(payments: list[Payment]) -> dict[str, object]:
    """Every payment succeeded and was credited exactly once; the ledger reconciles."""
    expected_per_wallet: Counter[str] = Counter()
    for payment in payments:
        expected_per_wallet[wallet_address(payment.user_id, WalletKind.PRIMARY)] += payment.amount_minor
    with unit_of_work() as session:
        statuses = Counter(session.exec(select(Payment.status)).all())
        credited = session.exec(select(func.count()).where(col(Payment.ledger_transaction_id).is_not(None))).one()
        credits = session.exec(
            select(func.count()).where(LedgerTransaction.kind == str(PaymentPurpose.WALLET_TOPUP))
        ).one()
        balances = dict(
            session.exec(
                select(LedgerAccount.address, LedgerAccount.balance_minor).where(
                    col(LedgerAccount.address).like("user:%"),
                    LedgerAccount.currency == str(CURRENCY),
                )
            ).all()
        )
        problems = find_ledger_problems(session=session)
    for problem in problems[:10]:
        print(f"ledger problem: {problem}")
    succeeded = statuses.get(PaymentStatus.SUCCEEDED, 0)
    balances_ok = balances == dict(expected_per_wallet)
    return {
        "payments_succeeded": succeeded,
        "ledger_credits": credits,
        "credited_exactly_once": succeeded == len(payments) == credited == credits and balances_ok,
        "ledger_ok": not problems,
    }


def main() -> None:
    _admin(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{BENCH_DB}"')
    engine = create_engine(_database_url(BENCH_DB, "postgresql+psycopg"), pool_size=SETUP_THREADS + 2)
    server = None
    get_settings.cache_clear()
    try:
        _migrate(engine)
        use_engine(engine)
        setup_began = time.perf_counter()
        payments = _create_payments()
        setup_seconds = time.perf_counter() - setup_began
        webhooks = _signed_requests(payments)
        port = _free_port()
        with tempfile.TemporaryDirectory() as scratch:
            server = _start_server(port, Path(scratch) / "server.log")
            base = f"http://127.0.0.1:{port}"
            bare_requests = [({"content-type": "application/json"}, b"{}")] * REQUESTS
            _fire(f"{base}/bare", bare_requests[:WARMUP_REQUESTS])
            bare_parts, hook_parts = [], []
            for slice_index in range(SLICES):
                bare_parts.append(_measured_in_slices(server, f"{base}/bare", bare_requests, slice_index))
                hook_parts.append(_measured_in_slices(server, f"{base}/api/webhooks/mock", webhooks, slice_index))
            bare_elapsed, bare_cpu, bare_ms, bare_answers, bare_server_cpu, bare_db_cpu = _summed(bare_parts)
            hook_elapsed, hook_cpu, hook_ms, hook_answers, hook_server_cpu, hook_db_cpu = _summed(hook_parts)
            _stop_server(server)
            server = None
        outcomes = Counter(answer.get("status") if code == 200 else f"http_{code}" for code, answer in hook_answers)
        # Concurrent copies of one event may be answered in either order: one must say processed.
        processed_per_event = Counter(
            body
            for (_, body), (code, answer) in zip(webhooks, hook_answers, strict=True)
            if code == 200 and answer.get("status") == "processed"
        )
        bare_ok = sum(1 for code, answer in bare_answers if code == 200 and answer == {"ok": True})
        result: dict[str, object] = {"benchmark": "webhook_ingest", "concurrency": CONCURRENCY}
        result.update({"requests": REQUESTS, "payments": PAYMENTS, "duplicates_sent": DUPLICATES})
        result.update(_figures("webhooks", hook_elapsed, hook_ms))
        result.update(_figures("bare", bare_elapsed, bare_ms))
        ratio = result["webhooks_rps"] / result["bare_rps"]  # type: ignore[operator]
        result.update(
            {
                "processed": outcomes.get("processed", 0),
                "duplicates_answered_duplicate": outcomes.get("duplicate", 0),
                "each_event_processed_once": len(processed_per_event) == PAYMENTS
                and set(processed_per_event.values()) == {1},
                "other_answers": {
                    key: value for key, value in outcomes.items() if key not in ("processed", "duplicate")
                },
                "bare_ok": bare_ok,
                **_check_credited(payments),
                "ratio_to_bare": round(ratio, 3),
                "target_ratio": TARGET_RATIO,
                "target_met": ratio >= TARGET_RATIO,
                "slices": SLICES,
                "rps_per_slice": {
                    "bare": [round(len(part[2]) / part[0], 1) for part in bare_parts],
                    "webhooks": [round(len(part[2]) / part[0], 1) for part in hook_parts],
                },
                # The client shares the 2 cores with the server and PostgreSQL; this is what it took.
                "server_cpu_ms_per_request": {
                    "bare": round(bare_server_cpu * 1000 / REQUESTS, 2),
                    "webhooks": round(hook_server_cpu * 1000 / REQUESTS, 2),
                },
                "db_cpu_ms_per_request": {
                    "bare": round(bare_db_cpu * 1000 / REQUESTS, 2),
                    "webhooks": round(hook_db_cpu * 1000 / REQUESTS, 2),
                },
                "client_cpu_ms_per_request": {
                    "bare": round(bare_cpu * 1000 / REQUESTS, 2),
                    "webhooks": round(hook_cpu * 1000 / REQUESTS, 2),
                },
                "setup_seconds": round(setup_seconds, 1),
                "server": f"granian asgi, {SERVER_WORKERS} workers",
                "cpus": os.cpu_count(),
            }
        )
    finally:
        if server is not None:
            _stop_server(server)
        use_engine(None)
        engine.dispose()
        _admin(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    print(json.dumps(result))


if __name__ == "__main__":
    main()
