"""Per-provider RPM/TPM budgets on a real Redis, shared by every worker."""

from __future__ import annotations

import time

import pytest

from devstack.processes import wait_until
from tests.worker.resilience.conftest import MakeRedis
from worker.resilience.rate_limit import MIN_WAIT_S, ProviderLimits, ProviderRateLimiter


def test_requests_per_window_are_capped(make_redis: MakeRedis) -> None:
    """The request beyond the RPM budget must wait, at most until the window has slid past."""
    limiter = ProviderRateLimiter(make_redis(), {"openai": ProviderLimits(rpm=3)})

    waits = [limiter.try_acquire("openai", tokens=0) for _ in range(4)]

    assert waits[:3] == [0.0, 0.0, 0.0]
    assert MIN_WAIT_S <= waits[3] <= 120


def test_tokens_per_window_are_capped_without_spending_a_request(make_redis: MakeRedis) -> None:
    """A call refused for tokens takes nothing: the request budget is still there for later."""
    limiter = ProviderRateLimiter(make_redis(), {"openai": ProviderLimits(rpm=2, tpm=100)})

    assert limiter.try_acquire("openai", tokens=60) == 0.0
    assert limiter.try_acquire("openai", tokens=60) > 0
    assert limiter.try_acquire("openai", tokens=40) == 0.0
    assert limiter.try_acquire("openai", tokens=1) > 0  # now the request budget is spent


def test_two_workers_draw_from_one_budget(make_redis: MakeRedis) -> None:
    """Two limiters on separate clients share the provider's budget."""
    limits = {"anthropic": ProviderLimits(rpm=4)}
    worker_a = ProviderRateLimiter(make_redis(), limits)
    worker_b = ProviderRateLimiter(make_redis(), limits)

    granted = [w.try_acquire("anthropic", 10) == 0.0 for w in (worker_a, worker_b) * 3]

    assert granted == [True, True, True, True, False, False]


def test_providers_have_separate_budgets_and_unknown_ones_are_unlimited(
    make_redis: MakeRedis,
) -> None:
    """Spending one provider's budget leaves another's alone; unconfigured providers never wait."""
    limiter = ProviderRateLimiter(
        make_redis(), {"openai": ProviderLimits(rpm=1), "anthropic": ProviderLimits(rpm=1)}
    )

    assert limiter.try_acquire("openai", 5) == 0.0
    assert limiter.try_acquire("openai", 5) > 0
    assert limiter.try_acquire("anthropic", 5) == 0.0
    assert all(limiter.try_acquire("mistral", 10_000) == 0.0 for _ in range(20))


def test_request_larger_than_the_token_budget_runs_alone(make_redis: MakeRedis) -> None:
    """A call bigger than the whole TPM budget goes through in an empty window, then blocks."""
    limiter = ProviderRateLimiter(make_redis(), {"openai": ProviderLimits(tpm=100)})

    assert limiter.try_acquire("openai", tokens=500) == 0.0
    assert limiter.try_acquire("openai", tokens=1) > 0


@pytest.mark.parametrize(
    ("limits", "tokens"),
    [(ProviderLimits(rpm=2, window_s=1), 0), (ProviderLimits(tpm=100, window_s=1), 50)],
)
def test_the_returned_wait_is_when_room_comes_back(
    make_redis: MakeRedis, limits: ProviderLimits, tokens: int
) -> None:
    """Asking again after the returned wait succeeds, and asking much earlier does not."""
    limiter = ProviderRateLimiter(make_redis(), {"openai": limits})
    assert limiter.try_acquire("openai", tokens) == 0.0
    assert limiter.try_acquire("openai", tokens) == 0.0
    started = time.monotonic()
    wait = limiter.try_acquire("openai", tokens)
    assert wait > 0.1

    wait_until(lambda: limiter.try_acquire("openai", tokens) == 0.0, timeout=5, interval=0.01)

    assert wait - 0.05 <= time.monotonic() - started <= wait + 0.5


def test_invalid_limits_are_refused() -> None:
    """Budgets below one, or a window under a second, are configuration errors."""
    for bad in ({"rpm": 0}, {"tpm": -5}, {"rpm": 10, "window_s": 0}):
        with pytest.raises(ValueError):
            ProviderLimits(**bad)  # type: ignore[arg-type]
