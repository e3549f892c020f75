"""The staff payments dashboard on PostgreSQL with 1,000,000 payments.

A fresh database is migrated with PayTime's Alembic revisions and filled in SQL (generate_series):
2,000 customers and 1,000,000 payments over 90 days (statuses, currencies, providers, methods,
purposes, amounts and failure reasons in realistic proportions, each with its search text), then
ANALYZEd, and the daily totals are rebuilt by the service. Then, through the real service
functions and the app's engine, timing each call as a page load would make it (its own transaction):

- `first_page`: `list_payments` with no filter (25 newest, with the total);
- `filtered`: the last 7 days and status=failed;
- `search`: free text matching one customer's name and email fragment (`q`);
- `search_reference`: a reference fragment (one payment);
- `stats`: `payment_stats` with no filter (30-day chart).

Each is run WARMUP times, then ROUNDS times; p50/p95 in ms. Then the CSV export of all rows goes
through the export service's own generator (`open_payments_export`, server-side cursor, csv module),
its rows/s measured and this process's resident memory sampled at every chunk (growth above the
level before the export); and PostgreSQL's own `COPY (same query) TO STDOUT WITH CSV` of the same
rows is timed in the same run, alternating with the export EXPORT_ROUNDS times (medians):
`export_ratio_to_copy` = export rows/s ÷ COPY rows/s.
Targets (issue 7): every page and stats query p95 < 150 ms; export >= 0.3 of COPY; memory growth
during export < 50 MB. The database is dropped at the end.

    PYTHONPATH=. .venv/bin/python bench/dashboard.py
"""

from __future__ import annotations

import os

os.environ["PAYTIME_ENV"] = "test"
os.environ["JOBS_IN_APP"] = "false"
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)

import json
import statistics
import time
from collections.abc import Callable
from datetime import timedelta

import psycopg
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from paytime_app.cli import alembic_config
from paytime_app.db import in_transaction, unit_of_work, use_engine
from paytime_app.models.base import utcnow
from paytime_app.models.payments import Payment
from paytime_app.models.sessions import SessionKind
from paytime_app.models.users import Role, User
from paytime_app.services.payments import rebuild_daily_totals
from paytime_app.services.payments_admin import (
    _export_columns,
    _where_payments,
    list_payments,
    open_payments_export,
    parse_filters,
    payment_stats,
)
from paytime_app.services.sessions import ClientInfo, issue_api_tokens
from paytime_app.services.users import create_user

ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
BENCH_DB = "paytime_bench_dashboard"
PAYMENTS = int(os.environ.get("BENCH_PAYMENTS", "1000000"))
CUSTOMERS = 2_000
WARMUP, ROUNDS = 3, 30
EXPORT_ROUNDS = 3
TARGET_P95_MS, TARGET_EXPORT_RATIO, TARGET_MEMORY_MB = 150.0, 0.3, 50.0

GENERATE = """
INSERT INTO user_account (id, created_at, email, display_name, password_hash, role, is_active, email_verified_at)
SELECT gen_random_uuid(), now() - interval '120 days',
       'customer' || lpad(i::text, 5, '0') || '@bench.paytime.local',
       (ARRAY['Ada','Ben','Chiamaka','Tunde','Ngozi','Emeka','Funke','Ibrahim','Zainab','Kelechi'])[1 + i % 10]
         || ' ' || (ARRAY['Obi','Okafor','Adeyemi','Balogun','Eze','Bello','Nwosu','Okonkwo'])[1 + (i / 10) % 8]
         || ' ' || i,
       NULL, 'customer', true, now() - interval '120 days'
FROM generate_series(1, :customers) AS i;

CREATE TEMP TABLE bench_customer AS
SELECT row_number() OVER (ORDER BY email) AS n, id, email, display_name FROM user_account
WHERE email LIKE '%@bench.paytime.local';

INSERT INTO payment (id, created_at, updated_at, reference, user_id, purpose, provider, method, amount_minor,
                     currency, status, provider_reference, failure_reason, idempotency_key, request_hash,
                     description, receiver, refunded_minor, search_text)
SELECT p.id, p.created_at, p.created_at + interval '40 seconds', p.reference, c.id, p.purpose, p.provider,
       CASE p.provider WHEN 'mock' THEN 'mock' WHEN 'monnify' THEN 'bank_transfer' ELSE 'card' END,
       p.amount, p.currency, p.status, 'bench_' || p.n,
       CASE WHEN p.status = 'failed'
            THEN (ARRAY['card_declined','insufficient_funds','do_not_honor','expired_card','provider_unavailable'])
                 [1 + (p.n % 5)] END,
       'bench:' || p.n, 'bench',
       p.description, c.display_name || ' (wallet)',
       CASE p.status WHEN 'refunded' THEN p.amount WHEN 'partially_refunded' THEN (p.amount / 200) * 100 ELSE 0 END,
       lower(p.reference || ' ' || c.email || ' ' || c.display_name || ' ' || c.display_name || ' (wallet) '
             || p.description)
FROM (
  SELECT g.n, gen_random_uuid() AS id,
         now() - (90 * (1 - sqrt(random()))) * interval '1 day' AS created_at,
         'PAY-' || upper(substr(md5(g.n::text), 1, 3)) || lpad(g.n::text, 7, '0') AS reference,
         1 + (g.n::bigint * 7919) % :customers AS customer_n,
         CASE WHEN r.purpose < 0.75 THEN 'wallet_topup' ELSE 'call_credits' END AS purpose,
         CASE WHEN r.cur < 0.8 THEN 'NGN' ELSE 'USD' END AS currency,
         CASE WHEN r.prov < 0.35 THEN 'monnify' WHEN r.prov < 0.65 THEN 'flutterwave'
              WHEN r.prov < 0.9 THEN 'stripe' ELSE 'mock' END AS provider,
         CASE WHEN r.st < 0.81 THEN 'succeeded' WHEN r.st < 0.91 THEN 'failed' WHEN r.st < 0.95 THEN 'cancelled'
              WHEN r.st < 0.975 THEN 'refunded' WHEN r.st < 0.99 THEN 'partially_refunded'
              WHEN r.st < 0.995 THEN 'processing' ELSE 'pending' END AS status,
         (100 * greatest(5, round(exp(ln(12000) + r.amt * 1.1)))::bigint) AS amount,
         CASE WHEN r.purpose < 0.75 THEN 'Wallet top-up' ELSE 'Call credits' END
           || ' (PAY-' || upper(substr(md5(g.n::text), 1, 3)) || lpad(g.n::text, 7, '0') || ')' AS description
  FROM generate_series(1, :payments) AS g(n)
  CROSS JOIN LATERAL (
    SELECT random() AS purpose, random() AS cur, random() AS prov, random() AS st,
           (random() + random() + random() - 1.5) * 1.6 + g.n * 0 AS amt
  ) AS r
) AS p
JOIN bench_customer c ON c.n = p.customer_n;
"""


def _admin(*statements: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        for statement in statements:
            admin.execute(statement)


def _url(database: str, driver: str = "postgresql+psycopg") -> str:
    return make_url(ADMIN_URL).set(drivername=driver, database=database).render_as_string(hide_password=False)


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _timed(call: Callable[[], object]) -> tuple[float, float]:
    for _ in range(WARMUP):
        call()
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return round(statistics.median(samples), 2), round(samples[int(0.95 * (len(samples) - 1))], 2)


def _generate(engine: object) -> float:
    started = time.perf_counter()
    with engine.begin() as connection:  # type: ignore[attr-defined]
        for statement in GENERATE.split(";\n"):
            if statement.strip():
                connection.execute(text(statement), {"customers": CUSTOMERS, "payments": PAYMENTS})
    in_transaction(rebuild_daily_totals)
    with psycopg.connect(_url(BENCH_DB, "postgresql"), autocommit=True) as raw:
        raw.execute("VACUUM ANALYZE")
    return round(time.perf_counter() - started, 1)


def _pages(admin: User) -> dict[str, float]:
    with unit_of_work() as session:
        customer = session.exec(select(User).where(col(User.email).like("customer00042@%"))).one()
        reference = session.exec(select(Payment.reference).where(Payment.user_id == customer.id)).first()
    if reference is None:
        raise RuntimeError("the generated data has no payment for customer 42")
    week_ago = (utcnow() - timedelta(days=6)).date().isoformat()
    views = {
        "first_page": {},
        "filtered": {"from": week_ago, "status": "failed"},
        "search": {"q": "customer00042@"},
        "search_reference": {"q": reference[4:10].lower()},
    }
    figures: dict[str, float] = {}
    for name, params in views.items():
        filters = parse_filters(params)
        figures[f"{name}_rows"] = in_transaction(list_payments, actor=admin, filters=filters).total
        p50, p95 = _timed(lambda filters=filters: in_transaction(list_payments, actor=admin, filters=filters))
        figures[f"{name}_p50_ms"], figures[f"{name}_p95_ms"] = p50, p95
    for name, params in (("stats", {}), ("stats_search", {"q": "customer00042@"})):
        filters = parse_filters(params)
        p50, p95 = _timed(lambda filters=filters: in_transaction(payment_stats, actor=admin, filters=filters))
        figures[f"{name}_p50_ms"], figures[f"{name}_p95_ms"] = p50, p95
    return figures


def _export_once(token: str) -> tuple[float, int, int, float]:
    """All rows through the export service's own generator: seconds, rows, characters, memory growth (MB)."""
    before = _rss_mb()
    peak, rows, size = before, -1, 0
    started = time.perf_counter()
    for chunk in open_payments_export(token=token, kind=SessionKind.API, filters=parse_filters({})):
        rows += chunk.count("\r\n")
        size += len(chunk)
        peak = max(peak, _rss_mb())
    return time.perf_counter() - started, rows, size, peak - before


def _copy_once(sql: str) -> tuple[float, int]:
    copied = 0
    started = time.perf_counter()
    with (
        psycopg.connect(_url(BENCH_DB, "postgresql")) as raw,
        raw.cursor() as cursor,
        cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy,
    ):
        for data in copy:
            copied += len(data)
    return time.perf_counter() - started, copied


def _export(admin: User) -> dict[str, float]:
    """The export and PostgreSQL's COPY of the same query, alternated EXPORT_ROUNDS times (the machine
    is shared, so each figure is the median of its rounds)."""
    token = in_transaction(issue_api_tokens, user=admin, client=ClientInfo()).token
    with unit_of_work() as session:
        statement = _where_payments(
            select(*_export_columns(session)).join(User, col(Payment.user_id) == User.id), parse_filters({})
        ).order_by(col(Payment.created_at).desc(), col(Payment.id).desc())
        compiled = statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
        sql = str(compiled).replace("%%", "%")  # no parameters: undo the pyformat escaping of `%`
    exports, copies, growth = [], [], 0.0
    rows = size = copied = 0
    for _ in range(EXPORT_ROUNDS):
        seconds, rows, size, grown = _export_once(token)
        exports.append(seconds)
        growth = max(growth, grown)
        if rows != PAYMENTS:
            raise RuntimeError(f"exported {rows} rows of {PAYMENTS}")
        seconds, copied = _copy_once(sql)
        copies.append(seconds)
    export_seconds, copy_seconds = statistics.median(exports), statistics.median(copies)
    return {
        "export_rows": rows,
        "export_rounds": EXPORT_ROUNDS,
        "export_seconds": round(export_seconds, 2),
        "export_rows_per_s": round(rows / export_seconds),
        "export_mb": round(size / 1e6, 1),
        "copy_seconds": round(copy_seconds, 2),
        "copy_rows_per_s": round(PAYMENTS / copy_seconds),
        "copy_mb": round(copied / 1e6, 1),
        "export_ratio_to_copy": round(copy_seconds / export_seconds, 3),
        "export_memory_mb": round(growth, 1),
    }


def main() -> None:
    _admin(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)', f'CREATE DATABASE "{BENCH_DB}"')
    engine = create_engine(_url(BENCH_DB), pool_size=5)
    try:
        config = alembic_config()
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        use_engine(engine)
        generated = _generate(engine)
        admin = in_transaction(
            create_user, email="bench-admin@example.com", display_name="Bench Admin", password=None, role=Role.ADMIN
        )
        pages = _pages(admin)
        export = _export(admin)
        page_p95 = max(pages[f"{name}_p95_ms"] for name in ("first_page", "filtered", "search", "search_reference"))
        result = {
            "benchmark": "dashboard",
            "payments": PAYMENTS,
            "generate_seconds": generated,
            **pages,
            **export,
            "cpus": os.cpu_count(),
            "targets": {"p95_ms": TARGET_P95_MS, "export_ratio": TARGET_EXPORT_RATIO, "memory_mb": TARGET_MEMORY_MB},
            "targets_met": bool(
                page_p95 < TARGET_P95_MS
                and pages["stats_p95_ms"] < TARGET_P95_MS
                and export["export_ratio_to_copy"] >= TARGET_EXPORT_RATIO
                and export["export_memory_mb"] < TARGET_MEMORY_MB
            ),
            "first_page_p95_ms": pages["first_page_p95_ms"],
            "filtered_p95_ms": pages["filtered_p95_ms"],
            "search_p95_ms": pages["search_p95_ms"],
            "stats_p95_ms": pages["stats_p95_ms"],
            "export_ratio_to_copy": export["export_ratio_to_copy"],
            "export_memory_mb": export["export_memory_mb"],
        }
        print(json.dumps(result))
    finally:
        use_engine(None)
        engine.dispose()
        _admin(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')


if __name__ == "__main__":
    main()
