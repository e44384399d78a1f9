"""The OpenAI side of batches: record one (over a native batch, or failed at validation),
find and list a user's."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, literal, select, tuple_
from sqlalchemy.orm import Session

from shared.batch_view import origin_id
from shared.errors import NotFoundError
from shared.models import Batch, BatchOrigin, OpenAIBatch


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
