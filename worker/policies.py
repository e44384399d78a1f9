"""The process's resilience policies, built once from settings over one Redis client."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import redis

from shared.model_health import record_latency_on
from shared.redis_client import get_redis
from shared.settings import Settings, get_settings
from worker.resilience.circuit_breaker import BreakerPolicy, CircuitBreaker, Permit
from worker.resilience.concurrency import ConcurrencyLimiter
from worker.resilience.rate_limit import ProviderLimits, ProviderRateLimiter


@dataclass(frozen=True)
class Policies:
    settings: Settings
    redis: redis.Redis
    breaker: CircuitBreaker
    permits: ConcurrencyLimiter
    rate_limits: ProviderRateLimiter

    def after_call(
        self, key: str, slot: str, permit: Permit, success: bool, answered_ms: int | None = None
    ) -> None:
        """Give the call's permit back, count its outcome against the breaker and, for a call
        that answered, add its latency to the model's health, in one Redis round trip."""
        pipe = self.redis.pipeline(transaction=False)
        self.permits.release_on(pipe, key, slot)
        self.breaker.record_on(pipe, permit, success)
        if answered_ms is not None:
            record_latency_on(pipe, key, answered_ms)
        pipe.execute()

    def model_cap(self, model: str) -> int:
        """In-flight calls allowed for `model` across all workers."""
        return self.settings.model_concurrency_caps.get(model, self.settings.model_concurrency_cap)


@lru_cache(maxsize=1)
def get_policies() -> Policies:
    settings = get_settings()
    client = get_redis()
    breaker = CircuitBreaker(
        client,
        BreakerPolicy(
            window_s=settings.breaker_window_s,
            min_calls=settings.breaker_min_calls,
            failure_threshold=settings.breaker_failure_threshold,
            cooldown_s=settings.breaker_cooldown_s,
            half_open_max_probes=settings.breaker_half_open_probes,
            probe_ttl_s=settings.provider_timeout_s + 30,
        ),
    )
    limits = {
        "openai": ProviderLimits(rpm=settings.openai_rpm, tpm=settings.openai_tpm),
        "anthropic": ProviderLimits(rpm=settings.anthropic_rpm, tpm=settings.anthropic_tpm),
    }
    return Policies(
        settings=settings,
        redis=client,
        breaker=breaker,
        permits=ConcurrencyLimiter(client),
        rate_limits=ProviderRateLimiter(client, limits),
    )
