"""A batch as the API shows it (GET /v1/batches/<id>) and as its webhook events carry it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from shared.models import Batch, BatchOrigin, BatchStatus

# How the compatible APIs spell a batch's id: their prefix and the native id's hex.
_ID_PREFIXES = {BatchOrigin.OPENAI: "batch_", BatchOrigin.ANTHROPIC: "msgbatch_"}


class BatchCounts(BaseModel):
    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    total: int = 0


class OriginOut(BaseModel):
    """The API a batch was created through and the id that API knows it by (the batch's own
    id for promptq's API), so a webhook about it can be matched by either."""

    api: BatchOrigin
    id: str


def origin_id(origin: BatchOrigin, batch_id: object) -> str:
    """The id of batch `batch_id` in the API `origin`."""
    prefix = _ID_PREFIXES.get(origin)
    return str(batch_id) if prefix is None else f"{prefix}{uuid.UUID(str(batch_id)).hex}"


class BatchOut(BaseModel):
    """A batch, its lifecycle timestamps and how many of its jobs are in each state."""

    id: str
    object: Literal["batch"] = "batch"
    status: BatchStatus
    counts: BatchCounts
    created_at: datetime
    expires_at: datetime
    completed_at: datetime | None
    cancelled_at: datetime | None
    expired_at: datetime | None
    metadata: dict[str, Any]
    results_url: str
    origin: OriginOut

    @classmethod
    def from_row(cls, batch: Batch, counts: dict[str, int], results_url: str) -> BatchOut:
        return cls(
            id=str(batch.id),
            status=BatchStatus(batch.status),
            counts=BatchCounts(**counts, total=batch.total),
            created_at=batch.created_at,
            expires_at=batch.expires_at,
            completed_at=batch.completed_at,
            cancelled_at=batch.cancelled_at,
            expired_at=batch.expired_at,
            metadata=batch.meta,
            results_url=results_url,
            origin=OriginOut(
                api=BatchOrigin(batch.origin), id=origin_id(BatchOrigin(batch.origin), batch.id)
            ),
        )


def results_url(base_url: str, batch_id: object) -> str:
    """Where a batch's results stream, under the API's public base URL."""
    return f"{base_url.rstrip('/')}/v1/batches/{batch_id}/results"
