"""Requests-per-minute and tokens-per-minute budgets per provider, shared by every worker.

Providers enforce RPM and TPM per organisation, not per process, so the budget lives in Redis
and all workers draw from it. The `limits` library keeps the counters (its sliding window
counter: two Redis counters per limit, however many tokens pass, and no burst at window edges).
This wrapper answers the one question a worker asks: may I call now, and if not, for how long
should I wait?
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import redis
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter

# A wait handed back after losing a race for the last capacity, so callers never spin.
MIN_WAIT_S = 0.01


@dataclass(frozen=True)
class ProviderLimits:
    """A provider's budgets per `window_s` (60 for the RPM/TPM providers publish)."""

    rpm: int | None = None
    tpm: int | None = None
    window_s: int = 60

    def __post_init__(self) -> None:
        if any(limit is not None and limit < 1 for limit in (self.rpm, self.tpm)):
            raise ValueError("rpm and tpm must be >= 1 when set")
        if self.window_s < 1:
            raise ValueError("window_s must be >= 1")


class ProviderRateLimiter:
    """RPM/TPM admission for providers named in `limits`; others are unlimited."""

    def __init__(
        self,
        client: redis.Redis,
        limits: Mapping[str, ProviderLimits],
        *,
        prefix: str = "promptq:ratelimit",
    ) -> None:
        self._storage = RedisStorage(
            "redis://", connection_pool=client.connection_pool, key_prefix=prefix
        )
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)
        self._items: dict[str, list[tuple[str, RateLimitItem]]] = {
            provider: [
                (kind, RateLimitItemPerSecond(amount, limit.window_s))
                for kind, amount in (("requests", limit.rpm), ("tokens", limit.tpm))
                if amount is not None
            ]
            for provider, limit in limits.items()
        }

    def try_acquire(self, provider: str, tokens: int) -> float:
        """Take one request and `tokens` tokens from `provider`'s budgets if both have room, and
        return 0.0; otherwise return the seconds to wait before asking again.

        A request larger than the whole token budget is charged the whole budget, so it runs
        alone in an otherwise empty window rather than never.
        """
        checks = [
            (item, provider, kind, 1 if kind == "requests" else min(tokens, item.amount))
            for kind, item in self._items.get(provider, [])
            if kind == "requests" or tokens > 0
        ]
        waits = [
            self._wait(item, provider, kind, cost)
            for item, provider, kind, cost in checks
            if not self._limiter.test(item, provider, kind, cost=cost)
        ]
        if waits:
            return max(MIN_WAIT_S, *waits)
        for item, provider, kind, cost in checks:
            # Another worker may have taken the room since the test. A request slot already
            # taken here stays spent: that errs on the side of calling the provider less.
            if not self._limiter.hit(item, provider, kind, cost=cost):
                return max(MIN_WAIT_S, self._wait(item, provider, kind, cost))
        return 0.0

    def _wait(self, item: RateLimitItem, provider: str, kind: str, cost: int) -> float:
        """Seconds until the sliding window has room for `cost` again, assuming no other use.

        `limits` admits while previous * previous_ttl / window + current < amount - cost + 1.
        The previous count fades as its ttl runs down; the current one starts fading once it
        rolls over into the previous slot (when its ttl falls to one window).
        """
        previous, previous_ttl, current, current_ttl = self._storage.get_sliding_window(
            item.key_for(provider, kind), item.get_expiry()
        )
        window = item.get_expiry()
        headroom = item.amount - cost + 1
        rolls_in = max(0.0, current_ttl - window)
        before_roll = math.inf
        if current < headroom:
            before_roll = (
                max(0.0, previous_ttl - (headroom - current) * window / previous)
                if previous
                else 0.0
            )
        if current == 0 or before_roll <= rolls_in:
            return before_roll
        return rolls_in + max(0.0, window * (1 - headroom / current))
