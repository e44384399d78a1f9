"""The error envelope every route answers with (pydantic; api/errors.py fills it in)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable error code, e.g. 'validation_error'.")
    message: str = Field(description="What went wrong and what to do about it, for people.")
    details: Any = Field(default=None, description="Structured context; null when there is none.")


class ErrorBody(BaseModel):
    """Every error answer: `{"error": {"code", "message", "details"}}`."""

    error: ErrorDetail
