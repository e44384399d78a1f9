"""Anthropic's POST /v1/messages, shaped so the official `anthropic` SDK parses it."""

import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sim.event_streams import sse
from sim.fault_kinds import FaultKind
from sim.fault_responses import anthropic_error, serve
from sim.faults import FaultInjector, Plan
from sim.replies import Completion, complete, reply_pieces
from sim.request_log import RequestLog
from sim.stats import RequestStats, model_of

ROLES = frozenset({"user", "assistant"})


class AnthropicError(Exception):
    """A request rejection, rendered in Anthropic's `{"type": "error", ...}` shape."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


class InvalidRequest(AnthropicError):
    def __init__(self, message: str) -> None:
        super().__init__(400, "invalid_request_error", message)


def create_anthropic_blueprint(
    injector: FaultInjector, stats: RequestStats, log: RequestLog
) -> Blueprint:
    """Routes for the Anthropic dialect, sharing `injector` and `stats` with the rest of the app."""
    blueprint = Blueprint("anthropic", __name__)

    @blueprint.post("/v1/messages")
    def messages() -> Response:
        body = request.get_json(force=True, silent=True)
        log.record(request.path, body)
        return stats.answer(model_of(body), lambda: answer(body))

    def answer(body: Any) -> Response:
        _authenticate()
        model, messages, max_tokens, system, streamed = _validate(body)
        plan = _plan(injector, model)

        def reply(violate: bool) -> Completion:
            form = "prose" if violate else "text"
            return complete(model, messages, max_tokens, system, form=form)

        # Faults come after validation, so a malformed request is still a plain 400.
        return serve(
            plan,
            model,
            streamed=streamed,
            injector=injector,
            stats=stats,
            error=anthropic_error,
            body=lambda violate: _message_body(model, reply(violate)),
            events=lambda violate: _message_events(model, reply(violate)),
            stream_error=_stream_error,
        )

    blueprint.register_error_handler(AnthropicError, _error_response)
    blueprint.after_request(_add_request_id)
    return blueprint


def _authenticate() -> None:
    # The real API takes `x-api-key`; SDK 2.x sends the same key as a Bearer token instead.
    scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
    has_bearer = scheme.lower() == "bearer" and bool(bearer.strip())
    if not request.headers.get("x-api-key", "").strip() and not has_bearer:
        raise AnthropicError(401, "authentication_error", "x-api-key header is required")
    if not request.headers.get("anthropic-version", "").strip():
        raise InvalidRequest("anthropic-version: header is required")


def _validate(body: Any) -> tuple[str, list[dict[str, Any]], int, Any, bool]:
    if not isinstance(body, dict):
        raise InvalidRequest("There was an issue with your request body: invalid JSON")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Field required")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise InvalidRequest("max_tokens: Field required")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        raise InvalidRequest("max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        raise InvalidRequest("max_tokens: Input should be greater than or equal to 1")
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("messages: Field required")
    if not isinstance(messages, list):
        raise InvalidRequest("messages: Input should be a valid list")
    if not messages:
        raise InvalidRequest("messages: at least one message is required")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise InvalidRequest(f"messages.{index}.role: Input should be 'user' or 'assistant'")
        if not isinstance(message.get("content"), str | list):
            raise InvalidRequest(f"messages.{index}.content: Input should be a valid list")
    system = body.get("system")
    if not isinstance(system, str | list | None):
        raise InvalidRequest("system: Input should be a valid list")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("stream: Input should be a valid boolean")
    return model, messages, max_tokens, system, stream


def _plan(injector: FaultInjector, model: str) -> Plan:
    try:
        return injector.plan(model, request.headers)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None


def _message_body(model: str, completion: Completion) -> dict[str, Any]:
    return {
        "id": f"msg_{uuid.uuid4().hex}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": completion.text}],
        "stop_reason": _stop_reason(completion),
        "stop_sequence": None,
        "usage": {
            "input_tokens": completion.input_tokens,
            "output_tokens": completion.output_tokens,
        },
    }


def _message_events(model: str, completion: Completion) -> list[str]:
    """The answer as Anthropic streams it: message_start (the message without content, its
    input tokens), one text block's start, deltas and stop, message_delta (the stop reason and
    the output tokens in all), message_stop; a ping after the block starts, as the API sends."""
    message = {
        **_message_body(model, completion),
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": completion.input_tokens, "output_tokens": 1},
    }
    deltas = [
        _event("content_block_delta", index=0, delta={"type": "text_delta", "text": piece})
        for piece in reply_pieces(completion.text)
    ]
    return [
        _event("message_start", message=message),
        _event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        _event("ping"),
        *deltas,
        _event("content_block_stop", index=0),
        _event(
            "message_delta",
            delta={"stop_reason": _stop_reason(completion), "stop_sequence": None},
            usage={"output_tokens": completion.output_tokens},
        ),
        _event("message_stop"),
    ]


def _event(kind: str, **fields: Any) -> str:
    return sse({"type": kind, **fields}, kind)


def _stream_error(kind: FaultKind) -> str | None:
    """Anthropic reports overload inside a stream it has begun, as an error event."""
    if kind is not FaultKind.OVERLOADED:
        return None
    return _event("error", error={"type": "overloaded_error", "message": "Overloaded"})


def _stop_reason(completion: Completion) -> str:
    return "max_tokens" if completion.truncated else "end_turn"


def _error_response(error: AnthropicError) -> tuple[Response, int]:
    body = {"type": "error", "error": {"type": error.error_type, "message": error.message}}
    return jsonify(body), error.status


def _add_request_id(response: Response) -> Response:
    response.headers["request-id"] = f"req_{uuid.uuid4().hex}"
    return response
