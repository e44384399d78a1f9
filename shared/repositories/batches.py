"""Batches: admit many jobs in one statement, list and count them, stream their results, and
their lifecycle: cancel, settle once every job is final, expire after the completion window."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row, case, exists, func, insert, literal, select, tuple_
from sqlalchemy.orm import Session

from shared.errors import BatchNotCancellableError, NotFoundError
from shared.models import (
    FINAL_STATUSES,
    OPEN_BATCH_STATUSES,
    Batch,
    BatchOrigin,
    BatchStatus,
    Job,
    JobStatus,
    User,
)
from shared.repositories.intervals import seconds
from shared.repositories.jobs import cancel_jobs
from shared.repositories.webhook_messages import Dispatch, enqueue_batch_event, enqueue_job_events

# Rows fetched per round trip while streaming results through a server-side cursor.
RESULTS_FETCH_SIZE = 500


def create_batch(
    session: Session,
    *,
    user_id: uuid.UUID,
    meta: dict[str, Any],
    jobs: Sequence[dict[str, Any]],
    window_s: int,
    origin: BatchOrigin = BatchOrigin.PROMPTQ,
) -> Batch:
    """Insert the batch (expiring `window_s` from now, created through the API `origin`) and
    all its jobs as `queued`; commit before publishing any of them. The batch and its jobs
    belong to the user's team as the batch's INSERT reads it: hold their reservations against
    that team (budgets.reserve with the batch's team_id).

    `jobs` are Job column values, each with its own `id`. They go in as one multi-row INSERT
    (SQLAlchemy's insertmanyvalues), not one statement per job.
    """
    # An INSERT ... RETURNING the row: the team it read comes back without a SELECT of its own.
    batch = session.scalars(
        insert(Batch)
        .values(
            user_id=user_id,
            team_id=select(User.team_id).where(User.id == user_id).scalar_subquery(),
            total=len(jobs),
            meta=meta,
            origin=origin,
            expires_at=func.now() + seconds(window_s),
        )
        .returning(Batch)
    ).one()
    session.execute(
        insert(Job),
        [
            {
                **job,
                "user_id": user_id,
                "team_id": batch.team_id,
                "batch_id": batch.id,
                "status": JobStatus.QUEUED,
            }
            for job in jobs
        ],
    )
    session.refresh(batch)
    return batch


def create_refused_batch(
    session: Session,
    *,
    user_id: uuid.UUID,
    meta: dict[str, Any],
    origin: BatchOrigin,
    base_url: str,
) -> tuple[Batch, list[Dispatch]]:
    """A batch whose input failed validation, so no job was admitted: `failed` from the start,
    with its batch.failed event enqueued (a compatible surface reports such a batch as failed,
    and its vendor sends that event for it). Publish the dispatches after the commit."""
    batch = Batch(
        user_id=user_id,
        total=0,
        meta=meta,
        origin=origin,
        status=BatchStatus.FAILED,
        expires_at=func.now(),
        completed_at=func.now(),
    )
    session.add(batch)
    session.flush()
    session.refresh(batch)
    return batch, enqueue_batch_event(session, batch, {}, base_url)


def get_batch_for_user(
    session: Session, batch_id: str, user_id: uuid.UUID, *, lock: bool = False
) -> Batch:
    """The caller's batch (row-locked if asked); someone else's is indistinguishable from a
    missing one."""
    try:
        parsed = uuid.UUID(batch_id)
    except ValueError:
        raise NotFoundError(f"No batch with id {batch_id!r}.") from None
    query = select(Batch).where(Batch.id == parsed, Batch.user_id == user_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    batch = session.scalars(query).one_or_none()
    if batch is None:
        raise NotFoundError(f"No batch with id {batch_id!r}.")
    return batch


def count_by_status(session: Session, batch_id: uuid.UUID) -> dict[str, int]:
    """How many of the batch's jobs are in each status (absent statuses are left out)."""
    rows = session.execute(
        select(Job.status, func.count()).where(Job.batch_id == batch_id).group_by(Job.status)
    )
    return {status: count for status, count in rows}


def iter_finished(
    session: Session, batch_id: uuid.UUID, statuses: Collection[str] = FINAL_STATUSES
) -> Iterator[Row[Any]]:
    """The batch's finished jobs (those in `statuses`, all final ones by default) by custom_id,
    read through a server-side cursor so a batch of any size streams in constant memory."""
    result = session.execute(
        select(
            Job.custom_id,
            Job.id,
            Job.status,
            Job.result,
            Job.error,
            Job.input_tokens,
            Job.output_tokens,
            Job.cost_usd,
            Job.request_id,
            Job.finished_at,
        )
        .where(Job.batch_id == batch_id, Job.status.in_(statuses))
        .order_by(Job.custom_id)
        .execution_options(yield_per=RESULTS_FETCH_SIZE)
    )
    yield from result


Position = tuple[datetime, uuid.UUID]


def list_batches(
    session: Session,
    user_id: uuid.UUID,
    after: Position | None,
    limit: int,
    *,
    before: Position | None = None,
    origin: BatchOrigin | None = None,
) -> list[Batch]:
    """The user's batches (only those created through `origin`, if given) newest first, ties
    broken by id: the `limit` after the (created_at, id) position `after` (keyset pagination,
    as list_jobs), or the `limit` just before the position `before`."""
    query = select(Batch).where(Batch.user_id == user_id)
    if origin is not None:
        query = query.where(Batch.origin == origin)
    position = tuple_(Batch.created_at, Batch.id)
    if after is not None:
        query = query.where(position < tuple_(literal(after[0]), literal(after[1])))
    if before is not None:
        newer = query.where(position > tuple_(literal(before[0]), literal(before[1])))
        rows = session.scalars(
            newer.order_by(Batch.created_at.asc(), Batch.id.asc()).limit(limit)
        ).all()
        return list(reversed(rows))
    return list(
        session.scalars(query.order_by(Batch.created_at.desc(), Batch.id.desc()).limit(limit))
    )


# The count key of a job cancelled because its batch expired, when those are told apart.
EXPIRED = "expired"


def counts_of(
    session: Session, batch_ids: Sequence[uuid.UUID], *, split_expired: bool = False
) -> dict[uuid.UUID, dict[str, int]]:
    """count_by_status for many batches in one statement; with `split_expired`, the cancelled
    jobs that never ran because their batch expired count under EXPIRED, not `cancelled`."""
    counts: dict[uuid.UUID, dict[str, int]] = {batch_id: {} for batch_id in batch_ids}
    if batch_ids:
        status: Any = Job.status
        if split_expired:
            status = case(
                (
                    (Job.status == JobStatus.CANCELLED)
                    & (Job.error["code"].astext == "batch_expired"),
                    literal(EXPIRED),
                ),
                else_=Job.status,
            )
        rows = session.execute(
            select(Job.batch_id, status, func.count())
            .where(Job.batch_id.in_(batch_ids))
            .group_by(Job.batch_id, status)
        )
        for batch_id, status, count in rows:
            counts[batch_id][status] = count
    return counts


@dataclass
class Settled:
    """What a lifecycle step changed, for the caller to publish after its commit."""

    batches: list[uuid.UUID] = field(default_factory=list)
    cancelled_jobs: list[uuid.UUID] = field(default_factory=list)
    webhooks: list[Dispatch] = field(default_factory=list)


def cancel_batch(
    session: Session, batch_id: str, user_id: uuid.UUID, base_url: str
) -> tuple[Batch, Settled]:
    """Cancel the caller's open batch: its queued jobs are cancelled (their reservations
    released), running ones finish; the batch is `cancelling`, or `cancelled` at once when no
    job is left running. BatchNotCancellableError once the batch is settled. The batch row lock
    keeps the settling beat (which skips locked batches) off it meanwhile."""
    batch = get_batch_for_user(session, batch_id, user_id, lock=True)
    if batch.status not in OPEN_BATCH_STATUSES:
        raise BatchNotCancellableError(
            f"Batch {batch_id} is already {batch.status}; only an in-progress batch can be "
            "cancelled.",
            details={"status": batch.status},
        )
    done = Settled()
    done.cancelled_jobs = cancel_jobs(
        session,
        (Job.batch_id == batch.id) & (Job.status == JobStatus.QUEUED),
        {"code": "batch_cancelled", "message": "The batch was cancelled before this job ran."},
    )
    done.webhooks = enqueue_job_events(session, done.cancelled_jobs, base_url)
    batch.status = BatchStatus.CANCELLING
    if batch.cancel_requested_at is None:
        batch.cancel_requested_at = func.now()
    session.flush()
    if not _has_unfinished(session, batch.id):
        done.webhooks += _settle(session, batch, base_url)
        done.batches.append(batch.id)
    session.refresh(batch)
    return batch, done


def _has_unfinished(session: Session, batch_id: uuid.UUID) -> bool:
    return bool(session.scalar(select(exists().where(_unfinished_of(batch_id)))))


def _unfinished_of(batch_id: Any) -> Any:
    # The predicate of ix_jobs_batch_id_unfinished, so the planner probes that index.
    return (
        (Job.batch_id == batch_id)
        & Job.batch_id.is_not(None)
        & Job.status.in_((JobStatus.QUEUED, JobStatus.RUNNING))
    )


def _settle(session: Session, batch: Batch, base_url: str) -> list[Dispatch]:
    """Give a batch whose jobs are all final its final status and enqueue its event."""
    counts = count_by_status(session, batch.id)
    if batch.status == BatchStatus.CANCELLING:
        batch.status = BatchStatus.CANCELLED
        batch.cancelled_at = func.now()
    elif counts.get(JobStatus.FAILED, 0) == batch.total:
        batch.status = BatchStatus.FAILED
        batch.completed_at = func.now()
    else:
        batch.status = BatchStatus.COMPLETED
        batch.completed_at = func.now()
    session.flush()
    session.refresh(batch)
    return enqueue_batch_event(session, batch, counts, base_url)


def settle_finished(session: Session, base_url: str, limit: int) -> Settled:
    """Settle up to `limit` open batches whose jobs are all final. SKIP LOCKED: a batch another
    transaction is settling or cancelling is left to it, so none is settled twice."""
    open_ = Batch.status.in_(tuple(OPEN_BATCH_STATUSES))
    batches = session.scalars(
        select(Batch)
        .where(open_, ~exists().where(_unfinished_of(Batch.id)))
        .order_by(Batch.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    done = Settled()
    for batch in batches:
        done.webhooks += _settle(session, batch, base_url)
        done.batches.append(batch.id)
    return done


def expire_overdue(session: Session, base_url: str, limit: int) -> Settled:
    """Expire up to `limit` in-progress batches past their completion window: their queued
    jobs are cancelled with the reason `batch_expired`, running ones finish and still count.
    A batch being cancelled is left to end as cancelled."""
    batches = session.scalars(
        select(Batch)
        .where(Batch.status == BatchStatus.IN_PROGRESS, Batch.expires_at <= func.now())
        .order_by(Batch.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    done = Settled()
    if not batches:
        return done
    ids = [batch.id for batch in batches]
    done.cancelled_jobs = cancel_jobs(
        session,
        Job.batch_id.in_(ids) & (Job.status == JobStatus.QUEUED),
        {
            "code": "batch_expired",
            "message": "The batch's completion window ended before this job ran.",
        },
    )
    done.webhooks = enqueue_job_events(session, done.cancelled_jobs, base_url)
    counts = counts_of(session, ids)
    for batch in batches:
        batch.status = BatchStatus.EXPIRED
        batch.expired_at = func.now()
    session.flush()
    for batch in batches:
        session.refresh(batch)
        done.webhooks += enqueue_batch_event(session, batch, counts[batch.id], base_url)
    done.batches = ids
    return done
