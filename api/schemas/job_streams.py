"""The events of GET /v1/jobs/<id>/stream, for the OpenAPI document (pydantic). Each is one
Server-Sent Event: its name on the `event:` line, its data as JSON on the `data:` line, which
the document gives as a string whose content is JSON of the schema named (contentSchema)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, Json, RootModel

from api.schemas.errors import ErrorDetail
from shared.job_view import JobOut


class TokenData(BaseModel):
    """A piece of the answer, as the model sent it."""

    text: str


class RetryData(BaseModel):
    """The text so far is void; `model` is tried again."""

    model: str
    error: str = Field(description="Why the last attempt failed (an attempt's error code).")


class FallbackData(BaseModel):
    """The text so far is void; the next model answers instead."""

    from_: str = Field(alias="from")
    to: str
    error: str = Field(description="Why the last attempt failed (an attempt's error code).")


class _Event(BaseModel):
    # An event's data is JSON text on the wire: documented as such (a string with a
    # contentSchema), which only the validation form of a Json field says.
    model_config = ConfigDict(json_schema_mode_override="validation")


class TokenEvent(_Event):
    event: Literal["token"]
    data: Json[TokenData]


class RetryEvent(_Event):
    event: Literal["retry"]
    data: Json[RetryData]


class FallbackEvent(_Event):
    event: Literal["fallback"]
    data: Json[FallbackData]


class ResultEvent(_Event):
    """The last event: the job exactly as GET /v1/jobs/<id> shows it."""

    event: Literal["result"]
    data: Json[JobOut]


class ErrorEvent(_Event):
    """The stream cannot go on (an outage of PostgreSQL or Redis) and ends."""

    event: Literal["error"]
    data: Json[ErrorDetail]


class JobStreamEvent(RootModel[TokenEvent | RetryEvent | FallbackEvent | ResultEvent | ErrorEvent]):
    """One event of a job's stream: `token`s as the model writes, `retry` or `fallback` when
    the text so far is void, then `result` and the end of the stream; `error` instead when the
    stream cannot go on. A comment line (`: keep-alive`) comes whenever the stream has been
    quiet for TOKEN_STREAM_KEEPALIVE_S."""

    model_config = ConfigDict(json_schema_mode_override="validation")
