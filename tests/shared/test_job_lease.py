"""Claiming a job is exclusive, and the final write is fenced by the claim's lease token."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal

from sqlalchemy import select, text, update

from shared.db import transaction
from shared.models import Job, JobStatus
from shared.repositories.job_leases import Claim, Outcome, claim_job, finish_job
from tests.conftest import Account
from tests.support.jobs import queued_job, succeeded_result

SUCCESS = Outcome(
    status=JobStatus.SUCCEEDED,
    result=succeeded_result("ok"),
    error=None,
    input_tokens=3,
    output_tokens=4,
    cost_usd=Decimal("0.0000010"),
)


def _claim(job_id: uuid.UUID) -> Claim | None:
    with transaction() as session:
        return claim_job(session, job_id, lease_s=60)


def test_a_job_in_the_backlog_is_not_claimed(make_account: Callable[[str], Account]) -> None:
    """Only a dispatched job can be claimed: a copy of an old message (a shutdown's unacked
    messages given back) must not take a job past its turn, its class or its user's cap."""
    job_id = queued_job(make_account("a").user_id)
    assert _claim(job_id) is None


def test_a_job_is_claimed_once(make_account: Callable[[str], Account]) -> None:
    """A second claim (a redelivered message) gets nothing while the lease is live."""
    job_id = queued_job(make_account("a").user_id, dispatched=True)
    first = _claim(job_id)
    assert first is not None
    assert _claim(job_id) is None
    with transaction() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert (job.status, job.deliveries) == ("running", 1)


def test_final_write_is_fenced_by_the_lease(make_account: Callable[[str], Account]) -> None:
    """A worker whose lease was taken over cannot write the result or add cost."""
    job_id = queued_job(make_account("a").user_id, dispatched=True)
    stale = _claim(job_id)
    assert stale is not None
    # The first worker stalls or dies and its lease runs out.
    with transaction() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(lease_expires_at=text("now() - interval '1 second'"))
        )
    fresh = _claim(job_id)
    assert fresh is not None and fresh.lease_token != stale.lease_token
    with transaction() as session:
        assert finish_job(session, stale, SUCCESS) is None
    with transaction() as session:
        finished = finish_job(session, fresh, SUCCESS)
        assert finished is not None and finished.was == JobStatus.RUNNING
    with transaction() as session:
        assert finish_job(session, fresh, SUCCESS) is None
        job = session.scalars(select(Job).where(Job.id == job_id)).one()
        assert job.status == "succeeded"
        assert job.cost_usd == Decimal("0.0000010")
        assert job.deliveries == 2
        assert job.lease_token is None


def test_finished_job_cannot_be_claimed(make_account: Callable[[str], Account]) -> None:
    """Once final, a job is never run again."""
    job_id = queued_job(make_account("a").user_id, dispatched=True)
    claim = _claim(job_id)
    assert claim is not None
    with transaction() as session:
        assert finish_job(session, claim, SUCCESS)
    assert _claim(job_id) is None
