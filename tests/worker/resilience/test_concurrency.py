"""Expiring concurrency permits on a real Redis: a hard cap shared by every worker, and permits
of dead holders coming back."""

from __future__ import annotations

import threading
import time

import pytest

from tests.worker.resilience.conftest import MakeRedis, ManualClock
from worker.resilience.concurrency import ConcurrencyLimiter

KEY = "openai:gpt-4o-mini"


def test_cap_refuses_at_once_and_release_frees_a_slot(make_redis: MakeRedis) -> None:
    """Permits are handed out up to the cap, refused beyond it, and released ones are reusable."""
    limiter = ConcurrencyLimiter(make_redis())

    permits = [limiter.acquire(KEY, cap=3, ttl_s=60) for _ in range(4)]

    assert all(permits[:3]) and permits[3] is None
    assert limiter.in_use(KEY) == 3
    assert limiter.acquire("anthropic:claude-haiku-4-5", cap=3, ttl_s=60) is not None
    assert limiter.release(KEY, permits[0])  # type: ignore[arg-type]
    assert not limiter.release(KEY, permits[0])  # type: ignore[arg-type]
    assert limiter.acquire(KEY, cap=3, ttl_s=60) is not None


def test_dead_holders_permit_comes_back_after_its_ttl(make_redis: MakeRedis) -> None:
    """A permit never released (its worker died) stops counting once its ttl has passed."""
    clock = ManualClock()
    dead_worker = ConcurrencyLimiter(make_redis(), clock=clock)
    live_worker = ConcurrencyLimiter(make_redis(), clock=clock)
    assert dead_worker.acquire(KEY, cap=1, ttl_s=30) is not None

    clock.advance(29.99)
    assert live_worker.acquire(KEY, cap=1, ttl_s=30) is None

    clock.advance(0.01)
    assert live_worker.in_use(KEY) == 0
    assert live_worker.acquire(KEY, cap=1, ttl_s=30) is not None


def test_renew_keeps_a_long_call_counted(make_redis: MakeRedis) -> None:
    """Renewing extends a live permit; a permit that already lapsed cannot be renewed."""
    clock = ManualClock()
    limiter = ConcurrencyLimiter(make_redis(), clock=clock)
    permit = limiter.acquire(KEY, cap=1, ttl_s=10)
    assert permit is not None

    clock.advance(9)
    assert limiter.renew(KEY, permit, ttl_s=10)
    clock.advance(9)
    assert limiter.acquire(KEY, cap=1, ttl_s=10) is None

    clock.advance(1)
    assert not limiter.renew(KEY, permit, ttl_s=10)
    assert limiter.in_use(KEY) == 0


def test_redis_key_expires_with_its_last_permit(make_redis: MakeRedis) -> None:
    """An idle key does not linger in Redis once every permit in it has run out."""
    client = make_redis()
    limiter = ConcurrencyLimiter(client, prefix="permits-test")
    limiter.acquire(KEY, cap=2, ttl_s=5)
    limiter.acquire(KEY, cap=2, ttl_s=50)

    assert 45_000 < client.pttl(f"permits-test:{KEY}") <= 50_000


def test_acquire_blocking_waits_for_an_expiring_permit(make_redis: MakeRedis) -> None:
    """A waiter gets the permit of a holder that vanished as soon as its ttl runs out."""
    limiter = ConcurrencyLimiter(make_redis())
    assert limiter.acquire(KEY, cap=1, ttl_s=0.3) is not None
    started = time.monotonic()

    permit = limiter.acquire_blocking(KEY, cap=1, ttl_s=5, timeout=5)

    assert permit is not None
    assert 0.25 <= time.monotonic() - started < 2


def test_acquire_blocking_gives_up_at_its_timeout(make_redis: MakeRedis) -> None:
    """With the cap held for longer than the timeout, the waiter returns None near the timeout."""
    limiter = ConcurrencyLimiter(make_redis())
    limiter.acquire(KEY, cap=1, ttl_s=60)
    started = time.monotonic()

    assert limiter.acquire_blocking(KEY, cap=1, ttl_s=5, timeout=0.3) is None
    assert 0.3 <= time.monotonic() - started < 1


def test_cap_holds_with_thirty_threads_across_two_workers(make_redis: MakeRedis) -> None:
    """Thirty threads over two clients never hold more than the cap at once, and all finish."""
    cap, rounds = 5, 10
    limiters = [ConcurrencyLimiter(make_redis()) for _ in range(2)]
    work = make_redis()
    changed = threading.Condition()
    holders = 0
    most = 0
    done: list[int] = []
    barrier = threading.Barrier(30)

    def cap_full() -> bool:
        return holders >= cap

    def worker(index: int) -> None:
        nonlocal holders, most
        limiter = limiters[index % 2]
        barrier.wait()
        for _ in range(rounds):
            permit = limiter.acquire_blocking(KEY, cap=cap, ttl_s=30, timeout=30)
            assert permit is not None
            with changed:
                holders += 1
                most = max(most, holders)
                changed.notify_all()
                # Hold until the cap looks full (or briefly), so overlapping holders are the
                # norm and an excess holder would be seen.
                changed.wait_for(cap_full, timeout=0.05)
            work.incr("work-done")  # a real round trip while holding, as a provider call would
            with changed:
                holders -= 1
            limiter.release(KEY, permit)
        done.append(index)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(done) == 30
    assert int(work.get("work-done")) == 30 * rounds  # type: ignore[arg-type]
    assert most == cap
    assert limiters[0].in_use(KEY) == 0


@pytest.mark.parametrize(("cap", "ttl_s"), [(0, 10), (1, 0)])
def test_nonsense_caps_and_ttls_are_refused(make_redis: MakeRedis, cap: int, ttl_s: float) -> None:
    """A cap below one or a ttl of zero is a configuration bug, not a permanent refusal."""
    with pytest.raises(ValueError):
        ConcurrencyLimiter(make_redis()).acquire(KEY, cap=cap, ttl_s=ttl_s)
