"""`model: "auto"` through the Flask app on the real PostgreSQL and Redis: the chosen chain
and its reason on the job, the hold reserved for the chain's dearest model, an open breaker
(tripped by the worker's own breaker code) sent to the back, named policies, and refusals."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from flask.testing import FlaskClient

from shared.cost_estimate import reservation_usd
from shared.db import transaction
from shared.models import Job
from shared.settings import get_settings
from tests.api.job_helpers import auth, error_of
from tests.conftest import Account, Services
from worker.resilience.circuit_breaker import BreakerPolicy, CircuitBreaker

AUTO = {"model": "auto", "messages": [{"role": "user", "content": "Tag this ticket."}]}


@pytest.fixture
def policies(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(
        "ROUTING_POLICIES", '{"claude": ["claude-sonnet-4-5", "claude-3-5-haiku-latest"]}'
    )
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def _stored(job_id: str) -> Job:
    with transaction() as session:
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None
        return job


def test_auto_takes_the_cheapest_model_and_reserves_for_the_dearest_candidate(
    client: FlaskClient, alice: Account
) -> None:
    body = client.post("/v1/jobs", json=AUTO, headers=auth(alice)).get_json()
    assert body["model"] == "gpt-4o-mini"
    routing = body["routing"]
    assert routing["policy"] == "auto" and routing["chosen"] == "gpt-4o-mini"
    assert routing["chain"] == [body["model"], *body["fallbacks"]]
    assert "cheapest" in routing["reason"]
    job = _stored(body["id"])
    assert job.routing == routing
    settings = get_settings()
    assert job.reserved_usd == reservation_usd(
        routing["chain"],
        ["Tag this ticket."],
        settings.default_max_tokens,
        settings.max_billed_attempts,
        None,
    )


def test_a_json_response_format_skips_models_without_structured_output(
    client: FlaskClient, alice: Account, policies: None
) -> None:
    body = {**AUTO, "routing_policy": "claude", "response_format": {"type": "json_object"}}
    job = client.post("/v1/jobs", json=body, headers=auth(alice)).get_json()
    assert job["routing"]["chain"] == ["claude-sonnet-4-5"]
    assert "claude-3-5-haiku-latest" in job["routing"]["skipped"]
    plain = client.post(
        "/v1/jobs", json={**AUTO, "routing_policy": "claude"}, headers=auth(alice)
    ).get_json()
    assert plain["routing"]["chain"] == ["claude-3-5-haiku-latest", "claude-sonnet-4-5"]


def test_a_model_whose_breaker_is_open_goes_to_the_back(
    client: FlaskClient, alice: Account, clean: Services
) -> None:
    breaker = CircuitBreaker(
        redis.Redis.from_url(clean.redis_url), BreakerPolicy(min_calls=1, cooldown_s=60)
    )
    permit = breaker.allow("openai:gpt-4o-mini")
    assert permit is not None
    breaker.record(permit, success=False)
    job = client.post("/v1/jobs", json=AUTO, headers=auth(alice)).get_json()
    assert job["model"] == "gpt-4.1-mini"
    assert job["routing"]["chain"][-1] == "gpt-4o-mini"
    assert (
        job["routing"]["skipped"]["gpt-4o-mini"] == "circuit breaker open (kept last in the chain)"
    )


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"fallbacks": ["gpt-4o"]}, "validation_error"),
        ({"model": "gpt-4o", "routing_policy": "claude"}, "validation_error"),
        ({"routing_policy": "nope"}, "unknown_routing_policy"),
        ({"messages": [{"role": "user", "content": "word " * 36_000}] * 5}, "no_model_fits"),
    ],
    ids=["fallbacks", "policy-without-auto", "unknown-policy", "too-long"],
)
def test_refusals_are_422_with_a_stable_code(
    client: FlaskClient, alice: Account, fields: dict[str, object], code: str
) -> None:
    """Five messages of 36,000 words are about 225,000 tokens: gpt-4.1-mini's window holds
    them, so "too long" is asked of a policy of a 200k model alone."""
    body = {**AUTO, **fields}
    if code == "no_model_fits":
        body["routing_policy"] = "claude"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ROUTING_POLICIES", '{"claude": ["claude-sonnet-4-5"]}')
        get_settings.cache_clear()
        response = client.post("/v1/jobs", json=body, headers=auth(alice))
    get_settings.cache_clear()
    error_of(response, 422, code)
