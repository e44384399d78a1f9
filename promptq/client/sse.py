"""Server-Sent Events read from a streamed answer's lines, and a job's stream made typed.

    event: token
    data: {"text": "Hel"}

is one event: its name and its data, ended by a blank line; `:` lines are comments (the server's
keep-alives) and are skipped."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from promptq.client.errors import APIConnectionError, APIError
from promptq.client.models import (
    FallbackEvent,
    Job,
    ResultEvent,
    RetryEvent,
    StreamEvent,
    TokenEvent,
)

_DATA_EVENTS: dict[str, type[TokenEvent | RetryEvent | FallbackEvent]] = {
    "token": TokenEvent,
    "retry": RetryEvent,
    "fallback": FallbackEvent,
}


def server_sent_events(lines: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(name, data) of each event in `lines` (without their line ends), as each completes."""
    name, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data = "message", []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)


def job_stream_events(lines: Iterable[str]) -> Iterator[StreamEvent]:
    """The typed events of GET /v1/jobs/<id>/stream, up to the result. An `error` event (the
    server could not go on: an outage) raises the APIError of its code, a stream that stops
    before the result APIConnectionError; events of names a newer server added are skipped."""
    for name, data in server_sent_events(lines):
        if name == "result":
            yield ResultEvent(job=Job.model_validate_json(data))
            return
        if name == "error":
            # Sent only for outages of the server's backing services: a 503's errors.
            raise APIError.build(503, {"error": json.loads(data)})
        if name in _DATA_EVENTS:
            yield _DATA_EVENTS[name].model_validate_json(data)
    raise APIConnectionError("The job's stream ended before its result.")
