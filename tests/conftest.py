"""Fixtures: a fresh, migrated database per test on SQLite and on PostgreSQL.

Service tests take `engine` (or `session`) and so run once per backend. PostgreSQL comes from
TEST_DATABASE_URL (default: local trust auth); under CI=true an unreachable server fails the run
instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

os.environ["PAYTIME_ENV"] = "test"
os.environ.setdefault("LOG_JSON", "false")
os.environ["JOBS_IN_APP"] = "false"
# Uploaded covers land in a scratch directory of this test process, never in the checkout's data/.
os.environ["MEDIA_DIR"] = tempfile.mkdtemp(prefix="paytime-media-")
for _variable in ("DATABASE_URL", "REDIS_URL", "SMTP_HOST"):
    os.environ.pop(_variable, None)

import psycopg
import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlmodel import Session, SQLModel

from paytime_app.cli import alembic_config
from paytime_app.db import build_engine, use_engine
from paytime_app.services.rate_limits import reset_rate_limit_storage
from paytime_app.settings import get_settings

PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() == "true"


def migrate(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    engine = build_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


def _pg_url(database: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{database}".replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    # One database per test process, so parallel runs (xdist workers, several checkouts) never collide.
    database = f"paytime_test_{os.getpid()}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{database}"')
    except psycopg.OperationalError as error:
        _unavailable(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {error}")
    engine = build_engine(_pg_url(database))
    migrate(engine)
    yield engine
    engine.dispose()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _truncate_all(engine: Engine) -> None:
    tables = ", ".join(f'"{table.name}"' for table in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        path = tmp_path / "paytime.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        engine = build_engine(f"sqlite:///{path}")
    else:
        engine = request.getfixturevalue("postgres_engine")
        _truncate_all(engine)
    use_engine(engine)
    yield engine
    use_engine(None)
    if request.param == "sqlite":
        engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    """Each test starts with empty rate-limit counters (in-memory storage lives per process)."""
    reset_rate_limit_storage()
    yield
    reset_rate_limit_storage()


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Change environment variables for settings; the cached settings are rebuilt around the test."""
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()
