"""Redis restarted empty with 500 jobs queued: the sweeper notices the loss at once and
republishes them from Postgres, and the worker and beat reconnect by themselves."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from devstack.processes import wait_until
from tests.faults.conftest import MakeStack
from tests.faults.invariants import assert_settled, final_count, wait_all_final
from tests.faults.seeding import create_account, insert_jobs, submit
from tests.faults.servers import DedicatedRedis

pytestmark = pytest.mark.e2e
GRACE_S = 600.0
DEADLINE_S = 120.0


def test_queued_jobs_survive_redis_losing_its_data(
    dedicated_redis: DedicatedRedis, make_stack: MakeStack, use_services: Callable[..., None]
) -> None:
    """With 500 jobs queued behind a slow model, Redis is stopped and a new, empty one starts on
    the same port; every job still finishes exactly once."""
    use_services(redis_url=dedicated_redis.url)
    stack = make_stack(
        workers=1,
        concurrency=8,
        redis_url=dedicated_redis.url,
        # A grace far longer than the deadline: only noticing the loss can republish in time.
        # The deadline is the time one slow worker needs for 500 jobs, not a heal budget.
        env={"PROVIDER_TIMEOUT_S": "10", "REQUEUE_GRACE_S": str(GRACE_S)},
    )
    # Slow calls keep almost all of the 500 waiting in the broker when Redis goes.
    stack.set_faults({"model": "*", "latency_ms": 3000})
    account = create_account("redis-restart")
    ids = submit(stack, account, 10, "gpt-4o-mini")
    ids += insert_jobs(account, 490, "gpt-4o-mini")
    wait_until(lambda: stack.sim_stats()["in_flight"] > 0, timeout=20, what="calls in flight")

    assert dedicated_redis.server is not None
    old_run_id = dedicated_redis.server.client().info("server")["run_id"]
    dedicated_redis.stop()
    dedicated_redis.start()
    restarted = time.monotonic()
    # A different server process with nothing persisted: every message and mark is gone. (Its
    # key count is no proof: the worker and beat reconnect and write within milliseconds.)
    fresh = dedicated_redis.server.client()
    assert fresh.info("server")["run_id"] != old_run_id
    assert fresh.config_get("appendonly")["appendonly"] == "no"
    assert fresh.config_get("save")["save"] == ""
    assert final_count(ids) < 20
    stack.clear_faults()

    # Redis' loss is noticed at the next sweep, not after the requeue grace.
    wait_all_final(ids, timeout=DEADLINE_S - (time.monotonic() - restarted))
    assert assert_settled(ids) == {"succeeded": len(ids)}
    assert stack.processes["worker"].alive() and stack.processes["beat"].alive()
