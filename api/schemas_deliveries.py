"""Response and query models of webhook deliveries, test pings and the callback secret."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas_common import PageQuery

DeliveryStatus = Literal["pending", "delivering", "succeeded", "failed"]


class DeliveryAttemptOut(BaseModel):
    """One try at delivering a message."""

    model_config = ConfigDict(from_attributes=True)

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


class DeliveryList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DeliveryOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class DeliveryListQuery(PageQuery):
    """Query string of GET /v1/webhooks/<id>/deliveries."""

    status: DeliveryStatus | None = None


class CallbackSecretOut(BaseModel):
    """Signs deliveries to your jobs' callback_url (Standard Webhooks, like endpoint secrets)."""

    object: Literal["callback_secret"] = "callback_secret"
    secret: str = Field(description="whsec_...")
    previous_secret_expires_at: datetime | None = Field(
        description="Until when the secret before the last rotation also signs."
    )
