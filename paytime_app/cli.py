"""Operator commands: `python -m paytime_app.cli {check,migrate,seed-demo,worker,rotate-signing-key,...}`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from alembic import command
from alembic.config import Config

from paytime_app.db import check_database, in_transaction
from paytime_app.errors import DomainError
from paytime_app.services import job_handlers
from paytime_app.services.demo import DEMO_ACCOUNTS, DEMO_PASSWORD, seed_demo_data
from paytime_app.services.demo_payments import seed_demo_payments
from paytime_app.services.jobs import run_due_jobs
from paytime_app.services.signing_keys import retire_signing_key, rotate_signing_key
from paytime_app.settings import PROJECT_ROOT, get_settings


def alembic_config() -> Config:
    return Config(str(Path(PROJECT_ROOT) / "alembic.ini"))


def migrate() -> None:
    check_database()
    command.upgrade(alembic_config(), "head")


def seed_demo(payments: int = 0) -> None:
    if get_settings().is_production:
        print("PAYTIME_ENV=production: demo data is never seeded.")
        return
    created = in_transaction(seed_demo_data)
    print(f"Demo data: {len(created)} account(s) created, {len(DEMO_ACCOUNTS) - len(created)} already there.")
    if payments > 0:
        started = time.monotonic()
        added = in_transaction(seed_demo_payments, count=payments)
        print(f"Demo payments: {added} added over the past 90 days in {time.monotonic() - started:.1f}s.")


def print_demo_accounts() -> None:
    settings = get_settings()
    print(f"\n  PayTime is starting at {settings.base_url}\n")
    if settings.is_production:
        return
    print(f"  Demo accounts (password for all: {DEMO_PASSWORD}):")
    for account in DEMO_ACCOUNTS:
        print(f"    {account.email:<24} {account.description}")
    print()


def work(poll_seconds: float) -> None:
    worker_id = f"cli:{time.time_ns()}"
    in_transaction(job_handlers.book_recurring_work)
    while True:
        if not run_due_jobs(worker_id=worker_id):
            time.sleep(poll_seconds)


def rotate_key() -> None:
    key = in_transaction(rotate_signing_key)
    print(key.kid)


def retire_key(kid: str) -> int:
    try:
        in_transaction(retire_signing_key, kid=kid)
    except DomainError as error:
        print(f"{error.code}: {error.message}", file=sys.stderr)
        return 1
    print(f"Retired {kid}; tokens it signed are no longer accepted.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="paytime")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="validate settings and reach the database")
    sub.add_parser("migrate", help="apply database migrations")
    seed = sub.add_parser("seed-demo", help="create missing demo data (never in production)")
    seed.add_argument("--payments", type=int, default=0, help="also add this many payments over the past 90 days")
    sub.add_parser("banner", help="print the URL and the demo accounts")
    worker = sub.add_parser("worker", help="run background jobs in this process")
    worker.add_argument("--poll-seconds", type=float, default=1.0)
    sub.add_parser("rotate-signing-key", help="make a new signing key active; the old one keeps verifying")
    retire = sub.add_parser("retire-signing-key", help="stop accepting tokens signed by a verify-only key")
    retire.add_argument("kid")
    args = parser.parse_args(argv)

    get_settings()
    if args.command == "check":
        check_database()
        print("Settings valid; database reachable.")
    elif args.command == "migrate":
        migrate()
    elif args.command == "seed-demo":
        seed_demo(args.payments)
    elif args.command == "banner":
        print_demo_accounts()
    elif args.command == "worker":
        work(args.poll_seconds)
    elif args.command == "rotate-signing-key":
        rotate_key()
    elif args.command == "retire-signing-key":
        return retire_key(args.kid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
