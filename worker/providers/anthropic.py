"""Anthropic messages through the official `anthropic` SDK."""

from __future__ import annotations

from typing import Any

import anthropic
from anthropic.types import Message as AnthropicMessage

from shared.finish_reasons import FinishReason, normalize
from worker.providers.base import (
    ContentFilteredError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderError,
    ProviderRequest,
    ProviderResponse,
    SdkErrorTypes,
    TextSink,
    error_for_status,
    translate_sdk_error,
)

_ERRORS = SdkErrorTypes(
    timeout=anthropic.APITimeoutError,
    connection=anthropic.APIConnectionError,
    status=anthropic.APIStatusError,
    invalid_response=anthropic.APIResponseValidationError,
    base=anthropic.AnthropicError,
)
# Anthropic's stop reasons in promptq's words. `pause_turn` (a long server-tool turn paused so
# the caller can send it back to be continued) and a full context window are answers cut short
# that could go on, as `max_tokens` is: `length`. `refusal` is the model declining to answer.
STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "pause_turn": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
# An error event inside a stream already begun arrives under the stream's 200: its type says
# which status it stands for (Anthropic's error types, as its docs list them).
_STATUS_OF_ERROR_EVENT = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, *, api_key: str, base_url: str, timeout_s: float) -> None:
        # Retries belong to promptq's policy, which sees every attempt; the SDK's are off.
        # Without a key the SDK refuses to build a client; jobs then fail with a clear cause.
        self._client = (
            anthropic.Anthropic(
                api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0
            )
            if api_key
            else None
        )

    def complete(
        self, request: ProviderRequest, on_text: TextSink | None = None
    ) -> ProviderResponse:
        if self._client is None:
            raise ProviderAuthError("promptq has no ANTHROPIC_API_KEY configured.")
        params = _params(request)
        try:
            if on_text is None:
                message = self._client.messages.create(**params)
            else:
                message = _streamed(self._client, params, on_text)
        except Exception as exc:
            raise _translate(exc) from exc
        if on_text is not None and message.stop_reason is None:
            raise ProviderConnectionError("The provider's stream ended before its message_stop.")
        provider_reason = message.stop_reason or "end_turn"
        finish_reason = normalize(provider_reason, STOP_REASONS)
        if finish_reason == "content_filter":
            raise ContentFilteredError("The provider refused to answer.")
        text = "".join(block.text for block in message.content if block.type == "text")
        return ProviderResponse(
            content=text,
            finish_reason=finish_reason,
            provider_finish_reason=provider_reason,
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
            model=message.model,
        )


def _params(request: ProviderRequest) -> dict[str, Any]:
    # Anthropic takes system prompts as a parameter, not as messages.
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    params: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": [
            {"role": m.role, "content": m.content} for m in request.messages if m.role != "system"
        ],
    }
    if system:
        params["system"] = system
    if request.temperature is not None:
        params["temperature"] = min(request.temperature, 1.0)
    return params


def _streamed(
    client: anthropic.Anthropic, params: dict[str, Any], on_text: TextSink
) -> AnthropicMessage:
    """The same call streamed: `on_text` gets each text delta as it arrives; the SDK builds
    the final message (content, stop reason, usage) from the events."""
    with client.messages.stream(**params) as stream:
        for text in stream.text_stream:
            on_text(text)
        return stream.get_final_message()


def _translate(exc: Exception) -> ProviderError:
    if isinstance(exc, anthropic.APIStatusError) and exc.status_code < 400:
        body = exc.body if isinstance(exc.body, dict) else {}
        kind = (body.get("error") or {}).get("type")
        return error_for_status(_STATUS_OF_ERROR_EVENT.get(kind, 500), str(exc), {})
    return translate_sdk_error(exc, _ERRORS)
