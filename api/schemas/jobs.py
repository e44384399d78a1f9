"""Request, query and response models of jobs, /v1/jobs (pydantic)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator

from api.schemas.bases import RowModel, StrictModel
from api.schemas.fields import (
    METADATA_DOC,
    NO_NUL,
    HttpUrlText,
    PositiveUsd,
    Rfc3339Datetime,
    UsdOut,
    json_int,
    small_metadata,
    without_nul,
)
from api.schemas.pages import CursorQuery, Listing, Page

# The job's public view lives in shared/: the worker renders it into webhook events without api/.
from shared.input_safety.user_settings import ScreeningMode
from shared.job_view import JobOut
from shared.model_routing import AUTO
from shared.models import JobStatus
from shared.pricing import PRICE_TABLE, model_chain, price_for
from shared.settings import get_settings

MAX_FALLBACKS = 5
MAX_TAGS = 10
TAG_PATTERN = r"^[A-Za-z0-9_.:-]+$"
Tag = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=TAG_PATTERN,
        description="Letters, digits and _ . : - (1 to 64 characters).",
    ),
]
MAX_FALLBACK_RESPONSE_CHARS = 10_000
# JobCreate's fields younger than its Idempotency-Key fingerprints (see JobCreate.fingerprint).
FIELDS_ADDED_LATER = (
    "cache_threshold",
    "fallback_response",
    "routing_policy",
    "scrub_pii",
    "restore_pii",
    "injection_screening",
    "tags",
)
# A semantic cache hit needs at least this cosine similarity unless the job sets its own.
DEFAULT_CACHE_THRESHOLD = 0.95
# A long-poll's longest wait: under the usual 60 s proxy and load-balancer idle timeouts.
MAX_WAIT_S = 30
# Documented, not enforced by pydantic: an unknown model is refused as `unknown_model`.
KNOWN_MODELS: dict[str, Any] = {"enum": sorted(PRICE_TABLE)}
MODEL_OR_AUTO: dict[str, Any] = {"enum": [AUTO, *sorted(PRICE_TABLE)]}
# "At least one user message", in the schema as well as in the validator below.
HAS_USER_MESSAGE: dict[str, Any] = {
    "contains": {"type": "object", "properties": {"role": {"const": "user"}}, "required": ["role"]}
}


class TextFormat(StrictModel):
    type: Literal["text"]


class JsonObjectFormat(StrictModel):
    type: Literal["json_object"]


class JsonSchemaFormat(StrictModel):
    type: Literal["json_schema"]
    json_schema: dict[str, Any] = Field(alias="schema", description="A JSON Schema document.")

    @field_validator("json_schema")
    @classmethod
    def _is_a_json_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        # Imported here: jsonschema is slow to import and only job bodies need it, not the CLI.
        from jsonschema import SchemaError
        from jsonschema.validators import validator_for

        without_nul(schema)
        try:
            validator_for(schema).check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return schema


ResponseFormat = Annotated[
    TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")
]


class ChatMessage(StrictModel):
    role: Literal["system", "user", "assistant"]
    content: str = Field(min_length=1, max_length=200_000, pattern=NO_NUL)


class JobCreate(StrictModel):
    """Body of POST /v1/jobs."""

    model: str = Field(
        min_length=1,
        max_length=100,
        description='A model from GET /v1/models, or "auto": promptq picks the cheapest model '
        "that fits (README: 'Automatic model choice').",
        json_schema_extra=MODEL_OR_AUTO,
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
    cache: bool | Literal["semantic"] = Field(
        default=False,
        description="true: serve an identical earlier reply from the response cache "
        '(temperature 0 only). "semantic": serve an earlier reply of the same user, model and '
        "parameters whose last user message means the same (cosine similarity of their "
        "embeddings at least `cache_threshold`; temperature 0 required). A hit costs nothing.",
    )
    cache_threshold: float | None = Field(
        default=None,
        ge=0.5,
        le=1,
        description=f'With cache "semantic": the least similarity a hit needs (default '
        f"{DEFAULT_CACHE_THRESHOLD}).",
    )
    stream: bool = Field(
        default=False,
        description="Relay the model's tokens while the job runs, at GET /v1/jobs/<id>/stream "
        "(Server-Sent Events).",
    )
    tags: list[Tag] = Field(
        default_factory=list,
        max_length=MAX_TAGS,
        json_schema_extra={"uniqueItems": True},
        description=f"Up to {MAX_TAGS} distinct labels to attribute the job's cost by "
        "(GET /v1/usage?group_by=tag) and to filter GET /v1/jobs by (?tag=).",
    )
    scrub_pii: bool = Field(
        default=False,
        description="Replace emails, phone numbers, card numbers, IBANs, SSNs, IP addresses and "
        "API keys in the prompt by placeholders ([EMAIL_1], ...) before it reaches a provider "
        "(README: 'Input safety'). The owner's setting may turn it on for every job; a job "
        "cannot turn it off.",
    )
    restore_pii: bool = Field(
        default=False,
        description="Scrub PII (implies scrub_pii) and put the originals back where the answer "
        "repeats a placeholder.",
    )
    injection_screening: ScreeningMode | None = Field(
        default=None,
        description="Screen the user messages for prompt injection: 'flag' records the verdict "
        "in the job's `screening`, 'reject' refuses a prompt at or past the threshold with 422 "
        "input_rejected. The stricter of this and the owner's setting applies; null: the "
        "owner's.",
    )
    routing_policy: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=NO_NUL,
        description='With `model: "auto"`: a routing policy the operator defined '
        "(ROUTING_POLICIES); without it, every model is a candidate.",
    )
    fallback_response: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_FALLBACK_RESPONSE_CHARS,
        pattern=NO_NUL,
        description="A last-resort answer: when every model of the chain fails, the job "
        "succeeds with this text, `result.degraded` true, at no cost for it; its attempts still "
        "show every failure.",
    )

    @field_validator("messages")
    @classmethod
    def _has_user_message(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if not any(m.role == "user" for m in messages):
            raise ValueError("at least one message must have role 'user'")
        return messages

    @model_validator(mode="after")
    def _semantic_cache_fields(self) -> Self:
        if self.cache_threshold is not None and self.cache != "semantic":
            raise ValueError('cache_threshold is only for cache "semantic"')
        if self.cache == "semantic" and self.temperature != 0:
            # A reply at a higher temperature is one sample of many, as for the exact cache.
            raise ValueError('cache "semantic" needs temperature 0')
        return self

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        return small_metadata(metadata)

    @field_validator("fallbacks")
    @classmethod
    def _distinct(cls, fallbacks: list[str], info: ValidationInfo) -> list[str]:
        if fallbacks and info.data.get("model") == AUTO:
            raise ValueError('model "auto" chooses its own fallbacks; leave them out')
        # uniqueItems says so too; pydantic does not enforce it by itself.
        if len(set(fallbacks)) != len(fallbacks):
            raise ValueError("fallbacks must differ from each other")
        return fallbacks

    @field_validator("tags")
    @classmethod
    def _distinct_tags(cls, tags: list[str]) -> list[str]:
        repeated = sorted({tag for tag in tags if tags.count(tag) > 1})
        if repeated:
            raise ValueError(f"tags must differ from each other; repeated: {repeated}")
        return tags

    @field_validator("routing_policy")
    @classmethod
    def _only_when_auto(cls, policy: str | None, info: ValidationInfo) -> str | None:
        if policy is not None and info.data.get("model") != AUTO:
            raise ValueError('a routing policy goes only with model "auto"')
        return policy

    def needs_structured_output(self) -> bool:
        return self.response_format is not None and self.response_format.type != "text"

    def check_models(self) -> None:
        """UnknownModelError for a model or fallback not in the catalogue ("auto" is none)."""
        for model in (self.model, *self.fallbacks):
            if model != AUTO:
                price_for(model)

    def models(self) -> list[str]:
        """The models the worker may try, in order (the default chain when no fallbacks are
        given); an unknown model raises UnknownModelError."""
        return list(model_chain(self.model, self.fallbacks))

    def contents(self) -> list[str]:
        return [m.content for m in self.messages]

    def effective_max_tokens(self) -> int:
        return self.max_tokens or get_settings().default_max_tokens

    def semantic_threshold(self) -> float | None:
        """The similarity a semantic cache hit needs; None when the job did not ask for one."""
        if self.cache != "semantic":
            return None
        return self.cache_threshold if self.cache_threshold is not None else DEFAULT_CACHE_THRESHOLD

    def response_format_json(self) -> dict[str, Any] | None:
        if self.response_format is None:
            return None
        return self.response_format.model_dump(mode="json", by_alias=True)

    def canonical(self) -> dict[str, Any]:
        """The validated body as plain JSON values (field names as the client sends them)."""
        return self.model_dump(mode="json", by_alias=True)

    def fingerprint(self) -> str:
        """SHA-256 of the canonical body: equal for a true repeat, whatever the key order. A
        field added after fingerprints were first stored is left out while at its default, so
        a body sent before it existed, retried after an upgrade, is still a true repeat."""
        body = self.canonical()
        for name in FIELDS_ADDED_LATER:
            if body[name] == type(self).model_fields[name].get_default(call_default_factory=True):
                del body[name]
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class JobListQuery(CursorQuery):
    """Query string of GET /v1/jobs."""

    status: JobStatus | None = None
    priority: Literal["high", "normal", "low"] | None = None
    model: str | None = Field(default=None, min_length=1, max_length=100, pattern=NO_NUL)
    created_after: Rfc3339Datetime | None = None
    created_before: Rfc3339Datetime | None = None
    tag: Tag | None = Field(default=None, description="Only jobs carrying this tag.")


class JobGetQuery(StrictModel):
    """Query string of GET /v1/jobs/<id>."""

    wait: float = Field(
        default=0,
        ge=0,
        le=MAX_WAIT_S,
        allow_inf_nan=False,
        description=(
            f"Answer once the job is final or after this many seconds (at most {MAX_WAIT_S}),"
            " whichever comes first; 0 answers at once."
        ),
    )


class AttemptOut(RowModel):
    """One provider call made for a job."""

    number: int
    provider: str
    model: str
    outcome: str
    error_code: str | None
    error_message: str | None
    latency_ms: int
    backoff_ms: int = Field(description="Time spent backing off before this attempt.")
    cached: bool = Field(description="Served from the response cache: no call, no cost.")
    similarity: float | None = Field(
        description="A semantic cache hit's cosine similarity to the prompt it was stored for."
    )
    input_tokens: int
    output_tokens: int
    cost_usd: UsdOut
    started_at: datetime
    finished_at: datetime


class JobList(Page[JobOut]):
    """A page of the caller's jobs, newest first."""


class AttemptList(Listing[AttemptOut]):
    """A job's attempts in the order they were made."""
