"""Jobs: admission, lookup by owner, the worker's claim (a lease) and its fenced final write."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.orm import Session

from shared.errors import NotFoundError
from shared.models import Job, JobStatus


def create_job(
    session: Session,
    *,
    user_id: uuid.UUID,
    model: str,
    priority: str,
    request: dict[str, Any],
    fallbacks: list[str],
    meta: dict[str, Any],
) -> Job:
    """Insert a queued job; it must be committed before its message is published."""
    job = Job(
        user_id=user_id,
        status=JobStatus.QUEUED,
        priority=priority,
        model=model,
        request=request,
        fallbacks=fallbacks,
        meta=meta,
    )
    session.add(job)
    session.flush()
    session.refresh(job)
    return job


def get_job_for_user(session: Session, job_id: str, user_id: uuid.UUID) -> Job:
    """The caller's job; someone else's job is indistinguishable from a missing one."""
    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        raise NotFoundError(f"No job with id {job_id!r}.") from None
    job = session.scalars(select(Job).where(Job.id == parsed, Job.user_id == user_id)).one_or_none()
    if job is None:
        raise NotFoundError(f"No job with id {job_id!r}.")
    return job


@dataclass(frozen=True)
class Claim:
    """What a worker needs to run a job, plus the lease token that fences its final write."""

    job_id: uuid.UUID
    user_id: uuid.UUID
    model: str
    request: dict[str, Any]
    lease_token: uuid.UUID


def claim_job(session: Session, job_id: uuid.UUID, lease_s: int) -> Claim | None:
    """Take a queued job (or one whose lease expired) for this worker; None if not claimable.

    A single conditional UPDATE, so two workers delivered the same message cannot both win.
    """
    token = uuid.uuid4()
    row = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            or_(
                Job.status == JobStatus.QUEUED,
                (Job.status == JobStatus.RUNNING) & (Job.lease_expires_at < func.now()),
            ),
        )
        .values(
            status=JobStatus.RUNNING,
            lease_token=token,
            lease_expires_at=func.now() + text(f"interval '{int(lease_s)} seconds'"),
            started_at=func.coalesce(Job.started_at, func.now()),
            deliveries=Job.deliveries + 1,
        )
        .returning(Job.id, Job.user_id, Job.model, Job.request)
    ).one_or_none()
    if row is None:
        return None
    return Claim(
        job_id=row.id, user_id=row.user_id, model=row.model, request=row.request, lease_token=token
    )


@dataclass(frozen=True)
class Outcome:
    status: JobStatus
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


def finish_job(session: Session, claim: Claim, outcome: Outcome) -> bool:
    """Write the final state if this worker still holds the lease; False if it lost it."""
    changed = session.execute(
        update(Job)
        .where(
            Job.id == claim.job_id,
            Job.lease_token == claim.lease_token,
            Job.status == JobStatus.RUNNING,
        )
        .values(
            status=outcome.status,
            result=outcome.result,
            error=outcome.error,
            input_tokens=Job.input_tokens + outcome.input_tokens,
            output_tokens=Job.output_tokens + outcome.output_tokens,
            cost_usd=Job.cost_usd + outcome.cost_usd,
            finished_at=func.now(),
            lease_token=None,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return changed.rowcount == 1
