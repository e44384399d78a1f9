"""The error envelope every route answers with, and the response models of the catalogue and
health routes (pydantic; the OpenAPI document is generated from them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.cursor import CURSOR_PATTERN


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable error code, e.g. 'validation_error'.")
    message: str = Field(description="What went wrong and what to do about it, for people.")
    details: Any = Field(default=None, description="Structured context; null when there is none.")


class ErrorBody(BaseModel):
    """Every error answer: `{"error": {"code", "message", "details"}}`."""

    error: ErrorDetail


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready"]
    checks: dict[str, str] = Field(description="Each backing service and 'ok'.")


class ModelOut(BaseModel):
    """A model promptq serves, with its price and default fallbacks."""

    id: str
    object: Literal["model"] = "model"
    provider: str = Field(description="Who serves it: 'openai' or 'anthropic'.")
    input_usd_per_mtok: str = Field(description="Decimal US dollars per million input tokens.")
    output_usd_per_mtok: str = Field(description="Decimal US dollars per million output tokens.")
    fallbacks: list[str] = Field(description="Models a job falls back to, in order.")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


class PageQuery(BaseModel):
    """The paging part of a list's query string: page size and a keyset cursor."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(
        default=None,
        pattern=CURSOR_PATTERN,
        description="next_cursor from the previous page (a position in the list).",
    )
