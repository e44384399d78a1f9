"""SIGTERM with calls in flight: they get SHUTDOWN_GRACE_S to finish, then their jobs go back to
the queue at once (not after their leases expire) and another worker completes them."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from devstack.processes import wait_until
from shared.db import transaction
from tests.faults.conftest import MakeStack
from tests.faults.invariants import assert_settled, wait_all_final
from tests.faults.seeding import create_account, submit

pytestmark = pytest.mark.e2e

MODEL = "gpt-4o-mini"
SLOW_CALL_MS = 30_000


def _statuses(ids: list[str]) -> set[str]:
    with transaction() as session:
        rows = session.execute(
            text("SELECT status FROM jobs WHERE id = ANY(CAST(:ids AS uuid[]))"), {"ids": ids}
        )
        return {row.status for row in rows}


def test_sigterm_returns_unfinished_jobs_after_the_grace(make_stack: MakeStack) -> None:
    """Four 30 s calls are in flight; SIGTERM ends the worker after the 2 s grace, long before
    the calls would end, with the four jobs queued again; a new worker finishes them."""
    stack = make_stack(
        workers=1,
        concurrency=4,
        # Leases far longer than the test: only the shutdown can hand these jobs back in time.
        env={"PROVIDER_TIMEOUT_S": "60", "JOB_LEASE_S": "300", "SHUTDOWN_GRACE_S": "2"},
    )
    stack.set_faults({"model": MODEL, "latency_ms": SLOW_CALL_MS})
    account = create_account("shutdown")
    ids = submit(stack, account, 4, MODEL)
    wait_until(lambda: stack.sim_stats()["in_flight"] == 4, timeout=30, what="4 calls in flight")

    started = time.monotonic()
    stack.processes["worker"].stop(grace=SLOW_CALL_MS / 1000)
    stopped_after = time.monotonic() - started
    assert stopped_after < SLOW_CALL_MS / 1000 / 2, f"worker took {stopped_after:.1f}s to stop"
    assert _statuses(ids) == {"queued"}

    stack.clear_faults()
    stack.start_worker("worker-2")
    wait_all_final(ids, timeout=60)
    assert assert_settled(ids) == {"succeeded": len(ids)}
