"""Idle overhead: single jobs submitted one at a time to an idle stack with a fast provider.

What promptq adds to a job's life beyond the provider's time, two ways: from the job row
(finished_at - created_at - the attempts' latency_ms), and as a client polling GET
/v1/jobs/<id> every few milliseconds sees it (POST sent to `succeeded` seen, minus the same
provider time).
"""

from __future__ import annotations

import time

import requests

from bench.context import BenchContext
from bench.measure.job_timings import overhead_ms, percentiles, provider_ms
from bench.promptq_client import job_body, submit, wait_succeeded
from bench.results import Comparison, Cost, ScenarioResult

LATENCY_MS = 10.0
POLL_S = 0.005
# The shape the scenarios before this one leave running; an idle stack has slots to spare.
SHAPE = (1, 64)


def run(ctx: BenchContext) -> list[ScenarioResult]:
    stack, sizes = ctx.stack, ctx.sizes
    labels = ("job row p50", "job row p99", "polling client p50", "polling client p99")
    comparisons = [Comparison(label, "ms", lower_is_better=True) for label in labels]
    cost = Cost("promptq")
    result = ScenarioResult(
        "idle overhead",
        f"{sizes.idle_jobs} single jobs one at a time, provider {LATENCY_MS:.0f} ms; POST to "
        "succeeded minus provider time",
        comparisons,
        [cost],
        statement_kind="accept",
    )
    stack.set_sim(LATENCY_MS)
    workers = stack.workers(*SHAPE)
    session = requests.Session()
    key = stack.keys[0]
    try:
        # One job unmeasured first: the worker's first run pays for connections and imports.
        first = submit(session, stack.api_url, key, job_body("idle-warmup", 0))
        wait_succeeded(session, stack.api_url, key, first, POLL_S)
        for n in range(sizes.idle_runs):
            seen_ms: dict[str, float] = {}
            with ctx.window(workers, "worker", api=[stack.processes["api"]]) as usage:
                for i in range(sizes.idle_jobs):
                    started = time.monotonic()
                    job_id = submit(session, stack.api_url, key, job_body(f"idle-{n}", i))
                    wait_succeeded(session, stack.api_url, key, job_id, POLL_S)
                    seen_ms[job_id] = (time.monotonic() - started) * 1000
            cost.add(usage, sizes.idle_jobs)
            with stack.db() as connection:
                row = overhead_ms(connection, list(seen_ms))
                provider = provider_ms(connection, list(seen_ms))
            polled = [seen_ms[j] - provider.get(j, 0.0) for j in seen_ms]
            row_p, polled_p = percentiles(list(row.values())), percentiles(polled)
            for comparison, value in zip(
                comparisons,
                (row_p["p50"], row_p["p99"], polled_p["p50"], polled_p["p99"]),
                strict=True,
            ):
                comparison.promptq.append(value)
    finally:
        session.close()
    return [result]
