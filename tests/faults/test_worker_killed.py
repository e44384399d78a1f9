"""A worker killed with SIGKILL mid-call: its jobs come back through lease expiry and the
sweeper, run on another worker, and none is charged or succeeds twice."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from devstack.processes import wait_until
from shared.db import transaction
from tests.faults.conftest import MakeStack
from tests.faults.invariants import assert_settled, wait_all_final
from tests.faults.seeding import create_account, insert_jobs, submit

pytestmark = pytest.mark.e2e

CONCURRENCY = 20


def test_jobs_of_a_killed_worker_finish_once_on_another(make_stack: MakeStack) -> None:
    """kill -9 of a worker (its whole process group) with 100 jobs in flight or queued: a new
    worker and the sweeper finish all 100, each charged only for the attempts it recorded."""
    stack = make_stack(workers=1, concurrency=CONCURRENCY, sim_latency_ms=1500)
    account = create_account("killed")
    ids = submit(stack, account, 10, "gpt-4o-mini")
    ids += insert_jobs(account, 90, "gpt-4o-mini")
    # Every slot busy: the worker holds exactly the messages it runs and fetches no more until
    # one finishes. (Killed while fetching, a message Redis handed over before Celery saw it
    # stays with the dead worker until BROKER_VISIBILITY_TIMEOUT_S: a known gap, see README.)
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
    stack.start_worker("worker2", concurrency=CONCURRENCY)

    wait_all_final(ids, timeout=50)
    assert assert_settled(ids) == {"succeeded": len(ids)}
    with transaction() as session:
        redelivered = set(
            session.execute(text("SELECT id::text FROM jobs WHERE deliveries > 1")).scalars()
        )
    # The jobs the dead worker held were claimed again after their leases expired.
    assert running_at_kill and running_at_kill <= redelivered
    assert '"sweep.done"' in stack.processes["worker2"].log_text()
