"""The OpenAI side of batches: record one (over a native batch, or failed at validation),
find and list a user's, read the outcomes of its jobs for its output files."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Row, func, literal, select, tuple_
from sqlalchemy.orm import Session

from shared.batch_view import origin_id
from shared.errors import NotFoundError
from shared.models import FINAL_STATUSES, Batch, BatchOrigin, Job, JobStatus, OpenAIBatch

# Rows fetched per round trip while rendering an output file.
OUTCOMES_FETCH_SIZE = 500


def record_openai_batch(
    session: Session,
    *,
    user_id: uuid.UUID,
    batch: Batch,
    input_file_id: str,
    endpoint: str,
    completion_window: str,
    meta: dict[str, Any] | None,
    errors: list[dict[str, Any]] | None,
) -> OpenAIBatch:
    """The OpenAI side of native batch `batch`: one that runs its jobs, or (with `errors`) one
    that failed validation."""
    row = OpenAIBatch(
        id=origin_id(BatchOrigin.OPENAI, batch.id),
        user_id=user_id,
        batch_id=batch.id,
        input_file_id=input_file_id,
        endpoint=endpoint,
        completion_window=completion_window,
        meta=meta,
        errors=errors,
        failed_at=func.now() if errors else None,
    )
    session.add(row)
    session.flush()
    session.refresh(row)
    return row


def get_openai_batch(session: Session, batch_id: str, user_id: uuid.UUID) -> OpenAIBatch:
    row = session.scalars(
        select(OpenAIBatch).where(OpenAIBatch.id == batch_id, OpenAIBatch.user_id == user_id)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"No batch with id {batch_id!r}.")
    return row


def native_batches(session: Session, rows: list[OpenAIBatch]) -> dict[uuid.UUID, Batch]:
    """The native batches behind `rows`, by id, in one statement."""
    ids = [row.batch_id for row in rows if row.batch_id is not None]
    if not ids:
        return {}
    return {batch.id: batch for batch in session.scalars(select(Batch).where(Batch.id.in_(ids)))}


def list_openai_batches(
    session: Session, user_id: uuid.UUID, after: str | None, limit: int
) -> list[OpenAIBatch]:
    """The user's batches newest first, after the batch `after` (keyset paging)."""
    query = select(OpenAIBatch).where(OpenAIBatch.user_id == user_id)
    if after is not None:
        anchor = get_openai_batch(session, after, user_id)
        query = query.where(
            tuple_(OpenAIBatch.created_at, OpenAIBatch.id)
            < tuple_(literal(anchor.created_at), literal(anchor.id))
        )
    order = (OpenAIBatch.created_at.desc(), OpenAIBatch.id.desc())
    return list(session.scalars(query.order_by(*order).limit(limit)))


def iter_outcomes(session: Session, batch_id: uuid.UUID, *, succeeded: bool) -> Iterator[Row[Any]]:
    """The batch's succeeded jobs (`succeeded`) or its other finished ones, by custom_id,
    through a server-side cursor so an output file of any size streams in constant memory."""
    statuses = (
        [JobStatus.SUCCEEDED]
        if succeeded
        else [s for s in FINAL_STATUSES if s != JobStatus.SUCCEEDED]
    )
    result = session.execute(
        select(
            Job.id,
            Job.custom_id,
            Job.request_id,
            Job.result,
            Job.error,
            Job.input_tokens,
            Job.output_tokens,
            Job.finished_at,
        )
        .where(Job.batch_id == batch_id, Job.status.in_(statuses))
        .order_by(Job.custom_id)
        .execution_options(yield_per=OUTCOMES_FETCH_SIZE)
    )
    yield from result
