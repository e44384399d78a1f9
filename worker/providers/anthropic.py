"""Anthropic messages through the official `anthropic` SDK."""

from __future__ import annotations

import anthropic

from shared.finish_reasons import FinishReason, normalize
from worker.providers.base import (
    ContentFilteredError,
    ProviderAuthError,
    ProviderRequest,
    ProviderResponse,
    SdkErrorTypes,
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

    def complete(self, request: ProviderRequest) -> ProviderResponse:
        if self._client is None:
            raise ProviderAuthError("promptq has no ANTHROPIC_API_KEY configured.")
        # Anthropic takes system prompts as a parameter, not as messages.
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        messages = [
            {"role": m.role, "content": m.content} for m in request.messages if m.role != "system"
        ]
        optional: dict[str, object] = {}
        if system:
            optional["system"] = system
        if request.temperature is not None:
            optional["temperature"] = min(request.temperature, 1.0)
        try:
            message = self._client.messages.create(
                model=request.model, max_tokens=request.max_tokens, messages=messages, **optional
            )
        except Exception as exc:
            raise translate_sdk_error(exc, _ERRORS) from exc
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
