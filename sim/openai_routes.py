"""OpenAI's POST /v1/chat/completions, shaped so the official `openai` SDK parses it."""

import time
import uuid
from typing import Any

from flask import Blueprint, Response, jsonify, request

from sim.event_streams import sse
from sim.fault_responses import openai_error, serve
from sim.faults import FaultInjector, Plan
from sim.replies import Completion, ReplyForm, complete, reply_pieces
from sim.request_log import RequestLog
from sim.stats import RequestStats, model_of

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
MAX_TOKENS_PARAMS = ("max_completion_tokens", "max_tokens")  # newer name wins when both are set
RESPONSE_FORMATS = ("text", "json_object", "json_schema")


class OpenAIError(Exception):
    """A request rejection, rendered in OpenAI's `{"error": {...}}` shape.

    OpenAI reports bad requests and missing keys alike as `invalid_request_error`.
    """

    def __init__(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


def create_openai_blueprint(
    injector: FaultInjector, stats: RequestStats, log: RequestLog
) -> Blueprint:
    """Routes for the OpenAI dialect, sharing `injector` and `stats` with the rest of the app."""
    blueprint = Blueprint("openai", __name__)

    @blueprint.post("/v1/chat/completions")
    def chat_completions() -> Response:
        body = request.get_json(force=True, silent=True)
        log.record(request.path, body)
        return stats.answer(model_of(body), lambda: answer(body))

    def answer(body: Any) -> Response:
        _authenticate()
        model, messages, max_tokens, form = _validate(body)
        streamed, include_usage = _stream(body)
        plan = _plan(injector, model)

        def reply(violate: bool) -> Completion:
            return complete(model, messages, max_tokens, form="prose" if violate else form)

        # Faults come after validation, so a malformed request is still a plain 400.
        return serve(
            plan,
            model,
            streamed=streamed,
            injector=injector,
            stats=stats,
            error=openai_error,
            body=lambda violate: _completion_body(model, reply(violate)),
            events=lambda violate: _chunk_events(model, reply(violate), include_usage),
            stream_error=lambda _kind: None,
        )

    blueprint.register_error_handler(OpenAIError, _error_response)
    blueprint.after_request(_add_request_id)
    return blueprint


def _authenticate() -> None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise OpenAIError(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        )


def _validate(body: Any) -> tuple[str, list[dict[str, Any]], int | None, ReplyForm]:
    if not isinstance(body, dict):
        raise OpenAIError(400, "We could not parse the JSON body of your request.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise OpenAIError(400, "you must provide a model parameter")
    messages = body.get("messages")
    if messages is None:
        raise OpenAIError(
            400,
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    if not isinstance(messages, list):
        raise OpenAIError(
            400,
            "Invalid type for 'messages': expected an array.",
            param="messages",
            code="invalid_type",
        )
    if not messages:
        raise OpenAIError(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    for index, message in enumerate(messages):
        _validate_message(index, message)
    return model, messages, _max_tokens(body), _reply_form(body)


def _stream(body: dict[str, Any]) -> tuple[bool, bool]:
    """Whether the call is streamed, and whether a usage chunk ends its stream."""
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise OpenAIError(
            400,
            "Invalid type for 'stream': expected a boolean.",
            param="stream",
            code="invalid_type",
        )
    options = body.get("stream_options")
    if options is None:
        return stream, False
    if not stream:
        raise OpenAIError(
            400,
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
            code="invalid_value",
        )
    if not isinstance(options, dict):
        raise OpenAIError(
            400,
            "Invalid type for 'stream_options': expected an object.",
            param="stream_options",
            code="invalid_type",
        )
    return stream, options.get("include_usage") is True


def _validate_message(index: int, message: Any) -> None:
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        raise OpenAIError(
            400,
            f"Invalid value for 'messages[{index}].role': expected one of {sorted(ROLES)}.",
            param=f"messages[{index}].role",
            code="invalid_value",
        )
    # Assistant turns that only call tools legitimately carry a null content.
    if not isinstance(message.get("content"), str | list | None):
        raise OpenAIError(
            400,
            f"Invalid type for 'messages[{index}].content': expected a string or an array.",
            param=f"messages[{index}].content",
            code="invalid_type",
        )


def _max_tokens(body: dict[str, Any]) -> int | None:
    for name in MAX_TOKENS_PARAMS:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise OpenAIError(
                400,
                f"Invalid type for '{name}': expected an integer.",
                param=name,
                code="invalid_type",
            )
        if value < 1:
            raise OpenAIError(
                400,
                f"Invalid '{name}': integer below minimum value. "
                f"Expected a value >= 1, but got {value} instead.",
                param=name,
                code="integer_below_min_value",
            )
        return value
    return None


def _reply_form(body: dict[str, Any]) -> ReplyForm:
    """JSON replies for response_format json_object / json_schema, as the real API promises."""
    response_format = body.get("response_format")
    if response_format is None:
        return "text"
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind not in RESPONSE_FORMATS:
        raise OpenAIError(
            400,
            "Invalid value for 'response_format.type': expected one of "
            "'text', 'json_object', 'json_schema'.",
            param="response_format.type",
            code="invalid_value",
        )
    if kind == "json_schema" and not isinstance(response_format.get("json_schema"), dict):
        raise OpenAIError(
            400,
            "Missing required parameter: 'response_format.json_schema'.",
            param="response_format.json_schema",
            code="missing_required_parameter",
        )
    return "text" if kind == "text" else "json"


def _plan(injector: FaultInjector, model: str) -> Plan:
    try:
        return injector.plan(model, request.headers)
    except ValueError as exc:
        raise OpenAIError(400, str(exc)) from None


def _completion_body(model: str, completion: Completion) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": completion.text, "refusal": None},
                "logprobs": None,
                "finish_reason": _finish_reason(completion),
            }
        ],
        "usage": _usage(completion),
        "system_fingerprint": "sim",
    }


def _chunk_events(model: str, completion: Completion, include_usage: bool) -> list[str]:
    """The answer as OpenAI streams it: a role chunk, a chunk per piece of the reply, one with
    the finish reason, the usage chunk if asked for (no choices), then `[DONE]`."""
    head = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "sim",
    }
    # With include_usage, every chunk but the last carries `usage: null`.
    no_usage = {"usage": None} if include_usage else {}

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return sse({**head, "choices": [choice], **no_usage})

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": piece}) for piece in reply_pieces(completion.text)]
    events.append(chunk({}, _finish_reason(completion)))
    if include_usage:
        events.append(sse({**head, "choices": [], "usage": _usage(completion)}))
    events.append(sse("[DONE]"))
    return events


def _finish_reason(completion: Completion) -> str:
    return "length" if completion.truncated else "stop"


def _usage(completion: Completion) -> dict[str, int]:
    return {
        "prompt_tokens": completion.input_tokens,
        "completion_tokens": completion.output_tokens,
        "total_tokens": completion.input_tokens + completion.output_tokens,
    }


def _error_response(error: OpenAIError) -> tuple[Response, int]:
    body = {
        "error": {
            "message": error.message,
            "type": "invalid_request_error",
            "param": error.param,
            "code": error.code,
        }
    }
    return jsonify(body), error.status


def _add_request_id(response: Response) -> Response:
    response.headers["x-request-id"] = f"req_{uuid.uuid4().hex}"
    return response
