"""How each provider dialect shows an injected fault on the wire.

Error bodies and headers copy what the real APIs send (a 429 carries retry-after and the
provider's rate-limit body; Anthropic's 529 says overloaded_error), so the official SDKs raise
exactly the exceptions they raise against the real services.
"""

import json
import math
import socket
from collections.abc import Callable, Iterator
from typing import Any

from flask import Response, jsonify, request

from sim.event_streams import event_stream, malformed
from sim.fault_kinds import ERROR_STATUS_KINDS, FaultKind
from sim.faults import FaultInjector, Plan
from sim.stats import RequestStats

# Builds the normal success body; True asks for reply text that breaks the requested format.
BodyBuilder = Callable[[bool], dict[str, Any]]
# Builds a streamed answer's events (sim/event_streams.py), with the same True.
EventsBuilder = Callable[[bool], list[str]]
# Renders an error-status fault: (kind, model, retry_after_s) -> response.
ErrorRenderer = Callable[[FaultKind, str, float], Response]
# The event a dialect shows a fault as once its stream has begun, if it does (Anthropic sends
# an overloaded error mid-stream); None: the fault refuses the call before the stream.
StreamErrorRenderer = Callable[[FaultKind], str | None]

# What a reverse proxy in front of either API answers when the backend is gone.
BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    "</body>\r\n</html>\r\n"
)
# nginx's convention for "closed without a response"; it only ever shows in the sim's log.
NO_RESPONSE = 444
# Faults that refuse a call outright, streamed or not: no 200 is ever sent.
REFUSALS = ERROR_STATUS_KINDS | {FaultKind.HANG, FaultKind.DROP}


def serve(
    plan: Plan,
    model: str,
    *,
    streamed: bool,
    injector: FaultInjector,
    stats: RequestStats,
    error: ErrorRenderer,
    body: BodyBuilder,
    events: EventsBuilder,
    stream_error: StreamErrorRenderer,
) -> Response:
    """The answer to a validated completion call: `plan`'s delay, then its fault or the normal
    answer, as one JSON body or (`streamed`) as events spread over the delay."""
    if streamed:
        return _serve_stream(plan, model, injector, stats, error, events, stream_error)
    injector.wait(plan.latency_ms)
    kind = plan.fault
    if kind is None:
        return jsonify(body(False))
    stats.record_fault(kind)
    if kind in REFUSALS:
        return _refuse(kind, plan, model, injector, error)
    text = json.dumps(body(False))
    if kind is FaultKind.MALFORMED:
        # A body cut mid-stream, as a proxy timing out on a large answer leaves it.
        return Response(text[: len(text) // 2], mimetype="application/json")
    if kind is FaultKind.CUT:
        return _cut_body(text)
    return jsonify(body(True))


def _serve_stream(
    plan: Plan,
    model: str,
    injector: FaultInjector,
    stats: RequestStats,
    error: ErrorRenderer,
    events: EventsBuilder,
    stream_error: StreamErrorRenderer,
) -> Response:
    """A fault that refuses the call (an error status, a hang, a drop) comes after the delay,
    as for a plain call; the others break the stream half way."""
    kind = plan.fault
    if kind is None:
        return event_stream(events(False), plan.latency_ms, injector)
    stats.record_fault(kind)
    mid_stream = stream_error(kind)
    if mid_stream is not None:
        return event_stream(events(False), plan.latency_ms, injector, broken_by=mid_stream)
    if kind in REFUSALS:
        injector.wait(plan.latency_ms)
        return _refuse(kind, plan, model, injector, error)
    if kind is FaultKind.MALFORMED:
        sent = events(False)
        return event_stream(
            sent, plan.latency_ms, injector, broken_by=malformed(sent[len(sent) // 2])
        )
    if kind is FaultKind.CUT:
        return event_stream(events(False), plan.latency_ms, injector, cut=True)
    return event_stream(events(True), plan.latency_ms, injector)


def _refuse(
    kind: FaultKind, plan: Plan, model: str, injector: FaultInjector, error: ErrorRenderer
) -> Response:
    """The answer to a fault of REFUSALS."""
    if kind is FaultKind.HANG:
        injector.hang()
        return drop_connection()
    if kind is FaultKind.DROP:
        return drop_connection()
    return error(kind, model, plan.retry_after_s)


def _cut_body(text: str) -> Response:
    """Half of `text` under a Content-Length for all of it, then the connection closes."""
    connection = request.environ.get("werkzeug.socket")
    if connection is None:
        raise RuntimeError("cutting a body needs werkzeug's server")

    def send() -> Iterator[str]:
        yield text[: len(text) // 2]
        connection.shutdown(socket.SHUT_RDWR)

    return Response(
        send(), mimetype="application/json", headers={"Content-Length": str(len(text.encode()))}
    )


def drop_connection() -> Response:
    """Close the client's connection without an HTTP answer.

    The socket is shut down under werkzeug's feet: its attempt to write the returned response
    then fails with a broken pipe, which it handles as a client that went away.
    """
    connection = request.environ.get("werkzeug.socket")
    if connection is None:
        raise RuntimeError("dropping a connection needs werkzeug's server")
    connection.shutdown(socket.SHUT_RDWR)
    return Response(status=NO_RESPONSE)


def openai_error(kind: FaultKind, model: str, retry_after_s: float) -> Response:
    """OpenAI's answer for an error-status fault; it has no 529, so overload is a 503."""
    if kind is FaultKind.BAD_GATEWAY:
        return _bad_gateway()
    headers: dict[str, str] = {}
    if kind is FaultKind.RATE_LIMIT:
        status, error_type, code = 429, "requests", "rate_limit_exceeded"
        message = (
            f"Rate limit reached for {model} in organization org-sim on requests per min (RPM): "
            f"Limit 60, Used 60, Requested 1. Please try again in {retry_after_s:g}s. Visit "
            "https://platform.openai.com/account/rate-limits to learn more."
        )
        headers = {
            **_retry_after(retry_after_s),
            "retry-after-ms": str(round(retry_after_s * 1000)),
            "x-ratelimit-limit-requests": "60",
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": f"{retry_after_s:g}s",
        }
    elif kind is FaultKind.SERVER_ERROR:
        status, error_type, code = 500, "server_error", None
        message = "The server had an error while processing your request. Sorry about that!"
    elif kind is FaultKind.OVERLOADED:
        status, error_type, code = 503, "server_error", None
        message = "The engine is currently overloaded, please try again later."
    else:
        status, error_type, code = 503, "server_error", None
        message = "Service Unavailable."
    body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return _json(body, status, headers)


def anthropic_error(kind: FaultKind, model: str, retry_after_s: float) -> Response:
    """Anthropic's answer for an error-status fault."""
    if kind is FaultKind.BAD_GATEWAY:
        return _bad_gateway()
    headers: dict[str, str] = {}
    if kind is FaultKind.RATE_LIMIT:
        status, error_type = 429, "rate_limit_error"
        message = (
            "This request would exceed the rate limit for your organization of 50 requests "
            f"per minute for {model}. For details, refer to: "
            "https://docs.claude.com/en/api/rate-limits."
        )
        headers = {
            **_retry_after(retry_after_s),
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "0",
        }
    elif kind is FaultKind.SERVER_ERROR:
        status, error_type, message = 500, "api_error", "Internal server error"
    elif kind is FaultKind.OVERLOADED:
        status, error_type, message = 529, "overloaded_error", "Overloaded"
    else:
        status, error_type, message = 503, "api_error", "Service unavailable"
    body = {"type": "error", "error": {"type": error_type, "message": message}}
    return _json(body, status, headers)


def _retry_after(seconds: float) -> dict[str, str]:
    # HTTP's Retry-After is whole seconds; rounding up never invites a retry too early.
    return {"retry-after": str(math.ceil(seconds))}


def _json(body: dict[str, Any], status: int, headers: dict[str, str]) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers)
    return response


def _bad_gateway() -> Response:
    return Response(BAD_GATEWAY_HTML, status=502, mimetype="text/html")
