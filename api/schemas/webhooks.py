"""Request, query and response models of webhook endpoints and their deliveries, /v1/webhooks
(pydantic)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from api.schemas.bases import PatchModel, RowModel, StrictModel
from api.schemas.fields import NO_NUL, HttpUrlText
from api.schemas.pages import CursorQuery, Listing, Page
from shared.webhook_events import EVENT_TYPES

EventType = Literal[
    "job.succeeded",
    "job.failed",
    "job.cancelled",
    "batch.completed",
    "batch.failed",
    "batch.cancelled",
    "batch.expired",
    "budget.threshold",
]


def _as_set(events: list[EventType]) -> list[str]:
    return [e for e in EVENT_TYPES if e in events]


WebhookUrl = Annotated[
    HttpUrlText,
    Field(
        description="http(s) URL (ASCII: a DNS name, an IPv4 address or a bracketed IPv6 "
        "address). It must be, and resolve to, a public address."
    ),
]
EventTypes = Annotated[list[EventType], Field(min_length=1, max_length=16), AfterValidator(_as_set)]


class WebhookCreate(StrictModel):
    url: WebhookUrl
    event_types: EventTypes
    description: str | None = Field(default=None, max_length=500, pattern=NO_NUL)
    enabled: bool = True


_NOT_NULLABLE = ("url", "event_types", "enabled")


def _undocumented_defaults(schema: dict[str, Any]) -> None:
    for name in _NOT_NULLABLE:
        schema["properties"][name].pop("default", None)


class WebhookUpdate(PatchModel):
    """Body of PATCH /v1/webhooks/<id>; only description may be null (cleared)."""

    # url, event_types and enabled are not nullable: left out means kept, and null is refused
    # as the wrong type. Their None default only marks "left out" (pydantic never validates a
    # default), so the document leaves it out.
    model_config = ConfigDict(json_schema_extra=_undocumented_defaults)

    url: WebhookUrl = None  # type: ignore[assignment]
    event_types: EventTypes = None  # type: ignore[assignment]
    description: str | None = Field(default=None, max_length=500, pattern=NO_NUL)
    enabled: bool = None  # type: ignore[assignment]


class WebhookOut(RowModel):
    id: uuid.UUID
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = Field(description="Why delivery disabled it, if it did.")
    previous_secret_expires_at: datetime | None = Field(
        description="Until when the secret before the last rotation also signs."
    )
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookOut):
    secret: str = Field(description="The signing secret (whsec_...). Shown only in this answer.")


class WebhookList(Listing[WebhookOut]):
    pass


DeliveryStatus = Literal["pending", "delivering", "succeeded", "failed"]


class DeliveryAttemptOut(RowModel):
    """One try at delivering a message."""

    number: int
    url: str = Field(description="Where it was sent.")
    outcome: Literal["in_progress", "succeeded", "failed", "interrupted"]
    status_code: int | None = Field(description="The receiver's HTTP status, if it answered.")
    latency_ms: int | None
    peer: str | None = Field(description="The IP address connected to, if a connection was made.")
    error_code: str | None = Field(
        description="timeout, connection_error, dns_error, url_not_allowed, redirect, gone, "
        "http_status or worker_lost."
    )
    error_message: str | None
    response_body: str | None = Field(description="The first 2 KiB of the receiver's answer.")
    started_at: datetime
    finished_at: datetime | None


class DeliveryOut(BaseModel):
    """A webhook message (one event for one endpoint) and its attempts."""

    id: str = Field(description="The webhook-id header: the same on every attempt.")
    object: Literal["webhook_delivery"] = "webhook_delivery"
    event_type: str
    job_id: uuid.UUID | None
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: datetime | None = Field(description="When the next attempt is due.")
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None
    attempts: list[DeliveryAttemptOut]


class DeliveryList(Page[DeliveryOut]):
    pass


class DeliveryListQuery(CursorQuery):
    """Query string of GET /v1/webhooks/<id>/deliveries."""

    status: DeliveryStatus | None = None
