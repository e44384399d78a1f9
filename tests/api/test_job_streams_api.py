"""GET /v1/jobs/<id>/stream through the Flask app, on the real Postgres and Redis: ownership as
GET's, a finished job's one result event, a streamed job's entries relayed from the first, the
end of a run read from the job, keep-alive comments, and the `stream` field at submit."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from flask.testing import FlaskClient
from sqlalchemy import update

from devstack.processes import free_port
from promptq.client.sse import server_sent_events
from shared.db import transaction
from shared.models import Job, JobStatus
from shared.redis_client import get_redis
from shared.settings import get_settings
from tests.api.job_helpers import VALID, auth, error_of, open_transactions
from tests.conftest import Account
from tests.support.jobs import succeeded_result
from worker.providers.base import ServerError
from worker.token_stream import TokenStream

STREAM_EVENT_SCHEMA = "#/components/schemas/JobStreamEvent"
STREAM_ENV = {
    "TOKEN_STREAM_BLOCK_MS": "50",
    "TOKEN_STREAM_CHECK_S": "0.2",
    "TOKEN_STREAM_KEEPALIVE_S": "0.3",
}


@pytest.fixture(autouse=True)
def quick_relay(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in STREAM_ENV.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def _submit(client: FlaskClient, account: Account, **fields: Any) -> dict[str, Any]:
    response = client.post("/v1/jobs", json={**VALID, **fields}, headers=auth(account))
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()


def _finish(job_id: str) -> None:
    """Put the job in its final state, as the worker's final write does."""
    with transaction() as session:
        session.execute(
            update(Job)
            .where(Job.id == uuid.UUID(job_id))
            .values(
                status=JobStatus.SUCCEEDED,
                result=succeeded_result("Hello there"),
                input_tokens=3,
                output_tokens=2,
                cost_usd=Decimal("0.000002"),
                reserved_usd=0,
            )
        )


def _lines(response: Any) -> Iterator[str]:
    """The answer's lines as they are produced (the stream is not buffered)."""
    pending = ""
    for chunk in response.response:
        pending += chunk.decode() if isinstance(chunk, bytes) else chunk
        *complete, pending = pending.split("\n")
        yield from complete


def _events(response: Any) -> list[tuple[str, Any]]:
    return [(name, json.loads(data)) for name, data in server_sent_events(_lines(response))]


def _writer(job_id: str) -> TokenStream:
    return TokenStream(get_redis(), uuid.UUID(job_id), get_settings())


def test_unknown_foreign_and_unauthenticated_streams(
    client: FlaskClient, make_account: Callable[[str], Account]
) -> None:
    """As GET /v1/jobs/<id>: another user's job and an unknown id are 404 not_found; no key is
    401; every refusal is JSON."""
    alice, mallory = make_account("alice"), make_account("mallory")
    job = _submit(client, alice, stream=True)
    error_of(client.get(f"/v1/jobs/{job['id']}/stream", headers=auth(mallory)), 404, "not_found")
    error_of(client.get(f"/v1/jobs/{uuid.uuid4()}/stream", headers=auth(alice)), 404, "not_found")
    error_of(client.get("/v1/jobs/not-an-id/stream", headers=auth(alice)), 404, "not_found")
    error_of(client.get(f"/v1/jobs/{job['id']}/stream"), 401, "unauthorized")


def test_a_running_job_submitted_without_stream_is_409(client: FlaskClient, alice: Account) -> None:
    """Only a job that asked has its tokens relayed; the refusal says how to get the result."""
    job = _submit(client, alice)
    assert job["stream"] is False
    error = error_of(
        client.get(f"/v1/jobs/{job['id']}/stream", headers=auth(alice)), 409, "job_not_streamed"
    )
    assert job["status_url"] in error["message"]


@pytest.mark.parametrize("streamed", [True, False])
def test_a_finished_jobs_stream_is_its_result_alone(
    client: FlaskClient, alice: Account, streamed: bool
) -> None:
    """Whether or not it was streamed, a finished job's stream is one `result` event, the job
    exactly as GET shows it, with the headers that keep proxies from buffering."""
    job = _submit(client, alice, stream=streamed)
    _writer(job["id"]).text("Hello")
    _finish(job["id"])
    response = client.get(f"/v1/jobs/{job['id']}/stream", headers=auth(alice), buffered=False)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    polled = client.get(f"/v1/jobs/{job['id']}", headers=auth(alice)).get_json()
    assert _events(response) == [("result", polled)]


def test_a_late_client_gets_every_entry_then_the_result(
    client: FlaskClient, alice: Account
) -> None:
    """Entries written before the client came are relayed from the first, retry and fallback
    marks included, then new ones; the end of the run makes the relay read the job and send
    its result, and the stream ends."""
    job = _submit(client, alice, stream=True)
    writer = _writer(job["id"])
    writer.text("Hel")
    writer.retry("gpt-4o-mini", ServerError("boom"))
    writer.text("Hello")
    writer.fallback("gpt-4o-mini", "claude-haiku-4-5", ServerError("boom"))
    response = client.get(f"/v1/jobs/{job['id']}/stream", headers=auth(alice), buffered=False)
    events = server_sent_events(_lines(response))
    early = [next(events) for _ in range(4)]
    writer.text("Hello there")
    _finish(job["id"])
    writer.ended()
    rest = list(events)
    polled = client.get(f"/v1/jobs/{job['id']}", headers=auth(alice)).get_json()
    assert [(name, json.loads(data)) for name, data in early + rest] == [
        ("token", {"text": "Hel"}),
        ("retry", {"model": "gpt-4o-mini", "error": "server_error"}),
        ("token", {"text": "Hello"}),
        ("fallback", {"from": "gpt-4o-mini", "to": "claude-haiku-4-5", "error": "server_error"}),
        ("token", {"text": "Hello there"}),
        ("result", polled),
    ]


def test_a_quiet_stream_sends_keep_alives_and_notices_the_end_unannounced(
    client: FlaskClient, alice: Account
) -> None:
    """With nothing to relay, a `: keep-alive` comment comes every TOKEN_STREAM_KEEPALIVE_S,
    and no transaction stays open while the stream waits; a job that finished without an
    `ended` entry is found by the periodic read of the job."""
    job = _submit(client, alice, stream=True)
    response = client.get(f"/v1/jobs/{job['id']}/stream", headers=auth(alice), buffered=False)
    lines = _lines(response)
    assert next(lines) == ": keep-alive"
    assert open_transactions() == []
    _finish(job["id"])
    rest = list(lines)
    assert rest[0:2] == ["", "event: result"]
    assert json.loads(rest[2].removeprefix("data: "))["status"] == "succeeded"


def test_stream_must_be_a_boolean(client: FlaskClient, alice: Account) -> None:
    """`stream` is validated like every field: a string is a 422 naming it."""
    response = client.post("/v1/jobs", json={**VALID, "stream": "yes"}, headers=auth(alice))
    error = error_of(response, 422, "validation_error")
    assert error["details"][0]["field"] == "stream"


def test_redis_away_mid_stream_is_an_error_event(
    client: FlaskClient, alice: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the answer has begun, an outage can only be told in the stream: an `error` event
    with the API's code for it, and the stream ends."""
    job = _submit(client, alice, stream=True)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    get_settings.cache_clear()
    get_redis.cache_clear()
    try:
        response = client.get(f"/v1/jobs/{job['id']}/stream", headers=auth(alice), buffered=False)
        events = _events(response)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        get_redis.cache_clear()
    assert response.status_code == 200
    assert [(name, data["code"]) for name, data in events] == [("error", "broker_unavailable")]


def test_every_event_is_as_the_openapi_document_says(client: FlaskClient, alice: Account) -> None:
    """Each event kind, as sent, is one of the documented events, and its data is JSON of the
    schema the document names for it (contentSchema)."""
    document = client.get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]

    def validate(name: str, data: str) -> None:
        jsonschema.validate(
            {"event": name, "data": data}, {**document, "$ref": STREAM_EVENT_SCHEMA}
        )
        branch = next(
            schemas[ref["$ref"].rsplit("/", 1)[1]]
            for ref in schemas["JobStreamEvent"]["anyOf"]
            if schemas[ref["$ref"].rsplit("/", 1)[1]]["properties"]["event"]["const"] == name
        )
        content = branch["properties"]["data"]["contentSchema"]
        jsonschema.validate(json.loads(data), {**document, **content})

    job = _submit(client, alice, stream=True)
    writer = _writer(job["id"])
    writer.text("Hel")
    writer.retry("gpt-4o-mini", ServerError("boom"))
    writer.fallback("gpt-4o-mini", "claude-haiku-4-5", ServerError("boom"))
    response = client.get(f"/v1/jobs/{job['id']}/stream", headers=auth(alice), buffered=False)
    events = server_sent_events(_lines(response))
    seen = [next(events) for _ in range(3)]
    _finish(job["id"])
    writer.ended()
    seen += list(events)
    assert [name for name, _ in seen] == ["token", "retry", "fallback", "result"]
    for name, data in seen:
        validate(name, data)
    error = {"code": "broker_unavailable", "message": "away", "details": None}
    validate("error", json.dumps(error))
