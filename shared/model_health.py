"""What the fleet knows of each model's health, read in one Redis round trip: whether its
circuit breaker is open (worker/resilience/circuit_breaker.py keeps that state, under the key
names this module spells) and its recent latency, which workers add to per-minute buckets in
the round trip that already records each call's outcome.

Automatic model choice (shared/model_routing.py) reads it at admission, for `model: "auto"`
jobs only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis

BREAKER_PREFIX = "promptq:breaker"
LATENCY_PREFIX = "promptq:latency"
# Latency is averaged over the last few minutes' buckets; older ones expire.
LATENCY_MINUTES = 5
_BUCKET_TTL_S = (LATENCY_MINUTES + 1) * 60


def breaker_state_key(prefix: str, key: str) -> str:
    """The hash of a breaker's state; the hash tag keeps its keys on one Redis Cluster slot."""
    return f"{breaker_base(prefix, key)}:state"


def breaker_base(prefix: str, key: str) -> str:
    return f"{prefix}:{{{key}}}"


def _bucket(key: str, minute: int) -> str:
    return f"{LATENCY_PREFIX}:{key}:{minute}"


def record_latency_on(pipe: redis.client.Pipeline, key: str, latency_ms: int) -> None:
    """Queue on `pipe` the commands adding one successful call's latency to `key`'s bucket."""
    bucket = _bucket(key, int(time.time() // 60))
    pipe.hincrby(bucket, "ms", latency_ms)
    pipe.hincrby(bucket, "n", 1)
    pipe.expire(bucket, _BUCKET_TTL_S)


@dataclass(frozen=True)
class ModelHealth:
    breaker_open: bool
    # Mean latency of the last minutes' successful calls; None when none was made.
    latency_ms: float | None


def read_health(client: redis.Redis, keys: Iterable[str]) -> dict[str, ModelHealth]:
    """Each "provider:model" key's health now."""
    names = list(keys)
    now = time.time()
    minute = int(now // 60)
    pipe = client.pipeline(transaction=False)
    for key in names:
        pipe.hmget(breaker_state_key(BREAKER_PREFIX, key), ["state", "open_until"])
        for back in range(LATENCY_MINUTES):
            pipe.hmget(_bucket(key, minute - back), ["ms", "n"])
    answers = iter(pipe.execute())
    health: dict[str, ModelHealth] = {}
    for key in names:
        state, open_until = next(answers)
        is_open = state in (b"open", "open") and now * 1000 < float(open_until or 0)
        total_ms = calls = 0
        for _ in range(LATENCY_MINUTES):
            ms, n = next(answers)
            total_ms += int(ms or 0)
            calls += int(n or 0)
        health[key] = ModelHealth(is_open, total_ms / calls if calls else None)
    return health


def latency_rank(health: ModelHealth | None) -> float:
    """Sort key: a model never seen ranks after every measured one."""
    if health is None or health.latency_ms is None:
        return math.inf
    return health.latency_ms
