"""POST /v1/jobs and GET /v1/jobs/<id> through the Flask app, on the real Postgres and Redis."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from sqlalchemy import select

from shared import worker_heartbeats
from shared.db import transaction
from shared.models import Job
from shared.redis_client import get_redis
from tests.api.job_helpers import error_of
from tests.conftest import Account, Services
from tests.support.workers import worker_alive

VALID: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}


def _auth(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.key}"}


def test_submit_returns_202_and_commits_a_queued_job(client: FlaskClient, alice: Account) -> None:
    """A valid job is answered 202 with its id and status URL, and is queued in Postgres."""
    response = client.post(
        "/v1/jobs", json={**VALID, "metadata": {"ticket": 7}}, headers=_auth(alice)
    )
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "queued"
    assert body["status_url"].endswith(f"/v1/jobs/{body['id']}")
    assert response.headers["Location"] == body["status_url"]
    assert body["metadata"] == {"ticket": 7}
    with transaction() as session:
        job = session.scalars(select(Job).where(Job.id == uuid.UUID(body["id"]))).one()
        assert job.status == "queued"
        assert str(job.user_id) == alice.user_id
        assert job.request["max_tokens"] == 1024


@pytest.mark.parametrize("priority", ["high", "normal", "low"])
def test_submit_publishes_to_the_priority_queue(
    client: FlaskClient, alice: Account, clean: Services, priority: str
) -> None:
    """With a worker alive (room in the broker's window), the Celery message carrying the job id
    lands on jobs.<priority> in Redis."""
    worker_alive(slots=1)
    response = client.post("/v1/jobs", json={**VALID, "priority": priority}, headers=_auth(alice))
    assert response.status_code == 202
    broker = redis.Redis.from_url(clean.redis_url)
    raw = broker.lpop(f"jobs.{priority}")
    assert raw is not None
    message = json.loads(raw)
    assert message["headers"]["task"] == "promptq.run_job"
    assert response.get_json()["id"] in message["headers"]["argsrepr"]


def test_get_returns_own_job(client: FlaskClient, alice: Account) -> None:
    """The owner polls the job by id."""
    job_id = client.post("/v1/jobs", json=VALID, headers=_auth(alice)).get_json()["id"]
    response = client.get(f"/v1/jobs/{job_id}", headers=_auth(alice))
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == job_id
    assert body["usage"] == {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    assert body["cost_usd"] == "0"


def test_someone_elses_job_is_not_found(
    client: FlaskClient, alice: Account, make_account: Callable[[str], Account]
) -> None:
    """Another user's job id answers 404, exactly like an unknown id."""
    bob = make_account("bob")
    job_id = client.post("/v1/jobs", json=VALID, headers=_auth(alice)).get_json()["id"]
    error_of(client.get(f"/v1/jobs/{job_id}", headers=_auth(bob)), 404, "not_found")
    error_of(client.get(f"/v1/jobs/{uuid.uuid4()}", headers=_auth(bob)), 404, "not_found")
    error_of(client.get("/v1/jobs/not-a-uuid", headers=_auth(bob)), 404, "not_found")


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "no header"),
        ({"Authorization": "Bearer "}, "empty key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "wrong scheme"),
        ({"Authorization": "Bearer pq_not-a-real-key"}, "unknown key"),
    ],
)
def test_missing_or_wrong_key_is_401(
    client: FlaskClient, alice: Account, headers: dict[str, str], why: str
) -> None:
    """Without a valid bearer key both endpoints answer 401 unauthorized."""
    error_of(client.post("/v1/jobs", json=VALID, headers=headers), 401, "unauthorized")
    response = client.get(f"/v1/jobs/{uuid.uuid4()}", headers=headers)
    error_of(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


BAD_BODIES: list[tuple[str, Any, int, str]] = [
    ("not json", b"{model: gpt", 400, "invalid_json"),
    ("empty body", b"", 400, "invalid_json"),
    ("json array", [1, 2], 422, "validation_error"),
    ("missing model", {"messages": VALID["messages"]}, 422, "validation_error"),
    ("missing messages", {"model": "gpt-4o-mini"}, 422, "validation_error"),
    ("empty messages", {**VALID, "messages": []}, 422, "validation_error"),
    (
        "no user message",
        {**VALID, "messages": [{"role": "system", "content": "x"}]},
        422,
        "validation_error",
    ),
    (
        "empty content",
        {**VALID, "messages": [{"role": "user", "content": ""}]},
        422,
        "validation_error",
    ),
    (
        "bad role",
        {**VALID, "messages": [{"role": "robot", "content": "x"}]},
        422,
        "validation_error",
    ),
    ("model wrong type", {**VALID, "model": 5}, 422, "validation_error"),
    ("max_tokens as string", {**VALID, "max_tokens": "100"}, 422, "validation_error"),
    ("max_tokens zero", {**VALID, "max_tokens": 0}, 422, "validation_error"),
    ("temperature too high", {**VALID, "temperature": 3}, 422, "validation_error"),
    ("bad priority", {**VALID, "priority": "urgent"}, 422, "validation_error"),
    ("unknown field", {**VALID, "colour": "blue"}, 422, "validation_error"),
    ("metadata not object", {**VALID, "metadata": [1]}, 422, "validation_error"),
    (
        "metadata too many keys",
        {**VALID, "metadata": {str(i): i for i in range(17)}},
        422,
        "validation_error",
    ),
    ("unknown model", {**VALID, "model": "gpt-9-ultra"}, 422, "unknown_model"),
]


@pytest.mark.parametrize(
    ("why", "body", "status", "code"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES]
)
def test_bad_input_is_a_clear_4xx(
    client: FlaskClient, alice: Account, why: str, body: Any, status: int, code: str
) -> None:
    """Malformed submissions answer a 4xx JSON error with a stable code and create no job."""
    kwargs: dict[str, Any] = (
        {"data": body, "content_type": "application/json"}
        if isinstance(body, bytes)
        else {"json": body}
    )
    error = error_of(client.post("/v1/jobs", headers=_auth(alice), **kwargs), status, code)
    if code == "validation_error":
        assert error["details"], "validation errors say which field is wrong"
    with transaction() as session:
        assert session.scalars(select(Job)).first() is None


def test_validation_error_names_the_field(client: FlaskClient, alice: Account) -> None:
    """The message points at the offending field so a person can fix it."""
    body = {**VALID, "messages": [{"role": "user", "content": "x"}, {"role": "user"}]}
    error = error_of(
        client.post("/v1/jobs", json=body, headers=_auth(alice)), 422, "validation_error"
    )
    assert "messages.1.content" in error["message"]


def test_body_over_the_limit_is_413(client: FlaskClient, alice: Account) -> None:
    """A body larger than MAX_REQUEST_BYTES is refused before parsing."""
    huge = {**VALID, "messages": [{"role": "user", "content": "x" * (1024 * 1024 + 1)}]}
    error_of(client.post("/v1/jobs", json=huge, headers=_auth(alice)), 413, "payload_too_large")


def test_unknown_route_and_method(client: FlaskClient, alice: Account) -> None:
    """Routing errors are JSON too: 404 for a path, 405 with Allow for a method."""
    error_of(client.get("/v2/nothing", headers=_auth(alice)), 404, "not_found")
    response = client.delete("/v1/jobs", headers=_auth(alice))
    error_of(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_health_and_ready(client: FlaskClient) -> None:
    """/health answers while alive; /ready checks Postgres, Redis and a job worker's heartbeat
    for real: 503 naming the workers check until a heartbeat is fresh."""
    assert client.get("/health").get_json() == {"status": "ok"}
    redis = get_redis()
    redis.delete(worker_heartbeats.HEARTBEATS_KEY)
    unready = error_of(client.get("/ready"), 503, "not_ready")
    assert "workers" in unready["message"]
    assert unready["details"]["postgres"] == "ok"
    assert unready["details"]["redis"] == "ok"
    assert unready["details"]["workers"].startswith("unavailable: no job worker")
    worker_heartbeats.beat(redis, "worker@test", slots=4, ttl_s=30)
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"postgres": "ok", "redis": "ok", "workers": "ok"}
    worker_heartbeats.gone(redis, "worker@test")
    assert client.get("/ready").status_code == 503


def test_models_lists_the_price_table(client: FlaskClient, alice: Account) -> None:
    """GET /v1/models shows every priced model with its provider and prices."""
    body = client.get("/v1/models", headers=_auth(alice)).get_json()
    by_id = {m["id"]: m for m in body["data"]}
    assert by_id["gpt-4o-mini"]["provider"] == "openai"
    assert by_id["gpt-4o-mini"]["input_usd_per_mtok"] == "0.15"
    assert by_id["claude-haiku-4-5"]["provider"] == "anthropic"
    error_of(client.get("/v1/models"), 401, "unauthorized")
