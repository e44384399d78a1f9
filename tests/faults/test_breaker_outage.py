"""A primary model in hard outage: the shared breaker opens for every worker process, jobs fall
back, and once the provider recovers a half-open probe closes the breaker again."""

from __future__ import annotations

import json
from collections.abc import Collection

import pytest
import redis
from sqlalchemy import text

from devstack.processes import wait_until
from shared.db import transaction
from tests.faults.conftest import MakeStack
from tests.faults.invariants import assert_settled, wait_all_final
from tests.faults.seeding import create_account, submit
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e

PRIMARY, FALLBACK = "gpt-4o-mini", "claude-3-5-haiku-latest"
BREAKER_STATE_KEY = "promptq:breaker:{openai:gpt-4o-mini}:state"


def _jobs_run_by(stack: RunningStack, worker: str) -> set[str]:
    """Ids of the jobs whose final write `worker` logged."""
    ids = set()
    for line in stack.processes[worker].log_text().splitlines():
        if '"job.finished"' in line:
            ids.add(json.loads(line)["job_id"])
    return ids


def _skipped_jobs(ids: Collection[str]) -> set[str]:
    """Those of `ids` with an attempt on the primary skipped because its circuit was open."""
    with transaction() as session:
        rows = session.execute(
            text(
                "SELECT DISTINCT job_id::text FROM job_attempts WHERE model = :model"
                " AND outcome = 'skipped' AND error_code = 'circuit_open'"
                " AND job_id::text = ANY(:ids)"
            ),
            {"model": PRIMARY, "ids": list(ids)},
        ).scalars()
        return set(rows)


def test_breaker_opens_for_all_workers_and_closes_after_recovery(make_stack: MakeStack) -> None:
    """Every call to the primary fails with 500: after a few failures the breaker opens in
    Redis, both worker processes then skip the primary (circuit_open) and serve from the
    fallback; once the fault is removed, a probe closes the breaker and the primary serves."""
    stack = make_stack(
        workers=2,
        concurrency=3,
        env={
            "BREAKER_MIN_CALLS": "4",
            "BREAKER_FAILURE_THRESHOLD": "0.5",
            "BREAKER_COOLDOWN_S": "4",
            "MAX_ATTEMPTS_PER_MODEL": "2",
        },
    )
    broker = redis.Redis.from_url(stack.env["REDIS_URL"])
    stack.set_faults(
        {"model": PRIMARY, "kind": "server_error", "rate": 1.0},
        # A slower fallback keeps both workers busy at once.
        {"model": FALLBACK, "latency_ms": 250},
    )
    account = create_account("outage")
    outage_ids = submit(stack, account, 24, PRIMARY, fallbacks=[FALLBACK])
    wait_all_final(outage_ids, timeout=30)

    assert broker.hget(BREAKER_STATE_KEY, "state") == b"open"
    for job_id in outage_ids:
        job = stack.get(account.key, f"/v1/jobs/{job_id}")
        assert job["status"] == "succeeded", job["error"]
        assert job["result"]["model"] == FALLBACK, job
    primary_calls = stack.sim_stats()["requests_by_model"].get(PRIMARY, 0)
    # Without the breaker each job would have called the primary twice.
    assert primary_calls < len(outage_ids), primary_calls
    skipped = _skipped_jobs(outage_ids)
    for worker in ("worker", "worker2"):
        assert _jobs_run_by(stack, worker) & skipped, f"{worker} never saw the open breaker"

    stack.clear_faults()
    recovery_ids: list[str] = []

    def primary_serves() -> bool:
        job_id = submit(stack, account, 1, PRIMARY, fallbacks=[FALLBACK])[0]
        recovery_ids.append(job_id)
        job = stack.wait_final(account.key, job_id, timeout=10)
        return job["result"]["model"] == PRIMARY

    wait_until(primary_serves, timeout=30, interval=0.5, what="the primary to serve again")
    assert broker.hget(BREAKER_STATE_KEY, "state") is None
    after_ids = submit(stack, account, 6, PRIMARY, fallbacks=[FALLBACK])
    wait_all_final(after_ids, timeout=20)
    for job_id in after_ids:
        assert stack.get(account.key, f"/v1/jobs/{job_id}")["result"]["model"] == PRIMARY
    assert not _skipped_jobs(after_ids)
    assert assert_settled([*outage_ids, *recovery_ids, *after_ids]) == {
        "succeeded": len(outage_ids) + len(recovery_ids) + len(after_ids)
    }
