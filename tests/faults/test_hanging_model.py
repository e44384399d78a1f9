"""A model that never answers: each attempt ends at the provider timeout and the fallback
serves, so no job hangs."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from shared.db import transaction
from tests.faults.conftest import MakeStack
from tests.faults.invariants import assert_settled, wait_all_final
from tests.faults.seeding import create_account, submit

pytestmark = pytest.mark.e2e

PRIMARY, FALLBACK = "gpt-4o-mini", "claude-3-5-haiku-latest"
TIMEOUT_S = 1


def test_hanging_primary_times_out_and_fallback_serves(make_stack: MakeStack) -> None:
    """Every call to the primary hangs (for 30 s): attempts give up after PROVIDER_TIMEOUT_S,
    and every job succeeds on its fallback well before the hang would have ended."""
    stack = make_stack(
        workers=1,
        concurrency=10,
        sim_hang_s=30,
        env={"PROVIDER_TIMEOUT_S": str(TIMEOUT_S), "MAX_ATTEMPTS_PER_MODEL": "2"},
    )
    stack.set_faults({"model": PRIMARY, "kind": "hang", "rate": 1.0})
    account = create_account("hang")
    ids = submit(stack, account, 10, PRIMARY, fallbacks=[FALLBACK])
    wait_all_final(ids, timeout=20)

    assert assert_settled(ids) == {"succeeded": len(ids)}
    for job_id in ids:
        assert stack.get(account.key, f"/v1/jobs/{job_id}")["result"]["model"] == FALLBACK
    with transaction() as session:
        primary = session.execute(
            text("SELECT outcome, error_code, latency_ms FROM job_attempts WHERE model = :model"),
            {"model": PRIMARY},
        ).all()
    timed_out = [a for a in primary if a.error_code == "timeout"]
    assert len(timed_out) >= len(ids)
    assert all(TIMEOUT_S * 1000 * 0.9 <= a.latency_ms < TIMEOUT_S * 1000 * 2 for a in timed_out)
    # The rest, if any, were skipped once the breaker opened on all those timeouts.
    assert all(
        a.error_code == "timeout" or (a.outcome, a.error_code) == ("skipped", "circuit_open")
        for a in primary
    )
    assert stack.sim_stats()["faults_by_kind"]["hang"] == len(timed_out)
