"""Request and response models for jobs at the API edge (pydantic)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator

from api.schemas_common import PageQuery
from api.schemas_fields import (
    METADATA_DOC,
    NO_NUL,
    HttpUrlText,
    PositiveUsd,
    ResponseFormat,
    Rfc3339Datetime,
    json_int,
    small_metadata,
)
from shared.job_view import JobOut, usd
from shared.models import JobStatus
from shared.pricing import PRICE_TABLE, model_chain
from shared.settings import get_settings

MAX_FALLBACKS = 5
# Documented, not enforced by pydantic: an unknown model is refused as `unknown_model`.
KNOWN_MODELS: dict[str, Any] = {"enum": sorted(PRICE_TABLE)}
# "At least one user message", in the schema as well as in the validator below.
HAS_USER_MESSAGE: dict[str, Any] = {
    "contains": {"type": "object", "properties": {"role": {"const": "user"}}, "required": ["role"]}
}


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1, max_length=200_000, pattern=NO_NUL)


class JobCreate(BaseModel):
    """Body of POST /v1/jobs."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        min_length=1,
        max_length=100,
        description="A model from GET /v1/models.",
        json_schema_extra=KNOWN_MODELS,
    )
    messages: list[ChatMessage] = Field(
        min_length=1,
        max_length=256,
        json_schema_extra=HAS_USER_MESSAGE,
        description="The conversation; at least one message has role 'user'.",
    )
    max_tokens: json_int(ge=1, le=32768) | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    priority: Literal["high", "normal", "low"] = "normal"
    metadata: dict[str, Any] = Field(default_factory=dict, json_schema_extra=METADATA_DOC)
    fallbacks: list[
        Annotated[str, Field(min_length=1, max_length=100, json_schema_extra=KNOWN_MODELS)]
    ] = Field(
        default_factory=list,
        max_length=MAX_FALLBACKS,
        json_schema_extra={"uniqueItems": True},
        description="Models to try in order when `model` fails; each from GET /v1/models.",
    )
    response_format: ResponseFormat | None = None
    callback_url: HttpUrlText | None = Field(
        default=None, description="http(s) URL (ASCII: a DNS name or IPv4 address)."
    )
    max_cost_usd: PositiveUsd | None = Field(
        default=None,
        description='Dollars, at most: a decimal string ("0.25") keeps them exact; a number is '
        "rounded to 10 decimal places.",
    )
    cache: bool = Field(
        default=False,
        description="Serve an identical earlier reply from the response cache (temperature 0 "
        "only); a hit costs nothing.",
    )
    stream: bool = Field(
        default=False,
        description="Relay the model's tokens while the job runs, at GET /v1/jobs/<id>/stream "
        "(Server-Sent Events).",
    )

    @field_validator("messages")
    @classmethod
    def _has_user_message(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if not any(m.role == "user" for m in messages):
            raise ValueError("at least one message must have role 'user'")
        return messages

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        return small_metadata(metadata)

    @field_validator("fallbacks")
    @classmethod
    def _distinct(cls, fallbacks: list[str]) -> list[str]:
        # uniqueItems says so too; pydantic does not enforce it by itself.
        if len(set(fallbacks)) != len(fallbacks):
            raise ValueError("fallbacks must differ from each other")
        return fallbacks

    def models(self) -> list[str]:
        """The models the worker may try, in order (the default chain when no fallbacks are
        given); an unknown model raises UnknownModelError."""
        return list(model_chain(self.model, self.fallbacks))

    def contents(self) -> list[str]:
        return [m.content for m in self.messages]

    def effective_max_tokens(self) -> int:
        return self.max_tokens or get_settings().default_max_tokens

    def response_format_json(self) -> dict[str, Any] | None:
        if self.response_format is None:
            return None
        return self.response_format.model_dump(mode="json", by_alias=True)

    def canonical(self) -> dict[str, Any]:
        """The validated body as plain JSON values (field names as the client sends them)."""
        return self.model_dump(mode="json", by_alias=True)

    def fingerprint(self) -> str:
        """SHA-256 of the canonical body: equal for a true repeat, whatever the key order."""
        canonical = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class JobListQuery(PageQuery):
    """Query string of GET /v1/jobs."""

    status: JobStatus | None = None
    priority: Literal["high", "normal", "low"] | None = None
    model: str | None = Field(default=None, min_length=1, max_length=100, pattern=NO_NUL)
    created_after: Rfc3339Datetime | None = None
    created_before: Rfc3339Datetime | None = None


class AttemptOut(BaseModel):
    """One provider call made for a job."""

    model_config = ConfigDict(from_attributes=True)

    number: int
    provider: str
    model: str
    outcome: str
    error_code: str | None
    error_message: str | None
    latency_ms: int
    backoff_ms: int = Field(description="Time spent backing off before this attempt.")
    cached: bool = Field(description="Served from the response cache: no call, no cost.")
    input_tokens: int
    output_tokens: int
    cost_usd: Annotated[Decimal, PlainSerializer(usd, return_type=str)]
    started_at: datetime
    finished_at: datetime


class JobList(BaseModel):
    """A page of the caller's jobs, newest first."""

    object: Literal["list"] = "list"
    data: list[JobOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class AttemptList(BaseModel):
    """A job's attempts in the order they were made."""

    object: Literal["list"] = "list"
    data: list[AttemptOut]
