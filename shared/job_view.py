"""The public representation of a job, one for both the API (GET /v1/jobs/<id>) and the webhook
events the worker sends, so a receiver sees exactly what a poller sees."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from shared.finish_reasons import FinishReason
from shared.models import Job
from shared.money import usd


class Usage(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, input_tokens: int, output_tokens: int) -> Usage:
        return cls(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
        )


class JobResult(BaseModel):
    """A succeeded job's answer."""

    content: str
    finish_reason: FinishReason = Field(
        description="Why the answer ended, in the same words for every provider (README: "
        "'A job's result')."
    )
    provider_finish_reason: str = Field(
        description="The provider's own word for it: OpenAI's finish_reason, Anthropic's "
        "stop_reason."
    )
    provider: str
    model: str = Field(description="The model that answered (a fallback's, if one did).")
    cached: bool = Field(description="Served from the response cache: no call, no cost.")
    degraded: bool = Field(
        default=False,
        description="Every model of the chain failed: the content is the job's "
        "fallback_response, not a model's answer.",
    )


class Screening(BaseModel):
    """The prompt-injection screening verdict of a screened job."""

    score: float = Field(ge=0, le=1, description="0: nothing matched; 1: certain.")
    threshold: float = Field(description="The score at which a prompt is flagged or rejected.")
    rules: list[str] = Field(description="The names of the patterns that matched.")
    action: Literal["passed", "flagged"] = Field(
        description="'flagged': the score reached the threshold and the job ran all the same "
        "(mode 'flag'); a prompt rejected (mode 'reject') makes no job."
    )


class JobOut(BaseModel):
    """A job as GET /v1/jobs/<id> shows it and webhook events carry it."""

    id: str
    object: Literal["job"] = "job"
    status: str
    priority: str
    model: str
    fallbacks: list[str]
    response_format: dict[str, Any] | None
    callback_url: str | None
    max_cost_usd: str | None
    cache: bool | Literal["semantic"] = Field(
        description='true: the exact response cache; "semantic": the semantic cache.'
    )
    cache_threshold: float | None = Field(
        description='With cache "semantic": the least similarity a hit needs.'
    )
    stream: bool = Field(description="Its tokens are relayed at GET /v1/jobs/<id>/stream.")
    scrub_pii: bool = Field(description="PII in its prompt is replaced before any provider call.")
    restore_pii: bool = Field(description="The originals are put back into its answer.")
    screening: Screening | None = Field(
        description="Its prompt-injection verdict; null: not screened."
    )
    fallback_response: str | None = Field(
        default=None, description="The last-resort answer the job carries, if any."
    )
    routing: dict[str, Any] | None = Field(
        default=None,
        description='For `model: "auto"`: {policy, chosen, chain, reason, skipped}; `model` and '
        "`fallbacks` are then the chosen chain.",
    )
    result: JobResult | None
    error: dict[str, Any] | None
    usage: Usage
    cost_usd: str = Field(description="Decimal dollars, as a string so no precision is lost.")
    metadata: dict[str, Any]
    tags: list[str] = Field(description="The labels the job was submitted with.")
    batch_id: str | None
    custom_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    status_url: str

    @classmethod
    def from_row(cls, job: Job, status_url: str) -> JobOut:
        semantic = job.request.get("semantic_cache")
        return cls(
            id=str(job.id),
            status=job.status,
            priority=job.priority,
            model=job.model,
            fallbacks=job.fallbacks,
            response_format=job.response_format,
            callback_url=job.callback_url,
            max_cost_usd=None if job.max_cost_usd is None else usd(job.max_cost_usd),
            cache="semantic" if semantic else job.cache,
            cache_threshold=semantic["threshold"] if semantic else None,
            stream=bool(job.request.get("stream")),
            scrub_pii=job.scrub_pii,
            restore_pii=job.restore_pii,
            screening=None if job.screening is None else Screening.model_validate(job.screening),
            fallback_response=job.request.get("fallback_response"),
            routing=job.routing,
            result=None if job.result is None else JobResult.model_validate(job.result),
            error=job.error,
            usage=Usage.of(job.input_tokens, job.output_tokens),
            cost_usd=usd(job.cost_usd),
            metadata=job.meta,
            tags=list(job.tags or ()),
            batch_id=None if job.batch_id is None else str(job.batch_id),
            custom_id=job.custom_id,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            status_url=status_url,
        )


def status_url(base_url: str, job_id: object) -> str:
    """Where a job can be polled, under the API's public base URL."""
    return f"{base_url.rstrip('/')}/v1/jobs/{job_id}"
