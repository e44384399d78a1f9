"""Job workers' heartbeats in Redis: one sorted set, each worker's hostname scored by the last
time it said it was alive, beside a hash of its concurrency. /ready reads it to say whether any
job worker runs; the live workers' slots size the broker's window of dispatched jobs
(shared/dispatch_window.py).

Celery's own heartbeats travel as task events, which promptq leaves off by default (a tenth of a
worker's CPU per job), so a worker's liveness is announced here instead.
"""

from __future__ import annotations

import time

import redis

from shared import broker_epoch

HEARTBEATS_KEY = "promptq:workers:heartbeats"
SLOTS_KEY = "promptq:workers:slots"


def beat(client: redis.Redis, hostname: str, slots: int, ttl_s: float) -> None:
    """Say that `hostname` is alive with `slots` slots; the hash and set expire if all stop."""
    pipe = client.pipeline(transaction=False)
    pipe.zadd(HEARTBEATS_KEY, {hostname: time.time()})
    pipe.hset(SLOTS_KEY, hostname, slots)
    # A live worker dates Redis' data soon after a loss, before the sweeper asks.
    broker_epoch.note_alive(pipe)
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


# KEYS: the heartbeats set, the slots hash. ARGV: the oldest beat still alive (Unix time, the
# workers' clock, as beat() scores them). Returns the live workers' slots.
LIVE_SLOTS_LUA = """
local slots = 0
for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')) do
  slots = slots + tonumber(redis.call('HGET', KEYS[2], name) or '0')
end
return slots
"""


def live_slots(client: redis.Redis, within_s: float) -> int:
    """The slots of the job workers heard from within `within_s` seconds."""
    script = client.register_script(LIVE_SLOTS_LUA)
    return int(script(keys=[HEARTBEATS_KEY, SLOTS_KEY], args=[time.time() - within_s]))
