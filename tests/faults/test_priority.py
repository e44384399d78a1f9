"""Priority: a high job submitted behind 2,000 queued low jobs starts before any further low
job, beyond those a worker had already taken."""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime

import pytest
from sqlalchemy import text

from shared.db import transaction
from shared.repositories.jobs import JobNotCancellableError, cancel_job
from tests.faults.conftest import MakeStack
from tests.faults.invariants import assert_settled, wait_all_final
from tests.faults.seeding import create_account, insert_jobs, job_body

pytestmark = pytest.mark.e2e

CONCURRENCY = 4
LOW_JOBS = 2000


def test_high_job_overtakes_two_thousand_low_jobs(make_stack: MakeStack) -> None:
    """Low jobs started between the high job's submission and its start are at most the
    worker's slots (messages already prefetched), never the backlog."""
    stack = make_stack(workers=1, concurrency=CONCURRENCY, sim_latency_ms=200)
    account = create_account("priority")
    low = insert_jobs(account, LOW_JOBS, "gpt-4o-mini", priority="low")
    high = stack.submit(account.key, job_body("gpt-4o-mini", 0, priority="high"))["id"]
    job = stack.wait_final(account.key, high, timeout=20)
    assert job["status"] == "succeeded"

    with transaction() as session:
        created, started = session.execute(
            text("SELECT created_at, started_at FROM jobs WHERE id = :id"), {"id": high}
        ).one()
        overtaking: int = session.execute(
            text(
                "SELECT count(*) FROM jobs WHERE priority = 'low'"
                " AND started_at > :created AND started_at < :started"
            ),
            {"created": created, "started": started},
        ).scalar_one()
        low_started = session.execute(
            text("SELECT count(*) FROM jobs WHERE priority = 'low' AND started_at IS NOT NULL")
        ).scalar_one()
    assert isinstance(started, datetime)
    assert overtaking <= CONCURRENCY, overtaking
    assert low_started < LOW_JOBS / 4

    # The rest of the backlog is cancelled rather than waited for; the worker skips it.
    with transaction() as session:
        pending = session.execute(
            text("SELECT id::text FROM jobs WHERE status IN ('queued', 'running')")
        ).scalars()
        for job_id in list(pending):
            # The worker may finish one between the query and its cancellation.
            with contextlib.suppress(JobNotCancellableError):
                cancel_job(session, job_id, uuid.UUID(account.user_id))
    wait_all_final([*low, high], timeout=30)
    counts = assert_settled([*low, high])
    assert counts["cancelled"] > LOW_JOBS / 2
