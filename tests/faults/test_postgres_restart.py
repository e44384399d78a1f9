"""PostgreSQL restarted while workers run: writes that failed during the outage are recovered
by lease expiry and the sweeper, and the workers keep serving new jobs afterwards."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text

from devstack.processes import wait_until
from shared.db import transaction
from tests.faults.conftest import DedicatedPostgres, MakeStack
from tests.faults.invariants import assert_settled, wait_all_final
from tests.faults.seeding import create_account, submit
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e

WORKERS = ("worker", "worker2")


def _failed_tasks(stack: RunningStack) -> int:
    """run_job executions that raised on the database (a write during the outage)."""
    return sum(
        1
        for w in WORKERS
        for line in stack.processes[w].log_text().splitlines()
        if "raised unexpected" in line and "OperationalError" in line
    )


def test_jobs_finish_after_postgres_restarts_under_running_workers(
    dedicated_postgres: DedicatedPostgres,
    make_stack: MakeStack,
    use_services: Callable[..., None],
) -> None:
    """Postgres stops while 16 jobs' calls are in flight, so their final writes fail; once it is
    back every job ends in one final state, and jobs submitted afterwards finish too."""
    use_services(database_url=dedicated_postgres.url)
    stack = make_stack(
        workers=2, concurrency=4, sim_latency_ms=1500, database_url=dedicated_postgres.url
    )
    account = create_account("pg-restart")
    ids = submit(stack, account, 16, "gpt-4o-mini")
    wait_until(lambda: stack.sim_stats()["in_flight"] >= 6, timeout=20, what="calls in flight")

    dedicated_postgres.stop()
    # The calls in flight come back to a database that is gone: their final writes fail.
    wait_until(lambda: _failed_tasks(stack) >= 2, timeout=20, what="final writes to fail")
    dedicated_postgres.start()

    wait_all_final(ids, timeout=45)
    later = submit(stack, account, 8, "gpt-4o-mini")
    wait_all_final(later, timeout=20)
    assert assert_settled([*ids, *later]) == {"succeeded": len(ids) + len(later)}
    with transaction() as session:
        redelivered = session.execute(
            text("SELECT count(*) FROM jobs WHERE deliveries > 1")
        ).scalar_one()
    # Jobs whose final write failed were handed out again (lease expiry, sweeper) to finish.
    assert redelivered >= 1
