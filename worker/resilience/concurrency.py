"""A cap on in-flight calls per key (e.g. "openai:gpt-4o"), shared by every worker via Redis.

Each key is a sorted set of permit ids scored by their expiry time. Acquiring is one Lua script
(drop expired permits; if fewer than `cap` remain, add one), so racing workers can never exceed
the cap. Permits expire rather than live until released, so a worker killed mid-call gives its
permit back after `ttl_s`. A permit taken with `keep_alive` is renewed by a thread of the
process every `ttl_s / 3` until released, so a short ttl bounds only a dead holder's permits,
never a live call, however long the call lasts.

Time comes from the injected `clock` (seconds), so tests control expiry; workers on NTP-synced
hosts agree on it to within the skew, which only stretches or shortens a dead permit's ttl.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable

import redis

from worker.resilience.backoff import compute_backoff

_ACQUIRE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[4])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(last[2]) - now))
return 1
"""

_RENEW = """
local now = tonumber(ARGV[1])
local expires = redis.call('ZSCORE', KEYS[1], ARGV[3])
if not expires then return 0 end
if tonumber(expires) <= now then
  redis.call('ZREM', KEYS[1], ARGV[3])
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(last[2]) - now))
return 1
"""

# Polling for a free permit starts fast (permits are often freed within milliseconds) and
# backs off, with jitter, so many waiting workers do not poll Redis in lockstep.
_POLL_BASE_S = 0.01
_POLL_CAP_S = 0.5
# How often the keeper looks again when it holds nothing.
_IDLE_RENEW_S = 1.0


class ConcurrencyLimiter:
    """Expiring permits under a per-key cap."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "promptq:permits",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self._clock = clock
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._kept: dict[tuple[str, str], float] = {}  # (key, permit id) -> ttl_s
        self._kept_lock = threading.Lock()
        self._keeper: threading.Thread | None = None

    def acquire(self, key: str, cap: int, ttl_s: float) -> str | None:
        """A permit id if fewer than `cap` live permits exist for `key`, else None at once."""
        if cap < 1:
            raise ValueError(f"cap must be >= 1, got {cap}")
        permit_id = uuid.uuid4().hex
        granted = self._acquire(
            keys=[self._key(key)], args=[self._now_ms(), cap, _ms(ttl_s), permit_id]
        )
        return permit_id if granted else None

    def acquire_blocking(
        self,
        key: str,
        cap: int,
        ttl_s: float,
        *,
        timeout: float,
        sleep: Callable[[float], None] = time.sleep,
        keep_alive: bool = False,
    ) -> str | None:
        """Wait up to `timeout` seconds (of real time) for a permit; None if none came free.
        With `keep_alive`, the permit is renewed in the background until released.

        Waiting is not a failed call, so callers do not count it as a retry attempt.
        """
        deadline = time.monotonic() + timeout
        polls = 0
        while True:
            permit_id = self.acquire(key, cap, ttl_s)
            remaining = deadline - time.monotonic()
            if permit_id is not None or remaining <= 0:
                if permit_id is not None and keep_alive:
                    self._keep(key, permit_id, ttl_s)
                return permit_id
            polls += 1
            sleep(min(remaining, compute_backoff(polls, base=_POLL_BASE_S, cap=_POLL_CAP_S)))

    def release(self, key: str, permit_id: str) -> bool:
        """Give a permit back; False if it had already expired (and may have been reused)."""
        self._stop_keeping(key, permit_id)
        return bool(self._redis.zrem(self._key(key), permit_id))

    def release_on(self, pipe: redis.client.Pipeline, key: str, permit_id: str) -> None:
        """`release`, queued on `pipe` to share a round trip with other commands."""
        self._stop_keeping(key, permit_id)
        pipe.zrem(self._key(key), permit_id)

    def _stop_keeping(self, key: str, permit_id: str) -> None:
        with self._kept_lock:
            self._kept.pop((key, permit_id), None)

    def _keep(self, key: str, permit_id: str, ttl_s: float) -> None:
        with self._kept_lock:
            self._kept[(key, permit_id)] = ttl_s
            if self._keeper is None:
                self._keeper = threading.Thread(
                    target=self._renew_kept, name="permit-keeper", daemon=True
                )
                self._keeper.start()

    def _renew_kept(self) -> None:
        while True:
            with self._kept_lock:
                kept = dict(self._kept)
            if kept:
                pipe = self._redis.pipeline(transaction=False)
                now_ms = self._now_ms()
                for (key, permit_id), ttl_s in kept.items():
                    self._renew(
                        keys=[self._key(key)], args=[now_ms, _ms(ttl_s), permit_id], client=pipe
                    )
                # Redis away: a permit may lapse, and the cap is soft until the next round.
                with contextlib.suppress(redis.RedisError):
                    pipe.execute()
            time.sleep(min(kept.values(), default=_IDLE_RENEW_S * 3) / 3)

    def renew(self, key: str, permit_id: str, ttl_s: float) -> bool:
        """Extend a live permit to `ttl_s` from now; False if it had already expired, in which
        case the holder no longer counts against the cap and should stop or re-acquire."""
        return bool(
            self._renew(keys=[self._key(key)], args=[self._now_ms(), _ms(ttl_s), permit_id])
        )

    def in_use(self, key: str) -> int:
        """Live permits for `key` (expired ones are not counted)."""
        return int(self._redis.zcount(self._key(key), f"({self._now_ms()}", "+inf"))

    def _key(self, key: str) -> str:
        return f"{self._prefix}:{key}"

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def _ms(seconds: float) -> int:
    if seconds <= 0:
        raise ValueError(f"ttl_s must be > 0, got {seconds}")
    return max(1, round(seconds * 1000))
