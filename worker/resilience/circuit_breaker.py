"""A circuit breaker per provider:model, its state shared in Redis by every worker.

When a model keeps failing, calling it anyway only burns attempts and piles load on a provider
that is already down; the breaker answers "not now" instantly so the job can back off or fall
back. States:

    CLOSED     calls flow; outcomes are counted in a sliding window of time buckets. Once the
               window holds at least `min_calls` and the failure share reaches `failure_threshold`,
               the breaker trips to OPEN.
    OPEN       every call is refused for `cooldown_s`.
    HALF_OPEN  after the cooldown, at most `half_open_max_probes` probe calls run at once; a
               failed probe re-opens the breaker, `half_open_successes` successful probes close it.

Each transition is one Lua script, so workers racing on the same key never see a torn state, and
`allow` costs one Redis round trip. Probe slots expire after `probe_ttl_s`, so a worker that dies
mid-probe cannot wedge the breaker in HALF_OPEN.

Time comes from the injected `clock` (seconds), passed into every script: tests drive it by
hand, and workers on NTP-synced hosts agree on it to within the skew.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis

from shared.model_health import BREAKER_PREFIX, breaker_base, breaker_state_key

# state hash: state, open_until (ms), probe_ok; window hash: "<bucket>:ok|fail" -> count;
# probes zset: probe id -> slot expiry (ms).
_ALLOW = """
local now = tonumber(ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state')
if not state or state == 'closed' then return 1 end
if state == 'open' then
  if now < tonumber(redis.call('HGET', KEYS[1], 'open_until')) then return 0 end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_ok', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  redis.call('DEL', KEYS[2])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[4]), ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 2
"""

_RECORD = """
local now = tonumber(ARGV[1])
local success = ARGV[2] == '1'
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local function trip()
  redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', now + tonumber(ARGV[8]))
  redis.call('PEXPIRE', KEYS[1], ARGV[10])
  redis.call('DEL', KEYS[2], KEYS[3])
  return 'open'
end
if ARGV[3] ~= '' then
  redis.call('ZREM', KEYS[3], ARGV[3])
  if state ~= 'half_open' then return state end
  if not success then return trip() end
  if redis.call('HINCRBY', KEYS[1], 'probe_ok', 1) < tonumber(ARGV[9]) then return state end
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  return 'closed'
end
if state ~= 'closed' then return state end
local bucket_ms = tonumber(ARGV[5])
local current = math.floor(now / bucket_ms)
local oldest = current - math.ceil(tonumber(ARGV[4]) / bucket_ms) + 1
redis.call('HINCRBY', KEYS[2], current .. (success and ':ok' or ':fail'), 1)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local total, failures = 0, 0
local fields = redis.call('HGETALL', KEYS[2])
for i = 1, #fields, 2 do
  local bucket, outcome = string.match(fields[i], '^(%-?%d+):(%a+)$')
  if tonumber(bucket) < oldest then
    redis.call('HDEL', KEYS[2], fields[i])
  else
    total = total + tonumber(fields[i + 1])
    if outcome == 'fail' then failures = failures + tonumber(fields[i + 1]) end
  end
end
if total >= tonumber(ARGV[6]) and failures >= tonumber(ARGV[7]) * total then return trip() end
return 'closed'
"""

# Buckets per window: enough resolution for the window to slide smoothly, few enough that
# summing them on every recorded call stays cheap.
_BUCKETS = 30
# An open breaker nobody asks about for this long is forgotten (it then starts CLOSED).
_IDLE_MS = 3_600_000


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    """When to trip, how long to stay open and how carefully to test recovery."""

    window_s: float = 30.0
    min_calls: int = 10
    failure_threshold: float = 0.5
    cooldown_s: float = 30.0
    half_open_max_probes: int = 1
    half_open_successes: int = 1
    probe_ttl_s: float = 120.0

    def __post_init__(self) -> None:
        if not 0 < self.failure_threshold <= 1:
            raise ValueError("failure_threshold must be within (0, 1]")
        if min(self.min_calls, self.half_open_max_probes, self.half_open_successes) < 1:
            raise ValueError("min_calls and the half-open counts must be >= 1")
        if min(self.window_s, self.cooldown_s, self.probe_ttl_s) <= 0:
            raise ValueError("window_s, cooldown_s and probe_ttl_s must be > 0")


@dataclass(frozen=True)
class Permit:
    """Leave to make one call; hand it back to `record` with the call's outcome."""

    key: str
    probe_id: str | None = None

    @property
    def probe(self) -> bool:
        """True when this call tests a HALF_OPEN breaker and holds one of its probe slots."""
        return self.probe_id is not None


class CircuitBreaker:
    """Breakers for any number of keys (e.g. "openai:gpt-4o-mini") under one policy."""

    def __init__(
        self,
        client: redis.Redis,
        policy: BreakerPolicy | None = None,
        *,
        prefix: str = BREAKER_PREFIX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = client
        self._policy = policy or BreakerPolicy()
        self._prefix = prefix
        self._clock = clock
        self._allow = client.register_script(_ALLOW)
        self._record = client.register_script(_RECORD)

    def allow(self, key: str) -> Permit | None:
        """A permit to call `key` now, or None while its breaker refuses calls."""
        policy = self._policy
        state_key, _, probes_key = self._keys(key)
        probe_id = uuid.uuid4().hex
        verdict = self._allow(
            keys=[state_key, probes_key],
            args=[
                self._now_ms(),
                probe_id,
                policy.half_open_max_probes,
                _ms(policy.probe_ttl_s),
                _IDLE_MS,
            ],
        )
        if verdict == 0:
            return None
        return Permit(key, probe_id if verdict == 2 else None)

    def record(self, permit: Permit, success: bool) -> CircuitState:
        """Count the outcome of a permitted call; returns the breaker's state afterwards.

        `success=False` is for failures that say the provider is unwell (5xx, 429, timeouts,
        dropped connections); a request the provider rightly refused (400) is no such sign.
        Outcomes of calls admitted before a trip are ignored: the window restarts after recovery.
        """
        return CircuitState(_text(self._record(**self._record_call(permit, success))))

    def record_on(self, pipe: redis.client.Pipeline, permit: Permit, success: bool) -> None:
        """`record`, queued on `pipe` to share a round trip with other commands."""
        self._record(**self._record_call(permit, success), client=pipe)

    def _record_call(self, permit: Permit, success: bool) -> dict[str, list[Any]]:
        policy = self._policy
        return {
            "keys": list(self._keys(permit.key)),
            "args": [
                self._now_ms(),
                int(success),
                permit.probe_id or "",
                _ms(policy.window_s),
                max(1, _ms(policy.window_s) // _BUCKETS),
                policy.min_calls,
                policy.failure_threshold,
                _ms(policy.cooldown_s),
                policy.half_open_successes,
                _IDLE_MS,
            ],
        }

    def state(self, key: str) -> CircuitState:
        """The state `allow` would act on now (an OPEN breaker past its cooldown is HALF_OPEN)."""
        state, open_until = self._redis.hmget(self._keys(key)[0], ["state", "open_until"])
        if state is None:
            return CircuitState.CLOSED
        current = CircuitState(_text(state))
        if current is CircuitState.OPEN and self._now_ms() >= int(open_until or 0):
            return CircuitState.HALF_OPEN
        return current

    def _keys(self, key: str) -> tuple[str, str, str]:
        # The hash tag keeps a breaker's three keys on one Redis Cluster slot, as scripts need;
        # admission reads the state key too (shared/model_health.py).
        base = breaker_base(self._prefix, key)
        return breaker_state_key(self._prefix, key), f"{base}:window", f"{base}:probes"

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
