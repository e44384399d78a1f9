"""Server-Sent Events answers: a streamed reply's events spread over the call's latency, so a
client sees its first tokens long before the last, and the ways such a stream can break.

The dialects (openai_routes.py, anthropic_routes.py) build the events; this sends them.
"""

import json
import socket
from collections.abc import Iterator
from typing import Any

from flask import Response, request

from sim.faults import FaultInjector


def sse(data: dict[str, Any] | str, event: str | None = None) -> str:
    """One event as it goes on the wire: an optional `event:` line, a `data:` line, a blank."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n"


def event_stream(
    events: list[str],
    latency_ms: float,
    injector: FaultInjector,
    *,
    broken_by: str | None = None,
    cut: bool = False,
) -> Response:
    """A 200 `text/event-stream` sending `events` one by one, the call's latency divided evenly
    before each. `broken_by` replaces the second half of the events (a malformed event, an
    error event); `cut` closes the connection after the first half instead, with no end."""
    # The socket is looked up now: the events are sent after the view has returned.
    connection = request.environ.get("werkzeug.socket")
    if cut and connection is None:
        raise RuntimeError("cutting a stream needs werkzeug's server")
    half = len(events) // 2
    sent = events if broken_by is None else [*events[:half], broken_by]
    pause_ms = latency_ms / len(sent)

    def send() -> Iterator[str]:
        for number, event in enumerate(sent):
            if cut and number == half:
                # Everything yielded so far has been flushed: the client got half a stream.
                connection.shutdown(socket.SHUT_RDWR)
                return
            injector.wait(pause_ms)
            yield event

    return Response(send(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})


def malformed(event: str) -> str:
    """`event` with its data cut half way, so it is no JSON: a proxy's broken stream."""
    head, marker, data = event.partition("data: ")
    return f"{head}{marker}{data.rstrip()[: len(data) // 2]}\n\n"
