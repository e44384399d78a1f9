"""Request and response models of batches, /v1/batches (pydantic)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, Field, field_validator

from api.schemas.bases import StrictModel
from api.schemas.fields import METADATA_DOC, NO_NUL, UsdOut, small_metadata
from api.schemas.jobs import JobCreate
from api.schemas.pages import CursorQuery, Page
from shared.batch_view import BatchCounts, BatchOut
from shared.job_view import JobResult, Usage
from shared.settings import MAX_BATCH_WINDOW_S, MIN_BATCH_WINDOW_S, get_settings

__all__ = ["BatchCounts", "BatchOut"]


class BatchJobCreate(JobCreate):
    """One job of a batch: a job body plus the caller's id for it, unique in the batch."""

    custom_id: str = Field(min_length=1, max_length=64, pattern=NO_NUL)


class BatchCreate(StrictModel):
    """Body of POST /v1/batches."""

    jobs: list[BatchJobCreate] = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict, json_schema_extra=METADATA_DOC)
    completion_window_s: int | None = Field(
        default=None,
        ge=MIN_BATCH_WINDOW_S,
        le=MAX_BATCH_WINDOW_S,
        description="Seconds the batch has to finish before it expires and its queued jobs are "
        "cancelled; BATCH_COMPLETION_WINDOW_S (a day) when left out.",
    )

    @field_validator("jobs")
    @classmethod
    def _within_limits(cls, jobs: list[BatchJobCreate]) -> list[BatchJobCreate]:
        limit = get_settings().max_batch_jobs
        if len(jobs) > limit:
            raise ValueError(f"at most {limit} jobs in a batch")
        counts = Counter(j.custom_id for j in jobs)
        repeated = sorted(custom_id for custom_id, n in counts.items() if n > 1)
        if repeated:
            raise ValueError(f"custom_id must be unique in the batch; repeated: {repeated[:10]}")
        return jobs

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        return small_metadata(metadata)


class BatchListQuery(CursorQuery):
    """Query string of GET /v1/batches."""


class BatchList(Page[BatchOut]):
    """The caller's batches, newest first."""


class BatchResultLine(BaseModel):
    """One line of GET /v1/batches/<id>/results: a finished job of the batch."""

    custom_id: str
    job_id: str
    status: str
    result: JobResult | None
    error: dict[str, Any] | None
    usage: Usage
    cost_usd: UsdOut
