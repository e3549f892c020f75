"""Durable background jobs.

Design overview: a change that needs follow-up work (send a mail, expire a hold, charge an IOU on
its due date) calls `enqueue_job` inside its own transaction, so the job exists exactly when the
change committed. Any number of workers call `run_due_jobs`: claiming takes due rows with
`FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite serialises writers instead) and leases them to the
worker. A job runs in one transaction together with its completion mark, so its effect and
"succeeded" commit or roll back together. A failure is recorded in a separate transaction with an
exponential backoff; after `max_attempts` the job is `dead` and shows up for staff on the background
jobs page (`list_troubled_jobs`), where an admin can run it again (`retry_dead_job`). A worker that
dies mid-job loses its lease, and the job becomes claimable again when the lease runs out.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import and_, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from paytime_app.db import for_update, is_postgresql, unit_of_work
from paytime_app.errors import Conflict, NotFound
from paytime_app.models.base import utcnow
from paytime_app.models.jobs import Job, JobStatus
from paytime_app.models.users import User
from paytime_app.services.access import require_job_manager, require_staff_reader
from paytime_app.services.audit import record_audit
from paytime_app.services.paging import page_bounds

logger = logging.getLogger("paytime.jobs")

LEASE = timedelta(minutes=5)
MAX_BACKOFF_SECONDS = 3600


class JobHandler(Protocol):
    def __call__(self, *, session: Session, payload: dict[str, Any]) -> None: ...


_HANDLERS: dict[str, JobHandler] = {}


def job_handler(kind: str) -> Callable[[JobHandler], JobHandler]:
    """Register the function that performs jobs of `kind`."""

    def register(handler: JobHandler) -> JobHandler:
        if kind in _HANDLERS and _HANDLERS[kind] is not handler:
            raise ValueError(f"job kind {kind!r} already has a handler")
        _HANDLERS[kind] = handler
        return handler

    return register


def enqueue_job(
    *,
    session: Session,
    kind: str,
    payload: dict[str, Any],
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
    max_attempts: int = 8,
) -> Job:
    """Record work to do after this transaction commits; a repeated `dedupe_key` returns the first job."""
    if kind not in _HANDLERS:
        raise ValueError(f"no handler registered for job kind {kind!r}")
    job = Job(kind=kind, payload=payload, run_at=run_at or utcnow(), dedupe_key=dedupe_key, max_attempts=max_attempts)
    if dedupe_key is None:
        session.add(job)
        session.flush()
        return job
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        return session.exec(select(Job).where(Job.dedupe_key == dedupe_key)).one()
    return job


def backoff_delay(attempts: int) -> timedelta:
    """Exponential backoff with ±20% jitter so failed jobs do not retry in lockstep."""
    base = min(2 ** max(attempts, 1), MAX_BACKOFF_SECONDS)
    return timedelta(seconds=base * random.uniform(0.8, 1.2))  # noqa: S311  jitter, not a secret


def claim_due_jobs(*, session: Session, worker_id: str, limit: int, now: datetime | None = None) -> list[uuid.UUID]:
    """Lease up to `limit` due jobs to `worker_id`; rows other workers hold are skipped, not waited on."""
    now = now or utcnow()
    session.exec(  # type: ignore[call-overload]
        update(Job)
        .where(Job.status == JobStatus.RUNNING, col(Job.locked_until) < now, Job.attempts >= Job.max_attempts)
        .values(
            status=JobStatus.DEAD,
            finished_at=now,
            locked_by=None,
            last_error="lease expired on the last attempt (worker died?)",
        )
    )
    due = (
        select(Job.id)
        .where(
            Job.attempts < Job.max_attempts,
            or_(
                and_(Job.status == JobStatus.PENDING, col(Job.run_at) <= now),
                and_(Job.status == JobStatus.RUNNING, col(Job.locked_until) < now),
            ),
        )
        .order_by(col(Job.run_at))
        .limit(limit)
    )
    if is_postgresql(session):
        due = for_update(due, skip_locked=True)
    job_ids = list(session.exec(due).all())
    if job_ids:
        session.exec(  # type: ignore[call-overload]
            update(Job)
            .where(col(Job.id).in_(job_ids))
            .values(status=JobStatus.RUNNING, locked_by=worker_id, locked_until=now + LEASE, attempts=Job.attempts + 1)
        )
    return job_ids


def run_job(*, job_id: uuid.UUID, worker_id: str) -> JobStatus | None:
    """Perform one leased job; returns its new status, or None if the lease was lost."""
    try:
        with unit_of_work() as session:
            job = session.exec(for_update(select(Job).where(Job.id == job_id))).one_or_none()
            if job is None or job.status != JobStatus.RUNNING or job.locked_by != worker_id:
                return None
            _HANDLERS[job.kind](session=session, payload=job.payload)
            job.status = JobStatus.SUCCEEDED
            job.finished_at = utcnow()
            job.locked_by = None
            job.locked_until = None
            return JobStatus.SUCCEEDED
    except Exception as error:
        logger.warning("job failed", exc_info=True, extra={"job_id": str(job_id)})
        return _record_failure(job_id=job_id, worker_id=worker_id, error=error)


def _record_failure(*, job_id: uuid.UUID, worker_id: str, error: Exception) -> JobStatus | None:
    with unit_of_work() as session:
        job = session.exec(for_update(select(Job).where(Job.id == job_id))).one_or_none()
        if job is None or job.locked_by != worker_id:
            return None
        job.last_error = f"{type(error).__name__}: {error}"[:2000]
        job.locked_by = None
        job.locked_until = None
        if job.attempts >= job.max_attempts:
            job.status = JobStatus.DEAD
            job.finished_at = utcnow()
            logger.error("job is dead after %s attempts", job.attempts, extra={"job_id": str(job_id), "kind": job.kind})
        else:
            job.status = JobStatus.PENDING
            job.run_at = utcnow() + backoff_delay(job.attempts)
        return job.status


def run_due_jobs(*, worker_id: str, limit: int = 20) -> int:
    """Claim and perform due jobs once; returns how many were attempted."""
    with unit_of_work() as session:
        job_ids = claim_due_jobs(session=session, worker_id=worker_id, limit=limit)
    for job_id in job_ids:
        run_job(job_id=job_id, worker_id=worker_id)
    return len(job_ids)


# --- staff ----------------------------------------------------------------------------------------


class JobNotDead(Conflict):
    code = "job_not_dead"
    default_message = "Only a job that gave up can be run again; this one is still being tried."


def list_troubled_jobs(*, session: Session, actor: User, page: int = 1, page_size: int = 25) -> tuple[list[Job], int]:
    """Jobs that gave up (dead) or failed and wait to be tried again, the most recent trouble first.

    Raises PermissionDenied unless the actor is staff.
    """
    require_staff_reader(actor)
    page, page_size = page_bounds(page, page_size)
    troubled = or_(Job.status == JobStatus.DEAD, and_(Job.status == JobStatus.PENDING, col(Job.attempts) > 0))
    total = session.exec(select(func.count()).select_from(Job).where(troubled)).one()
    rows = session.exec(
        select(Job)
        .where(troubled)
        .order_by(func.coalesce(Job.finished_at, Job.run_at).desc(), col(Job.id))
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return list(rows), total


def retry_dead_job(*, session: Session, actor: User, job_id: uuid.UUID, ip_address: str | None = None) -> Job:
    """Give a dead job a fresh set of attempts, due now (its handler must be safe to run again, as every
    handler is: a job can always run twice when a worker loses its lease).

    Raises PermissionDenied (not an admin), NotFound, JobNotDead.
    """
    require_job_manager(actor)
    job = session.exec(for_update(select(Job).where(Job.id == job_id))).one_or_none()
    if job is None:
        raise NotFound("That job does not exist.")
    if job.status != JobStatus.DEAD:
        raise JobNotDead()
    job.status = JobStatus.PENDING
    job.attempts = 0
    job.run_at = utcnow()
    job.finished_at = None
    record_audit(
        session=session,
        action="job.retried",
        actor=actor,
        target_type="job",
        target_id=job.id,
        ip_address=ip_address,
        data={"kind": job.kind, "last_error": (job.last_error or "")[:200]},
    )
    return job
