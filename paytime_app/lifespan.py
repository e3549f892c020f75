"""Work that lives as long as the app process: the start-up database check and the job worker."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
from collections.abc import AsyncIterator

from paytime_app.db import check_database, in_transaction
from paytime_app.observability import configure_logging
from paytime_app.services import job_handlers, jobs
from paytime_app.settings import get_settings

logger = logging.getLogger("paytime.worker")


@contextlib.asynccontextmanager
async def database_check() -> AsyncIterator[None]:
    settings = get_settings()
    configure_logging(level=settings.log_level, json_output=settings.log_json)
    await asyncio.to_thread(check_database)
    yield


# Objects allocated (net) before the youngest generation is collected (CPython's default is 700).
# A fan-out to 1,000 tabs keeps tens of thousands of short-lived objects alive for a moment; at 700 they
# were collected mid-flight and promoted, and set off a full collection in every fan-out (0.5 s on
# this shared machine, walking every connection's objects); at 10,000 none ran during a fan-out.
GC_YOUNG_THRESHOLD = 10_000


@contextlib.asynccontextmanager
async def steady_heap() -> AsyncIterator[None]:
    """Keep the garbage collector's pauses short once the app has started.

    Full collections walk every tracked object; at start-up that is the whole app (pages, states,
    libraries: about 250,000 objects), which made each full collection stall the worker's event loop
    for 0.5-3 s on a busy machine while tabs waited for their updates. Freezing what start-up built
    takes it out of every later collection (it lives as long as the process anyway)."""
    gc.collect()
    gc.freeze()
    _young, *older = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *older)
    yield


async def job_worker() -> None:
    """Poll for due jobs; safe on every worker and host (claims skip each other's rows)."""
    worker_id = f"{socket.gethostname()}:{os.getpid()}"
    poll_seconds = get_settings().jobs_poll_seconds
    try:
        await asyncio.to_thread(in_transaction, job_handlers.book_recurring_work)
    except Exception:
        logger.exception("could not book the recurring jobs; they will be booked at the next start")
    while True:
        try:
            attempted = await asyncio.to_thread(jobs.run_due_jobs, worker_id=worker_id)
        except Exception:
            logger.exception("job polling failed; retrying")
            attempted = 0
        if not attempted:
            await asyncio.sleep(poll_seconds)
