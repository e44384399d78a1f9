"""How each provider dialect shows an injected fault on the wire.

Error bodies and headers copy what the real APIs send (a 429 carries retry-after and the
provider's rate-limit body; Anthropic's 529 says overloaded_error), so the official SDKs raise
exactly the exceptions they raise against the real services.
"""

import json
import math
import socket
from collections.abc import Callable
from typing import Any

from flask import Response, jsonify, request

from sim.fault_kinds import ERROR_STATUS_KINDS, FaultKind
from sim.faults import FaultInjector, Plan
from sim.stats import RequestStats

# Builds the normal success body; True asks for reply text that breaks the requested format.
BodyBuilder = Callable[[bool], dict[str, Any]]
# Renders an error-status fault: (kind, model, retry_after_s) -> response.
ErrorRenderer = Callable[[FaultKind, str, float], Response]

# What a reverse proxy in front of either API answers when the backend is gone.
BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    "</body>\r\n</html>\r\n"
)
# nginx's convention for "closed without a response"; it only ever shows in the sim's log.
NO_RESPONSE = 444


def serve(
    plan: Plan,
    model: str,
    *,
    injector: FaultInjector,
    stats: RequestStats,
    error: ErrorRenderer,
    body: BodyBuilder,
) -> Response:
    """The answer to a validated completion call whose latency has already been waited."""
    kind = plan.fault
    if kind is None:
        return jsonify(body(False))
    stats.record_fault(kind)
    if kind in ERROR_STATUS_KINDS:
        return error(kind, model, plan.retry_after_s)
    if kind is FaultKind.HANG:
        injector.hang()
        return drop_connection()
    if kind is FaultKind.DROP:
        return drop_connection()
    if kind is FaultKind.MALFORMED:
        # A body cut mid-stream, as a proxy timing out on a large answer leaves it.
        text = json.dumps(body(False))
        return Response(text[: len(text) // 2], mimetype="application/json")
    return jsonify(body(True))


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
