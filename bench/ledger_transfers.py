"""Wallet-to-wallet transfers through the ledger service on PostgreSQL, against pgbench's TPC-B.

Each transfer is `in_transaction(transfer, ...)`, as a route or a job runs it: its own session and
transaction, a unique idempotency key, and one call of the `ledger_write` function (two locked and
checked balances, one transaction row, two entries, the deferred balance triggers at commit).
Sixteen threads, split over one worker process per core as the app's workers are (each process with
its own engine), run for a fixed time (bounded by a count), timed from the moment every process has
started and connected, over
(a) 1,000 funded wallets, random pairs, and (b) 10 hot wallets, where every transfer waits for
row locks. The physical limit is pgbench's built-in TPC-B-like script (also three UPDATEs, one
INSERT and a SELECT per transaction) on the same server with the same client count, measured in the
same run: `ratio_to_pgbench` = transfers/s over 1,000 wallets ÷ pgbench tps; the target is 0.5.
This shared host's speed drifts by a third from one minute to the next, which made one 15-second
run of each, half a minute apart, disagree by as much: (a) and pgbench take turns in SLICES slices
of SLICE_SECONDS each, and each side's rate is its total count over its total time.
At the end the ledger is reconciled (`find_ledger_problems`) and the wallets' total is checked
unchanged. Both databases are created fresh and dropped at the end.

    PYTHONPATH=. .venv/bin/python bench/ledger_transfers.py
"""

from __future__ import annotations

import os

os.environ["PAYTIME_ENV"] = "test"
os.environ["JOBS_IN_APP"] = "false"
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)

import json
import multiprocessing
import random
import re
import shutil
import statistics
import subprocess
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from itertools import count
from typing import Any

import psycopg
from alembic import command
from sqlalchemy import Engine, func
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from paytime_app.cli import alembic_config
from paytime_app.db import build_engine, in_transaction, unit_of_work, use_engine
from paytime_app.models.ledger import LedgerAccount
from paytime_app.money import Currency
from paytime_app.services.ledger import InsufficientFunds, Posting, find_ledger_problems, post_transaction, transfer
from paytime_app.services.wallets import WalletKind, wallet_address

ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# Several people benchmarking on one server: BENCH_DB_PREFIX keeps their databases apart.
BENCH_DB = os.environ.get("BENCH_DB_PREFIX", "paytime") + "_bench_ledger"
PGBENCH_DB = os.environ.get("BENCH_DB_PREFIX", "paytime") + "_bench_pgbench"
CONCURRENCY = 16
# The app runs one worker process per core; so does the benchmark (16 threads in all).
PROCESSES = max(2, min(os.cpu_count() or 2, 8))
SLICES = 3
SLICE_SECONDS = 5
MAX_TRANSFERS = 40_000  # a bound in case the machine is far faster than expected
FUNDING_MINOR = 1_000_000_000  # per wallet; transfers move 1..1,000 so refusals stay rare
CURRENCY = Currency("USD")
PGBENCH_SCALE = 10
TARGET_RATIO = 0.5


def _admin(*statements: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        for statement in statements:
            admin.execute(statement)


def _recreate(database: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)', f'CREATE DATABASE "{database}"')


def _drop(database: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _checkpoint() -> None:
    _admin("CHECKPOINT")


def _sqlalchemy_url(database: str) -> str:
    url = make_url(ADMIN_URL).set(drivername="postgresql+psycopg", database=database)
    return url.render_as_string(hide_password=False)


def _engine(database: str, *, pool_size: int = 4) -> Engine:
    # The app's engine, with a pool that holds every thread without overflow churn.
    return build_engine(_sqlalchemy_url(database), pool_size=pool_size, max_overflow=0)


def _migrate(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _fund(addresses: list[str], label: str) -> None:
    in_transaction(
        post_transaction,
        postings=[Posting("world", address, FUNDING_MINOR, CURRENCY) for address in addresses],
        kind="bench_funding",
        idempotency_key=f"bench:fund:{label}",
    )


def _percentile(sorted_ms: list[float], fraction: float) -> float:
    if not sorted_ms:
        return 0.0
    return sorted_ms[min(len(sorted_ms) - 1, round(fraction * (len(sorted_ms) - 1)))]


def _transfer_loop(name: str, addresses: list[str], seconds: float, *, process: int, threads: int, ready: Any) -> dict:
    """One worker process: `threads` threads sharing one engine, transferring for `seconds` once
    every process has started and connected (`ready`, a barrier), however long that took."""
    engine = _engine(BENCH_DB, pool_size=threads)
    use_engine(engine)
    warm = [engine.connect() for _ in range(threads)]
    for connection in warm:
        connection.close()
    keys = count()
    latencies: list[list[float]] = [[] for _ in range(threads)]
    refused = [0] * threads
    errors: list[BaseException] = []
    ready.wait()
    started = time.time()
    deadline = started + seconds

    def worker(slot: int) -> None:
        rng = random.Random(f"{name}:{process}:{slot}")
        mine = latencies[slot]
        while time.time() < deadline:
            number = next(keys)
            if number >= MAX_TRANSFERS // PROCESSES:
                return
            source, destination = rng.sample(addresses, 2)
            began = time.perf_counter()
            try:
                in_transaction(
                    transfer,
                    source=source,
                    destination=destination,
                    amount_minor=rng.randint(1, 1_000),
                    currency=CURRENCY,
                    idempotency_key=f"bench:{name}:{started}:{process}:{number}",
                )
            except InsufficientFunds:
                refused[slot] += 1
            except BaseException as error:
                errors.append(error)
                return
            mine.append((time.perf_counter() - began) * 1000)

    pool = [threading.Thread(target=worker, args=(slot,), daemon=True) for slot in range(threads)]
    for thread in pool:
        thread.start()
    cpu_began = time.process_time()
    for thread in pool:
        thread.join()
    finished = time.time()
    engine.dispose()
    if errors:
        raise RuntimeError(f"{name}: {len(errors)} transfer(s) failed, first: {errors[0]!r}")
    return {
        "latencies": [ms for per_thread in latencies for ms in per_thread],
        "refused": sum(refused),
        "cpu_seconds": time.process_time() - cpu_began,
        "started": started,
        "finished": finished,
    }


def _run_slice(name: str, addresses: list[str], seconds: float) -> tuple[list[dict], float]:
    """Every worker process's run and the slice's length, from the first start to the last finish."""
    threads = CONCURRENCY // PROCESSES
    spawn = multiprocessing.get_context("spawn")
    with spawn.Manager() as manager, ProcessPoolExecutor(PROCESSES, mp_context=spawn) as pool:
        ready = manager.Barrier(PROCESSES)
        futures = [
            pool.submit(_transfer_loop, name, addresses, seconds, process=process, threads=threads, ready=ready)
            for process in range(PROCESSES)
        ]
        runs = [future.result() for future in futures]
    return runs, max(run["finished"] for run in runs) - min(run["started"] for run in runs)


def _scenario_figures(name: str, slices: list[tuple[list[dict], float]]) -> dict[str, float | int]:
    runs = [run for slice_runs, _ in slices for run in slice_runs]
    elapsed = sum(seconds for _, seconds in slices)
    all_ms = sorted(ms for run in runs for ms in run["latencies"])
    refused = sum(run["refused"] for run in runs)
    done = len(all_ms) - refused
    return {
        f"{name}_transfers": done,
        f"{name}_refused_insufficient_funds": refused,
        f"{name}_seconds": round(elapsed, 2),
        f"{name}_tps": round(done / elapsed, 1),
        f"{name}_p50_ms": round(statistics.median(all_ms), 2) if all_ms else 0.0,
        f"{name}_p95_ms": round(_percentile(all_ms, 0.95), 2),
        # The worker processes' CPU per call: what the service layer costs in Python.
        f"{name}_python_cpu_ms_per_transfer": round(
            sum(run["cpu_seconds"] for run in runs) * 1000 / max(len(all_ms), 1), 2
        ),
    }


def _pgbench_args() -> list[str]:
    url = make_url(ADMIN_URL)
    return ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username or "postgres"]


def _pgbench_env() -> dict[str, str]:
    env = dict(os.environ)
    password = make_url(ADMIN_URL).password
    if password:
        env["PGPASSWORD"] = str(password)
    return env


def _pgbench_init() -> None:
    pgbench = shutil.which("pgbench") or "/usr/bin/pgbench"
    subprocess.run(
        [pgbench, "-i", "-q", "-s", str(PGBENCH_SCALE), *_pgbench_args(), PGBENCH_DB],
        check=True,
        capture_output=True,
        env=_pgbench_env(),
        timeout=120,
    )


def _pgbench_run(seconds: int) -> float:
    pgbench = shutil.which("pgbench") or "/usr/bin/pgbench"
    done = subprocess.run(
        [pgbench, "-c", str(CONCURRENCY), "-j", "2", "-T", str(seconds), *_pgbench_args(), PGBENCH_DB],
        check=True,
        capture_output=True,
        text=True,
        env=_pgbench_env(),
        timeout=seconds + 60,
    )
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", done.stdout) or re.search(
        r"tps = ([0-9.]+)", done.stdout
    )
    if match is None:
        raise RuntimeError(f"could not read pgbench's tps from:\n{done.stdout}")
    return float(match.group(1))


def _wallet_total(addresses: list[str]) -> int:
    with unit_of_work() as session:
        total = session.exec(
            select(func.coalesce(func.sum(LedgerAccount.balance_minor), 0)).where(
                col(LedgerAccount.address).in_(addresses)
            )
        ).one()
    return int(total)


def main() -> None:
    _recreate(BENCH_DB)
    _recreate(PGBENCH_DB)
    engine = _engine(BENCH_DB)
    try:
        _migrate(engine)
        use_engine(engine)
        wide = [wallet_address(uuid.uuid4(), WalletKind.PRIMARY) for _ in range(1_000)]
        hot = [wallet_address(uuid.uuid4(), WalletKind.PRIMARY) for _ in range(10)]
        _fund(wide, "wide")
        _fund(hot, "hot")
        _pgbench_init()
        _checkpoint()
        result: dict[str, object] = {"benchmark": "ledger_transfers", "concurrency": CONCURRENCY}
        wide_slices, pgbench_slices = [], []
        for _ in range(SLICES):
            wide_slices.append(_run_slice("accounts_1000", wide, SLICE_SECONDS))
            _checkpoint()
            pgbench_slices.append(_pgbench_run(SLICE_SECONDS))
            _checkpoint()
        result.update(_scenario_figures("accounts_1000", wide_slices))
        result.update(_scenario_figures("hot_10", [_run_slice("hot_10", hot, SLICES * SLICE_SECONDS)]))
        # Equal slices: the mean of the slices' rates is the total count over the total time.
        pgbench_tps = statistics.mean(pgbench_slices)
        with unit_of_work() as session:
            problems = find_ledger_problems(session=session)
        total_ok = _wallet_total(wide) == len(wide) * FUNDING_MINOR and _wallet_total(hot) == len(hot) * FUNDING_MINOR
        for problem in problems[:10]:
            print(f"ledger problem: {problem}")
        ratio = result["accounts_1000_tps"] / pgbench_tps  # type: ignore[operator]
        result.update(
            {
                "pgbench_tps": round(pgbench_tps, 1),
                "pgbench_scale": PGBENCH_SCALE,
                "slices": SLICES,
                "slice_seconds": SLICE_SECONDS,
                "accounts_1000_tps_per_slice": [
                    round(sum(len(run["latencies"]) - run["refused"] for run in runs) / seconds, 1)
                    for runs, seconds in wide_slices
                ],
                "pgbench_tps_per_slice": [round(tps, 1) for tps in pgbench_slices],
                "ratio_to_pgbench": round(ratio, 3),
                "target_ratio": TARGET_RATIO,
                "target_met": ratio >= TARGET_RATIO,
                "ledger_ok": not problems and total_ok,
                "cpus": os.cpu_count(),
            }
        )
    finally:
        use_engine(None)
        engine.dispose()
        _drop(BENCH_DB)
        _drop(PGBENCH_DB)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
