"""Work that lives as long as the app process: the start-up database check and the job worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator

from paytime_app.db import check_database, in_transaction
from paytime_app.observability import configure_logging
from paytime_app.services import (
    job_handlers,  # noqa: F401  registers every job handler
    jobs,
)
from paytime_app.services.payments import schedule_reconciliation
from paytime_app.settings import get_settings

logger = logging.getLogger("paytime.worker")


@contextlib.asynccontextmanager
async def database_check() -> AsyncIterator[None]:
    settings = get_settings()
    configure_logging(level=settings.log_level, json_output=settings.log_json)
    await asyncio.to_thread(check_database)
    yield


async def job_worker() -> None:
    """Poll for due jobs; safe on every worker and host (claims skip each other's rows)."""
    worker_id = f"{socket.gethostname()}:{os.getpid()}"
    poll_seconds = get_settings().jobs_poll_seconds
    # Recurring work books its next run itself; every worker booking the first one is deduplicated.
    try:
        await asyncio.to_thread(in_transaction, schedule_reconciliation)
    except Exception:
        logger.exception("could not book payment reconciliation; it will be booked at the next start")
    while True:
        try:
            attempted = await asyncio.to_thread(jobs.run_due_jobs, worker_id=worker_id)
        except Exception:
            logger.exception("job polling failed; retrying")
            attempted = 0
        if not attempted:
            await asyncio.sleep(poll_seconds)
