"""The provider simulator, driven through the official SDKs against a real socket."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import anthropic
import openai
import pytest
import requests

from devstack.processes import free_port, wait_until
from sim.replies import complete, prompt_tokens, reply_text

REPO_ROOT = Path(__file__).resolve().parents[2]
OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-haiku-4-5"
ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
CHAT = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy? " + "Please explain at length. " * 20},
]


def openai_client(base_url: str) -> openai.OpenAI:
    # No retries, so every rejection surfaces as the SDK's own exception.
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="sk-test", max_retries=0)


def anthropic_client(base_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, api_key="sk-ant-test", max_retries=0)


def test_openai_completion_is_parsed_with_deterministic_content_and_usage(sim_url: str) -> None:
    """An OpenAI SDK call parses and reports the reply and usage sim.replies computes."""
    expected = complete(OPENAI_MODEL, CHAT, max_tokens=1000)
    client = openai_client(sim_url)

    first = client.chat.completions.create(model=OPENAI_MODEL, messages=CHAT, max_tokens=1000)
    second = client.chat.completions.create(model=OPENAI_MODEL, messages=CHAT, max_tokens=1000)

    assert first.object == "chat.completion"
    assert first.model == OPENAI_MODEL
    assert first.id.startswith("chatcmpl-")
    assert first._request_id and first._request_id.startswith("req_")
    choice = first.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == expected.text
    assert choice.message.content.startswith(f"Simulated reply from {OPENAI_MODEL} to: And of")
    assert choice.finish_reason == "stop"
    assert first.usage is not None
    assert first.usage.prompt_tokens == expected.input_tokens == prompt_tokens(CHAT)
    assert first.usage.completion_tokens == expected.output_tokens
    assert first.usage.total_tokens == expected.input_tokens + expected.output_tokens
    assert second.choices[0].message.content == choice.message.content
    assert second.usage == first.usage


def test_openai_truncates_to_max_tokens_with_finish_reason_length(sim_url: str) -> None:
    """A reply longer than max_tokens is cut to fit and reported with finish_reason 'length'."""
    client = openai_client(sim_url)

    for param in ("max_tokens", "max_completion_tokens"):
        result = client.chat.completions.create(model=OPENAI_MODEL, messages=CHAT, **{param: 5})

        assert result.choices[0].finish_reason == "length"
        assert result.choices[0].message.content == reply_text(OPENAI_MODEL, CHAT)[:20]
        assert result.usage is not None
        assert result.usage.completion_tokens == 5


def test_anthropic_message_is_parsed_with_system_prompt_counted(sim_url: str) -> None:
    """An Anthropic SDK call parses; input usage includes the system prompt."""
    messages = [{"role": "user", "content": "Name three primes."}]
    system = "Answer in one line."
    expected = complete(ANTHROPIC_MODEL, messages, max_tokens=256, system=system)
    client = anthropic_client(sim_url)

    message = client.messages.create(
        model=ANTHROPIC_MODEL, max_tokens=256, system=system, messages=messages
    )

    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == ANTHROPIC_MODEL
    assert message.id.startswith("msg_")
    assert message._request_id and message._request_id.startswith("req_")
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == expected.text
    assert (
        message.content[0].text == f"Simulated reply from {ANTHROPIC_MODEL} to: Name three primes."
    )
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == expected.input_tokens > prompt_tokens(messages)
    assert message.usage.output_tokens == expected.output_tokens


def test_anthropic_truncates_to_max_tokens_with_stop_reason_max_tokens(sim_url: str) -> None:
    """A reply longer than max_tokens is cut to fit and reported with stop_reason 'max_tokens'."""
    messages = [{"role": "user", "content": "Tell me a long story."}]

    message = anthropic_client(sim_url).messages.create(
        model=ANTHROPIC_MODEL, max_tokens=3, messages=messages
    )

    assert message.stop_reason == "max_tokens"
    assert message.content[0].text == reply_text(ANTHROPIC_MODEL, messages)[:12]
    assert message.usage.output_tokens == 3


def test_empty_messages_raise_the_sdks_bad_request_errors(sim_url: str) -> None:
    """Empty messages are rejected with 400s that each SDK maps to its BadRequestError."""
    with pytest.raises(openai.BadRequestError) as openai_error:
        openai_client(sim_url).chat.completions.create(model=OPENAI_MODEL, messages=[])
    with pytest.raises(anthropic.BadRequestError) as anthropic_error:
        anthropic_client(sim_url).messages.create(model=ANTHROPIC_MODEL, max_tokens=10, messages=[])

    assert openai_error.value.status_code == 400
    assert openai_error.value.param == "messages"
    assert openai_error.value.type == "invalid_request_error"
    assert anthropic_error.value.status_code == 400
    assert anthropic_error.value.body["error"]["type"] == "invalid_request_error"


def test_missing_fields_give_provider_shaped_400s(sim_url: str) -> None:
    """Missing model, messages, max_tokens or anthropic-version give the real error shapes."""
    openai_url = f"{sim_url}/v1/chat/completions"
    openai_auth = {"Authorization": "Bearer sk-test"}
    no_messages = requests.post(openai_url, json={"model": OPENAI_MODEL}, headers=openai_auth)
    no_model = requests.post(openai_url, json={"messages": CHAT}, headers=openai_auth)

    anthropic_url = f"{sim_url}/v1/messages"
    user = [{"role": "user", "content": "hi"}]
    no_max_tokens = requests.post(
        anthropic_url, json={"model": ANTHROPIC_MODEL, "messages": user}, headers=ANTHROPIC_HEADERS
    )
    no_version = requests.post(
        anthropic_url,
        json={"model": ANTHROPIC_MODEL, "max_tokens": 5, "messages": user},
        headers={"x-api-key": "sk-ant-test"},
    )

    assert no_messages.status_code == 400
    assert no_messages.json() == {
        "error": {
            "message": "Missing required parameter: 'messages'.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "missing_required_parameter",
        }
    }
    assert no_model.status_code == 400
    assert no_model.json()["error"]["type"] == "invalid_request_error"
    for response, message in [
        (no_max_tokens, "max_tokens: Field required"),
        (no_version, "anthropic-version: header is required"),
    ]:
        assert response.status_code == 400
        assert response.json() == {
            "type": "error",
            "error": {"type": "invalid_request_error", "message": message},
        }
        assert response.headers["request-id"].startswith("req_")


def test_missing_api_key_gives_401(sim_url: str) -> None:
    """Requests without credentials get 401 in each provider's error shape."""
    openai_response = requests.post(
        f"{sim_url}/v1/chat/completions", json={"model": OPENAI_MODEL, "messages": CHAT}
    )
    anthropic_response = requests.post(
        f"{sim_url}/v1/messages",
        json={"model": ANTHROPIC_MODEL, "max_tokens": 5, "messages": CHAT[1:2]},
        headers={"anthropic-version": "2023-06-01"},
    )

    assert openai_response.status_code == 401
    assert openai_response.json()["error"]["type"] == "invalid_request_error"
    assert openai_response.headers["x-request-id"].startswith("req_")
    assert anthropic_response.status_code == 401
    assert anthropic_response.json() == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "x-api-key header is required"},
    }


def test_anthropic_accepts_x_api_key_header(sim_url: str) -> None:
    """The real API's x-api-key header authenticates (the SDK itself sends a Bearer token)."""
    response = requests.post(
        f"{sim_url}/v1/messages",
        json={"model": ANTHROPIC_MODEL, "max_tokens": 50, "messages": CHAT[1:2]},
        headers=ANTHROPIC_HEADERS,
    )

    assert response.status_code == 200
    assert response.json()["content"][0]["text"] == reply_text(ANTHROPIC_MODEL, CHAT[1:2])


def test_stats_count_requests_and_concurrency(start_sim: Callable[..., str]) -> None:
    """/sim/stats counts requests per model and sees overlapping requests in flight."""
    sim_url = start_sim(latency_ms=200)
    client = openai_client(sim_url)
    barrier = threading.Barrier(5)
    elapsed: list[float] = []

    def call() -> None:
        barrier.wait()
        started = time.monotonic()
        client.chat.completions.create(model=OPENAI_MODEL, messages=CHAT)
        elapsed.append(time.monotonic() - started)

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    anthropic_client(sim_url).messages.create(
        model=ANTHROPIC_MODEL, max_tokens=5, messages=CHAT[1:2]
    )
    stats = requests.get(f"{sim_url}/sim/stats").json()

    assert len(elapsed) == 5
    assert min(elapsed) >= 0.2
    assert stats["total_requests"] == 6
    assert stats["requests_by_model"] == {OPENAI_MODEL: 5, ANTHROPIC_MODEL: 1}
    assert stats["in_flight"] == 0
    assert stats["max_in_flight"] >= 2

    reset = requests.post(f"{sim_url}/sim/reset").json()

    assert reset == {
        "total_requests": 0,
        "requests_by_model": {},
        "in_flight": 0,
        "max_in_flight": 0,
        "max_in_flight_by_model": {},
        "faults_by_kind": {},
    }


def test_latency_header_delays_the_response(sim_url: str) -> None:
    """x-sim-latency-ms delays a completion by at least that many milliseconds."""
    started = time.monotonic()
    openai_client(sim_url).chat.completions.create(
        model=OPENAI_MODEL, messages=CHAT, extra_headers={"x-sim-latency-ms": "300"}
    )

    assert time.monotonic() - started >= 0.3


def wait_until_healthy(process: subprocess.Popen[bytes], url: str, timeout: float) -> None:
    def healthy() -> bool:
        if process.poll() is not None:
            pytest.fail("simulator exited before becoming healthy")
        return requests.get(url, timeout=1).json() == {"status": "ok"}

    wait_until(healthy, timeout=timeout, interval=0.05, what=url)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_and_exits_zero_on_signal(stop_signal: signal.Signals) -> None:
    """`python -m sim` serves /health and exits 0 soon after SIGTERM or SIGINT."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sim", "--port", str(port), "--latency-ms", "0"],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stderr=subprocess.PIPE,
    )
    try:
        wait_until_healthy(process, f"http://127.0.0.1:{port}/health", timeout=15)
        process.send_signal(stop_signal)
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert process.returncode == 0, stderr.decode()
    assert b"GET /health" in stderr
