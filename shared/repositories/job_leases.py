"""The worker's side of a job: the claim (a lease), the fence every worker write passes through,
the lease's renewal during long calls, its hand-back (requeue after a long wait, release at
shutdown), and the fenced final write that also settles the budget reservation."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Update,
    Uuid,
    bindparam,
    exists,
    func,
    literal_column,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.orm import Session

from shared.models import Job, JobStatus, WebhookEndpoint
from shared.repositories.budget_alerts import Alert
from shared.repositories.budgets import settle

Lease = tuple[uuid.UUID, uuid.UUID]  # (job id, lease token)


@dataclass(frozen=True)
class Claim:
    """What a worker needs to run a job, plus the lease token that fences its final write."""

    job_id: uuid.UUID
    user_id: uuid.UUID
    model: str
    request: dict[str, Any]
    lease_token: uuid.UUID
    fallbacks: list[str] = field(default_factory=list)
    response_format: dict[str, Any] | None = None
    cache: bool = False
    max_cost_usd: Decimal | None = None
    # PII scrubbing in effect, whether the answer is restored, and the sealed mapping, if any.
    scrub_pii: bool = False
    restore_pii: bool = False
    pii_vault: str | None = None
    reserved_usd: Decimal = Decimal(0)
    cost_usd: Decimal = Decimal(0)
    deliveries: int = 1
    # A webhook waited on the job when it was claimed (its callback URL or an enabled endpoint).
    watched: bool = True
    priority: str = "normal"
    request_id: str | None = None
    # Seconds since the job was accepted, by the database's clock, at the claim.
    age_s: float = 0.0
    # A `model: "auto"` job's routing (its chain), None for a job that named its model.
    routing: dict[str, Any] | None = None
    # The team whose budgets hold the job (its settlement moves that team's counter too).
    team_id: uuid.UUID | None = None


def watched() -> ColumnElement[bool]:
    """True for a job a webhook waits on: it has a callback URL, or its owner an enabled
    endpoint."""
    jobs = Job.__table__
    return jobs.c.callback_url.is_not(None) | exists().where(
        WebhookEndpoint.user_id == jobs.c.user_id, WebhookEndpoint.enabled.is_(True)
    )


def _claim_statement() -> Update:
    jobs = Job.__table__
    due = or_(jobs.c.not_before.is_(None), jobs.c.not_before <= func.now())
    return (
        update(jobs)
        .where(
            jobs.c.id == bindparam("job_id", type_=Uuid),
            or_(
                # Only a dispatched job: a copy of a message (a shutdown's unacked messages
                # given back, a redelivery) must not take a job back in the backlog past its
                # turn, its class or its user's cap.
                (jobs.c.status == JobStatus.QUEUED) & jobs.c.dispatched_at.is_not(None) & due,
                (jobs.c.status == JobStatus.RUNNING) & (jobs.c.lease_expires_at < func.now()),
            ),
        )
        .values(
            status=JobStatus.RUNNING,
            lease_token=bindparam("token", type_=Uuid),
            lease_expires_at=func.now()
            + literal_column("interval '1 second'") * bindparam("lease_s", type_=Integer),
            started_at=func.coalesce(jobs.c.started_at, func.now()),
            deliveries=jobs.c.deliveries + 1,
            not_before=None,
        )
        .returning(
            jobs.c.id,
            jobs.c.user_id,
            jobs.c.model,
            jobs.c.request,
            jobs.c.fallbacks,
            jobs.c.response_format,
            jobs.c.cache,
            jobs.c.max_cost_usd,
            jobs.c.scrub_pii,
            jobs.c.restore_pii,
            jobs.c.pii_vault,
            jobs.c.reserved_usd,
            jobs.c.cost_usd,
            jobs.c.deliveries,
            watched().label("watched"),
            jobs.c.priority,
            jobs.c.request_id,
            func.extract("epoch", func.now() - jobs.c.created_at).label("age_s"),
            jobs.c.routing,
            jobs.c.team_id,
        )
    )


# Built once: constructing it per claim cost more CPU than running it.
_CLAIM = _claim_statement()


def claim_job(session: Session, job_id: uuid.UUID, lease_s: int) -> Claim | None:
    """Take a queued job (or one whose lease expired) for this worker; None if not claimable.

    A single conditional UPDATE, so two workers delivered the same message cannot both win.
    """
    token = uuid.uuid4()
    row = (
        session.connection()
        .execute(_CLAIM, {"job_id": job_id, "token": token, "lease_s": int(lease_s)})
        .one_or_none()
    )
    if row is None:
        return None
    return Claim(
        job_id=row.id,
        user_id=row.user_id,
        model=row.model,
        request=row.request,
        lease_token=token,
        fallbacks=list(row.fallbacks or []),
        response_format=row.response_format,
        cache=row.cache,
        max_cost_usd=row.max_cost_usd,
        scrub_pii=row.scrub_pii,
        restore_pii=row.restore_pii,
        pii_vault=row.pii_vault,
        reserved_usd=row.reserved_usd,
        cost_usd=row.cost_usd,
        deliveries=row.deliveries,
        watched=row.watched,
        priority=row.priority,
        request_id=row.request_id,
        age_s=float(row.age_s),
        routing=row.routing,
        team_id=row.team_id,
    )


@dataclass(frozen=True)
class Outcome:
    status: JobStatus
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


@dataclass(frozen=True)
class Finished:
    """The job as the final write left it, the status it had before: running (now final) or
    cancelled (while it ran, and kept), and the budget alerts its charge recorded."""

    job: Job
    was: JobStatus
    alerts: list[Alert] = field(default_factory=list)


def finish_job(
    session: Session,
    claim: Claim,
    outcome: Outcome,
    *,
    alert_fractions: Sequence[Decimal] = (),
) -> Finished | None:
    """Write the final state if this worker still holds the lease; None if it lost it.

    The job's reservation drops to 0 in this transaction, the one that adds its usage rows, so
    the user's spend moves from held to charged at once. A job cancelled while it ran keeps its
    status, but the tokens and cost of the call that was made are still recorded and charged.
    One UPDATE in the usual case (the job still running), a second when it was cancelled;
    the settlement records the budget fractions the charge crossed (`alert_fractions`).
    """
    totals: dict[str, Any] = {
        "input_tokens": Job.input_tokens + outcome.input_tokens,
        "output_tokens": Job.output_tokens + outcome.output_tokens,
        "cost_usd": Job.cost_usd + outcome.cost_usd,
        "reserved_usd": Decimal(0),
        "lease_token": None,
        "lease_expires_at": None,
        # The sealed PII mapping has served its one use (shared/input_safety/pii_vault.py).
        "pii_vault": None,
    }
    final = {
        "status": outcome.status,
        "result": outcome.result,
        "error": outcome.error,
        "finished_at": func.now(),
    }
    for was, values in ((JobStatus.RUNNING, totals | final), (JobStatus.CANCELLED, totals)):
        # The old reservation comes from the locked row, as it was before this write.
        old = (
            select(Job.id, Job.reserved_usd.label("released"))
            .where(
                Job.id == claim.job_id,
                Job.lease_token == claim.lease_token,
                Job.status == was,
            )
            .with_for_update()
            .subquery()
        )
        row = session.execute(
            update(Job)
            .where(Job.id == old.c.id)
            .values(**values)
            .returning(Job, old.c.released)
            .execution_options(synchronize_session=False)
        ).first()
        if row is not None:
            job, released = row
            alerts = settle(
                session,
                claim.user_id,
                released=released,
                cost=outcome.cost_usd,
                team_id=job.team_id,
                alert_fractions=alert_fractions,
            )
            return Finished(job, was, alerts)
    return None


def lease_status(session: Session, job_id: uuid.UUID, token: uuid.UUID) -> str | None:
    """Lock the job if this worker still holds its lease; its status (running, or cancelled
    while it ran), or None when the lease was lost and the worker must write nothing."""
    return session.scalar(
        select(Job.status)
        .where(
            Job.id == job_id,
            Job.lease_token == token,
            Job.status.in_((JobStatus.RUNNING, JobStatus.CANCELLED)),
        )
        .with_for_update()
    )


def add_charge(
    session: Session,
    claim: Claim,
    input_tokens: int,
    output_tokens: int,
    cost: Decimal,
    *,
    alert_fractions: Sequence[Decimal] = (),
) -> list[Alert]:
    """Add a billed attempt's usage to the job's totals and the spend of the user and its team
    (in the attempt's transaction); the budget alerts the charge recorded."""
    alerts = settle(
        session,
        claim.user_id,
        released=Decimal(0),
        cost=cost,
        team_id=claim.team_id,
        alert_fractions=alert_fractions,
    )
    session.execute(
        update(Job)
        .where(Job.id == claim.job_id)
        .values(
            input_tokens=Job.input_tokens + input_tokens,
            output_tokens=Job.output_tokens + output_tokens,
            cost_usd=Job.cost_usd + cost,
        )
        .execution_options(synchronize_session=False)
    )
    return alerts


def renew_leases(session: Session, leases: Iterable[Lease], lease_s: int) -> int:
    """Push out the expiry of every lease still held; the number renewed."""
    pairs = list(leases)
    if not pairs:
        return 0
    result = session.execute(
        update(Job)
        .where(tuple_(Job.id, Job.lease_token).in_(pairs))
        .values(lease_expires_at=func.now() + text(f"interval '{int(lease_s)} seconds'"))
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def requeue_job(
    session: Session, job_id: uuid.UUID, token: uuid.UUID, not_before: datetime | None
) -> bool:
    """Put a running job back in the queue (claimable again from `not_before`); False if the
    lease was lost. Back in the backlog, it is dispatched again in its turn once due."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_token == token, Job.status == JobStatus.RUNNING)
        .values(
            status=JobStatus.QUEUED,
            lease_token=None,
            lease_expires_at=None,
            not_before=not_before,
            queued_at=func.now(),
            dispatched_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def release_leases(session: Session, leases: Iterable[Lease]) -> int:
    """Hand running jobs back to the backlog at once (worker shutdown), rather than after their
    leases expire."""
    pairs = list(leases)
    if not pairs:
        return 0
    result = session.execute(
        update(Job)
        .where(tuple_(Job.id, Job.lease_token).in_(pairs), Job.status == JobStatus.RUNNING)
        .values(
            status=JobStatus.QUEUED,
            lease_token=None,
            lease_expires_at=None,
            not_before=None,
            queued_at=func.now(),
            dispatched_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return result.rowcount
