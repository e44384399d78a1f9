"""The client against scripted answers (no promptq stack): error classes, retries after 429/503
with Retry-After, the Idempotency-Key kept across resends, and webhook signatures checked the
way promptq's server makes them."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path

import pytest

from promptq.client import (
    APIConnectionError,
    Client,
    FallbackEvent,
    MissingApiKey,
    NotFound,
    RateLimited,
    ResultEvent,
    RetryPolicy,
    WebhookVerificationError,
    verify_webhook,
)
from promptq.client.errors import (
    APIError,
    BrokerUnavailable,
    IdempotencyConflict,
    JobNotStreamed,
    QueueFull,
    RetryLater,
)
from shared.webhook_signature import sign_headers
from tests.client.scripted_server import Answer, scripted

JOB = {
    "id": str(uuid.uuid4()),
    "object": "job",
    "status": "queued",
    "priority": "normal",
    "model": "gpt-4o-mini",
    "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0},
    "cost_usd": "0",
    "created_at": "2026-12-02T20:00:00Z",
}
MESSAGES = [{"role": "user", "content": "hi"}]


def _error(status: int, code: str, retry_after: str | None = None) -> Answer:
    headers = (("Retry-After", retry_after),) if retry_after is not None else ()
    body = {"error": {"code": code, "message": f"{code} happened", "details": None}}
    return Answer(status, body, headers)


def test_every_documented_code_has_its_class() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    errors_table = readme.split("### Errors", 1)[1].split("###", 1)[0]
    codes = [line.split("`")[1] for line in errors_table.splitlines() if line.startswith("| 4")]
    codes += [line.split("`")[1] for line in errors_table.splitlines() if line.startswith("| 5")]
    assert len(codes) > 20
    for code in codes:
        error = APIError.build(400, {"error": {"code": code, "message": "m", "details": None}})
        assert type(error) is not APIError, code
        assert error.code == code


def test_a_non_promptq_error_body_still_raises_an_api_error() -> None:
    error = APIError.build(502, "<html>bad gateway</html>")
    assert (type(error), error.code, error.status) == (APIError, "http_502", 502)


def test_missing_key_is_its_own_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMPTQ_KEY", raising=False)
    with pytest.raises(MissingApiKey):
        Client("http://127.0.0.1:1")


def test_an_error_answer_raises_its_class_with_status_code_message_details() -> None:
    with (
        scripted([_error(404, "not_found")]) as (url, _),
        Client(url, "k") as client,
        pytest.raises(NotFound) as raised,
    ):
        client.get(JOB["id"])
    assert (raised.value.status, raised.value.code) == (404, "not_found")
    assert raised.value.message == "not_found happened"
    assert raised.value.one_line() == "not_found: not_found happened"


def test_429_is_retried_after_its_retry_after_with_the_same_idempotency_key() -> None:
    answers = [_error(429, "rate_limited", "1"), Answer(202, JOB)]
    with scripted(answers) as (url, script), Client(url, "k") as client:
        job = client.submit("gpt-4o-mini", MESSAGES)
    assert job.id == JOB["id"]
    first, second = script.seen
    assert second.at - first.at >= 1.0
    key = first.headers["idempotency-key"]
    assert key and second.headers["idempotency-key"] == key
    assert json.loads(first.body) == json.loads(second.body)


def test_each_submit_gets_its_own_idempotency_key() -> None:
    with scripted([Answer(202, JOB)]) as (url, script), Client(url, "k") as client:
        client.submit("gpt-4o-mini", MESSAGES)
        client.submit("gpt-4o-mini", MESSAGES)
    keys = {seen.headers["idempotency-key"] for seen in script.seen}
    assert len(keys) == 2


def test_503_retries_are_bounded_by_attempts() -> None:
    policy = RetryPolicy(max_attempts=3, max_total_s=30)
    with (
        scripted([_error(503, "queue_full", "0")]) as (url, script),
        Client(url, "k", retry=policy) as client,
        pytest.raises(QueueFull) as raised,
    ):
        client.submit("gpt-4o-mini", MESSAGES)
    assert len(script.seen) == 3
    assert isinstance(raised.value, RetryLater)
    assert raised.value.retry_after == 0


def test_a_retry_after_beyond_the_time_left_raises_at_once() -> None:
    policy = RetryPolicy(max_attempts=5, max_total_s=2)
    started = time.monotonic()
    with (
        scripted([_error(429, "rate_limited", "60")]) as (url, script),
        Client(url, "k", retry=policy) as client,
        pytest.raises(RateLimited) as raised,
    ):
        client.submit("gpt-4o-mini", MESSAGES)
    assert time.monotonic() - started < 2
    assert len(script.seen) == 1
    assert raised.value.retry_after == 60


def test_other_errors_are_not_retried() -> None:
    conflict = _error(409, "idempotency_conflict")
    with (
        scripted([conflict]) as (url, script),
        Client(url, "k") as client,
        pytest.raises(IdempotencyConflict),
    ):
        client.submit("gpt-4o-mini", MESSAGES, idempotency_key="mine")
    assert [seen.headers["idempotency-key"] for seen in script.seen] == ["mine"]


def test_nothing_listening_is_a_connection_error() -> None:
    policy = RetryPolicy(max_attempts=2, max_total_s=5, backoff_s=0.05)
    with (
        Client("http://127.0.0.1:1", "k", retry=policy) as client,
        pytest.raises(APIConnectionError) as raised,
    ):
        client.get(JOB["id"])
    assert raised.value.one_line().startswith("connection_error: ")
    assert "\n" not in raised.value.one_line()


SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OTHER = "whsec_" + base64.b64encode(b"another secret of thirty-two b!!").decode()
BODY = json.dumps({"type": "ping", "timestamp": "2026-12-02T20:00:00Z", "data": {}}).encode()


def test_verify_webhook_accepts_what_promptq_signs() -> None:
    headers = sign_headers([SECRET], "msg_1", int(time.time()), BODY)
    assert verify_webhook(SECRET, headers, BODY)["type"] == "ping"
    # During a rotation a delivery carries one signature per secret; either verifies.
    rotated = sign_headers([OTHER, SECRET], "msg_1", int(time.time()), BODY)
    assert verify_webhook(SECRET, rotated, BODY)["type"] == "ping"


@pytest.mark.parametrize(
    "change",
    ["body", "secret", "id", "old", "no signature"],
)
def test_verify_webhook_refuses_anything_else(change: str) -> None:
    sent_at = int(time.time()) - (600 if change == "old" else 0)
    headers = sign_headers([SECRET], "msg_1", sent_at, BODY)
    body, secret = BODY, SECRET
    if change == "body":
        body = BODY.replace(b"ping", b"pong")
    elif change == "secret":
        secret = OTHER
    elif change == "id":
        headers["webhook-id"] = "msg_2"
    elif change == "no signature":
        del headers["webhook-signature"]
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret, headers, body)


def test_the_client_imports_nothing_of_the_server() -> None:
    root = Path(__file__).parents[2] / "promptq"
    for source in root.rglob("*.py"):
        for line in source.read_text().splitlines():
            words = line.split()
            if words[:1] in (["import"], ["from"]) and len(words) > 1:
                top = words[1].split(".")[0]
                assert top not in {"api", "worker", "shared", "sim", "devstack"}, (source, line)


def test_wait_long_polls_each_read_for_what_is_left_of_its_deadline() -> None:
    """`wait` asks the server to hold each read (?wait=N, at most 30 s) instead of sleeping
    between reads: the scripted server answers a queued job twice, then the final one."""
    final = {**JOB, "status": "succeeded"}
    answers = [Answer(200, JOB), Answer(200, JOB), Answer(200, final)]
    with scripted(answers) as (url, script), Client(url, "k") as client:
        started = time.monotonic()
        job = client.wait(JOB["id"], timeout=45)
    assert job.status == "succeeded"
    waits = [float(seen.path.split("?wait=")[1]) for seen in script.seen]
    assert waits[0] == 30.0 and all(0 < w <= 30 for w in waits)
    # No pause of the client's own between the reads: the server's hold is the only wait.
    assert time.monotonic() - started < 2


def _sse(*events: str) -> Answer:
    return Answer(200, None, raw=events, content_type="text/event-stream")


def test_stream_yields_typed_events_up_to_the_result() -> None:
    """Tokens, a retry and a fallback mark, then the final job; comments (keep-alives) and
    events of unknown names are skipped; the stream is asked for as text/event-stream."""
    final = {**JOB, "status": "succeeded", "result": {"content": "Hi", "finish_reason": "stop"}}
    answer = _sse(
        ": keep-alive\n\n",
        'event: token\ndata: {"text": "H"}\n\n',
        'event: retry\ndata: {"model": "gpt-4o-mini", "error": "server_error"}\n\n',
        'event: token\ndata: {"text": "H"}\n\n',
        'event: fallback\ndata: {"from": "gpt-4o-mini", "to": "claude-haiku-4-5", '
        '"error": "connection_error"}\n\n',
        "event: something_newer\ndata: {}\n\n",
        'event: token\ndata: {"text": "Hi"}\n\n',
        f"event: result\ndata: {json.dumps(final)}\n\n",
    )
    with scripted([answer]) as (url, script), Client(url, "pq_test") as client:
        events = list(client.stream(JOB["id"]))
    assert [type(event).__name__ for event in events] == [
        "TokenEvent",
        "RetryEvent",
        "TokenEvent",
        "FallbackEvent",
        "TokenEvent",
        "ResultEvent",
    ]
    assert isinstance(events[3], FallbackEvent)
    assert (events[3].from_model, events[3].to, events[3].error) == (
        "gpt-4o-mini",
        "claude-haiku-4-5",
        "connection_error",
    )
    assert isinstance(events[-1], ResultEvent) and events[-1].job.result is not None
    assert events[-1].job.result.content == "Hi"
    assert script.seen[0].path == f"/v1/jobs/{JOB['id']}/stream"
    assert script.seen[0].headers["accept"] == "text/event-stream"


def test_stream_errors_are_the_apis_codes() -> None:
    """A refusal before the stream is its error class; an error event inside it too; a stream
    that stops before the result is a connection error."""
    not_streamed = _error(409, "job_not_streamed")
    outage = _sse(
        'event: token\ndata: {"text": "H"}\n\n',
        "event: error\n"
        'data: {"code": "broker_unavailable", "message": "away", "details": null}\n\n',
    )
    cut = _sse('event: token\ndata: {"text": "H"}\n\n')
    for answer, expected in (
        (not_streamed, JobNotStreamed),
        (outage, BrokerUnavailable),
        (cut, APIConnectionError),
    ):
        with (
            scripted([answer]) as (url, _),
            Client(url, "pq_test") as client,
            pytest.raises(expected),
        ):
            list(client.stream(JOB["id"]))
