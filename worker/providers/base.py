"""The contract every provider adapter meets, and the one error tree they translate into.

SDK exceptions are classified here, once, at the provider boundary; nothing above this layer
knows an SDK's exception types.

    ProviderError
    ├── RetryableProviderError        another try of the same model may succeed
    │   ├── RateLimitedError          429; carries the provider's Retry-After
    │   ├── OverloadedError           Anthropic's 529
    │   ├── ProviderTimeoutError      408, or no answer within the per-attempt timeout
    │   ├── ProviderConnectionError   refused, reset or dropped connection; a stream cut short
    │   └── ServerError               any other 5xx
    └── FinalProviderError            retrying the same request cannot help
        ├── BadRequestError           400 / 422 (includes context too long)
        ├── ProviderAuthError         401 / 403: promptq's own key is wrong
        ├── ModelNotFoundError        404
        ├── ContentFilteredError      the provider refused to answer
        └── InvalidOutputError        an answer that cannot be parsed or used
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2

from shared.finish_reasons import FinishReason


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class ProviderRequest:
    model: str
    messages: tuple[Message, ...]
    max_tokens: int
    temperature: float | None = None

    @classmethod
    def from_job(cls, model: str, request: Mapping[str, Any]) -> ProviderRequest:
        """Build from the `request` JSON stored on a job row."""
        return cls(
            model=model,
            messages=tuple(Message(m["role"], m["content"]) for m in request["messages"]),
            max_tokens=int(request["max_tokens"]),
            temperature=request.get("temperature"),
        )


@dataclass(frozen=True)
class ProviderResponse:
    content: str
    finish_reason: FinishReason
    # The provider's own word for it (OpenAI's `finish_reason`, Anthropic's `stop_reason`).
    provider_finish_reason: str
    input_tokens: int
    output_tokens: int
    model: str


# Takes each piece of an answer's text as a streamed call receives it.
TextSink = Callable[[str], None]


class Provider(Protocol):
    name: str

    def complete(
        self, request: ProviderRequest, on_text: TextSink | None = None
    ) -> ProviderResponse:
        """One call to the model; raises only ProviderError subclasses. With `on_text` the
        answer is streamed and each piece of its text handed over as it arrives; the response
        (content, finish reason, usage) is the same either way."""
        ...


class ProviderError(Exception):
    code = "provider_error"
    retryable = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class RetryableProviderError(ProviderError):
    retryable = True


class RateLimitedError(RetryableProviderError):
    code = "rate_limited"

    def __init__(
        self, message: str, *, status: int | None = 429, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after_s = retry_after_s


class OverloadedError(RetryableProviderError):
    code = "overloaded"


class ProviderTimeoutError(RetryableProviderError):
    code = "timeout"


class ProviderConnectionError(RetryableProviderError):
    code = "connection_error"


class ServerError(RetryableProviderError):
    code = "server_error"


class FinalProviderError(ProviderError):
    pass


class BadRequestError(FinalProviderError):
    code = "bad_request"


class ProviderAuthError(FinalProviderError):
    code = "provider_auth_failed"


class ModelNotFoundError(FinalProviderError):
    code = "model_not_found"


class ContentFilteredError(FinalProviderError):
    code = "content_filtered"


class InvalidOutputError(FinalProviderError):
    code = "invalid_output"


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (delta-seconds form)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue
    return None


def error_for_status(status: int, message: str, headers: Mapping[str, str]) -> ProviderError:
    """Classify an HTTP error answer from any provider."""
    if status == 429:
        return RateLimitedError(message, retry_after_s=parse_retry_after(headers))
    if status == 529:
        return OverloadedError(message, status=status)
    if status == 408:
        return ProviderTimeoutError(message, status=status)
    if status >= 500:
        return ServerError(message, status=status)
    if status in (401, 403):
        return ProviderAuthError(message, status=status)
    if status == 404:
        return ModelNotFoundError(message, status=status)
    return BadRequestError(message, status=status)


@dataclass(frozen=True)
class SdkErrorTypes:
    """The exception classes of one official SDK, which share a shape across both SDKs."""

    timeout: type[Exception]
    connection: type[Exception]
    status: type[Exception]
    invalid_response: type[Exception]
    base: type[Exception]


def translate_sdk_error(exc: Exception, types: SdkErrorTypes) -> ProviderError:
    """Map an SDK exception onto the error tree above. A streamed answer's body is read after
    the SDK has handed it over, and an SDK may let the HTTP client's errors through from there
    (anthropic does): those count as the SDK's own."""
    if isinstance(exc, types.timeout | httpx2.TimeoutException):
        return ProviderTimeoutError(str(exc) or "The provider did not answer in time.")
    if isinstance(exc, types.connection | httpx2.TransportError):
        return ProviderConnectionError(str(exc) or "Could not connect to the provider.")
    if isinstance(exc, types.status):
        response = getattr(exc, "response", None)
        headers = dict(response.headers) if response is not None else {}
        return error_for_status(getattr(exc, "status_code", 500), str(exc), headers)
    if isinstance(exc, types.invalid_response | types.base | ValueError):
        return InvalidOutputError(f"The provider's answer could not be used: {exc}")
    raise exc
