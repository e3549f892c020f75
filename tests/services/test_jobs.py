import threading
import uuid
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from paytime_app.db import in_transaction, unit_of_work
from paytime_app.errors import DomainError
from paytime_app.models.audit import AuditLogEntry
from paytime_app.models.base import utcnow
from paytime_app.models.jobs import Job, JobStatus
from paytime_app.models.mail import MailMessage
from paytime_app.models.users import Role
from paytime_app.services import jobs
from paytime_app.services.jobs import (
    claim_due_jobs,
    enqueue_job,
    job_handler,
    list_troubled_jobs,
    retry_dead_job,
    run_due_jobs,
    run_job,
)
from paytime_app.services.users import create_user

performed: list[str] = []


@job_handler("test.record")
def record(*, session: Session, payload: dict) -> None:
    performed.append(payload["name"])


@job_handler("test.write_then_fail")
def write_then_fail(*, session: Session, payload: dict) -> None:
    session.add(MailMessage(to_address="x@example.com", subject="half-written", body_text="-"))
    session.flush()
    raise RuntimeError("provider timed out")


provider_down = threading.Event()


@job_handler("test.record_when_provider_up")
def record_when_provider_up(*, session: Session, payload: dict) -> None:
    if provider_down.is_set():
        raise RuntimeError("provider down")
    performed.append(payload["name"])


@pytest.fixture(autouse=True)
def _clear_performed():
    performed.clear()


def job_row(job_id) -> Job:
    with unit_of_work() as session:
        return session.get(Job, job_id)


def test_enqueued_job_runs_once(engine):
    job = in_transaction(enqueue_job, kind="test.record", payload={"name": "a"})
    assert run_due_jobs(worker_id="w1") == 1
    assert run_due_jobs(worker_id="w1") == 0
    assert performed == ["a"]
    done = job_row(job.id)
    assert done.status == JobStatus.SUCCEEDED
    assert done.attempts == 1
    assert done.finished_at is not None


def test_job_in_rolled_back_transaction_never_exists(engine):
    with pytest.raises(RuntimeError), unit_of_work() as session:
        enqueue_job(session=session, kind="test.record", payload={"name": "ghost"})
        raise RuntimeError("the change failed")
    assert run_due_jobs(worker_id="w1") == 0
    assert performed == []


def test_failed_job_rolls_back_its_effect_and_backs_off(engine):
    job = in_transaction(enqueue_job, kind="test.write_then_fail", payload={})
    before = utcnow()
    assert run_due_jobs(worker_id="w1") == 1
    failed = job_row(job.id)
    assert failed.status == JobStatus.PENDING
    assert failed.attempts == 1
    assert "provider timed out" in failed.last_error
    assert failed.run_at > before
    with unit_of_work() as session:
        assert session.exec(select(MailMessage)).all() == []
    assert run_due_jobs(worker_id="w1") == 0, "not due again before its backoff"


def test_job_is_dead_after_max_attempts(engine):
    job = in_transaction(enqueue_job, kind="test.write_then_fail", payload={}, max_attempts=2)
    for _ in range(2):
        with unit_of_work() as session:
            session.get(Job, job.id).run_at = utcnow() - timedelta(seconds=1)
        run_due_jobs(worker_id="w1")
    dead = job_row(job.id)
    assert dead.status == JobStatus.DEAD
    assert dead.attempts == 2


def dead_job(kind: str = "test.write_then_fail", **payload) -> Job:
    job = in_transaction(enqueue_job, kind=kind, payload=payload, max_attempts=1)
    run_due_jobs(worker_id="w1")
    assert job_row(job.id).status == JobStatus.DEAD
    return job


def staff_member(role: Role):
    return in_transaction(create_user, email=f"{role}@example.com", display_name=str(role), password=None, role=role)


def refusal(service, **kwargs) -> str:
    with pytest.raises(DomainError) as caught:
        in_transaction(service, **kwargs)
    return caught.value.code


def test_staff_see_jobs_that_gave_up_or_wait_for_a_retry_and_nothing_else(engine):
    dead = dead_job()
    retrying = in_transaction(enqueue_job, kind="test.write_then_fail", payload={})
    run_due_jobs(worker_id="w1")
    in_transaction(enqueue_job, kind="test.record", payload={"name": "fine"})  # pending, never failed
    run_due_jobs(worker_id="w1")  # runs it: succeeded
    in_transaction(enqueue_job, kind="test.record", payload={"name": "later"}, run_at=utcnow() + timedelta(days=1))
    jobs_seen, total = in_transaction(list_troubled_jobs, actor=staff_member(Role.VIEWER))
    assert total == 2
    assert {job.id for job in jobs_seen} == {dead.id, retrying.id}
    assert refusal(list_troubled_jobs, actor=staff_member(Role.CUSTOMER)) == "forbidden"


def test_an_admin_runs_a_dead_job_again_and_it_is_audited(engine):
    provider_down.set()
    try:
        job = dead_job("test.record_when_provider_up", name="again")
    finally:
        provider_down.clear()
    admin = staff_member(Role.ADMIN)
    assert refusal(retry_dead_job, actor=staff_member(Role.VIEWER), job_id=job.id) == "forbidden"
    in_transaction(retry_dead_job, actor=admin, job_id=job.id, ip_address="203.0.113.9")
    assert run_due_jobs(worker_id="w1") == 1
    assert performed == ["again"]
    assert job_row(job.id).status == JobStatus.SUCCEEDED
    with unit_of_work() as session:
        (entry,) = session.exec(select(AuditLogEntry).where(AuditLogEntry.action == "job.retried")).all()
    assert (entry.actor_id, entry.target_id, entry.ip_address) == (admin.id, str(job.id), "203.0.113.9")
    assert refusal(retry_dead_job, actor=admin, job_id=job.id) == "job_not_dead"
    assert refusal(retry_dead_job, actor=admin, job_id=uuid.uuid4()) == "not_found"


def test_dedupe_key_returns_the_first_job(engine):
    first = in_transaction(enqueue_job, kind="test.record", payload={"name": "a"}, dedupe_key="iou:1:due")
    second = in_transaction(enqueue_job, kind="test.record", payload={"name": "b"}, dedupe_key="iou:1:due")
    assert first.id == second.id
    run_due_jobs(worker_id="w1")
    assert performed == ["a"]


def test_job_of_dead_worker_is_reclaimed_after_its_lease(engine):
    job = in_transaction(enqueue_job, kind="test.record", payload={"name": "a"})
    in_transaction(claim_due_jobs, worker_id="crashed", limit=10)
    assert run_due_jobs(worker_id="w2") == 0, "leased to a live worker"
    later = utcnow() + jobs.LEASE + timedelta(seconds=1)
    assert in_transaction(claim_due_jobs, worker_id="w2", limit=10, now=later) == [job.id]
    assert run_job(job_id=job.id, worker_id="crashed") is None, "the old lease no longer counts"
    assert run_job(job_id=job.id, worker_id="w2") == JobStatus.SUCCEEDED
    assert performed == ["a"]


def test_unknown_job_kind_is_a_programming_error(engine):
    with pytest.raises(ValueError, match="no handler"):
        in_transaction(enqueue_job, kind="test.unknown", payload={})


def test_concurrent_workers_claim_each_job_once(engine):
    count = 60
    with unit_of_work() as session:
        for index in range(count):
            enqueue_job(session=session, kind="test.record", payload={"name": str(index)})
    errors: list[BaseException] = []

    def work(worker: str) -> None:
        try:
            while run_due_jobs(worker_id=worker, limit=3):
                pass
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(performed, key=int) == [str(index) for index in range(count)]
