"""Both adapters stream through their official SDKs against the simulator: the text arrives in
pieces before the call returns, the response is exactly a plain call's, and a stream that
breaks comes out as one class of promptq's error tree."""

from __future__ import annotations

import time

import pytest

from tests.conftest import StartSim
from worker.providers.anthropic import AnthropicProvider
from worker.providers.base import (
    InvalidOutputError,
    Message,
    OverloadedError,
    ProviderConnectionError,
    ProviderError,
    ProviderRequest,
    ProviderTimeoutError,
    RateLimitedError,
)
from worker.providers.openai import OpenAIProvider

HELLO = (Message("system", "Be brief."), Message("user", "Tell me about streams of tokens."))


def _openai(base: str, timeout_s: float = 10) -> OpenAIProvider:
    return OpenAIProvider(api_key="sk-sim", base_url=f"{base}/v1", timeout_s=timeout_s)


def _anthropic(base: str, timeout_s: float = 10) -> AnthropicProvider:
    return AnthropicProvider(api_key="sk-ant-sim", base_url=base, timeout_s=timeout_s)


ADAPTERS = [(_openai, "gpt-4o-mini"), (_anthropic, "claude-haiku-4-5")]


@pytest.mark.parametrize(("adapter", "model"), ADAPTERS)
@pytest.mark.parametrize("max_tokens", [50, 3])
def test_a_streamed_call_answers_exactly_as_a_plain_one(
    start_sim: StartSim, adapter: object, model: str, max_tokens: int
) -> None:
    """Content, both finish reasons, usage and model are those of the same call unstreamed;
    the pieces handed over join to the content and begin before the call returns."""
    provider = adapter(start_sim(latency_ms=400))  # type: ignore[operator]
    request = ProviderRequest(model, HELLO, max_tokens=max_tokens)
    plain = provider.complete(request)
    pieces: list[tuple[float, str]] = []
    streamed = provider.complete(request, lambda text: pieces.append((time.monotonic(), text)))
    returned = time.monotonic()
    assert streamed == plain
    assert "".join(text for _, text in pieces) == plain.content
    # The simulator spreads its 400 ms over the stream's events: text came well before the end.
    assert len(pieces) > 1 and returned - pieces[0][0] > 0.1


@pytest.mark.parametrize(("adapter", "model"), ADAPTERS)
@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("cut", ProviderConnectionError),
        ("malformed", InvalidOutputError),
        ("rate_limit", RateLimitedError),
        ("hang", ProviderTimeoutError),
    ],
)
def test_a_broken_stream_is_one_class_of_the_error_tree(
    start_sim: StartSim, adapter: object, model: str, kind: str, cls: type[ProviderError]
) -> None:
    """A stream cut half way is a connection error, a malformed event invalid output, and the
    faults that refuse a call are what they are for a plain call."""
    sim_url = start_sim(fault=kind, hang_s=3)
    provider = adapter(sim_url, timeout_s=0.5)  # type: ignore[operator]
    with pytest.raises(ProviderError) as caught:
        provider.complete(ProviderRequest(model, HELLO, max_tokens=50), lambda _: None)
    assert type(caught.value) is cls


def test_anthropic_overload_inside_a_stream_is_overloaded(start_sim: StartSim) -> None:
    """Anthropic's overloaded error event, under the stream's 200, is a retryable 529."""
    provider = _anthropic(start_sim(fault="overloaded"))
    with pytest.raises(OverloadedError) as caught:
        provider.complete(ProviderRequest("claude-haiku-4-5", HELLO, max_tokens=50), lambda _: None)
    assert caught.value.retryable and caught.value.status == 529
