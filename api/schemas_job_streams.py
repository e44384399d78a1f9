"""The events of GET /v1/jobs/<id>/stream, for the OpenAPI document (pydantic). Each is one
Server-Sent Event: its name on the `event:` line, one of these as JSON on the `data:` line."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.schemas_common import ErrorDetail
from shared.job_view import JobOut


class TokenData(BaseModel):
    """`token`: a piece of the answer, as the model sent it."""

    text: str


class RetryData(BaseModel):
    """`retry`: the text so far is void; `model` is tried again."""

    model: str
    error: str = Field(description="Why the last attempt failed (an attempt's error code).")


class FallbackData(BaseModel):
    """`fallback`: the text so far is void; the next model answers instead."""

    from_: str = Field(alias="from")
    to: str
    error: str = Field(description="Why the last attempt failed (an attempt's error code).")


class JobStreamEvent(BaseModel):
    """One event of a job's stream: `token`s as the model writes, `retry` or `fallback` when
    the text so far is void, then `result` (the job exactly as GET /v1/jobs/<id> shows it) and
    the end of the stream; `error` instead when the stream cannot go on. A comment line
    (`: keep-alive`) comes whenever the stream has been quiet for TOKEN_STREAM_KEEPALIVE_S."""

    event: Literal["token", "retry", "fallback", "result", "error"]
    data: TokenData | RetryData | FallbackData | JobOut | ErrorDetail
