"""Typed results: pydantic models mirroring the API's JSON (GET /openapi.json).

Fields the server adds later are kept (`extra="allow"`) rather than refused, so an older client
keeps working against a newer server. Money is `Decimal` (the API sends decimal strings so no
precision is lost)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FINAL_JOB_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class TokenUsage(_Model):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class JobResult(_Model):
    content: str | None = None
    # stop, length, tool_calls or content_filter, whichever provider answered.
    finish_reason: str | None = None
    # The provider's own word for it (OpenAI's finish_reason, Anthropic's stop_reason).
    provider_finish_reason: str | None = None
    provider: str | None = None
    model: str | None = None


class TokenEvent(_Model):
    """A piece of the answer, as the model wrote it."""

    text: str


class RetryEvent(_Model):
    """The text so far is void: `model` is tried again after `error` (an attempt's code)."""

    model: str
    error: str


class FallbackEvent(_Model):
    """The text so far is void: the model `to` answers instead of `from_model`."""

    from_model: str = Field(alias="from")
    to: str
    error: str


class JobError(_Model):
    code: str
    message: str = ""


class Job(_Model):
    """A job as GET /v1/jobs/<id> shows it (and webhook events carry it)."""

    id: str
    status: str
    priority: str
    model: str
    fallbacks: list[str] = []
    response_format: dict[str, Any] | None = None
    callback_url: str | None = None
    max_cost_usd: Decimal | None = None
    # true: the exact response cache; "semantic": the semantic cache (README "Semantic cache").
    cache: bool | Literal["semantic"] = True
    cache_threshold: float | None = None
    stream: bool = False
    result: JobResult | None = None
    error: JobError | None = None
    usage: TokenUsage = TokenUsage()
    cost_usd: Decimal = Decimal(0)
    metadata: dict[str, Any] = {}
    batch_id: str | None = None
    custom_id: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    status_url: str = ""

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_JOB_STATUSES


class ResultEvent(_Model):
    """The last event of a job's stream: the job, final, as GET /v1/jobs/<id> shows it."""

    job: Job


# What Client.stream yields.
StreamEvent = TokenEvent | RetryEvent | FallbackEvent | ResultEvent


class Attempt(_Model):
    """One provider call made for a job."""

    number: int
    provider: str
    model: str
    outcome: str
    error_code: str | None = None
    error_message: str | None = None
    latency_ms: int = 0
    backoff_ms: int = 0
    cached: bool = False
    # A semantic cache hit's similarity to the prompt its answer was stored for.
    similarity: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class BatchCounts(_Model):
    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    total: int = 0

    @property
    def done(self) -> int:
        """Jobs in a final state."""
        return self.succeeded + self.failed + self.cancelled


# A batch in one of these has settled: its status no longer changes.
BATCH_FINAL_STATUSES = frozenset({"completed", "failed", "cancelled", "expired"})


class Batch(_Model):
    id: str
    status: str
    counts: BatchCounts
    created_at: datetime
    expires_at: datetime | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    expired_at: datetime | None = None
    metadata: dict[str, Any] = {}
    results_url: str = ""

    @property
    def is_final(self) -> bool:
        """Settled: completed, failed, cancelled or expired."""
        return self.status in BATCH_FINAL_STATUSES


class BatchResult(_Model):
    """One line of GET /v1/batches/<id>/results: a finished job of the batch."""

    custom_id: str
    job_id: str
    status: str
    result: JobResult | None = None
    error: JobError | None = None
    usage: TokenUsage = TokenUsage()
    cost_usd: Decimal = Decimal(0)


class UsageRow(_Model):
    date: date
    model: str
    provider: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


class UsageTotals(_Model):
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


class UsageReport(_Model):
    start: date
    end: date
    data: list[UsageRow]
    totals: UsageTotals


class WebhookEndpoint(_Model):
    id: str
    url: str
    description: str | None = None
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = None
    previous_secret_expires_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    # Only in the answers that show it once: create and rotate-secret.
    secret: str | None = None


class DeliveryAttempt(_Model):
    number: int
    url: str
    outcome: str
    status_code: int | None = None
    latency_ms: int | None = None
    peer: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    response_body: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class Delivery(_Model):
    """One webhook message of an endpoint, with its attempts."""

    id: str
    event_type: str
    job_id: str | None = None
    status: str
    attempt_count: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
    attempts: list[DeliveryAttempt] = []
