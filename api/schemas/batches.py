"""Request and response models of batches, /v1/batches (pydantic)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from api.schemas.bases import StrictModel
from api.schemas.fields import METADATA_DOC, NO_NUL, UsdOut, small_metadata
from api.schemas.jobs import JobCreate
from shared.job_view import JobResult, Usage
from shared.settings import get_settings


class BatchJobCreate(JobCreate):
    """One job of a batch: a job body plus the caller's id for it, unique in the batch."""

    custom_id: str = Field(min_length=1, max_length=64, pattern=NO_NUL)


class BatchCreate(StrictModel):
    """Body of POST /v1/batches."""

    jobs: list[BatchJobCreate] = Field(min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict, json_schema_extra=METADATA_DOC)

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


class BatchCounts(BaseModel):
    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    total: int = 0


class BatchOut(BaseModel):
    """A batch and how many of its jobs are in each state."""

    id: str
    object: Literal["batch"] = "batch"
    status: Literal["in_progress", "completed"]
    counts: BatchCounts
    created_at: datetime
    metadata: dict[str, Any]
    results_url: str


class BatchResultLine(BaseModel):
    """One line of GET /v1/batches/<id>/results: a finished job of the batch."""

    custom_id: str
    job_id: str
    status: str
    result: JobResult | None
    error: dict[str, Any] | None
    usage: Usage
    cost_usd: UsdOut
