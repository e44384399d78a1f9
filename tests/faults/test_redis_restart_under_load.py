"""Redis restarted (down two seconds, back empty) while clients submit and workers run calls:
no worker process exits, jobs complete again within seconds, and the API answers 503, never
500, while Redis is away."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from devstack.processes import wait_until
from tests.faults.conftest import MakeStack
from tests.faults.invariants import assert_settled, final_count, wait_all_final
from tests.faults.load import SteadyLoad
from tests.faults.seeding import create_account
from tests.faults.servers import DedicatedRedis

pytestmark = pytest.mark.e2e


def test_workers_survive_a_redis_restart_under_load(
    dedicated_redis: DedicatedRedis, make_stack: MakeStack, use_services: Callable[..., None]
) -> None:
    """Two job workers, a webhook worker and beat keep running through a Redis restart with
    calls in flight and acks pending; a job submitted after Redis answers again finishes within
    10 s, and every accepted job finishes exactly once."""
    use_services(redis_url=dedicated_redis.url)
    stack = make_stack(workers=2, concurrency=8, webhook_workers=1, redis_url=dedicated_redis.url)
    stack.set_faults({"model": "*", "latency_ms": 300})
    account = create_account("redis-restart-load")
    load = SteadyLoad(stack.api_url, account, "gpt-4o-mini", interval=0.03).start()
    try:
        wait_until(lambda: len(load.accepted) >= 60, timeout=30, what="load to build up")
        wait_until(lambda: stack.sim_stats()["in_flight"] > 2, timeout=20, what="calls in flight")
        dedicated_redis.stop()
        # Redis stays away until every consumer has lost its connection and is reconnecting.
        consumers = [stack.processes[name] for name in ("worker", "worker2", "webhooks")]
        wait_until(
            lambda: all("Connection to broker lost" in p.log_text() for p in consumers),
            timeout=20,
            what="every consumer to see Redis gone",
        )
        dedicated_redis.start()
        back = time.monotonic()
        before = len(load.accepted)
        wait_until(lambda: len(load.accepted) > before, timeout=10, what="an accepted job")
        after_restart = load.accepted[before]
        wait_all_final([after_restart], timeout=10 - (time.monotonic() - back))
        wait_until(lambda: len(load.accepted) >= before + 40, timeout=30, what="more load")
    finally:
        load.stop()
    stack.clear_faults()
    wait_all_final(load.accepted, timeout=60)
    assert assert_settled(load.accepted) == {"succeeded": len(load.accepted)}
    exited = [name for name, p in stack.processes.items() if not p.alive()]
    assert exited == [], {name: stack.processes[name].log_text()[-3000:] for name in exited}
    assert load.statuses[500] == 0, load.errors[:5]
    assert set(load.statuses) <= {202, 503}, load.statuses
    assert final_count(load.accepted) == len(load.accepted)
