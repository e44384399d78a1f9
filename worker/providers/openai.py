"""OpenAI chat completions through the official `openai` SDK."""

from __future__ import annotations

from typing import Any

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from shared.finish_reasons import FinishReason, normalize
from worker.providers.base import (
    ContentFilteredError,
    InvalidOutputError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderRequest,
    ProviderResponse,
    SdkErrorTypes,
    TextSink,
    translate_sdk_error,
)

_ERRORS = SdkErrorTypes(
    timeout=openai.APITimeoutError,
    connection=openai.APIConnectionError,
    status=openai.APIStatusError,
    invalid_response=openai.APIResponseValidationError,
    base=openai.OpenAIError,
)
# OpenAI's finish reasons in promptq's words; `function_call` is the deprecated spelling of
# `tool_calls`.
FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


class OpenAIProvider:
    name = "openai"

    def __init__(self, *, api_key: str, base_url: str, timeout_s: float) -> None:
        # Retries belong to promptq's policy, which sees every attempt; the SDK's are off.
        # Without a key the SDK refuses to build a client; jobs then fail with a clear cause.
        self._client = (
            openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0)
            if api_key
            else None
        )

    def complete(
        self, request: ProviderRequest, on_text: TextSink | None = None
    ) -> ProviderResponse:
        if self._client is None:
            raise ProviderAuthError("promptq has no OPENAI_API_KEY configured.")
        if on_text is not None:
            return _streamed(self._client, request, on_text)
        try:
            # The client's own POST rather than chat.completions.create: create() runs its typed
            # parameter transform over this plain JSON body, which changes nothing on the wire and
            # was a sixth of a completed job's worker CPU. Request building, HTTP, errors and the
            # typed ChatCompletion answer are the SDK's as ever.
            completion = self._client.post(
                "/chat/completions", body=_body(request), cast_to=ChatCompletion
            )
        except Exception as exc:
            raise translate_sdk_error(exc, _ERRORS) from exc
        if not completion.choices or completion.usage is None:
            raise InvalidOutputError("The provider answered without choices or usage.")
        choice = completion.choices[0]
        return _response(
            choice.message.content or "",
            choice.finish_reason or "stop",
            completion.usage.prompt_tokens,
            completion.usage.completion_tokens,
            completion.model,
        )


def _streamed(
    client: openai.OpenAI, request: ProviderRequest, on_text: TextSink
) -> ProviderResponse:
    """The same call streamed: `on_text` gets each piece of content as its chunk arrives; the
    usage comes in a last chunk of its own (include_usage), with no choices."""
    body = {**_body(request), "stream": True, "stream_options": {"include_usage": True}}
    pieces: list[str] = []
    finish_reason: str | None = None
    usage = None
    model = request.model
    try:
        chunks = client.post(
            "/chat/completions",
            body=body,
            cast_to=ChatCompletionChunk,
            stream=True,
            stream_cls=openai.Stream[ChatCompletionChunk],
        )
        for chunk in chunks:
            model = chunk.model
            usage = chunk.usage or usage
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            if choice.delta.content:
                pieces.append(choice.delta.content)
                on_text(choice.delta.content)
            finish_reason = choice.finish_reason or finish_reason
    except Exception as exc:
        raise translate_sdk_error(exc, _ERRORS) from exc
    if finish_reason is None or usage is None:
        raise ProviderConnectionError("The provider's stream ended before its last chunk.")
    return _response(
        "".join(pieces), finish_reason, usage.prompt_tokens, usage.completion_tokens, model
    )


def _response(
    content: str, provider_reason: str, input_tokens: int, output_tokens: int, model: str
) -> ProviderResponse:
    finish_reason = normalize(provider_reason, FINISH_REASONS)
    if finish_reason == "content_filter":
        raise ContentFilteredError("The provider's content filter withheld the answer.")
    return ProviderResponse(
        content=content,
        finish_reason=finish_reason,
        provider_finish_reason=provider_reason,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        model=model,
    )


def _body(request: ProviderRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "max_completion_tokens": request.max_tokens,
    }
    if request.temperature is not None:
        body["temperature"] = request.temperature
    return body
