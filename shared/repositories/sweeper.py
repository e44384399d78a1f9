"""The sweeper's queries for jobs whose worker vanished (for lost messages, see
job_dispatch.redispatch_lost)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.orm import Session

from shared.models import Job, JobStatus
from shared.repositories.budgets import Hold, release

WORKER_LOST = {
    "code": "worker_lost",
    "message": "The job's worker stopped answering too many times; it was not retried again.",
}


@dataclass(frozen=True)
class ExpiredLeases:
    requeued: list[uuid.UUID]
    failed: list[uuid.UUID]


def _release_expired(
    session: Session, where: ColumnElement[bool], values: dict[str, object], holds: list[Hold]
) -> list[uuid.UUID]:
    """Apply `values` (reserved_usd set to 0 among them) to the jobs matching `where`, adding
    the reservations they held to `holds` (for one release at the end, so the counters are
    locked in the one order); the ids changed."""
    old = (
        select(Job.id, Job.reserved_usd.label("released")).where(where).with_for_update().subquery()
    )
    rows = session.execute(
        update(Job)
        .where(Job.id == old.c.id)
        .values(**values, reserved_usd=Decimal(0))
        .returning(Job.id, Job.user_id, Job.team_id, old.c.released)
        .execution_options(synchronize_session=False)
    ).all()
    holds += [(row.user_id, row.team_id, row.released) for row in rows if row.released]
    return [row.id for row in rows]


def expire_leases(session: Session, max_deliveries: int) -> ExpiredLeases:
    """Running jobs whose lease ran out go back to the backlog; those already delivered
    `max_deliveries` times fail as worker_lost instead (no endless poison loop). Cancelled jobs
    whose worker vanished mid-call release their lease and reservation."""
    expired = (Job.status == JobStatus.RUNNING) & (Job.lease_expires_at < func.now())
    holds: list[Hold] = []
    failed = _release_expired(
        session,
        expired & (Job.deliveries >= max_deliveries),
        {
            "status": JobStatus.FAILED,
            "error": WORKER_LOST,
            "finished_at": func.now(),
            "lease_token": None,
            "lease_expires_at": None,
            # A final state: the sealed PII mapping is needed no more (as in the final write).
            "pii_vault": None,
        },
        holds,
    )
    # A job cancelled while it ran keeps its status; if its worker vanished, nobody else would
    # ever release its lease and its budget reservation.
    _release_expired(
        session,
        (Job.status == JobStatus.CANCELLED) & (Job.lease_expires_at < func.now()),
        {"lease_token": None, "lease_expires_at": None},
        holds,
    )
    release(session, holds)
    requeued = session.scalars(
        update(Job)
        .where(expired)
        .values(
            status=JobStatus.QUEUED,
            lease_token=None,
            lease_expires_at=None,
            queued_at=func.now(),
            dispatched_at=None,
        )
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    ).all()
    return ExpiredLeases(requeued=list(requeued), failed=failed)
