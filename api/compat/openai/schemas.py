"""Request and response models of the OpenAI-compatible Files and Batches API (pydantic), in
OpenAI's field names."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, field_validator

from api.schemas.bases import StrictModel
from api.schemas.fields import small_metadata

ItemT = TypeVar("ItemT")


class BatchCreate(StrictModel):
    """Body of POST /openai/v1/batches. `endpoint` and `completion_window` take the one value
    promptq serves; any other is refused with a clear error rather than by pydantic's words."""

    input_file_id: str = Field(min_length=1, max_length=64)
    endpoint: str
    completion_window: str
    metadata: dict[str, str] | None = None

    @field_validator("metadata")
    @classmethod
    def _small_metadata(cls, metadata: dict[str, str] | None) -> dict[str, str] | None:
        return None if metadata is None else small_metadata(metadata)


class ListQuery(StrictModel):
    """Query string of the lists: OpenAI's cursor paging."""

    after: str | None = None
    limit: int = Field(default=20, ge=1, le=100)


class FileListQuery(ListQuery):
    purpose: str | None = None
    # The SDK sends order=desc; newest first is the only order.
    order: Literal["desc"] = "desc"


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["processed"] = "processed"


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


class RequestCounts(BaseModel):
    total: int
    completed: int
    failed: int


class BatchErrors(BaseModel):
    object: Literal["list"] = "list"
    data: list[dict[str, Any]]


class BatchObject(BaseModel):
    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    errors: BatchErrors | None
    input_file_id: str
    completion_window: str
    status: Literal[
        "validating",
        "failed",
        "in_progress",
        "finalizing",
        "completed",
        "expired",
        "cancelling",
        "cancelled",
    ]
    output_file_id: str | None
    error_file_id: str | None
    created_at: int
    in_progress_at: int | None
    expires_at: int | None
    finalizing_at: int | None
    completed_at: int | None
    failed_at: int | None
    expired_at: int | None
    cancelling_at: int | None
    cancelled_at: int | None
    request_counts: RequestCounts
    metadata: dict[str, str] | None


class ListPage(BaseModel, Generic[ItemT]):
    object: Literal["list"] = "list"
    data: list[ItemT]
    first_id: str | None
    last_id: str | None
    has_more: bool
