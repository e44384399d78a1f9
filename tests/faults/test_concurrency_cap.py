"""A per-model concurrency cap holds across worker processes: never more calls in flight."""

from __future__ import annotations

import json

import pytest

from tests.faults.conftest import MakeStack
from tests.faults.invariants import assert_settled, wait_all_final
from tests.faults.seeding import create_account, insert_jobs, submit

pytestmark = pytest.mark.e2e

MODEL, CAP = "gpt-4o-mini", 5


def test_cap_of_five_holds_across_three_workers(make_stack: MakeStack) -> None:
    """With MODEL_CONCURRENCY_CAPS {gpt-4o-mini: 5} and 3 workers of 4 slots each, 60 jobs of
    300 ms calls keep exactly 5 calls in flight at the peak, never 6."""
    stack = make_stack(
        workers=3,
        concurrency=4,
        sim_latency_ms=300,
        env={"MODEL_CONCURRENCY_CAPS": json.dumps({MODEL: CAP})},
    )
    account = create_account("capped")
    ids = submit(stack, account, 10, MODEL)
    ids += insert_jobs(account, 50, MODEL)
    wait_all_final(ids, timeout=40)

    assert assert_settled(ids) == {"succeeded": len(ids)}
    stats = stack.sim_stats()
    assert stats["requests_by_model"][MODEL] == len(ids)
    assert stats["max_in_flight_by_model"][MODEL] == CAP
