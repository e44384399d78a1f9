"""Admission control for submissions, in the order the submit path applies it: the job queues'
depth, then the API key's request and estimated-token rate limits. Budgets come after, inside the
admitting transaction (shared/repositories/budgets.py).

All state is in Redis, so every API process sees the same counts. The rate limits use the
`limits` library's sliding-window counters: one atomic Lua script per hit, two keys per limit,
so a hit with a cost of a million tokens is as cheap as a hit of one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache

from flask import Blueprint, Response, g
from limits import RateLimitItemPerMinute
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from shared.errors import QueueFullError, RateLimitedError
from shared.models import ApiKey
from shared.queueing import JOB_QUEUE_ORDER
from shared.redis_client import get_redis
from shared.settings import get_settings

# How long a client should wait after the queues were found full: a few seconds of draining.
QUEUE_FULL_RETRY_AFTER_S = 10
WINDOW_S = 60


def check_queue_depth() -> None:
    """QueueFullError when the job queues in Redis together hold max_queue_depth messages."""
    pipe = get_redis().pipeline(transaction=False)
    for queue in JOB_QUEUE_ORDER:
        pipe.llen(queue)
    depth = sum(pipe.execute())
    limit = get_settings().max_queue_depth
    if depth >= limit:
        raise QueueFullError(
            f"The job queues are full ({depth} jobs waiting, limit {limit}); retry later.",
            details={"depth": depth, "limit": limit},
            retry_after_s=QUEUE_FULL_RETRY_AFTER_S,
        )


@lru_cache(maxsize=1)
def _limiter() -> SlidingWindowCounterRateLimiter:
    storage = RedisStorage(
        get_settings().redis_url, key_prefix="promptq:ratelimit", socket_timeout=2
    )
    return SlidingWindowCounterRateLimiter(storage)


@dataclass(frozen=True)
class Window:
    """One limit as the client sees it after this request."""

    limit: int
    remaining: int
    reset_at: float  # Unix time at which capacity next frees up

    def retry_after_s(self) -> int:
        return max(1, math.ceil(self.reset_at - time.time()))


@dataclass(frozen=True)
class RateLimitState:
    requests: Window
    tokens: Window

    def headers(self) -> dict[str, str]:
        """X-RateLimit-* for requests per minute; the -Tokens variants for estimated tokens."""
        headers: dict[str, str] = {}
        for suffix, window in (("", self.requests), ("-Tokens", self.tokens)):
            headers[f"X-RateLimit-Limit{suffix}"] = str(window.limit)
            headers[f"X-RateLimit-Remaining{suffix}"] = str(window.remaining)
            headers[f"X-RateLimit-Reset{suffix}"] = str(math.ceil(window.reset_at))
        return headers


def _window(item: RateLimitItemPerMinute, *identifiers: str) -> Window:
    stats = _limiter().get_window_stats(item, *identifiers)
    return Window(limit=item.amount, remaining=stats.remaining, reset_at=stats.reset_time)


def charge_rate_limits(key: ApiKey, tokens: int) -> RateLimitState:
    """Count one request and `tokens` estimated tokens against the key's per-minute limits;
    RateLimitedError when either is spent. A refused request still counts as a request."""
    settings = get_settings()
    rpm = RateLimitItemPerMinute(key.rpm_limit or settings.default_rpm_limit, namespace="rpm")
    tpm = RateLimitItemPerMinute(key.tpm_limit or settings.default_tpm_limit, namespace="tpm")
    ident = str(key.id)
    limiter = _limiter()
    requests_ok = limiter.hit(rpm, ident)
    tokens_ok = requests_ok and limiter.hit(tpm, ident, cost=tokens)
    state = RateLimitState(requests=_window(rpm, ident), tokens=_window(tpm, ident))
    g.rate_limit = state
    if not requests_ok:
        raise RateLimitedError(
            f"Rate limit of {rpm.amount} requests per minute reached for this API key; "
            f"retry in {state.requests.retry_after_s()} s.",
            details={"limit_requests_per_minute": rpm.amount},
            retry_after_s=state.requests.retry_after_s(),
        )
    if not tokens_ok:
        if tokens > tpm.amount:
            message = (
                f"This request's estimated {tokens} tokens exceed the key's limit of "
                f"{tpm.amount} tokens per minute outright; send less work per request."
            )
            retry_after = WINDOW_S
        else:
            retry_after = state.tokens.retry_after_s()
            message = (
                f"Rate limit of {tpm.amount} estimated tokens per minute reached for this API "
                f"key (this request: {tokens}); retry in {retry_after} s."
            )
        raise RateLimitedError(
            message,
            details={"limit_tokens_per_minute": tpm.amount, "requested_tokens": tokens},
            retry_after_s=retry_after,
        )
    return state


def screen(key: ApiKey, tokens: int) -> RateLimitState:
    """The checks before any database work: queue depth, then the key's rate limits."""
    check_queue_depth()
    return charge_rate_limits(key, tokens)


def install_headers(bp: Blueprint) -> None:
    """Give every answer of `bp` to a request that was counted the rate-limit headers (refusals
    and their Retry-After are api/errors.py's)."""

    @bp.after_request
    def _rate_limit_headers(response: Response) -> Response:
        state: RateLimitState | None = g.get("rate_limit")
        if state is not None:
            response.headers.update(state.headers())
        return response
