"""Live token streams on real processes: gunicorn relaying, a Celery worker streaming through the
official SDKs from the simulator, Postgres and Redis. Tokens arrive before the job finishes, a
late client gets the earlier ones, the result event is GET's job, a stream cut half way falls
back in view, a finished job's stream is its result alone, a quiet stream is kept alive."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from devstack.processes import wait_until
from promptq.client import Client, FallbackEvent, Job, ResultEvent, RetryEvent, TokenEvent
from promptq.client.models import StreamEvent
from promptq.client.sse import server_sent_events
from shared import token_streams
from shared.pricing import price_for
from sim.replies import complete
from tests.conftest import Services
from tests.support.stack import RunningStack, start_stack

pytestmark = pytest.mark.e2e

MESSAGES = [{"role": "user", "content": "Tell me, slowly, what a token stream is for."}]
# A slow model: its answer takes this long to stream, so it can be watched while it comes.
SLOW_MS = 2500
ENV = {
    "TOKEN_STREAM_BLOCK_MS": "100",
    "TOKEN_STREAM_CHECK_S": "0.5",
    "TOKEN_STREAM_KEEPALIVE_S": "0.5",
    "MAX_ATTEMPTS_PER_MODEL": "2",
    "RETRY_BASE_S": "0.05",
    "RETRY_CAP_S": "0.1",
}


@pytest.fixture(scope="module")
def stack(services: Services, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    log_dir: Path = tmp_path_factory.mktemp("stream-stack")
    running = start_stack(services.database_url, services.redis_url, log_dir, extra_env=ENV)
    yield running
    running.stop()


@pytest.fixture
def key(stack: RunningStack, clean: Services) -> Iterator[str]:
    name = f"streams-{uuid.uuid4().hex[:8]}"
    stack.cli("users", "create", name)
    yield stack.cli("keys", "create", name)
    stack.clear_faults()


def _submit(stack: RunningStack, key: str, model: str, **fields: Any) -> str:
    body = {"model": model, "messages": MESSAGES, "max_tokens": 200, **fields}
    return str(stack.submit(key, body)["id"])


def _status(stack: RunningStack, key: str, job_id: str) -> str:
    return str(stack.get(key, f"/v1/jobs/{job_id}")["status"])


def _text(events: list[StreamEvent]) -> str:
    """The answer as a client builds it: tokens, with the text so far dropped at each mark."""
    text = ""
    for event in events:
        if isinstance(event, TokenEvent):
            text += event.text
        elif isinstance(event, RetryEvent | FallbackEvent):
            text = ""
    return text


def test_tokens_arrive_before_the_job_finishes_and_the_result_is_gets(
    stack: RunningStack, key: str
) -> None:
    """The first tokens come while the job still runs; they add up to the answer; the result
    event is the job exactly as GET shows it, with the content, finish reasons, usage, cost and
    attempts of the same job unstreamed."""
    model = "claude-haiku-4-5"
    stack.set_faults({"model": model, "latency_ms": SLOW_MS})
    job_id = _submit(stack, key, model, stream=True)
    events: list[StreamEvent] = []
    status_at_first_token = None
    with Client(stack.api_url, key) as client:
        for event in client.stream(job_id):
            if isinstance(event, TokenEvent) and status_at_first_token is None:
                status_at_first_token = _status(stack, key, job_id)
            events.append(event)
    assert status_at_first_token == "running"
    result = events[-1]
    assert isinstance(result, ResultEvent)
    polled = stack.get(key, f"/v1/jobs/{job_id}")
    assert result.job == Job.model_validate(polled)
    assert _text(events) == polled["result"]["content"]
    assert len([e for e in events if isinstance(e, TokenEvent)]) > 3

    unstreamed = stack.wait_final(key, _submit(stack, key, model))
    assert polled["status"] == unstreamed["status"] == "succeeded"
    for field in ("result", "usage", "cost_usd"):
        assert polled[field] == unstreamed[field], field
    expected = complete(model, MESSAGES, 200)
    assert polled["result"]["content"] == expected.text
    assert Decimal(polled["cost_usd"]) == price_for(model).cost(
        expected.input_tokens, expected.output_tokens
    )
    attempts = stack.get(key, f"/v1/jobs/{job_id}/attempts")["data"]
    assert [(a["model"], a["outcome"]) for a in attempts] == [(model, "succeeded")]


def test_a_late_client_gets_the_tokens_it_missed(
    stack: RunningStack, key: str, services: Services
) -> None:
    """A client that connects after the first pieces were written gets them first, then the
    rest as they come: its text is the whole answer."""
    model = "gpt-4o-mini"
    stack.set_faults({"model": model, "latency_ms": SLOW_MS})
    job_id = _submit(stack, key, model, stream=True)
    tokens = redis.Redis.from_url(services.redis_url)
    stream_key = token_streams.stream_key(job_id)
    wait_until(lambda: tokens.xlen(stream_key) >= 3, timeout=30, what="three pieces written")
    with Client(stack.api_url, key) as client:
        events = list(client.stream(job_id))
    result = events[-1]
    assert isinstance(result, ResultEvent) and result.job.result is not None
    assert _text(events) == result.job.result.content == complete(model, MESSAGES, 200).text


def test_a_cut_stream_falls_back_in_view(stack: RunningStack, key: str) -> None:
    """The primary's stream is cut half way, twice (its two attempts); the client sees its
    half answers voided by a retry, then a fallback, then the fallback's whole answer; the job
    succeeds with the fallback's model."""
    primary, fallback = "gpt-4o-mini", "claude-haiku-4-5"
    stack.set_faults({"model": primary, "kind": "cut", "latency_ms": 600})
    job_id = _submit(stack, key, primary, stream=True, fallbacks=[fallback])
    with Client(stack.api_url, key) as client:
        events = list(client.stream(job_id))
    marks = [e for e in events if isinstance(e, RetryEvent | FallbackEvent)]
    assert marks == [
        RetryEvent(model=primary, error="connection_error"),
        FallbackEvent(**{"from": primary, "to": fallback, "error": "connection_error"}),
    ]
    before_retry = events[: events.index(marks[0])]
    assert before_retry and all(isinstance(e, TokenEvent) for e in before_retry)
    result = events[-1]
    assert isinstance(result, ResultEvent) and result.job.result is not None
    assert result.job.status == "succeeded" and result.job.result.model == fallback
    assert _text(events) == result.job.result.content == complete(fallback, MESSAGES, 200).text


def test_a_finished_jobs_stream_is_one_result_event(stack: RunningStack, key: str) -> None:
    """After the job is final the stream is exactly one `result` event, then it closes."""
    job_id = _submit(stack, key, "gpt-4o-mini", stream=True)
    polled = stack.wait_final(key, job_id)
    response = requests.get(
        f"{stack.api_url}/v1/jobs/{job_id}/stream",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = list(server_sent_events(response.text.split("\n")))
    assert [(name, json.loads(data)) for name, data in events] == [("result", polled)]


def test_a_quiet_stream_is_kept_alive(stack: RunningStack, key: str) -> None:
    """While no token comes (here: attempts that fail slowly before the fallback answers),
    a `: keep-alive` comment is sent every TOKEN_STREAM_KEEPALIVE_S."""
    stack.set_faults({"model": "gpt-4.1-mini", "kind": "server_error", "latency_ms": 1200})
    job_id = _submit(stack, key, "gpt-4.1-mini", stream=True, fallbacks=["gpt-4o-mini"])
    seen: list[tuple[float, str]] = []
    with requests.get(
        f"{stack.api_url}/v1/jobs/{job_id}/stream",
        headers={"Authorization": f"Bearer {key}"},
        stream=True,
        timeout=10,
    ) as response:
        for line in response.iter_lines():
            seen.append((time.monotonic(), line.decode()))
    comments = [at for at, line in seen if line == ": keep-alive"]
    assert len(comments) >= 3
    # Every 0.5 s of quiet, not more often (an event between two resets the wait).
    assert all(0.4 < later - earlier < 1.5 for earlier, later in itertools.pairwise(comments))
    names = [line.removeprefix("event: ") for _, line in seen if line.startswith("event: ")]
    assert "fallback" in names and names[-1] == "result"


def test_unknown_and_foreign_jobs_are_404(stack: RunningStack, key: str) -> None:
    """As GET /v1/jobs/<id>: another user's job and an unknown one are 404 not_found, as JSON."""
    job_id = _submit(stack, key, "gpt-4o-mini", stream=True)
    other = f"other-{uuid.uuid4().hex[:8]}"
    stack.cli("users", "create", other)
    intruder = stack.cli("keys", "create", other)
    for who, path in ((intruder, job_id), (key, str(uuid.uuid4()))):
        response = requests.get(
            f"{stack.api_url}/v1/jobs/{path}/stream",
            headers={"Authorization": f"Bearer {who}"},
            timeout=10,
        )
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    stack.wait_final(key, job_id)
