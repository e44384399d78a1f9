"""The circuit breaker on a real Redis: trips on a failure rate, shares state between workers,
and lets a bounded number of probes test recovery."""

from __future__ import annotations

import threading
import time

from devstack.processes import wait_until
from tests.worker.resilience.conftest import MakeRedis, ManualClock
from worker.resilience.circuit_breaker import (
    BreakerPolicy,
    CircuitBreaker,
    CircuitState,
    Permit,
)
from worker.resilience.concurrency import ConcurrencyLimiter

KEY = "openai:gpt-4o-mini"
POLICY = BreakerPolicy(
    window_s=30, min_calls=10, failure_threshold=0.5, cooldown_s=20, probe_ttl_s=60
)


def record_calls(breaker: CircuitBreaker, outcomes: list[bool]) -> CircuitState:
    state = CircuitState.CLOSED
    for success in outcomes:
        permit = breaker.allow(KEY)
        assert permit is not None and not permit.probe
        state = breaker.record(permit, success)
    return state


def tripped(
    make_redis: MakeRedis, clock: ManualClock, policy: BreakerPolicy = POLICY
) -> CircuitBreaker:
    breaker = CircuitBreaker(make_redis(), policy, clock=clock)
    assert record_calls(breaker, [False] * policy.min_calls) is CircuitState.OPEN
    return breaker


def test_no_trip_before_min_calls_even_when_all_fail(make_redis: MakeRedis) -> None:
    """Nine failures out of nine stay CLOSED when ten calls are the minimum; the tenth trips."""
    breaker = CircuitBreaker(make_redis(), POLICY, clock=ManualClock())

    assert record_calls(breaker, [False] * 9) is CircuitState.CLOSED
    assert breaker.allow(KEY) is not None
    assert record_calls(breaker, [False]) is CircuitState.OPEN
    assert breaker.allow(KEY) is None
    assert breaker.state(KEY) is CircuitState.OPEN


def test_trips_exactly_at_the_failure_threshold(make_redis: MakeRedis) -> None:
    """Below 50% failures the breaker stays CLOSED; the call that reaches 50% trips it."""
    breaker = CircuitBreaker(make_redis(), POLICY, clock=ManualClock())

    assert record_calls(breaker, [True] * 6 + [False] * 4) is CircuitState.CLOSED  # 4/10
    assert record_calls(breaker, [False]) is CircuitState.CLOSED  # 5/11
    assert record_calls(breaker, [False]) is CircuitState.OPEN  # 6/12


def test_failures_older_than_the_window_do_not_count(make_redis: MakeRedis) -> None:
    """Failures slide out of the window, so old trouble cannot trip the breaker later."""
    clock = ManualClock()
    breaker = CircuitBreaker(make_redis(), POLICY, clock=clock)
    record_calls(breaker, [False] * 9)

    clock.advance(POLICY.window_s + 1)

    assert record_calls(breaker, [False] * 9) is CircuitState.CLOSED
    assert record_calls(breaker, [False]) is CircuitState.OPEN


def test_two_workers_share_one_breaker(make_redis: MakeRedis) -> None:
    """Failures seen by one worker's breaker trip it for another worker with its own client."""
    clock = ManualClock()
    worker_a = CircuitBreaker(make_redis(), POLICY, clock=clock)
    worker_b = CircuitBreaker(make_redis(), POLICY, clock=clock)

    record_calls(worker_a, [False] * 5)
    record_calls(worker_b, [False] * 5)

    assert worker_a.allow(KEY) is None
    assert worker_b.state(KEY) is CircuitState.OPEN
    assert worker_b.allow("anthropic:claude-haiku-4-5") is not None


def test_open_refuses_until_the_cooldown_then_admits_a_probe(make_redis: MakeRedis) -> None:
    """OPEN refuses every call for the cooldown; afterwards a probe permit is handed out."""
    clock = ManualClock()
    breaker = tripped(make_redis, clock)

    clock.advance(POLICY.cooldown_s - 0.01)
    assert breaker.allow(KEY) is None

    clock.advance(0.01)
    assert breaker.state(KEY) is CircuitState.HALF_OPEN
    probe = breaker.allow(KEY)
    assert probe is not None and probe.probe
    assert breaker.allow(KEY) is None


def test_half_open_admits_only_the_bounded_number_of_concurrent_probes(
    make_redis: MakeRedis,
) -> None:
    """Twenty workers racing for a half-open breaker get exactly `half_open_max_probes`."""
    policy = BreakerPolicy(min_calls=4, cooldown_s=5, half_open_max_probes=3, probe_ttl_s=60)
    clock = ManualClock()
    tripped(make_redis, clock, policy)
    clock.advance(policy.cooldown_s)
    breakers = [CircuitBreaker(make_redis(), policy, clock=clock) for _ in range(4)]
    barrier = threading.Barrier(20)
    permits: list[Permit | None] = []
    lock = threading.Lock()

    def race(breaker: CircuitBreaker) -> None:
        barrier.wait()
        permit = breaker.allow(KEY)
        with lock:
            permits.append(permit)

    threads = [threading.Thread(target=race, args=(breakers[i % 4],)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    granted = [permit for permit in permits if permit is not None]
    assert len(permits) == 20
    assert len(granted) == 3
    assert all(permit.probe for permit in granted)


def test_probe_success_closes_the_breaker(make_redis: MakeRedis) -> None:
    """A successful probe closes the breaker and calls flow again with a fresh window."""
    clock = ManualClock()
    breaker = tripped(make_redis, clock)
    clock.advance(POLICY.cooldown_s)
    probe = breaker.allow(KEY)
    assert probe is not None

    assert breaker.record(probe, True) is CircuitState.CLOSED
    assert breaker.state(KEY) is CircuitState.CLOSED
    assert record_calls(breaker, [False] * 9) is CircuitState.CLOSED


def test_probe_failure_reopens_for_a_fresh_cooldown(make_redis: MakeRedis) -> None:
    """A failed probe re-opens the breaker, counting the cooldown from the failure."""
    clock = ManualClock()
    breaker = tripped(make_redis, clock)
    clock.advance(POLICY.cooldown_s + 5)
    probe = breaker.allow(KEY)
    assert probe is not None

    assert breaker.record(probe, False) is CircuitState.OPEN
    clock.advance(POLICY.cooldown_s - 0.01)
    assert breaker.allow(KEY) is None
    clock.advance(0.01)
    assert breaker.allow(KEY) is not None


def test_closing_can_require_several_probe_successes(make_redis: MakeRedis) -> None:
    """With half_open_successes=2 one good probe frees its slot but keeps the breaker HALF_OPEN."""
    policy = BreakerPolicy(min_calls=4, cooldown_s=5, half_open_successes=2)
    clock = ManualClock()
    breaker = tripped(make_redis, clock, policy)
    clock.advance(policy.cooldown_s)

    first = breaker.allow(KEY)
    assert first is not None
    assert breaker.record(first, True) is CircuitState.HALF_OPEN
    second = breaker.allow(KEY)
    assert second is not None and second.probe
    assert breaker.record(second, True) is CircuitState.CLOSED


def test_a_dead_probe_gives_its_slot_back_after_its_ttl(make_redis: MakeRedis) -> None:
    """A probe whose worker never reports frees its slot after probe_ttl_s."""
    clock = ManualClock()
    breaker = tripped(make_redis, clock)
    clock.advance(POLICY.cooldown_s)
    assert breaker.allow(KEY) is not None

    clock.advance(POLICY.probe_ttl_s - 0.01)
    assert breaker.allow(KEY) is None
    clock.advance(0.01)
    assert breaker.allow(KEY) is not None


def test_outcomes_of_calls_admitted_before_the_trip_are_ignored(make_redis: MakeRedis) -> None:
    """Late results of calls that started while CLOSED neither extend nor close an OPEN breaker."""
    clock = ManualClock()
    breaker = CircuitBreaker(make_redis(), POLICY, clock=clock)
    late = [breaker.allow(KEY) for _ in range(2)]
    record_calls(breaker, [False] * POLICY.min_calls)

    assert breaker.record(late[0], True) is CircuitState.OPEN  # type: ignore[arg-type]
    clock.advance(POLICY.cooldown_s)
    probe = breaker.allow(KEY)
    assert probe is not None and probe.probe
    assert breaker.record(late[1], True) is CircuitState.HALF_OPEN  # type: ignore[arg-type]
    assert breaker.allow(KEY) is None


def test_real_clock_recovers_after_a_short_cooldown(make_redis: MakeRedis) -> None:
    """With the wall clock, an OPEN breaker admits a probe once the cooldown has passed."""
    policy = BreakerPolicy(min_calls=2, cooldown_s=0.3)
    breaker = CircuitBreaker(make_redis(), policy)
    for _ in range(2):
        permit = breaker.allow(KEY)
        assert permit is not None
        breaker.record(permit, False)
    opened = time.monotonic()
    assert breaker.allow(KEY) is None

    wait_until(lambda: breaker.allow(KEY) is not None, timeout=5, interval=0.02)

    assert time.monotonic() - opened >= 0.25
    assert breaker.state(KEY) is CircuitState.HALF_OPEN


def test_outcomes_queued_on_a_pipeline_with_a_permit_release_count_the_same(
    make_redis: MakeRedis,
) -> None:
    """The worker's one round trip after a call (permit back, outcome counted) trips the breaker
    at the same point as separate calls, and gives every permit back."""
    client = make_redis()
    breaker = CircuitBreaker(client, POLICY, clock=ManualClock())
    permits = ConcurrencyLimiter(client)
    for n in range(POLICY.min_calls):
        permit = breaker.allow(KEY)
        slot = permits.acquire(KEY, cap=1, ttl_s=30)
        assert permit is not None and slot is not None, f"call {n} refused"
        pipe = client.pipeline(transaction=False)
        permits.release_on(pipe, KEY, slot)
        breaker.record_on(pipe, permit, success=False)
        pipe.execute()
        assert permits.in_use(KEY) == 0
    assert breaker.state(KEY) is CircuitState.OPEN
    assert breaker.allow(KEY) is None
