"""The sweeper's queries: jobs whose worker vanished, and queued jobs that may have no message."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.orm import Session

from shared.models import Job, JobStatus

WORKER_LOST = {
    "code": "worker_lost",
    "message": "The job's worker stopped answering too many times; it was not retried again.",
}


@dataclass(frozen=True)
class ExpiredLeases:
    requeued: list[uuid.UUID]
    failed: list[uuid.UUID]


def expire_leases(session: Session, max_deliveries: int) -> ExpiredLeases:
    """Running jobs whose lease ran out go back to the queue; those already delivered
    `max_deliveries` times fail as worker_lost instead (no endless poison loop). Cancelled jobs
    whose worker vanished mid-call release their lease and reservation."""
    expired = (Job.status == JobStatus.RUNNING) & (Job.lease_expires_at < func.now())
    failed = session.scalars(
        update(Job)
        .where(expired, Job.deliveries >= max_deliveries)
        .values(
            status=JobStatus.FAILED,
            error=WORKER_LOST,
            finished_at=func.now(),
            lease_token=None,
            lease_expires_at=None,
            reserved_usd=Decimal(0),
        )
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    ).all()
    # A job cancelled while it ran keeps its status; if its worker vanished, nobody else would
    # ever release its lease and its budget reservation.
    session.execute(
        update(Job)
        .where(Job.status == JobStatus.CANCELLED, Job.lease_expires_at < func.now())
        .values(lease_token=None, lease_expires_at=None, reserved_usd=Decimal(0))
        .execution_options(synchronize_session=False)
    )
    requeued = session.scalars(
        update(Job)
        .where(expired)
        .values(
            status=JobStatus.QUEUED,
            lease_token=None,
            lease_expires_at=None,
            queued_at=func.now(),
        )
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    ).all()
    return ExpiredLeases(requeued=list(requeued), failed=list(failed))


def due_queued_jobs(session: Session, grace_s: float, limit: int) -> list[tuple[uuid.UUID, str]]:
    """(id, priority) of queued jobs older than `grace_s` and claimable now, oldest first."""
    rows = session.execute(
        select(Job.id, Job.priority)
        .where(
            Job.status == JobStatus.QUEUED,
            Job.queued_at < func.now() - text(f"interval '{float(grace_s)} seconds'"),
            or_(Job.not_before.is_(None), Job.not_before <= func.now()),
        )
        .order_by(Job.queued_at)
        .limit(limit)
    ).all()
    return [(row.id, row.priority) for row in rows]
