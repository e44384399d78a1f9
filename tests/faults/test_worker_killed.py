"""A worker killed with SIGKILL mid-call: its jobs come back through lease expiry and the
sweeper, run on another worker, and none is charged or succeeds twice."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from devstack.processes import wait_until
from shared.db import transaction
from tests.faults.conftest import MakeStack
from tests.faults.invariants import assert_settled, final_count, wait_all_final
from tests.faults.seeding import create_account, insert_jobs, submit

pytestmark = pytest.mark.e2e

CONCURRENCY = 20
JOBS = 200


def test_jobs_of_a_killed_worker_finish_once_on_another(make_stack: MakeStack) -> None:
    """kill -9 of a worker (its whole process group) with 200 jobs in flight or queued, its 20
    calls holding every permit of the model: a fresh worker started at once completes jobs
    within 10 s (the dead worker's permits lapse with it), and all 200 are final within 45 s
    of the kill, each charged only for the attempts it recorded."""
    stack = make_stack(
        workers=1,
        concurrency=CONCURRENCY,
        sim_latency_ms=1500,
        env={"MODEL_CONCURRENCY_CAP": str(CONCURRENCY)},
    )
    account = create_account("killed")
    ids = submit(stack, account, 10, "gpt-4o-mini")
    ids += insert_jobs(account, JOBS - 10, "gpt-4o-mini")
    wait_until(
        lambda: stack.sim_stats()["in_flight"] >= CONCURRENCY,
        timeout=20,
        what="every slot busy",
    )
    with transaction() as session:
        running_at_kill = set(
            session.execute(text("SELECT id::text FROM jobs WHERE status = 'running'")).scalars()
        )
    stack.processes["worker"].kill()
    killed_at = time.monotonic()
    final_at_kill = final_count(ids)
    stack.start_worker("worker2", concurrency=CONCURRENCY)

    wait_until(
        lambda: final_count(ids) > final_at_kill,
        timeout=10 - (time.monotonic() - killed_at),
        what="the fresh worker to complete a job",
    )
    wait_all_final(ids, timeout=45 - (time.monotonic() - killed_at))
    assert assert_settled(ids) == {"succeeded": len(ids)}
    with transaction() as session:
        redelivered = set(
            session.execute(text("SELECT id::text FROM jobs WHERE deliveries > 1")).scalars()
        )
    # The jobs the dead worker held were claimed again after their leases expired.
    assert running_at_kill and running_at_kill <= redelivered
    assert '"sweep.done"' in stack.processes["worker2"].log_text()
