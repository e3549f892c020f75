"""Liveness of what PayTime depends on, for `GET /api/health`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, text

from paytime_app import __version__
from paytime_app.redis_client import get_redis


@dataclass(frozen=True)
class HealthReport:
    database: str
    redis: str
    version: str = __version__

    @property
    def status(self) -> str:
        if self.database != "ok":
            return "down"
        return "ok" if self.redis in ("ok", "not_configured") else "degraded"


def check_health(*, engine: Engine) -> HealthReport:
    """Ping the database and Redis; never raises."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        database = "ok"
    except Exception:
        database = "down"
    client = get_redis()
    if client is None:
        redis_state = "not_configured"
    else:
        try:
            client.ping()
            redis_state = "ok"
        except Exception:
            redis_state = "down"
    return HealthReport(database=database, redis=redis_state)
