"""PostgreSQL restarted while workers run and clients submit: the workers keep the providers'
answers in hand and commit them once the database is back (no second provider call), the API
answers 503 database_unavailable (never 500) meanwhile, and every job is final within seconds
of the database answering again."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from devstack.processes import wait_until
from tests.faults.conftest import MakeStack
from tests.faults.invariants import assert_settled, wait_all_final
from tests.faults.load import SteadyLoad
from tests.faults.seeding import create_account, insert_jobs, submit
from tests.faults.servers import DedicatedPostgres
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e

WORKERS = ("worker", "worker2")
JOBS = 100


def _outage_retries(stack: RunningStack, what: str) -> int:
    """Worker writes that met the outage and were retried (db.outage_retry log lines)."""
    return sum(
        1
        for w in WORKERS
        for line in stack.processes[w].log_text().splitlines()
        if '"db.outage_retry"' in line and f'"what": "{what}"' in line
    )


def test_a_postgres_restart_costs_no_second_call_and_no_500(
    dedicated_postgres: DedicatedPostgres,
    make_stack: MakeStack,
    use_services: Callable[..., None],
) -> None:
    """Postgres stops while 100 jobs run or wait and a client keeps submitting; the final writes
    of the calls that end meanwhile are retried until it is back. Every job is final within 15 s
    of Postgres answering, with exactly one provider call each, and the API said 202 or 503."""
    use_services(database_url=dedicated_postgres.url)
    stack = make_stack(
        workers=2,
        concurrency=50,
        sim_latency_ms=1500,
        database_url=dedicated_postgres.url,
        # A call must not time out on a loaded machine: a second call would fail the count.
        env={"MODEL_CONCURRENCY_CAP": "200", "PROVIDER_TIMEOUT_S": "15"},
    )
    account = create_account("pg-restart")
    # Published at once, not one HTTP call after another, so 50 calls are in flight together
    # however slowly this machine answers.
    ids = submit(stack, account, 10, "gpt-4o-mini")
    ids += insert_jobs(account, JOBS - 10, "gpt-4o-mini")
    wait_until(lambda: stack.sim_stats()["in_flight"] >= 50, timeout=30, what="calls in flight")
    load = SteadyLoad(stack.api_url, account, "gpt-4o-mini", interval=0.05).start()
    try:
        dedicated_postgres.stop()
        wait_until(
            lambda: _outage_retries(stack, "finish") >= 10, timeout=20, what="final writes to wait"
        )
        dedicated_postgres.start()
        back = time.monotonic()
        wait_all_final(ids, timeout=15)
        assert time.monotonic() - back <= 15
        before = len(load.accepted)
        wait_until(lambda: len(load.accepted) >= before + 10, timeout=20, what="more accepted")
    finally:
        load.stop()
    wait_all_final(load.accepted, timeout=30)
    everything = [*ids, *load.accepted]
    assert assert_settled(everything) == {"succeeded": len(everything)}
    assert stack.sim_stats()["total_requests"] == len(everything)
    assert load.statuses[500] == 0, load.errors[:5]
    assert set(load.statuses) <= {202, 503}, load.statuses
    assert load.statuses[503] >= 1, "the outage was never seen by the client"
    assert all(p.alive() for p in stack.processes.values())
