"""The checks before any database work, in one Redis round trip: the queued jobs' number (the
backlog gauge, shared/backlog_gauge.py, plus the messages waiting in the job queues), then the
API key's request and estimated-token rate limits; and, when all pass, the live workers' slots,
which size the broker's window the admission dispatches into (shared/dispatch_window.py).

All state is in Redis, so every API process sees the same counts. The limits are sliding-window
counters over one minute: the count of the current window plus the previous window's, weighted
by how much of it still overlaps the last 60 seconds; two keys per limit, so a hit of a million
tokens costs what a hit of one does. A refused request still counts as a request; a request
refused for its tokens counts no tokens.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from flask import Blueprint, Response, g

from api.auth import CallerKey
from shared.backlog_gauge import BACKLOG_KEY
from shared.dispatch_window import window_of
from shared.errors import QueueFullError, RateLimitedError
from shared.queueing import JOB_QUEUE_ORDER
from shared.redis_client import get_redis
from shared.settings import get_settings
from shared.worker_heartbeats import HEARTBEATS_KEY, SLOTS_KEY

# How long a client should wait after the queues were found full: a few seconds of draining.
QUEUE_FULL_RETRY_AFTER_S = 10
WINDOW_S = 60
KEY_PREFIX = "promptq:ratelimit:"

# KEYS: the job queues (3), the backlog gauge, the workers' heartbeats and slots, the request
# counter prefix, the token counter prefix. ARGV: max depth, window seconds, request limit,
# token limit, tokens, the oldest live heartbeat, the jobs being admitted (added to the gauge
# when all pass). Returns {admitted, depth, requests_ok,
# request_count, request_previous, tokens_ok, token_count, token_previous, now, live slots}
# with counts as strings (Lua numbers would be truncated).
_SCREEN = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local depth = math.max(0, tonumber(redis.call('GET', KEYS[4]) or '0'))
for i = 1, 3 do depth = depth + redis.call('LLEN', KEYS[i]) end
if depth >= tonumber(ARGV[1]) then return {0, depth} end
local window = tonumber(ARGV[2])
local index = math.floor(now / window)
local weight = 1 - (now - index * window) / window
local current = string.format('%d', index)
local previous = string.format('%d', index - 1)
local function counts(prefix)
  return tonumber(redis.call('GET', prefix .. current) or '0'),
         tonumber(redis.call('GET', prefix .. previous) or '0')
end
local function hit(prefix, amount)
  redis.call('INCRBY', prefix .. current, amount)
  redis.call('EXPIRE', prefix .. current, window * 2)
end
local r_count, r_previous = counts(KEYS[7])
local requests_ok = r_previous * weight + r_count + 1 <= tonumber(ARGV[3])
if requests_ok then
  hit(KEYS[7], 1)
  r_count = r_count + 1
end
local tokens = tonumber(ARGV[5])
local t_count, t_previous = counts(KEYS[8])
local tokens_ok = requests_ok and t_previous * weight + t_count + tokens <= tonumber(ARGV[4])
local slots = 0
if tokens_ok then
  hit(KEYS[8], tokens)
  t_count = t_count + tokens
  redis.call('INCRBY', KEYS[4], ARGV[7])
  for _, name in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], ARGV[6], '+inf')) do
    slots = slots + tonumber(redis.call('HGET', KEYS[6], name) or '0')
  end
end
return {1, depth, requests_ok and 1 or 0, tostring(r_count), tostring(r_previous),
        tokens_ok and 1 or 0, tostring(t_count), tostring(t_previous), tostring(now), slots}
"""


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


@dataclass(frozen=True)
class Screened:
    """What admission learns from the screening: the key's limits after this request, and the
    broker's window (shared/dispatch_window.py) for the workers alive now."""

    limits: RateLimitState
    window: int


def _window(limit: int, count: float, previous: float, now: float, cost: int) -> Window:
    """The limit after this request; `reset_at` is when a request costing `cost` would fit."""
    start = math.floor(now / WINDOW_S) * WINDOW_S
    elapsed = (now - start) / WINDOW_S
    faded = previous * (1 - elapsed)
    remaining = max(0, math.floor(limit - faded - count))
    room = limit - cost
    if room < 0:
        wait = float(WINDOW_S)  # never fits; the caller says so
    elif faded + count <= room:
        wait = 0.0
    elif count <= room:
        # The previous window's weight has to fade until the request fits.
        wait = ((1 - (room - count) / previous) - elapsed) * WINDOW_S
    else:
        # Only once this window is the previous one and has faded enough.
        wait = (1 - elapsed) * WINDOW_S + (1 - room / count) * WINDOW_S
    return Window(limit=limit, remaining=remaining, reset_at=now + max(wait, 0.0))


def screen(key: CallerKey, tokens: int, jobs: int) -> Screened:
    """Queue depth, then one request and `tokens` estimated tokens against the key's
    per-minute limits, and the broker's window; `jobs` are added to the backlog gauge when all
    pass. QueueFullError or RateLimitedError when one does not."""
    settings = get_settings()
    rpm = key.rpm_limit or settings.default_rpm_limit
    tpm = key.tpm_limit or settings.default_tpm_limit
    prefix = f"{KEY_PREFIX}{key.id}:"
    script = get_redis().register_script(_SCREEN)
    answer = script(
        keys=[
            *JOB_QUEUE_ORDER,
            BACKLOG_KEY,
            HEARTBEATS_KEY,
            SLOTS_KEY,
            prefix + "rpm:",
            prefix + "tpm:",
        ],
        args=[
            settings.max_queue_depth,
            WINDOW_S,
            rpm,
            tpm,
            tokens,
            time.time() - settings.ready_worker_heartbeat_s,
            jobs,
        ],
    )
    if not answer[0]:
        depth, limit = int(answer[1]), settings.max_queue_depth
        raise QueueFullError(
            f"The job queues are full ({depth} jobs waiting, limit {limit}); retry later.",
            details={"depth": depth, "limit": limit},
            retry_after_s=QUEUE_FULL_RETRY_AFTER_S,
        )
    requests_ok, tokens_ok = bool(answer[2]), bool(answer[5])
    now = float(answer[8])
    state = RateLimitState(
        requests=_window(rpm, float(answer[3]), float(answer[4]), now, 1),
        tokens=_window(tpm, float(answer[6]), float(answer[7]), now, tokens),
    )
    g.rate_limit = state
    if not requests_ok:
        raise RateLimitedError(
            f"Rate limit of {rpm} requests per minute reached for this API key; "
            f"retry in {state.requests.retry_after_s()} s.",
            details={"limit_requests_per_minute": rpm},
            retry_after_s=state.requests.retry_after_s(),
        )
    if not tokens_ok:
        if tokens > tpm:
            message = (
                f"This request's estimated {tokens} tokens exceed the key's limit of "
                f"{tpm} tokens per minute outright; send less work per request."
            )
            retry_after = WINDOW_S
        else:
            retry_after = state.tokens.retry_after_s()
            message = (
                f"Rate limit of {tpm} estimated tokens per minute reached for this API "
                f"key (this request: {tokens}); retry in {retry_after} s."
            )
        raise RateLimitedError(
            message,
            details={"limit_tokens_per_minute": tpm, "requested_tokens": tokens},
            retry_after_s=retry_after,
        )
    return Screened(limits=state, window=window_of(int(answer[9]), settings))


def install_headers(bp: Blueprint) -> None:
    """Give every answer of `bp` to a request that was counted the rate-limit headers (refusals
    and their Retry-After are api/errors.py's)."""

    @bp.after_request
    def _rate_limit_headers(response: Response) -> Response:
        state: RateLimitState | None = g.get("rate_limit")
        if state is not None:
            response.headers.update(state.headers())
        return response
