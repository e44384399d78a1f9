"""Request and response models at the API edge (pydantic)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.models import Job

MAX_METADATA_KEYS = 16
MAX_METADATA_BYTES = 4096


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1, max_length=200_000)


class JobCreate(BaseModel):
    """Body of POST /v1/jobs."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=100, description="A model from GET /v1/models.")
    messages: list[ChatMessage] = Field(min_length=1, max_length=256)
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    temperature: float | None = Field(default=None, ge=0, le=2)
    priority: Literal["high", "normal", "low"] = "normal"
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("messages")
    @classmethod
    def _has_user_message(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if not any(m.role == "user" for m in messages):
            raise ValueError("at least one message must have role 'user'")
        return messages

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        if len(metadata) > MAX_METADATA_KEYS:
            raise ValueError(f"at most {MAX_METADATA_KEYS} keys")
        if len(json.dumps(metadata)) > MAX_METADATA_BYTES:
            raise ValueError(f"at most {MAX_METADATA_BYTES} bytes of JSON")
        return metadata


class Usage(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int


class JobOut(BaseModel):
    """A job as GET /v1/jobs/<id> shows it (and later, webhooks carry it)."""

    id: str
    object: Literal["job"] = "job"
    status: str
    priority: str
    model: str
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    usage: Usage
    cost_usd: str = Field(description="Decimal dollars, as a string so no precision is lost.")
    metadata: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    status_url: str

    @classmethod
    def from_row(cls, job: Job, status_url: str) -> JobOut:
        return cls(
            id=str(job.id),
            status=job.status,
            priority=job.priority,
            model=job.model,
            result=job.result,
            error=job.error,
            usage=Usage(
                input_tokens=job.input_tokens,
                output_tokens=job.output_tokens,
                total_tokens=job.input_tokens + job.output_tokens,
            ),
            cost_usd=format(job.cost_usd.normalize(), "f"),
            metadata=job.meta,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            status_url=status_url,
        )
