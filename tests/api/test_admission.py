"""Admission of POST /v1/jobs: queue-depth ceiling, per-key request and token rate limits, and
Idempotency-Key, on the real Postgres and Redis through the Flask app."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from shared.backlog_gauge import BACKLOG_KEY
from shared.db import transaction
from shared.models import Job
from shared.queueing import JOB_QUEUE_ORDER
from shared.repositories.job_dispatch import backlog_depth
from shared.settings import get_settings
from tests.api.job_helpers import VALID, auth, error_of, job_count, set_key_limits
from tests.conftest import Account, Services
from tests.support.workers import worker_alive


@pytest.fixture
def queue_depth_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """MAX_QUEUE_DEPTH=5 for this test only."""
    monkeypatch.setenv("MAX_QUEUE_DEPTH", "5")
    get_settings.cache_clear()
    yield 5
    monkeypatch.delenv("MAX_QUEUE_DEPTH")
    get_settings.cache_clear()


def _queued_messages(services: Services) -> int:
    broker = redis.Redis.from_url(services.redis_url)
    return sum(broker.llen(queue) for queue in JOB_QUEUE_ORDER)


def test_full_queues_refuse_with_503_and_retry_after(
    client: FlaskClient, alice: Account, clean: Services, queue_depth_limit: int
) -> None:
    """Once MAX_QUEUE_DEPTH jobs wait (no worker is alive, so these wait in PostgreSQL's
    backlog, counted by the gauge; a message in any priority queue counts too), a submission is
    503 queue_full with Retry-After and writes nothing."""
    redis.Redis.from_url(clean.redis_url).lpush("jobs.low", "stale-message")
    for _ in range(queue_depth_limit - 1):
        assert client.post("/v1/jobs", json=VALID, headers=auth(alice)).status_code == 202
    response = client.post("/v1/jobs", json={**VALID, "priority": "high"}, headers=auth(alice))
    error = error_of(response, 503, "queue_full")
    assert int(response.headers["Retry-After"]) >= 1
    assert error["details"] == {"depth": queue_depth_limit, "limit": queue_depth_limit}
    assert job_count(alice) == queue_depth_limit - 1
    assert _queued_messages(clean) == 1
    assert redis.Redis.from_url(clean.redis_url).get(BACKLOG_KEY) == b"4"


def test_a_job_is_dispatched_at_once_only_into_a_window_with_room(
    client: FlaskClient, alice: Account, clean: Services
) -> None:
    """With no live worker the broker's window is empty: the job waits in PostgreSQL and no
    message is published. With one worker of one slot, the window is two jobs: two messages,
    and the third job waits."""
    assert client.post("/v1/jobs", json=VALID, headers=auth(alice)).status_code == 202
    assert _queued_messages(clean) == 0
    with transaction() as session:
        assert backlog_depth(session) == 1
        session.execute(update(Job).values(status="cancelled"))
    worker_alive(slots=1)
    for _ in range(3):
        assert client.post("/v1/jobs", json=VALID, headers=auth(alice)).status_code == 202
    assert _queued_messages(clean) == 2
    with transaction() as session:
        assert backlog_depth(session) == 1


def test_request_rate_limit_per_key_with_headers(
    client: FlaskClient, alice: Account, make_account: Callable[[str], Account]
) -> None:
    """A key with rpm_limit 3 gets three 202s counting X-RateLimit-Remaining down, then 429
    rate_limited with Retry-After and no job written; another key is not affected."""
    set_key_limits(alice, rpm=3)
    for remaining in (2, 1, 0):
        response = client.post("/v1/jobs", json=VALID, headers=auth(alice))
        assert response.status_code == 202
        assert response.headers["X-RateLimit-Limit"] == "3"
        assert response.headers["X-RateLimit-Remaining"] == str(remaining)
        assert int(response.headers["X-RateLimit-Reset"]) >= math.floor(time.time())
        assert response.headers["X-RateLimit-Limit-Tokens"] == str(get_settings().default_tpm_limit)
    refused = client.post("/v1/jobs", json=VALID, headers=auth(alice))
    error = error_of(refused, 429, "rate_limited")
    assert "3 requests per minute" in error["message"]
    # A sliding window: the minute's requests fade out over the next minute, so a full window
    # frees a request within two minutes at most.
    assert 1 <= int(refused.headers["Retry-After"]) <= 120
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert job_count(alice) == 3

    bob = make_account("bob")
    assert client.post("/v1/jobs", json=VALID, headers=auth(bob)).status_code == 202


def test_token_rate_limit_counts_prompt_estimate_plus_max_tokens(
    client: FlaskClient, alice: Account
) -> None:
    """Estimated tokens (ceil(chars/4) + 4 per message, plus max_tokens) count against the key's
    tpm_limit; a request bigger than the whole limit is refused outright."""
    set_key_limits(alice, tpm=2000)
    body = {**VALID, "max_tokens": 1500}  # "Hi": 1 + 4 prompt tokens -> 1505
    first = client.post("/v1/jobs", json=body, headers=auth(alice))
    assert first.status_code == 202
    assert first.headers["X-RateLimit-Limit-Tokens"] == "2000"
    assert first.headers["X-RateLimit-Remaining-Tokens"] == "495"
    second = client.post("/v1/jobs", json={**VALID, "max_tokens": 491}, headers=auth(alice))
    error = error_of(second, 429, "rate_limited")
    assert error["details"] == {"limit_tokens_per_minute": 2000, "requested_tokens": 496}
    assert int(second.headers["Retry-After"]) >= 1
    third = client.post("/v1/jobs", json={**VALID, "max_tokens": 490}, headers=auth(alice))
    assert third.status_code == 202
    huge = client.post("/v1/jobs", json={**VALID, "max_tokens": 3000}, headers=auth(alice))
    assert "outright" in error_of(huge, 429, "rate_limited")["message"]
    assert job_count(alice) == 2


def test_idempotent_repeat_returns_the_first_job(
    client: FlaskClient, alice: Account, clean: Services, make_account: Callable[[str], Account]
) -> None:
    """The same Idempotency-Key with the same body (in any key order) answers 200 with the first
    job and publishes nothing more; another user's identical key is their own."""
    worker_alive(slots=4)
    headers = auth(alice, **{"Idempotency-Key": "order-77"})
    body = {"model": "gpt-4o-mini", "max_tokens": 9, "messages": VALID["messages"]}
    first = client.post("/v1/jobs", json=body, headers=headers)
    assert first.status_code == 202
    reordered = {"messages": VALID["messages"], "max_tokens": 9, "model": "gpt-4o-mini"}
    again = client.post("/v1/jobs", json=reordered, headers=headers)
    assert again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert job_count(alice) == 1
    assert _queued_messages(clean) == 1

    bob = make_account("bob")
    theirs = client.post(
        "/v1/jobs", json=body, headers=auth(bob, **{"Idempotency-Key": "order-77"})
    )
    assert theirs.status_code == 202
    assert theirs.get_json()["id"] != first.get_json()["id"]


def test_idempotency_key_with_a_different_body_is_409(client: FlaskClient, alice: Account) -> None:
    """Reusing a key for a different request is 409 idempotency_conflict naming the first job."""
    headers = auth(alice, **{"Idempotency-Key": "k1"})
    first = client.post("/v1/jobs", json=VALID, headers=headers).get_json()
    response = client.post("/v1/jobs", json={**VALID, "priority": "high"}, headers=headers)
    error = error_of(response, 409, "idempotency_conflict")
    assert error["details"] == {"job_id": first["id"]}
    assert job_count(alice) == 1


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_idempotency_key_length_is_checked(client: FlaskClient, alice: Account, key: str) -> None:
    """An Idempotency-Key must be 1 to 255 characters."""
    response = client.post("/v1/jobs", json=VALID, headers=auth(alice, **{"Idempotency-Key": key}))
    error_of(response, 422, "validation_error")
    assert job_count(alice) == 0


def test_concurrent_repeats_of_one_key_make_one_job(app: Flask, alice: Account) -> None:
    """50 simultaneous submissions with one Idempotency-Key create exactly one job: one 202,
    forty-nine 200s, all with the same id."""
    headers = auth(alice, **{"Idempotency-Key": "burst"})

    def submit(_: int) -> tuple[int, str]:
        response = app.test_client().post("/v1/jobs", json=VALID, headers=headers)
        return response.status_code, response.get_json()["id"]

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(submit, range(50)))
    assert Counter(status for status, _ in answers) == {202: 1, 200: 49}
    assert len({job_id for _, job_id in answers}) == 1
    assert job_count(alice) == 1
