"""Batches: admit many jobs in one statement, count them by state, stream their results."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Row, func, insert, select
from sqlalchemy.orm import Session

from shared.errors import NotFoundError
from shared.models import FINAL_STATUSES, Batch, Job, JobStatus

# Rows fetched per round trip while streaming results through a server-side cursor.
RESULTS_FETCH_SIZE = 500


def create_batch(
    session: Session, *, user_id: uuid.UUID, meta: dict[str, Any], jobs: Sequence[dict[str, Any]]
) -> Batch:
    """Insert the batch and all its jobs as `queued`; commit before publishing any of them.

    `jobs` are Job column values, each with its own `id`. They go in as one multi-row INSERT
    (SQLAlchemy's insertmanyvalues), not one statement per job.
    """
    batch = Batch(user_id=user_id, total=len(jobs), meta=meta)
    session.add(batch)
    session.flush()
    session.execute(
        insert(Job),
        [
            {**job, "user_id": user_id, "batch_id": batch.id, "status": JobStatus.QUEUED}
            for job in jobs
        ],
    )
    session.refresh(batch)
    return batch


def get_batch_for_user(session: Session, batch_id: str, user_id: uuid.UUID) -> Batch:
    """The caller's batch; someone else's is indistinguishable from a missing one."""
    try:
        parsed = uuid.UUID(batch_id)
    except ValueError:
        raise NotFoundError(f"No batch with id {batch_id!r}.") from None
    batch = session.scalars(
        select(Batch).where(Batch.id == parsed, Batch.user_id == user_id)
    ).one_or_none()
    if batch is None:
        raise NotFoundError(f"No batch with id {batch_id!r}.")
    return batch


def count_by_status(session: Session, batch_id: uuid.UUID) -> dict[str, int]:
    """How many of the batch's jobs are in each status (absent statuses are left out)."""
    rows = session.execute(
        select(Job.status, func.count()).where(Job.batch_id == batch_id).group_by(Job.status)
    )
    return {status: count for status, count in rows}


def iter_finished(session: Session, batch_id: uuid.UUID) -> Iterator[Row[Any]]:
    """The batch's finished jobs by custom_id, read through a server-side cursor so a batch of
    any size streams in constant memory."""
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
        )
        .where(Job.batch_id == batch_id, Job.status.in_(FINAL_STATUSES))
        .order_by(Job.custom_id)
        .execution_options(yield_per=RESULTS_FETCH_SIZE)
    )
    yield from result
