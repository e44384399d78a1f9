"""Model health on a real Redis: the breaker's own state as the worker's breaker writes it,
and latency from the buckets the worker's after-call round trip adds to."""

from __future__ import annotations

import redis

from shared.model_health import read_health, record_latency_on
from tests.conftest import Services
from worker.resilience.circuit_breaker import BreakerPolicy, CircuitBreaker


def test_an_open_breaker_and_recent_latency_are_read_in_one_round_trip(clean: Services) -> None:
    client = redis.Redis.from_url(clean.redis_url)
    breaker = CircuitBreaker(client, BreakerPolicy(min_calls=2, cooldown_s=60))
    for _ in range(2):
        permit = breaker.allow("openai:gpt-4o")
        assert permit is not None
        breaker.record(permit, success=False)
    pipe = client.pipeline(transaction=False)
    for ms in (100, 300):
        record_latency_on(pipe, "openai:gpt-4o-mini", ms)
    pipe.execute()

    health = read_health(client, ["openai:gpt-4o", "openai:gpt-4o-mini", "anthropic:none"])
    assert health["openai:gpt-4o"].breaker_open is True
    assert health["openai:gpt-4o"].latency_ms is None
    assert health["openai:gpt-4o-mini"].breaker_open is False
    assert health["openai:gpt-4o-mini"].latency_ms == 200.0
    assert health["anthropic:none"].breaker_open is False
