"""30% of provider calls fail with 429 or 5xx: retries with backoff carry every job through."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from shared.db import transaction
from tests.faults.conftest import MakeStack
from tests.faults.invariants import assert_settled, wait_all_final
from tests.faults.seeding import create_account, submit

pytestmark = pytest.mark.e2e

JOBS_PER_MODEL = 20


def test_every_job_succeeds_through_30_percent_failures(make_stack: MakeStack) -> None:
    """With 30% of calls answered 429 (OpenAI) or 500 (Anthropic), all 40 jobs succeed, and the
    retried ones show their failed attempts over the API and a backoff before each retry."""
    stack = make_stack(workers=1, concurrency=8)
    stack.set_faults(
        {"model": "gpt-4o-mini", "kind": "rate_limit", "rate": 0.3, "retry_after_s": 0.05},
        {"model": "claude-*", "kind": "server_error", "rate": 0.3},
    )
    account = create_account("flaky")
    # Explicit fallbacks: the API's reservation then covers the whole chain the worker runs.
    ids = submit(
        stack, account, JOBS_PER_MODEL, "gpt-4o-mini", fallbacks=["claude-3-5-haiku-latest"]
    )
    ids += submit(
        stack, account, JOBS_PER_MODEL, "claude-3-5-haiku-latest", fallbacks=["gpt-4o-mini"]
    )
    wait_all_final(ids, timeout=40)

    assert assert_settled(ids) == {"succeeded": 2 * JOBS_PER_MODEL}
    faults = stack.sim_stats()["faults_by_kind"]
    assert faults.get("rate_limit", 0) > 0 and faults.get("server_error", 0) > 0, faults

    retried = 0
    for job_id in ids:
        attempts = stack.get(account.key, f"/v1/jobs/{job_id}/attempts")["data"]
        assert [a["number"] for a in attempts] == list(range(1, len(attempts) + 1))
        assert attempts[-1]["outcome"] == "succeeded"
        failed = attempts[:-1]
        assert all(a["outcome"] == "failed" for a in failed), attempts
        assert {a["error_code"] for a in failed} <= {"rate_limited", "server_error"}, attempts
        retried += bool(failed)
    assert retried >= 0.2 * len(ids)

    # Retries of the same model waited first. Full jitter draws the wait from [0, ceiling], so
    # a rare draw rounds to 0 ms; nearly all must show a wait.
    with transaction() as session:
        waits = session.execute(
            text(
                """
                SELECT a.backoff_ms FROM job_attempts a JOIN job_attempts prev
                  ON prev.job_id = a.job_id AND prev.number = a.number - 1
                 AND prev.model = a.model AND prev.outcome = 'failed'
                """
            )
        ).scalars()
        waits = list(waits)
    assert waits
    assert sum(w > 0 for w in waits) >= 0.8 * len(waits), waits
