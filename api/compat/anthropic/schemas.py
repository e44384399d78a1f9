"""Request and response models of the Anthropic-compatible Message Batches API (pydantic), in
Anthropic's field names. A request's `params` are checked field by field in translation.py,
so each refusal names the request it is about."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from api.schemas.bases import StrictModel

ItemT = TypeVar("ItemT")


class BatchRequest(StrictModel):
    custom_id: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    params: dict[str, Any]


class BatchCreate(StrictModel):
    """Body of POST /anthropic/v1/messages/batches."""

    requests: list[BatchRequest] = Field(min_length=1)


class ListQuery(StrictModel):
    """Query string of the list: Anthropic's cursors, one of them at a time."""

    before_id: str | None = None
    after_id: str | None = None
    limit: int = Field(default=20, ge=1, le=1000)


class RequestCounts(BaseModel):
    processing: int
    succeeded: int
    errored: int
    canceled: int
    expired: int


class MessageBatch(BaseModel):
    id: str
    type: Literal["message_batch"] = "message_batch"
    processing_status: Literal["in_progress", "canceling", "ended"]
    request_counts: RequestCounts
    created_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    cancel_initiated_at: datetime | None
    archived_at: datetime | None = None
    results_url: str | None


class ListPage(BaseModel, Generic[ItemT]):
    data: list[ItemT]
    has_more: bool
    first_id: str | None
    last_id: str | None
