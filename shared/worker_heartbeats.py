"""Job workers' heartbeats in Redis: one sorted set, each worker's hostname scored by the last
time it said it was alive, beside a hash of its concurrency. /ready reads it to say whether any
job worker runs; the slots are what a worker offers.

Celery's own heartbeats travel as task events, which promptq leaves off by default (a tenth of a
worker's CPU per job), so a worker's liveness is announced here instead.
"""

from __future__ import annotations

import time

import redis

HEARTBEATS_KEY = "promptq:workers:heartbeats"
SLOTS_KEY = "promptq:workers:slots"


def beat(client: redis.Redis, hostname: str, slots: int, ttl_s: float) -> None:
    """Say that `hostname` is alive with `slots` slots; the hash and set expire if all stop."""
    pipe = client.pipeline(transaction=False)
    pipe.zadd(HEARTBEATS_KEY, {hostname: time.time()})
    pipe.hset(SLOTS_KEY, hostname, slots)
    # Forget workers silent for long (hosts that were scaled away) so the set stays small.
    pipe.zremrangebyscore(HEARTBEATS_KEY, "-inf", time.time() - 100 * ttl_s)
    pipe.expire(HEARTBEATS_KEY, int(100 * ttl_s))
    pipe.expire(SLOTS_KEY, int(100 * ttl_s))
    pipe.execute()


def gone(client: redis.Redis, hostname: str) -> None:
    """A worker shutting down stops counting at once."""
    pipe = client.pipeline(transaction=False)
    pipe.zrem(HEARTBEATS_KEY, hostname)
    pipe.hdel(SLOTS_KEY, hostname)
    pipe.execute()


def alive(client: redis.Redis, within_s: float) -> list[str]:
    """Hostnames of the job workers heard from within `within_s` seconds."""
    names = client.zrangebyscore(HEARTBEATS_KEY, time.time() - within_s, "+inf")
    return [n.decode() if isinstance(n, bytes) else n for n in names]
