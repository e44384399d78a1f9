"""Streamed answers in both wire formats, read by the official SDKs on a real socket: the same
reply and usage as a plain call, spread over the configured latency, and the faults that break
a stream."""

import time
from typing import Any

import anthropic
import httpx2
import openai
import pytest
import requests

from devstack.processes import wait_until
from sim.replies import complete
from tests.conftest import StartSim

OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-haiku-4-5"
CHAT = [{"role": "user", "content": "Tell me about streams of tokens, please."}]
LATENCY_MS = 1000


def openai_client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0)


def anthropic_client(base_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, api_key="sk-ant-test", max_retries=0)


def openai_stream(base_url: str, max_tokens: int = 100, **kwargs: Any) -> Any:
    return openai_client(base_url).chat.completions.create(
        model=OPENAI_MODEL, messages=CHAT, max_completion_tokens=max_tokens, stream=True, **kwargs
    )


def anthropic_stream(base_url: str, max_tokens: int = 100, **kwargs: Any) -> Any:
    return anthropic_client(base_url).messages.create(
        model=ANTHROPIC_MODEL, messages=CHAT, max_tokens=max_tokens, stream=True, **kwargs
    )


def _spread_over_the_latency(arrivals: list[float]) -> bool:
    """The pieces came over a good part of the latency, not all at once at its end (a busy
    machine may delay the first; it cannot bring the last forward)."""
    return arrivals[-1] - arrivals[0] > LATENCY_MS / 1000 * 0.4


def test_openai_stream_carries_the_reply_finish_reason_and_usage(start_sim: StartSim) -> None:
    """Chunks of content, then the finish reason, then (include_usage) one chunk without
    choices holding the usage a plain call reports; they arrive spread over the latency."""
    sim_url = start_sim(latency_ms=LATENCY_MS)
    expected = complete(OPENAI_MODEL, CHAT, 100)
    started = time.monotonic()
    arrivals: list[float] = []
    pieces: list[str] = []
    finish_reasons: list[str] = []
    usage = None
    for chunk in openai_stream(sim_url, stream_options={"include_usage": True}):
        assert chunk.object == "chat.completion.chunk" and chunk.model == OPENAI_MODEL
        if not chunk.choices:
            usage = chunk.usage
            continue
        assert chunk.usage is None
        choice = chunk.choices[0]
        if choice.delta.content:
            pieces.append(choice.delta.content)
            arrivals.append(time.monotonic() - started)
        if choice.finish_reason:
            finish_reasons.append(choice.finish_reason)
    assert "".join(pieces) == expected.text and len(pieces) > 3
    assert finish_reasons == ["stop"]
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        expected.input_tokens,
        expected.output_tokens,
    )
    assert _spread_over_the_latency(arrivals)


def test_openai_stream_without_include_usage_has_no_usage_chunk(sim_url: str) -> None:
    """Without stream_options the stream ends at the finish reason, as OpenAI's does."""
    chunks = list(openai_stream(sim_url, max_tokens=2))
    assert all(chunk.choices and chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "length"


def test_anthropic_stream_carries_the_reply_stop_reason_and_usage(start_sim: StartSim) -> None:
    """messages.stream(): the text deltas join to the reply; the final message has the stop
    reason and the usage a plain call reports; the text arrives spread over the latency."""
    sim_url = start_sim(latency_ms=LATENCY_MS)
    expected = complete(ANTHROPIC_MODEL, CHAT, 100)
    started = time.monotonic()
    arrivals: list[float] = []
    with anthropic_client(sim_url).messages.stream(
        model=ANTHROPIC_MODEL, messages=CHAT, max_tokens=100
    ) as stream:
        pieces = []
        for text in stream.text_stream:
            pieces.append(text)
            arrivals.append(time.monotonic() - started)
        message = stream.get_final_message()
    assert "".join(pieces) == expected.text and len(pieces) > 3
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (
        expected.input_tokens,
        expected.output_tokens,
    )
    assert _spread_over_the_latency(arrivals)


def test_anthropic_stream_events_in_order(sim_url: str) -> None:
    """The raw events are Anthropic's, in its order; a cut reply stops at max_tokens."""
    events = list(anthropic_stream(sim_url, max_tokens=2))
    kinds = [event.type for event in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}
    assert events[-2].delta.stop_reason == "max_tokens"
    assert events[-2].usage.output_tokens == 2


@pytest.mark.parametrize("stream", [openai_stream, anthropic_stream])
def test_a_refusing_fault_comes_before_the_stream(sim_url: str, stream: Any) -> None:
    """An error-status fault is the status itself: the SDK raises before any event."""
    sdk = openai if stream is openai_stream else anthropic
    with pytest.raises(sdk.RateLimitError) as caught:
        stream(sim_url, extra_headers={"x-sim-fault": "rate_limit", "x-sim-retry-after": "3"})
    assert caught.value.response.headers["retry-after"] == "3"


@pytest.mark.parametrize(
    ("stream", "error"),
    [(openai_stream, openai.APIConnectionError), (anthropic_stream, httpx2.RemoteProtocolError)],
)
def test_a_cut_stream_ends_half_way_with_a_connection_error(
    sim_url: str, stream: Any, error: type[Exception]
) -> None:
    """`cut` sends half the events, then closes the connection with no end of stream."""
    received = []
    with pytest.raises(error):
        for event in stream(sim_url, extra_headers={"x-sim-fault": "cut"}):
            received.append(event)
    assert received


@pytest.mark.parametrize("stream", [openai_stream, anthropic_stream])
def test_a_malformed_stream_has_an_event_that_is_no_json(sim_url: str, stream: Any) -> None:
    """`malformed` sends half the events, then one whose data is cut short."""
    received = []
    with pytest.raises(ValueError):
        for event in stream(sim_url, extra_headers={"x-sim-fault": "malformed"}):
            received.append(event)
    assert received


def test_anthropic_overload_arrives_inside_the_stream(sim_url: str) -> None:
    """Anthropic reports overload in a begun stream as an error event, which the SDK raises
    as a status error carrying overloaded_error."""
    received = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        for event in anthropic_stream(sim_url, extra_headers={"x-sim-fault": "overloaded"}):
            received.append(event)
    assert received[0].type == "message_start"
    assert caught.value.body["error"]["type"] == "overloaded_error"


def test_schema_violation_streams_prose(sim_url: str) -> None:
    """schema_violation streams the prose reply instead of the JSON asked for."""
    chunks = openai_stream(
        sim_url,
        response_format={"type": "json_object"},
        extra_headers={"x-sim-fault": "schema_violation"},
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == complete(OPENAI_MODEL, CHAT, 100, form="prose").text


def test_a_stream_is_in_flight_until_its_last_event(start_sim: StartSim) -> None:
    """/sim/stats counts a streamed call as in flight while its events are still being sent."""
    sim_url = start_sim(latency_ms=1500)
    stream = openai_stream(sim_url)
    next(iter(stream))

    def in_flight() -> int:
        return requests.get(f"{sim_url}/sim/stats", timeout=5).json()["in_flight"]

    assert in_flight() == 1
    for _ in stream:
        pass
    wait_until(lambda: in_flight() == 0, timeout=5, what="the stream to end")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"stream": "yes"}, "stream"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
        ({"stream": True, "stream_options": "usage"}, "stream_options"),
    ],
)
def test_bad_stream_parameters_are_openai_400s(
    sim_url: str, body: dict[str, Any], param: str
) -> None:
    """A non-boolean stream, or stream_options without streaming, is refused as OpenAI does."""
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client(sim_url).chat.completions.create(
            model=OPENAI_MODEL, messages=CHAT, extra_body=body
        )
    assert caught.value.param == param
