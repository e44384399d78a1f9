"""Provider adapters run the official SDKs against the simulator on a real socket, and every
failure comes out as one class of promptq's error tree."""

from __future__ import annotations

import pytest

from devstack.processes import free_port
from sim.replies import complete
from tests.conftest import StartSim
from worker.providers.anthropic import AnthropicProvider
from worker.providers.base import (
    BadRequestError,
    InvalidOutputError,
    Message,
    ModelNotFoundError,
    OverloadedError,
    ProviderAuthError,
    ProviderConnectionError,
    ProviderError,
    ProviderRequest,
    ProviderTimeoutError,
    RateLimitedError,
    ServerError,
    error_for_status,
)
from worker.providers.openai import OpenAIProvider

HELLO = (Message("system", "Be brief."), Message("user", "Hello there"))


def _openai(base: str, key: str = "sk-sim", timeout_s: float = 10) -> OpenAIProvider:
    return OpenAIProvider(api_key=key, base_url=f"{base}/v1", timeout_s=timeout_s)


def _anthropic(base: str, key: str = "sk-ant-sim", timeout_s: float = 10) -> AnthropicProvider:
    return AnthropicProvider(api_key=key, base_url=base, timeout_s=timeout_s)


def test_openai_adapter_parses_reply_and_usage(sim_url: str) -> None:
    """The OpenAI adapter returns the simulator's reply and reported usage."""
    response = _openai(sim_url).complete(ProviderRequest("gpt-4o-mini", HELLO, max_tokens=50))
    expected = complete("gpt-4o-mini", [{"role": m.role, "content": m.content} for m in HELLO], 50)
    assert response.content == expected.text
    assert (response.input_tokens, response.output_tokens) == (
        expected.input_tokens,
        expected.output_tokens,
    )
    assert (response.finish_reason, response.provider_finish_reason) == ("stop", "stop")


def test_anthropic_adapter_sends_system_as_parameter(sim_url: str) -> None:
    """System messages travel as Anthropic's `system` parameter, and usage is reported."""
    response = _anthropic(sim_url).complete(
        ProviderRequest("claude-haiku-4-5", HELLO, max_tokens=50)
    )
    expected = complete(
        "claude-haiku-4-5", [{"role": "user", "content": "Hello there"}], 50, system="Be brief."
    )
    assert response.content == expected.text
    assert response.input_tokens == expected.input_tokens
    assert (response.finish_reason, response.provider_finish_reason) == ("stop", "end_turn")


@pytest.mark.parametrize(
    ("adapter", "provider_reason"), [(_openai, "length"), (_anthropic, "max_tokens")]
)
def test_truncated_reply_reports_length(
    sim_url: str, adapter: object, provider_reason: str
) -> None:
    """A reply cut at max_tokens finishes with `length`, whatever the provider calls it."""
    provider = adapter(sim_url)  # type: ignore[operator]
    response = provider.complete(ProviderRequest("claude-haiku-4-5", HELLO, max_tokens=2))
    assert (response.finish_reason, response.provider_finish_reason) == ("length", provider_reason)
    assert response.output_tokens == 2


@pytest.mark.parametrize("adapter", [_openai, _anthropic])
def test_rejected_request_is_bad_request(sim_url: str, adapter: object) -> None:
    """A request the provider refuses (400) is a final BadRequestError."""
    provider = adapter(sim_url)  # type: ignore[operator]
    with pytest.raises(BadRequestError):
        provider.complete(ProviderRequest("gpt-4o-mini", (), max_tokens=5))


@pytest.mark.parametrize("adapter", [_openai, _anthropic])
def test_unconfigured_key_is_auth_error(sim_url: str, adapter: object) -> None:
    """With no API key configured for the provider, a call is a final ProviderAuthError."""
    provider = adapter(sim_url, key="")  # type: ignore[operator]
    with pytest.raises(ProviderAuthError):
        provider.complete(ProviderRequest("gpt-4o-mini", HELLO, max_tokens=5))


@pytest.mark.parametrize("adapter", [_openai, _anthropic])
def test_refused_connection_is_retryable(adapter: object) -> None:
    """Nothing listening is a retryable ProviderConnectionError."""
    provider = adapter(f"http://127.0.0.1:{free_port()}")  # type: ignore[operator]
    with pytest.raises(ProviderConnectionError) as caught:
        provider.complete(ProviderRequest("gpt-4o-mini", HELLO, max_tokens=5))
    assert caught.value.retryable


@pytest.mark.parametrize("adapter", [_openai, _anthropic])
def test_slow_answer_is_a_timeout(start_sim: StartSim, adapter: object) -> None:
    """An answer slower than the per-attempt timeout is a retryable ProviderTimeoutError."""
    provider = adapter(start_sim(latency_ms=2000), timeout_s=0.3)  # type: ignore[operator]
    with pytest.raises(ProviderTimeoutError) as caught:
        provider.complete(ProviderRequest("gpt-4o-mini", HELLO, max_tokens=5))
    assert caught.value.retryable


@pytest.mark.parametrize(
    ("adapter", "kind", "cls", "status"),
    [
        (_openai, "rate_limit", RateLimitedError, 429),
        (_anthropic, "rate_limit", RateLimitedError, 429),
        (_openai, "server_error", ServerError, 500),
        (_anthropic, "server_error", ServerError, 500),
        (_openai, "bad_gateway", ServerError, 502),
        (_anthropic, "bad_gateway", ServerError, 502),
        (_openai, "unavailable", ServerError, 503),
        (_anthropic, "unavailable", ServerError, 503),
        # OpenAI has no 529: it reports overload as a plain 503.
        (_openai, "overloaded", ServerError, 503),
        (_anthropic, "overloaded", OverloadedError, 529),
        (_openai, "hang", ProviderTimeoutError, None),
        (_anthropic, "hang", ProviderTimeoutError, None),
        (_openai, "drop", ProviderConnectionError, None),
        (_anthropic, "drop", ProviderConnectionError, None),
        (_openai, "malformed", InvalidOutputError, None),
        (_anthropic, "malformed", InvalidOutputError, None),
        (_openai, "cut", ProviderConnectionError, None),
        (_anthropic, "cut", ProviderConnectionError, None),
    ],
)
def test_simulated_faults_map_onto_the_error_tree(
    start_sim: StartSim, adapter: object, kind: str, cls: type[ProviderError], status: int | None
) -> None:
    """Every simulator fault comes out of both adapters as its one promptq error class."""
    sim_url = start_sim(fault=kind, retry_after_s=2, hang_s=3)
    provider = adapter(sim_url, timeout_s=0.5)  # type: ignore[operator]

    with pytest.raises(ProviderError) as caught:
        provider.complete(ProviderRequest("gpt-4o-mini", HELLO, max_tokens=5))

    assert type(caught.value) is cls
    assert caught.value.status == status
    assert caught.value.retryable is (cls is not InvalidOutputError)
    if isinstance(caught.value, RateLimitedError):
        assert caught.value.retry_after_s == 2.0


@pytest.mark.parametrize(
    ("status", "headers", "cls", "retryable"),
    [
        (429, {"retry-after": "7"}, RateLimitedError, True),
        (529, {}, OverloadedError, True),
        (503, {}, ServerError, True),
        (500, {}, ServerError, True),
        (408, {}, ProviderTimeoutError, True),
        (400, {}, BadRequestError, False),
        (422, {}, BadRequestError, False),
        (401, {}, ProviderAuthError, False),
        (403, {}, ProviderAuthError, False),
        (404, {}, ModelNotFoundError, False),
    ],
)
def test_status_classification(
    status: int, headers: dict[str, str], cls: type, retryable: bool
) -> None:
    """HTTP statuses map onto the error tree; 429 keeps the provider's Retry-After."""
    error = error_for_status(status, "boom", headers)
    assert type(error) is cls
    assert error.retryable is retryable
    if isinstance(error, RateLimitedError):
        assert error.retry_after_s == 7.0


def test_retry_after_ms_wins_over_seconds() -> None:
    """`retry-after-ms` is more precise than `retry-after` and is preferred."""
    error = error_for_status(429, "slow down", {"retry-after-ms": "1500", "retry-after": "9"})
    assert isinstance(error, RateLimitedError)
    assert error.retry_after_s == 1.5
